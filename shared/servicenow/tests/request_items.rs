//! The `SourceItems` and `Itsm` ports against the ServiceNow simulator: reading a request item
//! for intake, and closing it with its state and stage.

use std::time::Duration;

use domain::Error;
use domain::model::{Request, WorkNote};
use domain::ports::{Itsm, SourceItems, SourcePerson};
use gatehouse_servicenow::{Client, RequestItemWriteBack, RequestItems, ServiceNowConfig, SnAuth};
use serde_json::{Map, Value, json};
use servicenow_sim::{
    ItemVariables, LAPTOP_CATALOG_ITEM, PersonSpec, RequestItemSpec, SnFaults, SnSim, SnSimConfig, VM_CATALOG_ITEM,
};

const RITM: &str = "sc_req_item";

async fn sim() -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap()
}

fn client(sim: &SnSim) -> Client {
    Client::new(ServiceNowConfig {
        instance_url: sim.base_url(),
        auth: SnAuth::Basic { user: "gatehouse".into(), password: "secret".into() },
        timeout: Duration::from_secs(5),
        max_retries: 2,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..ServiceNowConfig::default()
    })
    .unwrap()
}

fn ada() -> PersonSpec {
    PersonSpec::new("ada@example.com", "Ada Lovelace", "ada")
}

fn person(email: &str, name: &str, user_name: &str) -> SourcePerson {
    SourcePerson { email: email.into(), name: name.into(), user_name: user_name.into() }
}

fn vm_item() -> RequestItemSpec {
    RequestItemSpec {
        opened_by: Some(PersonSpec::new("bob@example.com", "Bob Smith", "bob")),
        ..RequestItemSpec::new(ada(), ItemVariables::vm("demo", "img-1", "m1.small", "net-1", "web-01", 2))
    }
}

#[tokio::test]
async fn reads_an_ordered_item_with_its_people_and_variables() {
    let sim = sim().await;
    let (sys_id, number) = sim.create_request_item(&vm_item());
    let items = RequestItems::new(client(&sim));
    let item = items.request_item(&sys_id.to_uppercase()).await.unwrap().expect("the item exists");
    assert_eq!(item.sys_id, sys_id, "lower case");
    assert_eq!(item.number, number);
    assert_eq!((item.approval.as_str(), item.state.as_str(), item.active), ("approved", "1", true));
    assert_eq!(item.cat_item, VM_CATALOG_ITEM);
    assert_eq!(item.requested_for, Some(person("ada@example.com", "Ada Lovelace", "ada")));
    assert_eq!(item.opened_by, Some(person("bob@example.com", "Bob Smith", "bob")));
    let vars: Vec<(&str, &str)> = item.variables.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        vars,
        [
            ("cloud", "demo"),
            ("count", "2"),
            ("flavor", "m1.small"),
            ("image", "img-1"),
            ("network", "net-1"),
            ("server_name", "web-01")
        ]
    );

    // Cancelled in ServiceNow after its approval.
    assert!(sim.set_field(RITM, &sys_id, "state", "4"));
    let item = items.request_item(&sys_id).await.unwrap().unwrap();
    assert_eq!((item.state.as_str(), item.active, item.approval.as_str()), ("4", false, "approved"));

    // An empty variable reads as absent; so does one edited away.
    assert!(sim.set_variable(&sys_id, "gatehouse_network", ""));
    let item = items.request_item(&sys_id).await.unwrap().unwrap();
    assert!(!item.variables.contains_key("network"));
    assert_eq!(item.variables.len(), 5);
}

#[tokio::test]
async fn reads_the_lease_an_item_was_ordered_with() {
    let sim = sim().await;
    let mut spec = vm_item();
    spec.variables.lease_days = Some("30".into());
    let (leased, _) = sim.create_request_item(&spec);
    let (unleased, _) = sim.create_request_item(&vm_item());
    let items = RequestItems::new(client(&sim));
    let item = items.request_item(&leased).await.unwrap().unwrap();
    assert_eq!(item.variables.get("lease_days").map(String::as_str), Some("30"));
    let item = items.request_item(&unleased).await.unwrap().unwrap();
    assert_eq!(item.variables.get("lease_days"), None, "ordered without a lease: the variable is empty");
}

