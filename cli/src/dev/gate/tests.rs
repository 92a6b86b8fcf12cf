//! The change-gate page's endpoints, driven as the page drives them, against `serve --demo`'s
//! simulators: a pipeline approved by the Assess group and the CAB deploys and closes its change;
//! a rejected one is blocked and its change cancelled.

use serde_json::{Value, json};

struct Demo {
    base: String,
    http: reqwest::Client,
    dir: std::path::PathBuf,
    _running: crate::serve::Running,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn demo() -> Demo {
    let sims = crate::serve::Simulators::start_demo().await.unwrap();
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-gate-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (mut config, token) =
        crate::serve::demo_config(sims.pcd.as_ref().unwrap(), dir.clone(), listener.local_addr().unwrap()).unwrap();
    crate::serve::use_servicenow_sim(&mut config, sims.servicenow.as_ref().unwrap());
    crate::serve::use_gitlab_sim(&mut config, sims.gitlab.as_ref().unwrap());
    let running = crate::serve::start_with(listener, config, Some(token), sims, true).await.unwrap();
    Demo { base: running.base_url.clone(), http: reqwest::Client::new(), dir, _running: running }
}

impl Demo {
    async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn start(&self, title: &str) -> u64 {
        let (status, view) = self.post("/dev/gate/pipelines", Some(json!({ "title": title }))).await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["next"], "request", "{view}");
        assert!(view["change"].is_null(), "{view}");
        view["id"].as_u64().unwrap()
    }

    /// One step that must succeed: the pipeline's view after it.
    async fn step(&self, id: u64, step: &str) -> Value {
        let (status, view) = self.post(&format!("/dev/gate/pipelines/{id}/{step}"), None).await;
        assert_eq!(status, 200, "{step}: {view}");
        assert_eq!(view["step"]["name"], step, "{view}");
        view
    }

    /// One step that must be refused: its problem.
    async fn refused(&self, id: u64, step: &str, status: u16) -> Value {
        let (got, problem) = self.post(&format!("/dev/gate/pipelines/{id}/{step}"), None).await;
        assert_eq!(got, status, "{step}: {problem}");
        assert!(problem["title"].is_string() && problem["detail"].is_string(), "{problem}");
        problem
    }
}

fn job(view: &Value, name: &str) -> String {
    let jobs = view["jobs"].as_array().unwrap();
    jobs.iter().find(|j| j["name"] == name).map(|j| j["status"].as_str().unwrap().to_string()).unwrap()
}

fn note(view: &Value) -> String {
    let notes = view["merge_request_notes"].as_array().unwrap();
    notes.iter().map(|n| n["body"].as_str().unwrap()).rfind(|b| b.contains("gatehouse")).unwrap_or("").into()
}

