//! Every sample event in infra/events/ fed to its function's handler, as Lambda would: HTTP API v2
//! events through lambda_http's request conversion into the function's router, the DynamoDB
//! stream batches into the stream handlers, the schedule into the sweeper.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use domain::config::{ApiTokens, Config, Scope};
use domain::model::{OutboxMessage, RequestId, Status};
use domain::ports::{Mailer, Write};
use domain::token::ApprovalToken;
use domain::usecases::{NoSignals, Services};
use pcd_sim::{PcdSim, SimConfig};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "sample-api-token-for-local-invoke-0001";
const REQUEST_ID: &str = "01a2011b-0000-7000-8000-0000000000a1";
const APPROVAL_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn event(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

struct World {
    _sim: PcdSim,
    services: Services,
    config: Config,
    mailer: Arc<dyn Mailer>,
}

async fn world() -> World {
    let sim = PcdSim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig { build_delay: Duration::from_millis(200), ..SimConfig::default() },
    )
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("gatehouse-events-{}", RequestId::generate()));
    let (mut config, _) = gatehouse::serve::demo_config(&sim, dir, "127.0.0.1:9".parse().unwrap()).unwrap();
    config.api_tokens = ApiTokens::new([(Scope::ServiceNow, TOKEN)]);
    let store = Arc::new(store::SqliteStore::in_memory().unwrap());
    let services = runtime::services_with(&config, store, Arc::new(NoSignals)).unwrap();
    let mailer: Arc<dyn Mailer> = runtime::mailer(&config).unwrap();
    World { _sim: sim, services, config, mailer }
}

/// Feeds an API Gateway HTTP API (v2) event to a router the way lambda_http does.
async fn invoke(router: Router, event: Value) -> (u16, String, String) {
    let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    let request: lambda_http::Request = request.into();
    let (parts, body) = request.into_parts();
    let response = router.oneshot(axum::http::Request::from_parts(parts, Body::from(body.to_vec()))).await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, content_type, String::from_utf8_lossy(&bytes).into_owned())
}

/// A pending request with the id the sample events use, and an approval token they carry.
async fn seed(w: &World) -> domain::model::Request {
    let mut request = store::contract::sample_request("9d385017c611228701d22104cc95c372");
    request.id = RequestId::parse(REQUEST_ID).unwrap();
    let image = w.services.catalog.options("demo").await.unwrap().images[0].clone();
    request.image = domain::model::Chosen { id: image.id, name: image.name };
    let options = w.services.catalog.options("demo").await.unwrap();
    let flavor = options.flavor("m1.small").unwrap();
    request.flavor = domain::model::Chosen { id: flavor.id.clone(), name: flavor.name.clone() };
    let network = options.network("dev-net").unwrap();
    request.network = domain::model::Chosen { id: network.id.clone(), name: network.name.clone() };
    let token = ApprovalToken::parse(APPROVAL_TOKEN).unwrap();
    let record = store::contract::link_of(&request, &token);
    let history = store::contract::created(&request);
    w.services.store.create(request.clone(), history, vec![record], vec![]).await.unwrap();
    request
}

#[tokio::test]
async fn catalog_events() {
    let w = world().await;
    let router = catalog::router(w.services.catalog.clone(), w.config.api_tokens.clone()).router;
    let (status, _, body) = invoke(router.clone(), event("catalog-clouds.json")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"demo\""));
    let (status, _, body) = invoke(router.clone(), event("catalog-options.json")).await;
    assert_eq!(status, 200, "{body}");
    let options: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(options["flavors"][0]["name"], "m1.tiny");
    let (status, content_type, _) = invoke(router, event("catalog-unauthorized.json")).await;
    assert_eq!((status, content_type.as_str()), (401, "application/problem+json"));
}

#[tokio::test]
async fn intake_events() {
    let w = world().await;
    let router = intake::router(w.services.clone(), w.config.api_tokens.clone()).router;
    let (status, _, body) = invoke(router.clone(), event("intake-create.json")).await;
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = invoke(router.clone(), event("intake-create.json")).await;
    assert_eq!(status, 200, "a replay: {body}");
    let (status, _, _) = invoke(router.clone(), event("intake-get.json")).await;
    assert_eq!(status, 404, "not seeded yet");
    seed(&w).await;
    let (status, _, body) = invoke(router.clone(), event("intake-get.json")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pending_approval"));
    let (status, _, body) = invoke(router, event("intake-cancel.json")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"cancelled\"") && body.contains("RITM cancelled in ServiceNow"));
}