#[tokio::test]
async fn items_without_gatehouse_variables_or_people() {
    let sim = sim().await;
    let laptop =
        RequestItemSpec { cat_item: Some(LAPTOP_CATALOG_ITEM.into()), approval: Some("requested".into()), ..vm_item() };
    let (laptop_id, _) = sim.create_request_item(&laptop);
    let items = RequestItems::new(client(&sim));
    let item = items.request_item(&laptop_id).await.unwrap().unwrap();
    assert_eq!(item.cat_item, LAPTOP_CATALOG_ITEM);
    assert_eq!(item.approval, "requested");
    assert!(item.variables.is_empty(), "{:?}", item.variables);
    assert!(item.requested_for.is_some());

    // Inserted through the Table API: no catalog item, no people, no variables.
    let mut fields = Map::new();
    fields.insert("short_description".into(), Value::String("by hand".into()));
    fields.insert("opened_by".into(), Value::String(String::new()));
    let bare = sim.insert(RITM, fields);
    let item = items.request_item(&bare).await.unwrap().unwrap();
    assert_eq!((item.cat_item.as_str(), item.requested_for.clone(), item.opened_by.clone()), ("", None, None));
    assert!(item.variables.is_empty());

    assert_eq!(items.request_item("0123456789abcdef0123456789abcdef").await.unwrap(), None, "404");
    assert!(matches!(items.request_item("a/b").await, Err(Error::Invalid { .. })));
}

#[tokio::test]
async fn upstream_failures_are_upstream_errors() {
    let sim = sim().await;
    let (sys_id, _) = sim.create_request_item(&vm_item());
    sim.set_faults(SnFaults { status: Some(503), ..SnFaults::default() });
    let err = RequestItems::new(client(&sim)).request_item(&sys_id).await.unwrap_err();
    match err {
        Error::Upstream { system, detail, .. } => {
            assert_eq!(system, "ServiceNow sc_req_item");
            assert!(detail.contains(&sys_id) && detail.contains("503"), "{detail}");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

/// A request from the item, in the shape the domain stores it.
fn request_for(sys_id: &str, number: &str) -> Request {
    let at = "2026-12-01T10:00:00Z";
    serde_json::from_value(json!({
        "id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "status": "active", "version": 1,
        "source": {"system": "servicenow", "number": number, "sys_id": sys_id},
        "requester": {"email": "ada@example.com", "name": "Ada Lovelace", "user_name": "ada"},
        "cloud": "demo", "image": {"id": "img-1", "name": "Ubuntu"}, "flavor": {"id": "f1", "name": "m1.small"},
        "network": {"id": "net-1", "name": "private"}, "server_name": "web-01", "count": 1,
        "metadata": {}, "approvers": [], "created_at": at, "updated_at": at, "expires_at": at,
        "reminded": false, "servers": [], "intake_digest": "x"
    }))
    .expect("a request in the domain's shape")
}

#[tokio::test]
async fn closing_an_item_sets_its_state_and_stage() {
    let sim = sim().await;
    let itsm = RequestItemWriteBack::new(client(&sim));
    for (complete, state, stage, shown) in
        [(true, "3", "complete", "Completed"), (false, "4", "Request Cancelled", "Request Cancelled")]
    {
        let (sys_id, number) = sim.create_request_item(&vm_item());
        let request = request_for(&sys_id, &number);
        let note = WorkNote { text: "Done.".into(), close: Some(complete) };
        itsm.write_back("[gatehouse:t:1]", &note, &request).await.unwrap();
        // A second delivery changes nothing.
        itsm.write_back("[gatehouse:t:1]", &note, &request).await.unwrap();
        let item = sim.record(RITM, &sys_id).unwrap();
        assert_eq!((item["state"].as_str(), item["stage"].as_str()), (Some(state), Some(stage)));
        assert_eq!(item["active"], "false");
        assert_eq!(sim.work_notes(RITM, &sys_id).len(), 1);
        let shown_stage = client(&sim)
            .get(RITM, &sys_id, gatehouse_servicenow::DisplayValue::Display)
            .await
            .unwrap()
            .unwrap()
            .display("stage");
        assert_eq!(shown_stage.as_deref(), Some(shown));
    }
    // A note that does not close leaves state and stage alone.
    let (sys_id, number) = sim.create_request_item(&vm_item());
    let note = WorkNote { text: "Approved.".into(), close: None };
    itsm.write_back("[gatehouse:t:2]", &note, &request_for(&sys_id, &number)).await.unwrap();
    let item = sim.record(RITM, &sys_id).unwrap();
    assert_eq!((item["state"].as_str(), item["stage"].as_str()), (Some("1"), Some("fulfillment")));
}
