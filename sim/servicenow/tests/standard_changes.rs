//! The Change Management API's standard changes over raw HTTP: the template list, a change
//! created from a template (type standard, pre-approved, New), the standard state model after
//! it, and the refusals.

use reqwest::StatusCode;
use serde_json::{Value, json};
use servicenow_sim::{DEPLOY_TEMPLATE, DEPLOY_TEMPLATE_NAME, RETIRED_TEMPLATE, SnFaults, SnSim, SnSimConfig};

const USER: &str = "gatehouse";
const PASSWORD: &str = "secret";

async fn sim() -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap()
}

async fn call(sim: &SnSim, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req =
        reqwest::Client::new().request(method, format!("{}{path}", sim.base_url())).basic_auth(USER, Some(PASSWORD));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn templates(sim: &SnSim, query: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/sn_chg_rest/change/standard/template", sim.base_url()),
        [("sysparm_query", query)],
    )
    .unwrap();
    let resp = reqwest::Client::new().get(url).basic_auth(USER, Some(PASSWORD)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<Value>().await.unwrap()["result"].as_array().unwrap().clone()
}

async fn create(sim: &SnSim, template: &str, fields: Value) -> (StatusCode, Value) {
    call(sim, reqwest::Method::POST, &format!("/api/sn_chg_rest/change/standard/{template}"), Some(fields)).await
}

#[tokio::test]
async fn templates_are_listed_with_value_and_display_value() {
    let sim = sim().await;
    let active = templates(&sim, "active=true").await;
    assert_eq!(active.len(), 1, "the retired template is not active: {active:?}");
    let t = &active[0];
    assert_eq!(t["sys_id"], json!({"display_value": DEPLOY_TEMPLATE, "value": DEPLOY_TEMPLATE}));
    assert_eq!(t["name"]["value"], DEPLOY_TEMPLATE_NAME);
    assert_eq!(t["active"], json!({"display_value": "true", "value": true}), "booleans are JSON booleans");
    // The template's values: a reference, shown by its name.
    assert!(t["template"]["value"].as_str().unwrap().len() == 32, "{t}");
    assert_eq!(t["template"]["display_value"], DEPLOY_TEMPLATE_NAME);
    assert!(t["sys_created_on"]["display_value_internal"].is_string(), "{t}");
    // By name, as an integration resolves one; `=` ignores case, as ServiceNow's database does.
    let by_name = templates(&sim, &format!("name={}^active=true", DEPLOY_TEMPLATE_NAME.to_uppercase())).await;
    assert_eq!(by_name.len(), 1);
    assert!(templates(&sim, "name=No such template^active=true").await.is_empty());
    let all = templates(&sim, "ORDERBYname").await;
    assert_eq!(all.len(), 2);
    // A template added through the control API is listed too.
    let added = sim.add_standard_template("Rotate TLS certificates", true);
    let found = templates(&sim, "name=Rotate TLS certificates").await;
    assert_eq!(found[0]["sys_id"]["value"], added);
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/standard_templates", sim.base_url()))
        .json(&json!({"name": "Restart the shop", "active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["sys_id"].as_str().unwrap().to_string();
    assert_eq!(templates(&sim, "name=Restart the shop").await[0]["active"]["value"], false);
    assert_eq!(create(&sim, &id, json!({})).await.0, StatusCode::NOT_FOUND, "a retired template creates nothing");
}

#[tokio::test]
async fn a_change_from_a_template_is_standard_pre_approved_and_new() {
    let sim = sim().await;
    let (status, body) = create(
        &sim,
        DEPLOY_TEMPLATE,
        json!({
            "short_description": "Deploy shop 1.4.2",
            "correlation_id": "gitlab:4242:af5b:production",
            "description": "ignored: the template's description stands",
            "implementation_plan": "ignored too",
            "state": "-1",
            "no_such_field": "x"
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &body["result"];
    assert!(r.is_object(), "one record, as the captured answer has it: {body}");
    assert_eq!(r["type"], json!({"display_value": "Standard", "value": "standard"}));
    assert_eq!(r["state"], json!({"display_value": "New", "value": -5.0}), "choice values are JSON numbers");
    assert_eq!(r["approval"], json!({"display_value": "Approved", "value": "approved"}));
    assert!(!r["approval_set"]["value"].as_str().unwrap().is_empty(), "{r}");
    assert_eq!(r["short_description"]["value"], "Deploy shop 1.4.2");
    assert_eq!(r["correlation_id"]["value"], "gitlab:4242:af5b:production");
    assert!(r["description"]["value"].as_str().unwrap().starts_with("Deploys a release"), "{r}");
    assert_eq!(r["risk"], json!({"display_value": "Low", "value": 4.0}));
    assert_eq!(r["std_change_producer_version"]["display_value"], format!("{DEPLOY_TEMPLATE_NAME} - 1"));
    assert!(r["number"]["value"].as_str().unwrap().starts_with("CHG"));
    let mut ignored: Vec<&str> =
        r["__meta"]["ignoredFields"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    ignored.sort();
    assert_eq!(ignored, ["description", "implementation_plan", "no_such_field", "state"]);
    // The standard state model from here on (Table API): no Assess or Authorize; New → Scheduled.
    let sys_id = r["sys_id"]["value"].as_str().unwrap().to_string();
    let patch = |fields: Value| {
        let path = format!("/api/now/table/change_request/{sys_id}");
        let sim = &sim;
        async move { call(sim, reqwest::Method::PATCH, &path, Some(fields)).await }
    };
    let (status, refused) = patch(json!({"state": "-4"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no Assess for a standard change: {refused}");
    assert!(refused["error"]["detail"].as_str().unwrap().contains("for a standard change"), "{refused}");
    assert_eq!(patch(json!({"state": "-2"})).await.0, StatusCode::OK);
    // Nothing waits for the CAB: there is no approval step to act on.
    assert!(sim.approve_change(&sys_id).unwrap_err().contains("Assess or Authorize"));
    assert_eq!(patch(json!({"state": "-1"})).await.0, StatusCode::OK);
    assert_eq!(patch(json!({"state": "0"})).await.0, StatusCode::OK);
    let (status, _) = patch(json!({"state": "3", "close_code": "successful", "close_notes": "Deployed"})).await;
    assert_eq!(status, StatusCode::OK);
    let stored = sim.record("change_request", &sys_id).unwrap();
    assert_eq!((stored["state"].as_str(), stored["active"].as_str()), (Some("3"), Some("false")));
}

#[tokio::test]
async fn unknown_or_retired_templates_and_bad_calls_are_refused() {
    let sim = sim().await;
    for template in ["00000000000000000000000000000000", RETIRED_TEMPLATE] {
        let (status, body) = create(&sim, template, json!({"short_description": "x"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{template}: {body}");
        assert_eq!(body["status"], "failure");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    assert!(sim.records("change_request").is_empty(), "nothing was created");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/sn_chg_rest/change/standard/{DEPLOY_TEMPLATE}", sim.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Credentials are checked as for the Table API.
    let url = format!("{}/api/sn_chg_rest/change/standard/template", sim.base_url());
    let resp = reqwest::Client::new().get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["message"], "User Not Authenticated");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/sn_chg_rest/change/standard/{DEPLOY_TEMPLATE}", sim.base_url()))
        .basic_auth(USER, Some("wrong"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(sim.records("change_request").is_empty());
}

#[tokio::test]
async fn a_lost_answer_still_created_the_change() {
    let sim = sim().await;
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    let (status, _) = create(&sim, DEPLOY_TEMPLATE, json!({"correlation_id": "gitlab:1:a:prod"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let changes = sim.records("change_request");
    assert_eq!(changes.len(), 1, "applied, then the answer was lost");
    assert_eq!(changes[0]["type"], "standard");
}
