//! The domain's `Itsm` port on ServiceNow: work notes on the request item (`sc_req_item`), and at the
//! end its state and stage: Closed Complete (3) with stage Completed (`complete`), or Closed
//! Incomplete (4) with stage Request Cancelled (`Request Cancelled`).

use async_trait::async_trait;
use domain::model::{Request, WorkNote};
use domain::ports::Itsm;
use serde_json::{Map, Value};

use crate::Client;

const TABLE: &str = "sc_req_item";
const CLOSED_COMPLETE: &str = "3";
const CLOSED_INCOMPLETE: &str = "4";
/// The stage an item closes with: the workflow's progress indicator (and what catalog business
/// rules such as closing the parent request look at) says done or not done, not still
/// "Fulfillment". Values of the `sc_req_item.stage` choice list; "Request Cancelled" is a value
/// with a space. https://www.servicenow.com/community/itsm-forum/request-management-states-and-stages-best-practice/td-p/3413764
const STAGE_COMPLETE: &str = "complete";
const STAGE_CANCELLED: &str = "Request Cancelled";

pub struct RequestItemWriteBack {
    client: Client,
}

impl RequestItemWriteBack {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The fields that close the item: state and stage together, in one write.
fn closing(complete: bool) -> Map<String, Value> {
    let (state, stage) =
        if complete { (CLOSED_COMPLETE, STAGE_COMPLETE) } else { (CLOSED_INCOMPLETE, STAGE_CANCELLED) };
    let mut fields = Map::new();
    fields.insert("state".into(), Value::String(state.into()));
    fields.insert("stage".into(), Value::String(stage.into()));
    fields
}

#[async_trait]
impl Itsm for RequestItemWriteBack {
    async fn write_back(&self, marker: &str, note: &WorkNote, request: &Request) -> domain::Result<()> {
        let sys_id = &request.source.sys_id;
        self.client.add_work_note(TABLE, sys_id, &note.text, marker).await?;
        if let Some(complete) = note.close {
            // Setting the same state and stage twice is harmless, so a retry after a lost answer is too.
            self.client.update(TABLE, sys_id, &closing(complete)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::closing;
    use serde_json::json;

    #[test]
    fn closing_sets_state_and_stage() {
        assert_eq!(serde_json::Value::Object(closing(true)), json!({"state": "3", "stage": "complete"}));
        assert_eq!(serde_json::Value::Object(closing(false)), json!({"state": "4", "stage": "Request Cancelled"}));
    }
}
