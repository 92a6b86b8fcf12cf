//! The ServiceNow client never follows a redirect: Basic credentials are stripped across hosts by
//! reqwest, but a 307/308 would resend the OAuth client secret (a form body) and a record, and a
//! same-host redirect keeps every header. A 3xx is an upstream error naming ServiceNow, and the
//! host it points to is never called.

#[path = "../../../tests/support/http_stub.rs"]
mod stub;

use std::time::Duration;

use domain::Error;
use gatehouse_servicenow::{Client, DisplayValue, ServiceNowConfig, SnAuth};
use stub::{Reply, Stub};

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

fn client(base: String, auth: SnAuth) -> Client {
    Client::new(ServiceNowConfig {
        instance_url: base,
        auth,
        timeout: Duration::from_secs(5),
        max_retries: 3,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..ServiceNowConfig::default()
    })
    .unwrap()
}

fn upstream(err: Error) -> (String, String, String) {
    let chain = err.chain();
    match err {
        Error::Upstream { system, detail, .. } => (system, detail, chain),
        other => panic!("expected Upstream, got {other:?}"),
    }
}

/// A ServiceNow that answers every call with `status` to the same path on `other`.
fn redirecting(status: u16, other: &Stub) -> Stub {
    let to = other.base_url();
    Stub::start("127.0.0.1", move |req| Reply::redirect(status, format!("{to}{}", req.path)))
}

fn elsewhere() -> Stub {
    Stub::start_elsewhere(|_| {
        Reply::json(200, r#"{"result": {"sys_id": "9d385017c611228701d22104cc95c371"}, "access_token": "t"}"#.into())
    })
}

#[tokio::test]
async fn a_302_on_a_table_call_is_an_error_and_the_credentials_never_leave() {
    let other = elsewhere();
    let sn = redirecting(302, &other);
    let basic = SnAuth::Basic { user: "gatehouse".into(), password: "sn-password-secret".into() };
    let err = client(sn.base_url(), basic).get("sc_req_item", SYS_ID, DisplayValue::Stored).await.unwrap_err();
    let (system, detail, chain) = upstream(err);
    assert_eq!(system, "ServiceNow sc_req_item");
    assert_eq!(
        detail,
        format!(
            "record {SYS_ID}: answered with a redirect (HTTP 302), which Gatehouse does not follow; check \
             GATEHOUSE_SERVICENOW_URL"
        )
    );
    assert!(!chain.contains("sn-password-secret"), "{chain}");
    assert!(other.seen().is_empty(), "the other host was called: {:?}", other.seen());
    let seen = sn.seen();
    assert_eq!(seen.len(), 1, "a redirect is not retried: {seen:?}");
    assert!(seen[0].header("authorization").is_some_and(|a| a.starts_with("Basic ")));
}

#[tokio::test]
async fn a_307_on_the_oauth_token_request_is_an_error_and_the_secret_never_leaves() {
    let other = elsewhere();
    let sn = redirecting(307, &other);
    let oauth = SnAuth::OAuthClientCredentials { client_id: "gh".into(), client_secret: "oauth-secret".into() };
    let err = client(sn.base_url(), oauth).get("change_request", SYS_ID, DisplayValue::Stored).await.unwrap_err();
    let (system, detail, chain) = upstream(err);
    assert_eq!(system, "ServiceNow change_request");
    assert!(
        detail.contains("OAuth token request: answered with a redirect (HTTP 307), which Gatehouse does not follow"),
        "{detail}"
    );
    assert!(!chain.contains("oauth-secret"), "{chain}");
    assert!(other.seen().is_empty(), "the other host was called: {:?}", other.seen());
    assert_eq!(sn.seen().len(), 1, "{:?}", sn.seen());
    assert_eq!(sn.seen()[0].path, "/oauth_token.do");
}
