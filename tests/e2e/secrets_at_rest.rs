//! No usable secret at rest (DESIGN.md, "No usable link at rest"): while an approval mail cannot be
//! delivered, its link exists nowhere but in Gatehouse's key and the owed message's id — not in a
//! file of the data dir, a store row or a log line. And a configured start refuses to run without
//! a way for approvers to prove who they are.

mod support;

use std::path::Path;
use std::time::Duration;

use domain::token::LinkKey;
use support::process::{EVIDENCE_KEY, LINK_KEY, ServeProcess, SimProcess, binary};
use support::{intake_body, sys_id, wait_until};

/// Every file under `dir`, recursively, as bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The link ids of owed approval mails, as the store holds them (`"link_id":"<32 hex>"`).
fn link_ids(dir: &Path) -> Vec<String> {
    let marker = "\"link_id\":\"";
    let mut ids = Vec::new();
    for (_, bytes) in files(dir) {
        let text = String::from_utf8_lossy(&bytes);
        for (i, _) in text.match_indices(marker) {
            let id: String = text[i + marker.len()..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            if id.len() == 32 && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

#[tokio::test]
async fn an_undelivered_approval_link_is_in_no_file_row_or_log_line() {
    let sim = SimProcess::start(0);
    // Mail goes to an SMTP port where nothing listens: the approver's mail stays owed.
    let serve = ServeProcess::start(
        &sim,
        &[("GATEHOUSE_MAIL_TRANSPORT", "smtp"), ("GATEHOUSE_SMTP_URL", "smtp://127.0.0.1:9"), ("RUST_LOG", "trace")],
    )
    .await;
    let (status, answer) = serve.intake(&intake_body(&sys_id())).await;
    assert_eq!(status, 202, "{answer}");
    // The sender has tried (and failed) at least once.
    wait_until(Duration::from_secs(15), || serve.log().contains("SMTP")).await;

    let ids = link_ids(&serve.data_dir);
    assert_eq!(ids.len(), 1, "one owed approval mail, stored by its link id");
    let token = LinkKey::from_base64(LINK_KEY).unwrap().token_for(&ids[0]);
    // It is the real link: its page shows the request.
    let page = serve.http.get(serve.url(&format!("/v1/approvals/{}", token.expose()))).send().await.unwrap();
    assert_eq!(page.status(), 200, "the derived token is the approver's link");

    let mut log = serve.log();
    log.push_str(&String::from_utf8_lossy(&std::fs::read(serve.data_dir.join("serve.log")).unwrap_or_default()));
    for (path, bytes) in files(&serve.data_dir) {
        // serve.log records the GET above (paths are never logged raw, but check it anyway).
        assert!(!contains(&bytes, token.expose()), "the raw token is in {path}");
    }
    assert!(!log.contains(token.expose()), "the raw token is in the log");
}

#[tokio::test]
async fn a_configured_start_without_sign_in_or_the_link_only_opt_in_stops_naming_both() {
    let dir = support::temp_dir("no-proof");
    let clouds = dir.join("clouds.yaml");
    std::fs::write(&clouds, "clouds: {}\n").unwrap();
    let out = tokio::process::Command::new(binary("gatehouse"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .envs([
            ("GATEHOUSE_API_TOKENS", "servicenow:0123456789abcdef0123456789abcdef".to_string()),
            ("GATEHOUSE_PUBLIC_BASE_URL", "http://127.0.0.1:1".to_string()),
            ("GATEHOUSE_CLOUDS_YAML", clouds.display().to_string()),
            ("GATEHOUSE_APPROVERS", "approver@example.com".to_string()),
            ("GATEHOUSE_MAIL_FROM", "gatehouse@example.com".to_string()),
            ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
            ("GATEHOUSE_LINK_KEY", LINK_KEY.to_string()),
            ("GATEHOUSE_EVIDENCE_KEY", EVIDENCE_KEY.to_string()),
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("GATEHOUSE_OIDC_ISSUER") && said.contains("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL"), "{said}");
}