#[tokio::test]
async fn approval_events() {
    let w = world().await;
    let router = approval::router(w.services.clone()).router;
    let (status, _, body) = invoke(router.clone(), event("approval-page.json")).await;
    assert_eq!(status, 404, "{body}");
    seed(&w).await;
    let (status, content_type, body) = invoke(router.clone(), event("approval-page.json")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html") && body.contains("class=\"approve pre\""));
    let (status, _, body) = invoke(router.clone(), event("approval-decide.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        w.services.store.get(&RequestId::parse(REQUEST_ID).unwrap()).await.unwrap().unwrap().status,
        Status::Approved
    );
    let (status, _, _) = invoke(router, event("approval-decide.json")).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn provision_stream_batch_provisions_the_approved_request_and_reports_only_the_bad_record() {
    let w = world().await;
    let mut request = seed(&w).await;
    let expected = request.version;
    let h = request.transition(Status::Approved, "ops@example.com", None, jiff::Timestamp::now()).unwrap();
    let write = Write {
        request,
        expected_version: expected,
        history: vec![h],
        use_token: None,
        new_tokens: vec![],
        messages: vec![],
    };
    w.services.store.apply(write).await.unwrap();

    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(event("provision-stream-batch.json")).unwrap();
    assert_eq!(batch.records.len(), 4);
    let response = provision::handle(&w.services, "lambda-test", Duration::from_secs(10), batch).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap()).collect();
    assert_eq!(failed, ["4421584500000000000000000004"], "only the malformed record");
    let r = w.services.store.get(&RequestId::parse(REQUEST_ID).unwrap()).await.unwrap().unwrap();
    assert_eq!(r.status, Status::Active, "{r:?}");
    assert_eq!(r.servers.len(), 1);
}

#[tokio::test]
async fn sender_stream_event_delivers_what_is_owed() {
    let w = world().await;
    let request = seed(&w).await;
    let mut next = request.clone();
    next.touch(jiff::Timestamp::now());
    let notice =
        domain::mail::MailNotice { to: "ada@example.com".into(), template: domain::mail::MailTemplate::Received };
    let write = Write {
        request: next,
        expected_version: request.version,
        history: vec![],
        use_token: None,
        new_tokens: vec![],
        // The message the sample batch names (its MSG# key): a sender delivers only its batch's.
        messages: vec![OutboxMessage {
            id: "01a2011b-0000-7000-8000-0000000000b1".into(),
            ..OutboxMessage::mail(&request.id, jiff::Timestamp::now(), notice)
        }],
    };
    w.services.store.apply(write).await.unwrap();
    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(event("sender-stream-message.json")).unwrap();
    let delivery = sender::handle(&w.services, w.mailer.as_ref(), None, batch).await.unwrap();
    assert_eq!(delivery.sent, 1);
    let outbox = w.config.data_dir.join("outbox");
    let mails = mail::read_outbox(&outbox).unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.starts_with("Received"));
}

#[tokio::test]
async fn sweeper_scheduled_event_expires_what_is_overdue() {
    let w = world().await;
    let mut request = seed(&w).await;
    let expected = request.version;
    request.expires_at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    request.due_at = Some(request.expires_at);
    request.touch(jiff::Timestamp::now());
    let write = Write {
        request,
        expected_version: expected,
        history: vec![],
        use_token: None,
        new_tokens: vec![],
        messages: vec![],
    };
    w.services.store.apply(write).await.unwrap();
    let _schedule: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_value(event("sweeper-scheduled.json")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(50);
    let report =
        sweeper::run(&w.services, None, w.mailer.as_ref(), None, "lambda-test", Duration::from_secs(5), deadline)
            .await
            .unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(report.sent, 1, "the requester's expiry mail");
    let r = w.services.store.get(&RequestId::parse(REQUEST_ID).unwrap()).await.unwrap().unwrap();
    assert_eq!(r.status, Status::Expired);
}
