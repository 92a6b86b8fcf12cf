//! `gatehouse audit verify` over the DynamoDB store (DESIGN.md "Audit evidence"), against moto
//! (`eval "$(tests/aws/start-moto.sh)"`, or ./tests/run.sh): a request taken through intake,
//! approval, provisioning and its mails by the use cases, on services built as a Lambda builds
//! them, verifies through the audit function; after one history item is edited in the table with
//! the AWS SDK, as someone with write access to the table but not the evidence key could, verify
//! exits 1 naming the request and the entry.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::config::{ApiTokens, Scope};
use domain::evidence::{Verified, verify};
use domain::mail::MailTemplate;
use domain::model::{MessageKind, RequestId, Status};
use domain::ports::Store;
use domain::usecases::approval::{DecideOutcome, Decision};
use domain::usecases::intake::{IntakeBody, IntakeOutcome};
use domain::usecases::provision::Progress;
use domain::usecases::{NoSignals, Services};
use jiff::Timestamp;
use pcd_sim::{PcdSim, SimConfig};
use store_dynamodb::{DynamoStore, create_table, timeouts};

const AUDIT_TOKEN: &str = "audit-dynamodb-token-of-scope-audit-00000001";
const APPROVER: &str = "approver@demo.invalid";

/// moto's endpoint, or `None` (and why, printed) when it is not running.
fn moto() -> Option<String> {
    let endpoint = std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT").ok();
    if endpoint.is_none() {
        println!(
            "skipped: GATEHOUSE_TEST_AWS_ENDPOINT is not set, so moto is not running. Run ./tests/run.sh, or \
             eval \"$(tests/aws/start-moto.sh)\" before cargo test"
        );
    }
    endpoint
}

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "gatehouse-tests"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .build();
    Client::from_conf(config)
}

/// `gatehouse audit ARGS` with only GATEHOUSE_TOKEN in its environment: exit code, and stdout
/// and stderr together.
async fn gatehouse_audit(args: &[&str]) -> (i32, String) {
    let (code, stdout, stderr) = support::gatehouse_audit(args, AUDIT_TOKEN).await;
    (code, stdout + &stderr)
}

/// Intake, the approver's decision through the link in their mail, provisioning until the server
/// is ACTIVE and every mail and work note delivered: the request, settled.
async fn provisioned(services: &Services, config: &domain::config::Config) -> RequestId {
    let raw = support::intake_body(&support::sys_id());
    let body: IntakeBody = serde_json::from_value(raw.clone()).unwrap();
    let IntakeOutcome::Created(request) = services.intake(body, &raw).await.unwrap() else { panic!("not created") };
    let id = request.id.clone();

    // The approver's link, as the mail renders it: the token derived from the stored link id.
    let link_id = services
        .store
        .messages_of(&id)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m.kind {
            MessageKind::Mail(notice) if notice.to == APPROVER => match notice.template {
                MailTemplate::ApprovalRequest { link_id, .. } => Some(link_id),
                _ => None,
            },
            _ => None,
        })
        .expect("the approver's mail is owed");
    let token = config.link_key.token_for(&link_id);
    let outcome = services.decide(token.expose(), Decision::Approve, Some("fine".into()), None).await.unwrap();
    assert!(matches!(outcome, DecideOutcome::Decided { ref request, .. } if request.status == Status::Approved));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match services.provision(&id, "worker-1", Duration::from_secs(5)).await.unwrap() {
            Progress::Active => break,
            Progress::Waiting | Progress::NotMine => {}
            other => panic!("provisioning ended {other:?}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "the server never became ACTIVE");
    }

    let mailer = runtime::mailer(config).unwrap();
    services.deliver_owed(mailer.as_ref(), None).await.unwrap();
    assert!(services.store.messages_of(&id).await.unwrap().is_empty(), "every message went out");
    id
}

/// Rewrites the actor of the history item holding `hash` straight in the table.
async fn rewrite_actor(store: &DynamoStore, id: &RequestId, hash: &str, actor: &str) {
    let items = store.history_items_of(id).await.unwrap();
    let data = |item: &HashMap<String, AttributeValue>| -> serde_json::Value {
        serde_json::from_str(item.get("data").and_then(|d| d.as_s().ok()).expect("a data attribute")).unwrap()
    };
    let mut item = items.into_iter().find(|item| data(item)["hash"] == hash).expect("the entry's item");
    let mut entry = data(&item);
    entry["actor"] = actor.into();
    item.insert("data".into(), AttributeValue::S(entry.to_string()));
    store.client().put_item().table_name(store.table()).set_item(Some(item)).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_then_names_an_item_edited_in_dynamodb() {
    let Some(endpoint) = moto() else { return };
    let sim = PcdSim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig { build_delay: Duration::from_millis(100), ..SimConfig::default() },
    )
    .await
    .unwrap();
    let dir = support::temp_dir("audit-dynamodb");
    let (mut config, _) = gatehouse::serve::demo_config(&sim, dir.clone(), "127.0.0.1:9".parse().unwrap()).unwrap();
    config.api_tokens = ApiTokens::new([(Scope::Audit, AUDIT_TOKEN)]);
    let client = client(&endpoint);
    let table = format!("gatehouse-audit-{}", RequestId::generate().as_str().replace('-', ""));
    create_table(&client, &table).await.unwrap();
    let store = DynamoStore::new(client, table);
    // As a Lambda builds them (shared/lambda): the bare table behind the services' sealing layer.
    let services = runtime::services_with(&config, Arc::new(store.clone()), Arc::new(NoSignals)).unwrap();

    let since = Timestamp::now().to_string();
    let id = provisioned(&services, &config).await;
    let request = store.get(&id).await.unwrap().expect("the request");
    assert_eq!(request.status, Status::Active);
    let history = store.history(&id).await.unwrap();
    assert_eq!(
        verify(&config.evidence_key, id.as_str(), &history, &request.chain),
        Ok(Verified { chained: history.len() as u64, unchained: 0 })
    );
    let steps: Vec<Status> = history.iter().filter(|e| !e.is_mail()).map(|e| e.to).collect();
    assert_eq!(
        steps,
        [Status::PendingApproval, Status::Approved, Status::Provisioning, Status::Active],
        "{history:#?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = audit::router(services.clone(), config.api_tokens.clone()).router;
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let args = ["verify", "--url", base.as_str(), "--since", since.as_str()];
    let (code, out) = gatehouse_audit(&args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 requests touched in") && out.contains("every history chain verifies"), "{out}");

    // Someone with write access to the table, but not the evidence key, rewrites the approval.
    let entry = history.iter().position(|e| e.to == Status::Approved).expect("the approval's entry");
    let hash = history[entry].hash.clone().unwrap();
    rewrite_actor(&store, &id, &hash, "mallory@example.com").await;
    assert_eq!(store.history(&id).await.unwrap()[entry].actor, "mallory@example.com", "the edit reached the table");
    let (code, out) = gatehouse_audit(&args).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("request {id}")), "{out}");
    assert!(out.contains(&format!("history entry {entry} is broken")), "{out}");
    assert!(out.contains("edited"), "{out}");

    server.abort();
    std::fs::remove_dir_all(dir).ok();
}
