//! What the end-to-end tests share: a `gatehouse serve` on a free port with the PCD simulator, an
//! HTTP client holding the API token, and the mail outbox read back as a recipient would.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use domain::config::Config;
use gatehouse::serve::{Running, demo_config, start_with};
use mail::OutboxMail;
use pcd_sim::{PcdSim, SimConfig};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};
use servicenow_sim::{ItemVariables, PersonSpec, RequestItemSpec};
use tokio::net::TcpListener;

pub mod gate;
pub mod process;

/// A client of one running Gatehouse: its API with the token, and its mail outbox.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: Client,
    pub outbox: PathBuf,
}

/// `gatehouse serve` in this process (demo configuration, tuned per test) with a PCD simulator,
/// and with a ServiceNow simulator when the test asks for one.
pub struct Harness {
    pub sim: PcdSim,
    pub sn: Option<servicenow_sim::SnSim>,
    pub gitlab: Option<gitlab_sim::GitLabSim>,
    pub data_dir: PathBuf,
    pub running: Running,
    pub api: Api,
}

impl std::ops::Deref for Harness {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

pub const WEBHOOK_SECRET: &str = "webhook-secret-for-tests-0123456789abcdef";

pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-{prefix}-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    domain::model::RequestId::generate().to_string()
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the demo configuration after `tune` adjusted it.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), SimConfig::default()).await.unwrap();
        Self::start_on(sim, tune).await
    }

    /// With ServiceNow write-backs going to a simulator.
    pub async fn start_with_servicenow(tune: impl FnOnce(&mut Config)) -> Self {
        let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), SimConfig::default()).await.unwrap();
        let sn = servicenow_sim::SnSim::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
        let mut h = Self::start_on(sim, |c| {
            gatehouse::serve::use_servicenow_sim(c, &sn);
            tune(c)
        })
        .await;
        h.sn = Some(sn);
        h
    }

    /// With the CI change gate: ServiceNow and GitLab simulators (GitLab seeded with DESIGN.md's
    /// project 4242, MR !7, pipeline 900001 and manual job 77001) and `policy` as the change policy.
    pub async fn start_with_gate(policy: &str) -> Self {
        Self::start_with_gate_and(policy, |_| {}).await
    }

    /// `start_with_gate`, with the configuration adjusted by `tune` (a short sweep interval…).
    pub async fn start_with_gate_and(policy: &str, tune: impl FnOnce(&mut Config)) -> Self {
        let gitlab = gitlab_sim::GitLabSim::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
        gitlab.seed_demo();
        let dir = temp_dir("policy");
        let path = dir.join("change-policy.yaml");
        std::fs::write(&path, policy).unwrap();
        let mut h = Self::start_with_servicenow(|c| {
            gatehouse::serve::use_gitlab_sim(c, &gitlab);
            c.change_policy = Some(path);
            c.webhook_secret = Some(domain::config::Secret::new(WEBHOOK_SECRET));
            tune(c);
        })
        .await;
        h.gitlab = Some(gitlab);
        h
    }

    /// Orders DESIGN.md's VM in the ServiceNow simulator as the catalog would (for Ada, by Ada,
    /// approved) and answers the intake body ServiceNow's business rule posts for that item.
    pub fn order(&self) -> Value {
        self.order_with(|_| {})
    }

    /// `order`, with the item adjusted first (another requester, not approved, another catalog item…).
    pub fn order_with(&self, tune: impl FnOnce(&mut RequestItemSpec)) -> Value {
        let sn = self.sn.as_ref().expect("started with ServiceNow");
        let mut spec = RequestItemSpec::new(
            PersonSpec::new("ada@example.com", "Ada Lovelace", "ada"),
            ItemVariables::vm("demo", "Ubuntu 24.04 LTS", "m1.small", "dev-net", "web-01", 1),
        );
        tune(&mut spec);
        let (sys_id, number) = sn.create_request_item(&spec);
        let mut body = intake_body(&sys_id);
        body["source"]["number"] = number.into();
        body
    }

    pub async fn start_on(sim: PcdSim, tune: impl FnOnce(&mut Config)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data_dir = temp_dir("e2e");
        let (mut config, token) = demo_config(&sim, data_dir.clone(), addr).unwrap();
        tune(&mut config);
        let outbox = match &config.mail_transport {
            domain::config::MailTransport::Outbox { dir } => dir.clone(),
            _ => data_dir.join("outbox"),
        };
        let running = start_with(listener, config, Some(token.clone()), Default::default(), true).await.unwrap();
        let api = Api::new(running.base_url.clone(), token, outbox);
        Harness { sim, sn: None, gitlab: None, data_dir, running, api }
    }
}

