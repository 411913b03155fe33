//! # bulwark-playbook: the pure logic of Bulwark's automation engine
//!
//! Everything about playbooks that can be decided without a database, a network or a
//! clock lives here, so it can be tested exhaustively and shared by the API (validation on
//! upload), ingestion (trigger matching) and the worker (run planning):
//!
//! | module | what |
//! | --- | --- |
//! | [`spec`] | the YAML/JSON format ([`PlaybookSpec`]), [`parse_yaml`] / [`parse_json`], the compiled [`Playbook`] |
//! | [`validate`] | load-time checks: refs, cycles, catalog arguments, expressions, templates, cron, durations |
//! | [`catalog`] | the action catalog ([`Catalog::builtin`], [`Catalog::register`]) |
//! | [`expr`] | the one expression/template language (minijinja) in a fuel-bounded [`Sandbox`] |
//! | [`script`] | sandboxed Rhai scripts with operation/size/time limits |
//! | [`preview`] | a dry run: what a run would do with a given context, executing nothing |
//! | [`run`] | [`RunState`]: the per-run state machine the worker drives and persists |
//! | [`trigger`] | [`TriggerSet`]: which enabled playbooks an alert/incident event starts; cron next-fire |
//!
//! ## Why pure
//! The worker owns I/O: it claims a job, loads the [`RunState`] JSON, calls
//! [`RunState::advance`] with the current time, executes the returned [`Step`]s (store
//! updates, HTTP, approvals), calls [`RunState::record`] with each outcome and saves the
//! state. Because this crate never reads the clock, the network or the store, a run can be
//! replayed from any saved state and every decision (ordering, skips, retries, backoff,
//! error handling, cancellation) is a unit test. No tokio, no unsafe.
//!
//! The format reference is `docs/playbooks.md`; examples are in `playbooks/examples/`.

pub mod catalog;
pub mod duration;
pub mod error;
pub mod expr;
pub mod preview;
pub mod run;
pub mod script;
pub mod spec;
pub mod trigger;
pub mod validate;

pub use catalog::{ActionSchema, ArgSchema, ArgType, Catalog};
pub use duration::parse_duration;
pub use error::{PlaybookError, PlaybookErrors};
pub use expr::{
    Condition, Expr, ExprError, ExprErrorKind, PreparedContext, Sandbox, SandboxConfig,
};
pub use preview::{PreviewAction, PreviewExpr, PreviewUnit, preview, trigger_context};
pub use run::{
    ActionStatus, Advance, RunError, RunState, RunStatus, Step, StepOutcome, UnitStatus,
};
pub use script::{CompiledScript, ScriptError, ScriptLimits, compile_script};
pub use spec::{
    ActionSpec, Backoff, OnError, Playbook, PlaybookSpec, RetryPolicy, RetrySpec, TriggerKind,
    TriggerSpec, parse_json, parse_json_with, parse_yaml, parse_yaml_with,
};
pub use trigger::{Match, MatchError, TriggerEvent, TriggerMatches, TriggerSet, next_fire};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug>() {}

    #[test]
    fn shared_types_are_send_sync() {
        assert_traits::<Playbook>();
        assert_traits::<Sandbox>();
        assert_traits::<Condition>();
        assert_traits::<CompiledScript>();
        assert_traits::<RunState>();
        assert_traits::<TriggerSet>();
    }
}
