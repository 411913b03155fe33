//! The action interface and the registry of actions a worker can execute.

use async_trait::async_trait;
use bulwark_core::TenantId;
use bulwark_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// What an action knows about the run it executes for.
#[derive(Clone)]
pub struct ActionContext {
    pub store: Store,
    pub tenant_id: TenantId,
    pub run_id: Uuid,
    pub playbook_name: String,
    pub alert_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    /// The same for every attempt of a step, across workers (`<run>:<ref>[:<item>]`).
    pub idempotency_key: String,
    pub timeout: Duration,
    /// The platform tenant (for assignee checks).
    pub platform_tenant: TenantId,
    /// The worker's group commit of alert writes; `None` writes through the store directly.
    pub alert_writer: Option<crate::alert_writes::AlertWriter>,
}

impl ActionContext {
    /// Who the change is attributed to in timelines and the audit chain.
    pub fn change_ctx(&self) -> bulwark_store::ChangeCtx {
        bulwark_store::ChangeCtx {
            actor_kind: "playbook",
            actor_id: Some(self.run_id.to_string()),
            actor_name: Some(self.playbook_name.clone()),
            request_id: None,
        }
    }

    pub fn access(&self) -> bulwark_core::AlertAccess {
        bulwark_core::AlertAccess::unrestricted(bulwark_core::Scope::Tenants(vec![self.tenant_id]))
    }
}

/// A failed action: `retryable` lets the run's retry policy try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub message: String,
    pub retryable: bool,
}

impl ActionError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A store error: database trouble is retryable, a refusal is not.
    pub fn store(what: &str, e: bulwark_store::StoreError) -> Self {
        match e {
            bulwark_store::StoreError::Backend(_) | bulwark_store::StoreError::Sqlite(_) => {
                Self::retry(format!("{what}: {e}"))
            }
            _ => Self::fatal(format!("{what}: {e}")),
        }
    }
}

#[async_trait]
pub trait Action: Send + Sync {
    fn name(&self) -> &str;
    async fn execute(&self, ctx: &ActionContext, input: &Value) -> Result<Value, ActionError>;
}

/// Action name → implementation.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    actions: HashMap<String, Arc<dyn Action>>,
}

impl ActionRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in actions (`approval`, `set` and `wait` are not actions: the worker and the
    /// state machine handle them).
    pub fn builtin(config: &crate::EngineConfig) -> Self {
        let mut r = Self::new();
        r.register(Arc::new(crate::actions::AlertUpdate));
        r.register(Arc::new(crate::actions::AlertComment));
        r.register(Arc::new(crate::actions::IncidentCreate));
        r.register(Arc::new(crate::actions::IncidentLink));
        r.register(Arc::new(crate::actions::IncidentUpdate));
        r.register(Arc::new(crate::actions::ObservableTag));
        r.register(Arc::new(crate::actions::Script {
            limits: config.script_limits.clone(),
        }));
        r.register(Arc::new(crate::http::HttpRequest::new(
            &config.http_allow,
            config.http_body_limit,
        )));
        r
    }

    /// Adds or replaces an action.
    pub fn register(&mut self, action: Arc<dyn Action>) {
        self.actions.insert(action.name().to_owned(), action);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.actions.get(name).cloned()
    }
}