fn work_notes(view: &Value) -> String {
    let notes = view["change"]["work_notes"].as_array().unwrap();
    notes.iter().map(|n| n["text"].as_str().unwrap()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn an_approved_pipeline_deploys_and_closes_its_change() {
    let d = demo().await;
    let id = d.start("Add the spring sale banner").await;

    let view = d.step(id, "request").await;
    assert_eq!(view["step"]["exit_code"], 0, "{view}");
    assert!(view["step"]["line"].as_str().unwrap().contains(" created for acme/shop "), "{view}");
    assert_eq!(job(&view, "gatehouse:request"), "success");
    let number = view["change"]["number"].as_str().unwrap().to_string();
    assert!(number.starts_with("CHG"), "{view}");
    assert_eq!(view["change"]["state"]["display"], "Assess", "{view}");
    assert_eq!(view["gate"]["decision"], "wait", "{view}");
    assert_eq!(view["next"], "approve-assess");
    assert!(note(&view).contains(&number), "the MR note names the change: {view}");

    // Out of order: GitLab does not start the deploy before the verify job passed, and the CAB
    // approves only after the Assess group.
    let early = d.refused(id, "deploy", 409).await;
    assert!(early["detail"].as_str().unwrap().contains("gatehouse:verify"), "{early}");
    let cab_first = d.refused(id, "approve-cab", 409).await;
    assert!(cab_first["detail"].as_str().unwrap().contains("Authorize"), "{cab_first}");

    let view = d.step(id, "approve-assess").await;
    assert_eq!(view["change"]["state"]["display"], "Authorize", "{view}");
    assert_eq!(view["gate"]["decision"], "wait", "{view}");
    let view = d.step(id, "approve-cab").await;
    assert_eq!(view["change"]["state"]["display"], "Scheduled", "{view}");
    assert_eq!(view["change"]["approval"]["value"], "approved", "{view}");
    assert_eq!(view["gate"]["decision"], "proceed", "{view}");
    // Gatehouse acted on proceed: it played the blocking manual verify job.
    assert_eq!(job(&view, "gatehouse:verify"), "pending", "{view}");
    assert!(note(&view).contains("proceed"), "{view}");

    let view = d.step(id, "verify").await;
    assert_eq!(view["step"]["exit_code"], 0, "{view}");
    assert!(view["step"]["line"].as_str().unwrap().contains("proceed"), "{view}");
    assert_eq!(job(&view, "gatehouse:verify"), "success");
    let view = d.step(id, "deploy").await;
    assert_eq!(job(&view, "deploy"), "running");
    let view = d.step(id, "report-success").await;
    assert_eq!(job(&view, "deploy"), "success");
    assert_eq!(job(&view, "gatehouse:report"), "success");
    assert_eq!(view["status"], "success");
    assert_eq!(view["change"]["state"]["display"], "Closed", "{view}");
    assert!(work_notes(&view).contains("Deployment to production succeeded"), "{view}");
    let note = note(&view);
    assert!(note.contains("Deployment") && note.contains("success"), "the MR note says the deployment: {note}");
    assert_eq!(view["gate"]["decision"], "blocked", "a closed change takes no second deploy: {view}");
}

#[tokio::test]
async fn a_rejected_pipeline_is_blocked_and_its_change_cancelled() {
    let d = demo().await;
    let id = d.start("Try the <b>risky</b> thing").await;
    let view = d.step(id, "request").await;
    assert_eq!(view["change"]["state"]["display"], "Assess", "{view}");
    assert!(view["change"]["short_description"].as_str().unwrap().contains("Try the <b>risky</b> thing"), "{view}");
    let view = d.step(id, "reject").await;
    assert_eq!(view["gate"]["decision"], "blocked", "{view}");
    assert_eq!(view["change"]["approval"]["value"], "rejected", "{view}");
    assert_eq!(view["change"]["state"]["display"], "Canceled", "{view}");
    assert!(note(&view).contains("blocked"), "{view}");
    let view = d.step(id, "verify").await;
    assert_eq!(view["step"]["exit_code"], 1, "{view}");
    assert_eq!(job(&view, "gatehouse:verify"), "failed");
    assert_eq!(view["status"], "failed");
    let problem = d.refused(id, "deploy", 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("failed"), "{problem}");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let d = demo().await;
    let (status, problem) = d.post("/dev/gate/pipelines", Some(json!({ "environment": "prod uction" }))).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "environment", "{problem}");
    let (status, problem) = d.post("/dev/gate/pipelines", Some(json!({ "title": "x".repeat(101) }))).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "title", "{problem}");
    let id = d.start("Fine").await;
    d.refused(id, "launch", 404).await;
    d.refused(999, "request", 404).await;
    // Before gatehouse:request there is no change to approve.
    d.refused(id, "approve-assess", 409).await;
    let listed: Value =
        d.http.get(format!("{}/dev/gate/pipelines", d.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["pipelines"][0]["id"], id, "{listed}");
}

#[test]
fn the_page_script_puts_server_data_in_as_text() {
    assert!(super::super::INDEX_HTML.contains("src=\"/dev/gate.js\""));
    assert!(!super::GATE_JS.contains("innerHTML") && !super::GATE_JS.contains("insertAdjacentHTML"));
}
