//! The simulator's catalog over raw HTTP: users, catalog items, ordered request items and their
//! variables, as a ServiceNow client sees them. (Beside `sim.rs` to keep each file short.)

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use servicenow_sim::{
    ItemVariables, LAPTOP_CATALOG_ITEM, PersonSpec, RequestItemSpec, SnSim, SnSimConfig, VM_CATALOG_ITEM,
};

const USER: &str = "gatehouse";
const PASSWORD: &str = "secret";
const GATEHOUSE_FIELDS: &str = "variables.gatehouse_cloud,variables.gatehouse_image,variables.gatehouse_flavor,\
                                variables.gatehouse_network,variables.gatehouse_server_name,variables.gatehouse_count";

async fn sim() -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap()
}

/// A Table API call (HTTP Basic); answers (status, body).
async fn api(sim: &SnSim, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req =
        reqwest::Client::new().request(method, format!("{}{path}", sim.base_url())).basic_auth(USER, Some(PASSWORD));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

/// A control API call (no credentials); answers (status, body).
async fn control(sim: &SnSim, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let resp =
        reqwest::Client::new().request(method, format!("{}{path}", sim.base_url())).json(&body).send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

async fn read(sim: &SnSim, sys_id: &str, query: &str) -> Value {
    let (status, body) = api(sim, Method::GET, &format!("/api/now/table/sc_req_item/{sys_id}?{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["result"].clone()
}

fn ada_and_bob() -> Value {
    json!({
        "requested_for": {"email": "ada@example.com", "name": "Ada Lovelace", "user_name": "ada"},
        "opened_by": {"email": "bob@example.com", "name": "Bob Smith", "user_name": "bob"},
        "variables": {"cloud": "demo", "image": "img-1", "flavor": "m1.small", "network": "net-1",
                      "server_name": "web-01", "count": 2}
    })
}

#[tokio::test]
async fn an_ordered_item_carries_its_people_catalog_item_and_variables() {
    let sim = sim().await;
    let (status, created) = control(&sim, Method::POST, "/_sim/request_items", ada_and_bob()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["number"], "RITM0010001");
    let id = created["sys_id"].as_str().unwrap().to_string();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    let fields = format!(
        "sys_id,number,approval,active,state,stage,cat_item,requested_for.email,requested_for.name,\
         requested_for.user_name,opened_by.email,opened_by.name,opened_by.user_name,{GATEHOUSE_FIELDS},\
         variables.no_such_variable,no_such_field"
    );
    let stored = read(
        &sim,
        &id,
        &format!("sysparm_fields={fields}&sysparm_display_value=false&sysparm_exclude_reference_link=true"),
    )
    .await;
    assert_eq!(
        stored,
        json!({
            "sys_id": id, "number": "RITM0010001", "approval": "approved", "active": "true", "state": "1",
            "stage": "fulfillment", "cat_item": VM_CATALOG_ITEM,
            "requested_for.email": "ada@example.com", "requested_for.name": "Ada Lovelace",
            "requested_for.user_name": "ada",
            "opened_by.email": "bob@example.com", "opened_by.name": "Bob Smith", "opened_by.user_name": "bob",
            "variables.gatehouse_cloud": "demo", "variables.gatehouse_image": "img-1",
            "variables.gatehouse_flavor": "m1.small", "variables.gatehouse_network": "net-1",
            "variables.gatehouse_server_name": "web-01", "variables.gatehouse_count": "2"
        }),
        "unknown fields and variables are left out"
    );

    // References display the user's and the catalog item's names.
    let shown = read(
        &sim,
        &id,
        "sysparm_fields=requested_for,opened_by,cat_item,stage,approval,request&sysparm_display_value=true",
    )
    .await;
    assert_eq!(shown["requested_for"]["display_value"], "Ada Lovelace");
    assert_eq!(shown["opened_by"]["display_value"], "Bob Smith");
    assert_eq!(shown["cat_item"]["display_value"], "Virtual machine (Gatehouse)");
    assert_eq!((shown["stage"].as_str(), shown["approval"].as_str()), (Some("Fulfillment"), Some("Approved")));
    assert!(shown["request"]["display_value"].as_str().unwrap().starts_with("REQ00100"), "{shown}");
    let linked = read(&sim, &id, "sysparm_fields=cat_item").await;
    assert_eq!(
        linked["cat_item"],
        json!({"link": format!("{}/api/now/table/sc_cat_item/{VM_CATALOG_ITEM}", sim.base_url()), "value": VM_CATALOG_ITEM})
    );
    let users = read(&sim, &id, "sysparm_fields=requested_for&sysparm_exclude_reference_link=true").await;
    let ada = users["requested_for"].as_str().unwrap().to_string();
    let (_, user) = api(&sim, Method::GET, &format!("/api/now/table/sys_user/{ada}"), None).await;
    assert_eq!(
        (user["result"]["user_name"].as_str(), user["result"]["email"].as_str(), user["result"]["first_name"].as_str()),
        (Some("ada"), Some("ada@example.com"), Some("Ada"))
    );

    // A second item for Ada reuses her user; opened_by defaults to requested_for.
    let mut again = ada_and_bob();
    again.as_object_mut().unwrap().remove("opened_by");
    let (_, second) = control(&sim, Method::POST, "/_sim/request_items", again).await;
    assert_eq!(second["number"], "RITM0010002");
    let (_, ada_users) = api(&sim, Method::GET, "/api/now/table/sys_user?sysparm_query=user_name%3Dada", None).await;
    assert_eq!(ada_users["result"].as_array().unwrap().len(), 1);
    let opened = read(&sim, second["sys_id"].as_str().unwrap(), "sysparm_fields=opened_by.user_name").await;
    assert_eq!(opened["opened_by.user_name"], "ada");

    // Conditions may dot-walk too.
    let q = |user: &str| {
        format!("/api/now/table/sc_req_item?sysparm_query=requested_for.user_name%3D{user}&sysparm_fields=number")
    };
    assert_eq!(api(&sim, Method::GET, &q("ada"), None).await.1["result"].as_array().unwrap().len(), 2);
    assert_eq!(api(&sim, Method::GET, &q("bob"), None).await.1["result"], json!([]));

    // An item inserted through the Table API has no variables and an empty requested_for.
    let (_, plain) =
        api(&sim, Method::POST, "/api/now/table/sc_req_item", Some(json!({"short_description": "x"}))).await;
    let plain_id = plain["result"]["sys_id"].as_str().unwrap();
    let r = read(&sim, plain_id, &format!("sysparm_fields=number,requested_for.email,{GATEHOUSE_FIELDS}")).await;
    assert_eq!(r, json!({"number": "RITM0010003", "requested_for.email": ""}));
}

#[tokio::test]
async fn an_item_without_the_gatehouse_variable_set_has_no_gatehouse_variables() {
    let sim = sim().await;
    let mut body = ada_and_bob();
    body["cat_item"] = json!(LAPTOP_CATALOG_ITEM.to_uppercase());
    body["approval"] = json!("requested");
    let (status, created) = control(&sim, Method::POST, "/_sim/request_items", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["sys_id"].as_str().unwrap();
    let r = read(
        &sim,
        id,
        &format!("sysparm_fields=cat_item,approval,stage,{GATEHOUSE_FIELDS}&sysparm_exclude_reference_link=true"),
    )
    .await;
    assert_eq!(r, json!({"cat_item": LAPTOP_CATALOG_ITEM, "approval": "requested", "stage": "waiting_for_approval"}));
    let (_, vars) = control(&sim, Method::GET, &format!("/_sim/request_items/{id}/variables"), Value::Null).await;
    assert_eq!(vars, json!({}));

    // A new item with the variable set gets them; missing ones are empty, count its default.
    let (status, item) =
        control(&sim, Method::POST, "/_sim/catalog_items", json!({"name": "GPU VM", "gatehouse_variables": true}))
            .await;
    assert_eq!(status, StatusCode::CREATED);
    let spec = json!({"requested_for": {"email": "ada@example.com", "name": "Ada Lovelace"},
                      "cat_item": item["sys_id"], "variables": {"cloud": "demo"}});
    let (_, gpu) = control(&sim, Method::POST, "/_sim/request_items", spec).await;
    let r = read(
        &sim,
        gpu["sys_id"].as_str().unwrap(),
        &format!("sysparm_fields=requested_for.user_name,{GATEHOUSE_FIELDS}"),
    )
    .await;
    assert_eq!(r["variables.gatehouse_cloud"], "demo");
    assert_eq!(r["variables.gatehouse_image"], "");
    assert_eq!(r["variables.gatehouse_count"], "1");
    assert_eq!(r["requested_for.user_name"], "ada@example.com", "user_name defaults to the email");

    // The catalog itself is readable through the Table API.
    let (_, sets) = api(
        &sim,
        Method::GET,
        &format!(
            "/api/now/table/io_set_item?sysparm_query=variable_set%3D{}&sysparm_fields=sc_cat_item.name",
            servicenow_sim::GATEHOUSE_VARIABLE_SET
        ),
        None,
    )
    .await;
    assert_eq!(
        sets["result"],
        json!([{"sc_cat_item.name": "Virtual machine (Gatehouse)"}, {"sc_cat_item.name": "GPU VM"}])
    );
}

#[tokio::test]
async fn bad_request_item_specs_are_refused_naming_the_field() {
    let sim = sim().await;
    let base = ada_and_bob();
    let with = |path: &[&str], v: Value| {
        let mut b = base.clone();
        let mut at = &mut b;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        b
    };
    let cases = [
        (json!({"variables": {}}), "requested_for"),
        (with(&["requested_for", "email"], json!("not-an-address")), "requested_for.email"),
        (with(&["opened_by", "name"], json!(" ")), "opened_by.name"),
        (with(&["variables", "flavour"], json!("m1.small")), "flavour"),
        (with(&["variables", "count"], json!([1])), "string or a number"),
        (with(&["approval"], json!("maybe")), "approval"),
        (with(&["cat_item"], json!("0123456789abcdef0123456789abcdef")), "cat_item"),
        (with(&["sys_id"], json!("xyz")), "sys_id"),
        (with(&["colour"], json!("blue")), "colour"),
    ];
    for (body, field) in cases {
        let (status, err) = control(&sim, Method::POST, "/_sim/request_items", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(err["status"], "failure");
        assert!(err["error"]["detail"].as_str().unwrap().contains(field), "{field}: {err}");
    }
    let sid = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        control(&sim, Method::POST, "/_sim/request_items", with(&["sys_id"], json!(sid))).await.0,
        StatusCode::CREATED
    );
    let (status, err) = control(&sim, Method::POST, "/_sim/request_items", with(&["sys_id"], json!(sid))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"]["detail"].as_str().unwrap().contains("exists"));
    let resp =
        reqwest::Client::new().post(format!("{}/_sim/request_items", sim.base_url())).body("{").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.records("sc_req_item").len(), 1, "nothing else was created");
}

#[tokio::test]
async fn an_approved_item_can_be_cancelled_or_completed_and_its_variables_edited() {
    let sim = sim().await;
    let (_, a) = control(&sim, Method::POST, "/_sim/request_items", ada_and_bob()).await;
    let (_, b) = control(&sim, Method::POST, "/_sim/request_items", ada_and_bob()).await;
    let (a, b) = (a["sys_id"].as_str().unwrap(), b["sys_id"].as_str().unwrap());

    // An administrator cancels one after its approval...
    let (status, row) = control(
        &sim,
        Method::PATCH,
        &format!("/_sim/records/sc_req_item/{a}"),
        json!({"state": "4", "stage": "Request Cancelled"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((row["active"].as_str(), row["approval"].as_str()), (Some("false"), Some("approved")));
    let shown = read(&sim, a, "sysparm_fields=state,stage,active&sysparm_display_value=all").await;
    assert_eq!(shown["state"], json!({"display_value": "Closed Incomplete", "value": "4"}));
    assert_eq!(shown["stage"], json!({"display_value": "Request Cancelled", "value": "Request Cancelled"}));
    // ...the integration closes the other one complete.
    let (status, _) = api(
        &sim,
        Method::PATCH,
        &format!("/api/now/table/sc_req_item/{b}"),
        Some(json!({"state": "3", "stage": "complete"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let shown = read(&sim, b, "sysparm_fields=state,stage,active&sysparm_display_value=true").await;
    assert_eq!(shown, json!({"state": "Closed Complete", "stage": "Completed", "active": "false"}));

    // Variables change through the control API only; the Table API ignores them.
    let path = format!("/_sim/request_items/{b}/variables");
    let (status, vars) =
        control(&sim, Method::PATCH, &path, json!({"gatehouse_flavor": "m1.large", "gatehouse_count": 3})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((vars["gatehouse_flavor"].as_str(), vars["gatehouse_count"].as_str()), (Some("m1.large"), Some("3")));
    let (status, _) =
        control(&sim, Method::PATCH, &path, json!({"gatehouse_flavor": "x", "gatehouse_colour": "red"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    api(
        &sim,
        Method::PATCH,
        &format!("/api/now/table/sc_req_item/{b}"),
        Some(json!({"variables.gatehouse_flavor": "y"})),
    )
    .await;
    let r = read(&sim, b, "sysparm_fields=variables.gatehouse_flavor").await;
    assert_eq!(r["variables.gatehouse_flavor"], "m1.large");
    assert_eq!(sim.variables(b)["gatehouse_count"], "3");
}

#[tokio::test]
async fn the_rust_api_orders_items_too() {
    let sim = sim().await;
    assert_eq!((sim.vm_catalog_item(), sim.laptop_catalog_item()), (VM_CATALOG_ITEM, LAPTOP_CATALOG_ITEM));
    let ada = PersonSpec::new("ada@example.com", "Ada Lovelace", "ada");
    let vars = ItemVariables::vm("demo", "img-1", "m1.small", "net-1", "web-01", 1);
    let (id, number) = sim.create_request_item(&RequestItemSpec::new(ada.clone(), vars.clone()));
    assert_eq!(number, "RITM0010001");
    assert_eq!(sim.variables(&id)["gatehouse_server_name"], "web-01");
    assert_eq!(sim.variables(&id)["gatehouse_justification"], "");
    let laptop =
        RequestItemSpec { cat_item: Some(LAPTOP_CATALOG_ITEM.into()), ..RequestItemSpec::new(ada.clone(), vars) };
    let (laptop_id, _) = sim.create_request_item(&laptop);
    assert!(sim.variables(&laptop_id).is_empty());
    let gpu = sim.add_catalog_item("GPU VM", true);
    let spec = RequestItemSpec { cat_item: Some(gpu), ..RequestItemSpec::new(ada, ItemVariables::default()) };
    let (gpu_id, _) = sim.create_request_item(&spec);
    assert_eq!(sim.variables(&gpu_id).len(), 8);
    assert_eq!(sim.variables(&gpu_id)["gatehouse_lease_days"], "", "optional: empty unless ordered with a lease");
    assert!(sim.set_variable(&gpu_id, "gatehouse_cloud", "demo"));
    assert!(!sim.set_variable(&gpu_id, "gatehouse_colour", "red"));
    let bad = RequestItemSpec { approval: Some("maybe".into()), ..spec };
    assert_eq!(sim.try_create_request_item(&bad).unwrap_err().field, "approval");
    // The spec is the POST body.
    let body: RequestItemSpec = serde_json::from_value(ada_and_bob()).unwrap();
    assert_eq!(body.variables.count.as_deref(), Some("2"));
}
