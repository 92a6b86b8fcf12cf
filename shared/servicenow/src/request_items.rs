//! The domain's `SourceItems` port on ServiceNow: a request item (`sc_req_item`) as intake checks
//! it, read in one Table API call with its people (dot-walked `sys_user` fields) and the Gatehouse
//! variable set's variables (`variables.gatehouse_*`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::ports::{SourceItem, SourceItems, SourcePerson};

use crate::{Client, DisplayValue, Record};

const TABLE: &str = "sc_req_item";

/// (short name in [`SourceItem::variables`], the variable's name in the Gatehouse variable set,
/// `infra/servicenow/manifest.json`).
const VARIABLES: [(&str, &str); 7] = [
    ("cloud", "gatehouse_cloud"),
    ("image", "gatehouse_image"),
    ("flavor", "gatehouse_flavor"),
    ("network", "gatehouse_network"),
    ("server_name", "gatehouse_server_name"),
    ("count", "gatehouse_count"),
    // Optional: empty on an item ordered without a lease.
    ("lease_days", "gatehouse_lease_days"),
];

const PERSON_FIELDS: [&str; 3] = ["email", "name", "user_name"];

/// Exactly the fields intake needs: the item, its people and its variables. Catalog variables
/// and fields of referenced records are read through `sysparm_fields` by name
/// (`variables.<name>`, `requested_for.email`), answered under those dotted keys; a variable the
/// item lacks is left out ("Invalid fields are ignored"):
/// https://www.servicenow.com/docs/r/australia/api-reference/rest-apis/c_TableAPI.html
/// https://developer.servicenow.com/blog.do?p=/post/dot-walking-in-the-rest-table-api-2/
fn fields() -> Vec<String> {
    let mut f: Vec<String> =
        ["sys_id", "number", "approval", "active", "state", "cat_item"].iter().map(|s| s.to_string()).collect();
    for person in ["requested_for", "opened_by"] {
        f.extend(PERSON_FIELDS.iter().map(|p| format!("{person}.{p}")));
    }
    f.extend(VARIABLES.iter().map(|(_, name)| format!("variables.{name}")));
    f
}

/// Reads request items from ServiceNow for intake (see [`SourceItems`]).
pub struct RequestItems {
    client: Client,
}

impl RequestItems {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SourceItems for RequestItems {
    async fn request_item(&self, sys_id: &str) -> domain::Result<Option<SourceItem>> {
        let sys_id = sys_id.trim().to_ascii_lowercase();
        let fields = fields();
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        let Some(record) = self.client.get_fields(TABLE, &sys_id, &names, DisplayValue::Stored).await? else {
            return Ok(None);
        };
        Ok(Some(item(&record, &sys_id)))
    }
}

fn text(r: &Record, field: &str) -> String {
    r.value(field).unwrap_or_default()
}

/// The person a reference names, `None` when the reference is empty.
fn person(r: &Record, reference: &str) -> Option<SourcePerson> {
    let get = |f: &str| text(r, &format!("{reference}.{f}")).trim().to_string();
    let p = SourcePerson { email: get("email"), name: get("name"), user_name: get("user_name") };
    (!(p.email.is_empty() && p.name.is_empty() && p.user_name.is_empty())).then_some(p)
}

fn item(r: &Record, asked: &str) -> SourceItem {
    let variables: BTreeMap<String, String> = VARIABLES
        .iter()
        .filter_map(|(short, name)| {
            let value = r.value(&format!("variables.{name}"))?;
            (!value.trim().is_empty()).then(|| (short.to_string(), value))
        })
        .collect();
    SourceItem {
        sys_id: r.sys_id().unwrap_or(asked).to_ascii_lowercase(),
        number: text(r, "number"),
        approval: text(r, "approval"),
        active: text(r, "active") == "true",
        state: text(r, "state"),
        cat_item: text(r, "cat_item").trim().to_ascii_lowercase(),
        requested_for: person(r, "requested_for"),
        opened_by: person(r, "opened_by"),
        variables,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_an_answer_to_a_source_item() {
        let r = Record::from_value(json!({
            "sys_id": "9D385017C611228701D22104CC95C371", "number": "RITM0010001", "approval": "approved",
            "active": "true", "state": "1", "cat_item": "4F1C7D2E9A6B4E0C8D3A5B7C9E1F2A30",
            "requested_for.email": "ada@example.com", "requested_for.name": "Ada Lovelace",
            "requested_for.user_name": "ada",
            "opened_by.email": "", "opened_by.name": "", "opened_by.user_name": "",
            "variables.gatehouse_cloud": "demo", "variables.gatehouse_image": " ",
            "variables.gatehouse_count": "2", "variables.gatehouse_lease_days": "30"
        }))
        .unwrap();
        let item = item(&r, "x");
        assert_eq!(item.sys_id, "9d385017c611228701d22104cc95c371");
        assert_eq!(item.cat_item, "4f1c7d2e9a6b4e0c8d3a5b7c9e1f2a30");
        assert!(item.active);
        assert_eq!(item.requested_for.unwrap().user_name, "ada");
        assert_eq!(item.opened_by, None, "an empty reference");
        let vars: Vec<(&str, &str)> = item.variables.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(vars, [("cloud", "demo"), ("count", "2"), ("lease_days", "30")], "absent and empty ones left out");
        assert_eq!(fields().len(), 19);
        assert!(fields().contains(&"variables.gatehouse_lease_days".to_string()));
        assert!(fields().contains(&"variables.gatehouse_server_name".to_string()));
    }
}
