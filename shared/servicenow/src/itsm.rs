//! The domain's `Itsm` port on ServiceNow: work notes on the request item (`sc_req_item`), and at the
//! end its state: Closed Complete (3) or Closed Incomplete (4).

use async_trait::async_trait;
use domain::model::{Request, WorkNote};
use domain::ports::Itsm;
use serde_json::{Map, Value};

use crate::Client;

const TABLE: &str = "sc_req_item";
const CLOSED_COMPLETE: &str = "3";
const CLOSED_INCOMPLETE: &str = "4";

pub struct RequestItemWriteBack {
    client: Client,
}

impl RequestItemWriteBack {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Itsm for RequestItemWriteBack {
    async fn write_back(&self, marker: &str, note: &WorkNote, request: &Request) -> domain::Result<()> {
        let sys_id = &request.source.sys_id;
        self.client.add_work_note(TABLE, sys_id, &note.text, marker).await?;
        if let Some(complete) = note.close {
            let mut fields = Map::new();
            fields.insert(
                "state".into(),
                Value::String(if complete { CLOSED_COMPLETE } else { CLOSED_INCOMPLETE }.into()),
            );
            // Setting the same state twice is harmless, so a retry after a lost answer is too.
            self.client.update(TABLE, sys_id, &fields).await?;
        }
        Ok(())
    }
}