impl Api {
    pub fn new(base: String, token: String, outbox: PathBuf) -> Self {
        let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Api { base, token, http, outbox }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(&self.token)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.get(path).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POST /v1/requests; answers the status and the body.
    pub async fn intake(&self, body: &Value) -> (u16, Value) {
        let resp = self.post("/v1/requests").json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn request(&self, id: &str) -> Value {
        let (status, body) = self.get_json(&format!("/v1/requests/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn mails(&self) -> Vec<OutboxMail> {
        mail::read_outbox(&self.outbox).unwrap()
    }

    pub fn mails_to(&self, to: &str) -> Vec<OutboxMail> {
        self.mails().into_iter().filter(|m| m.to.iter().any(|t| t == to)).collect()
    }

    /// Waits until `to` has `n` mails (and gives a short grace to catch any extra one).
    pub async fn wait_mails_to(&self, to: &str, n: usize) -> Vec<OutboxMail> {
        wait_until(Duration::from_secs(15), || self.mails_to(to).len() >= n).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.mails_to(to)
    }

    /// Waits until the request reaches `status`.
    pub async fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.request(id).await;
            if r["status"] == status {
                return r;
            }
            assert!(tokio::time::Instant::now() < deadline, "request never became {status}: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh ServiceNow sys_id.
pub fn sys_id() -> String {
    uuid_like().replace('-', "")
}

/// DESIGN.md's intake body for the demo cloud.
pub fn intake_body(sys_id: &str) -> Value {
    json!({
        "source": {"system": "servicenow", "number": "RITM0010001", "sys_id": sys_id},
        "requester": {"email": "ada@example.com", "name": "Ada Lovelace", "user_name": "ada"},
        "cloud": "demo",
        "image": "Ubuntu 24.04 LTS", "flavor": "m1.small", "network": "dev-net",
        "server_name": "web-01", "count": 1,
        "justification": "Load test environment",
        "metadata": {"cost_center": "CC-42"}
    })
}

/// The Approve and Deny links of an approver's mail, from its plain-text part.
pub fn links(mail: &OutboxMail) -> (String, String) {
    let find = |label: &str| {
        mail.text
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| panic!("no {label} link in {}", mail.text))
    };
    (find("Approve: "), find("Deny: "))
}

/// The link without its `?decision=` query: what the page's form posts to.
pub fn page_of(link: &str) -> String {
    link.split('?').next().unwrap().to_string()
}

/// What someone with the database but not the evidence key can do: rewrite the actor of request
/// `id`'s history entry `entry` (0-based, in stored order) straight in serve's SQLite file. Serve
/// keeps the database open; SQLite takes a second writer (it waits for the lock, up to 5 s).
pub fn rewrite_history_actor(data_dir: &std::path::Path, id: &str, entry: usize, actor: &str) {
    let db = rusqlite::Connection::open(data_dir.join("gatehouse.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = db
        .execute(
            "UPDATE history SET data = json_set(data, '$.actor', ?3)
             WHERE request_id = ?1 AND seq = (SELECT seq FROM history WHERE request_id = ?1 ORDER BY seq LIMIT 1 OFFSET ?2)",
            rusqlite::params![id, entry as i64, actor],
        )
        .unwrap();
    assert_eq!(changed, 1, "entry {entry} of request {id}");
}

/// `gatehouse audit ARGS` with only GATEHOUSE_TOKEN = `token` in its environment.
pub async fn gatehouse_audit(args: &[&str], token: &str) -> (i32, String, String) {
    gatehouse_audit_env(args, token, &[]).await
}

/// `gatehouse audit ARGS` with only GATEHOUSE_TOKEN = `token` and `env` (an auditor's own
/// credentials for ServiceNow or GitLab) in its environment; no token or password is printed.
pub async fn gatehouse_audit_env(args: &[&str], token: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("audit")
        .args(args)
        .env_clear()
        .env("GATEHOUSE_TOKEN", token)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start gatehouse");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("gatehouse audit finished within 60 s")
        .expect("gatehouse audit ran");
    let (stdout, stderr) = (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap());
    let secrets = env.iter().filter(|(name, _)| name.ends_with("_PASSWORD") || name.ends_with("_TOKEN"));
    for secret in std::iter::once(token).chain(secrets.map(|(_, value)| *value)) {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a secret was printed: {stdout}{stderr}");
    }
    (output.status.code().expect("exited"), stdout, stderr)
}

/// A request's history (as `GET /v1/requests/{id}` shows it) without the entries that record a
/// mail sent (actor `mail`): its steps and write-backs.
pub fn steps(request: &Value) -> Vec<&Value> {
    request["history"].as_array().unwrap().iter().filter(|e| e["actor"] != "mail").collect()
}

/// The real OpenID provider `tests/oidc/start-provider.sh` started, from its environment.
pub fn real_provider() -> domain::config::OidcSettings {
    let env = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is not set: run tests/run.sh, or eval \"$(tests/oidc/start-provider.sh)\" first")
        })
    };
    domain::config::OidcSettings {
        issuer: env("OIDC_ISSUER"),
        client_id: env("OIDC_CLIENT_ID"),
        client_secret: domain::config::Secret::new(env("OIDC_CLIENT_SECRET")),
    }
}
