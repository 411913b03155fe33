//! Integration actions as engine actions: `virustotal.lookup_ip` in a playbook runs the run's
//! tenant's VirusTotal instance (the one named by the `integration` argument, else the default
//! or only one).

use crate::{CallError, Integrations};
use async_trait::async_trait;
use bulwark_engine::{Action, ActionContext, ActionError};
use serde_json::Value;
use std::sync::Arc;

pub struct IntegrationAction {
    full_name: String,
    type_name: String,
    action: String,
    rt: Arc<Integrations>,
}

impl From<CallError> for ActionError {
    fn from(e: CallError) -> Self {
        ActionError {
            message: e.message,
            retryable: e.retryable,
        }
    }
}

/// One engine action per action of every type.
pub fn engine_actions(rt: &Arc<Integrations>) -> Vec<Arc<dyn Action>> {
    let mut out: Vec<Arc<dyn Action>> = Vec::new();
    for t in rt.types() {
        for a in &t.actions {
            out.push(Arc::new(IntegrationAction {
                full_name: format!("{}.{}", t.name, a.name),
                type_name: t.name.clone(),
                action: a.name.clone(),
                rt: rt.clone(),
            }));
        }
    }
    out
}

#[async_trait]
impl Action for IntegrationAction {
    fn name(&self) -> &str {
        &self.full_name
    }

    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError> {
        let name = input.get("integration").and_then(Value::as_str);
        let inst = self
            .rt
            .resolve(&ctx.store, ctx.tenant_id, &self.type_name, name)
            .await?;
        Ok(self
            .rt
            .call(
                &inst,
                &self.action,
                input,
                &ctx.idempotency_key,
                ctx.timeout,
            )
            .await?)
    }
}
