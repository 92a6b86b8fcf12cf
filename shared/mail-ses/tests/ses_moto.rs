//! The SES transport against moto (started by ./tests/run.sh, or `eval "$(tests/aws/start-moto.sh)"`),
//! reading what was sent back from moto's `/moto-api/data.json`.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use domain::Error;
use gatehouse_mail_ses::{SYSTEM, SesTransport, timeouts};
use lettre::Message;
use lettre::message::MultiPart;
use mail::Transport;

fn endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "GATEHOUSE_TEST_AWS_ENDPOINT is not set: the SES tests need moto. Run ./tests/run.sh, or \
             eval \"$(tests/aws/start-moto.sh)\" before cargo test"
        )
    })
}

fn client(endpoint: &str) -> Client {
    let config = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "gatehouse-tests"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .build();
    Client::from_conf(config)
}

/// A sender unique to the test, verified in moto.
async fn verified_sender(client: &Client) -> String {
    let sender = format!("gatehouse-{}@example.com", uuid::Uuid::new_v4().simple());
    client.create_email_identity().email_identity(&sender).send().await.unwrap();
    sender
}

fn message(from: &str, to: &str, subject: &str) -> Message {
    Message::builder()
        .from(from.parse().unwrap())
        .to(to.parse().unwrap())
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(
            "Approve: https://gatehouse.example/v1/approvals/abc\nGrüße, Gatehouse".to_string(),
            "<p>Approve: <a href=\"https://gatehouse.example/v1/approvals/abc\">open</a></p><p>Grüße</p>".to_string(),
        ))
        .unwrap()
}

/// The raw messages moto recorded as sent.
async fn sent(endpoint: &str) -> Vec<serde_json::Value> {
    let data: serde_json::Value =
        reqwest::get(format!("{endpoint}/moto-api/data.json")).await.unwrap().json().await.unwrap();
    data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_mail_is_sent_with_its_text_and_html_parts() {
    let endpoint = endpoint();
    let client = client(&endpoint);
    let from = verified_sender(&client).await;
    let subject = format!("Approval needed {}", uuid::Uuid::new_v4());
    let transport = SesTransport::new(client, None);
    transport.deliver(message(&from, "Ada Lovelace <ada@example.com>", &subject)).await.unwrap();

    let recorded: Vec<_> =
        sent(&endpoint).await.into_iter().filter(|m| m["source"] == serde_json::Value::String(from.clone())).collect();
    assert_eq!(recorded.len(), 1, "one mail from {from}: {recorded:?}");
    let m = &recorded[0];
    let destinations: Vec<_> = m["destinations"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    // Ours is the envelope recipient; moto adds the To header's own spelling of the same address.
    assert!(destinations.contains(&"ada@example.com"), "{destinations:?}");
    assert!(destinations.iter().all(|d| d.contains("ada@example.com")), "{destinations:?}");
    let raw = m["raw_data"].as_str().unwrap();
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some(subject.as_str()));
    assert_eq!(parsed.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("ada@example.com"));
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("https://gatehouse.example/v1/approvals/abc") && text.contains("Grüße"), "{text}");
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("<a href=\"https://gatehouse.example/v1/approvals/abc\">open</a>"), "{html}");
    assert!(!html.contains("Grüße, Gatehouse"), "the HTML part is its own part, not the text one");
}

#[tokio::test]
async fn the_configuration_set_goes_with_every_mail() {
    let endpoint = endpoint();
    let client = client(&endpoint);
    let from = verified_sender(&client).await;
    let set = format!("gatehouse-{}", uuid::Uuid::new_v4().simple());
    client.create_configuration_set().configuration_set_name(&set).send().await.unwrap();
    let transport = SesTransport::new(client, Some(set.clone()));
    let msg = message(&from, "ada@example.com", "with a configuration set");
    let request = transport.request(&msg).unwrap();
    assert_eq!(request.get_configuration_set_name().as_deref(), Some(set.as_str()));
    assert_eq!(request.get_from_email_address().as_deref(), Some(from.as_str()));
    transport.deliver(msg).await.unwrap();

    let without = SesTransport::new(client_for_unused(), None);
    assert!(without.request(&message(&from, "a@example.com", "x")).unwrap().get_configuration_set_name().is_none());
}

fn client_for_unused() -> Client {
    client("http://127.0.0.1:1")
}

#[tokio::test]
async fn an_unverified_sender_is_an_upstream_error_naming_ses() {
    let endpoint = endpoint();
    let transport = SesTransport::new(client(&endpoint), None);
    let from = format!("unverified-{}@example.com", uuid::Uuid::new_v4().simple());
    let err = transport.deliver(message(&from, "ada@example.com", "refused")).await.unwrap_err();
    match err {
        Error::Upstream { system, detail, source } => {
            assert_eq!(system, SYSTEM);
            assert_eq!(detail, "SendEmail failed");
            assert!(source.is_some());
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_upstream_error_naming_ses() {
    let transport = SesTransport::new(client_for_unused(), None);
    let started = std::time::Instant::now();
    let err = transport.deliver(message("a@example.com", "b@example.com", "nowhere")).await.unwrap_err();
    assert!(matches!(&err, Error::Upstream { system, .. } if system == SYSTEM), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "the operation timeout bounds it");
}
