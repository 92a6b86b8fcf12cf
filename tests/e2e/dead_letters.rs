//! Dead letters, as an operator meets them: a mail that cannot be delivered (the mail outbox's
//! folder cannot be written) is tried `GATEHOUSE_MESSAGE_MAX_ATTEMPTS` times, then shows on its
//! request as dead; once the cause is fixed, `POST /v1/requests/{id}/messages/{mid}/retry`
//! delivers it. `serve --demo` honours the setting.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{Api, Harness, intake_body, sys_id, temp_dir};

/// Makes the outbox unwritable the way a full or broken mount would to any user (root included):
/// its folder becomes a plain file.
fn break_outbox(outbox: &Path) {
    std::fs::remove_dir_all(outbox).unwrap();
    std::fs::write(outbox, b"not a folder").unwrap();
}

fn mend_outbox(outbox: &Path) {
    std::fs::remove_file(outbox).unwrap();
    std::fs::create_dir(outbox).unwrap();
}

/// The request's `messages` once `n` of them are dead (polled; a timeout fails the test).
async fn wait_dead(api: &Api, id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let request = api.request(id).await;
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        if messages.iter().filter(|m| m["status"] == "dead").count() >= n {
            return messages;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {n} dead messages: {request}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undeliverable_mail_dies_shows_on_its_request_and_a_retry_delivers_it() {
    let h = Harness::start_with(|c| c.message_max_attempts = 3).await;
    break_outbox(&h.outbox);
    let (status, created) = h.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Both mails (the requester's receipt, the approver's links) die after three attempts.
    let messages = wait_dead(&h, &id, 2).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    for m in &messages {
        assert_eq!(m["kind"], "mail");
        assert_eq!(m["status"], "dead");
        assert_eq!(m["attempts"], 3, "{m}");
        let error = m["last_error"].as_str().unwrap();
        assert!(error.starts_with("mail outbox: cannot write to"), "{error}");
    }
    let mut to: Vec<&str> = messages.iter().map(|m| m["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["ada@example.com", "approver@demo.invalid"]);
    // What the request shows carries no approval link.
    let shown = h.request(&id).await.to_string();
    assert!(!shown.contains("/v1/approvals/"), "{shown}");

    // Fixed; the approver's mail is retried by hand, the requester's is left dead.
    mend_outbox(&h.outbox);
    let approver_mail = messages.iter().find(|m| m["to"] == "approver@demo.invalid").unwrap();
    let mid = approver_mail["id"].as_str().unwrap();
    let resp = h.post(&format!("/v1/requests/{id}/messages/{mid}/retry")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let revived: Value = resp.json().await.unwrap();
    assert_eq!(revived["id"], mid);
    assert_eq!(revived["status"], "pending");
    assert_eq!(revived["attempts"], 0);

    let mails = h.wait_mails_to("approver@demo.invalid", 1).await;
    assert_eq!(mails.len(), 1, "delivered once");
    assert!(mails[0].text.contains("Approve: "), "the approval mail with its links");
    assert!(h.mails_to("ada@example.com").is_empty(), "the requester's mail was not retried");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = h.request(&id).await["messages"].as_array().unwrap().clone();
        if left.len() == 1 {
            assert_eq!(left[0]["to"], "ada@example.com");
            assert_eq!(left[0]["status"], "dead");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the delivered mail never left the list: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Retrying what is not there, or not a message id: 404.
    let gone = h.post(&format!("/v1/requests/{id}/messages/{mid}/retry")).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    let bogus = h.post(&format!("/v1/requests/{id}/messages/..%2F..%2Fetc/retry")).send().await.unwrap();
    assert_eq!(bogus.status().as_u16(), 404);
    let unknown = domain::model::RequestId::generate();
    let other = h.post(&format!("/v1/requests/{unknown}/messages/{mid}/retry")).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 404);
}

/// `gatehouse serve --demo` as a user starts it, with `GATEHOUSE_MESSAGE_MAX_ATTEMPTS=2`.
struct DemoProcess {
    child: Child,
    api: Api,
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo(data_dir: &Path, max_attempts: &str) -> DemoProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("GATEHOUSE_MESSAGE_MAX_ATTEMPTS", max_attempts)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gatehouse serve --demo");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut base, mut token) = (None, None);
    let mut line = String::new();
    while token.is_none() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve --demo ended before printing its token");
        if let Some(url) = line.trim().strip_prefix("Gatehouse listening on ") {
            base = Some(url.to_string());
        }
        token = line.trim().strip_prefix("GATEHOUSE_TOKEN=").map(str::to_string);
    }
    let api = Api::new(base.expect("the listen URL is printed first"), token.unwrap(), data_dir.join("outbox"));
    DemoProcess { child, api }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_honours_the_max_attempts_setting() {
    let data_dir = temp_dir("dead-letters-demo");
    let demo = start_demo(&data_dir, "2");
    break_outbox(&demo.api.outbox);
    // The README's request item, which the demo seeds in its simulated ServiceNow.
    let (status, created) = demo.api.intake(&intake_body(gatehouse::serve::DEMO_RITM_SYS_ID)).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap();
    let messages = wait_dead(&demo.api, id, 2).await;
    let mails: Vec<&Value> = messages.iter().filter(|m| m["kind"] == "mail").collect();
    assert_eq!(mails.len(), 2, "{messages:?}");
    assert!(mails.iter().all(|m| m["status"] == "dead" && m["attempts"] == 2), "{messages:?}");
    // The work note went to the simulated ServiceNow: it is not owed any more.
    assert!(messages.iter().all(|m| m["kind"] == "mail"), "{messages:?}");
}
