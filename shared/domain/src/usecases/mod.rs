//! The use-cases: what Gatehouse does, written against the ports only.

pub mod approval;
pub mod audit;
pub mod audit_search;
mod decision;
pub mod decommission;
pub mod gate;
pub mod gate_act;
pub mod gate_caller;
pub mod gate_events;
mod gate_history;
mod gate_note;
mod gate_summary;
pub mod intake;
pub mod lease;
pub mod outbox;
pub mod provision;
mod retire;
pub mod signin;
pub mod source;
mod stages;
pub mod sweeper;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::model::{MessageKind, OutboxMessage, Request, RequestId, WorkNote};
use crate::ports::{SourceItems, Store};
use crate::signin::IdentityProvider;
use jiff::Timestamp;

/// Wakes whoever works after a write: locally an in-process task, on AWS the DynamoDB stream and
/// the schedule (where these do nothing).
pub trait Signals: Send + Sync {
    /// A write recorded messages to deliver.
    fn messages_owed(&self);
    /// A request became `approved`.
    fn approved(&self, id: &RequestId);
}

/// For deployments where the store's own change stream does the waking.
pub struct NoSignals;

impl Signals for NoSignals {
    fn messages_owed(&self) {}
    fn approved(&self, _id: &RequestId) {}
}

impl Services {
    /// The write-back a step owes the request item, when ServiceNow is configured.
    pub(crate) fn work_note(
        &self,
        request: &Request,
        at: Timestamp,
        text: String,
        close: Option<bool>,
    ) -> Option<OutboxMessage> {
        self.config
            .servicenow
            .as_ref()
            .map(|_| OutboxMessage::new(&request.id, at, MessageKind::WorkNote(WorkNote { text, close })))
    }
}

/// Everything the use-cases need, built once per process.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    /// The CI gate's change records (sealed like the store), which audit evidence reads.
    pub changes: Arc<dyn crate::changes::ChangeRecords>,
    pub catalog: Arc<Catalog>,
    pub config: Arc<Config>,
    pub signals: Arc<dyn Signals>,
    /// ServiceNow's request items, when ServiceNow is configured: what intake is checked against.
    pub source_items: Option<Arc<dyn SourceItems>>,
    /// The OpenID provider approvers sign in with, when sign-in is configured.
    pub identity: Option<Arc<dyn IdentityProvider>>,
}
