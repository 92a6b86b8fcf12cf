//! No PCD call follows a redirect: Keystone's (it would carry the credentials of clouds.yaml) and
//! every service's (it would carry the token) are upstream errors naming the cloud and the
//! service, and the host they point to is never called.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::CLOUD;
use common::stub::{Reply, Stub};
use domain::Error;
use gatehouse_pcd::{Cloud, CloudsFile, Pcd};
use serde_json::json;

const TOKEN: &str = "stub-token-0123456789-secret";

/// Another host that would answer every list happily, had anyone been sent there.
fn elsewhere() -> Stub {
    Stub::start_elsewhere(|_| {
        Reply::json(200, json!({"flavors": [], "images": [], "networks": [], "token": {}}).to_string())
    })
}

/// Keystone at `/identity` with a catalog on this same stub, whose services redirect to `to`;
/// Keystone at `/moved` redirects the token request itself there.
fn redirecting_cloud(to: &str) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let to = to.to_string();
    Stub::on(listener, move |req| {
        let service =
            |name: &str| json!({"type": name, "endpoints": [{"interface": "public", "url": format!("{base}/{name}")}]});
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/identity/v3/auth/tokens") => {
                let body = json!({"token": {
                    "expires_at": "2099-01-01T00:00:00.000000Z",
                    "catalog": [service("compute"), service("image"), service("network")]
                }});
                let mut reply = Reply::json(201, body.to_string());
                reply.headers.push(("X-Subject-Token".into(), TOKEN.into()));
                reply
            }
            ("POST", path) if path.starts_with("/moved/") => Reply::redirect(307, format!("{to}{path}")),
            (_, path) if path.starts_with("/compute/") => Reply::redirect(302, format!("{to}{path}")),
            (_, path) if path.starts_with("/image/") => Reply::redirect(301, format!("{to}{path}")),
            (_, path) => Reply::redirect(308, format!("{to}{path}")),
        }
    })
}

fn pcd(auth_url: &str) -> Pcd {
    let yaml = format!(
        "clouds:\n  {CLOUD}:\n    auth:\n      auth_url: {auth_url}\n      username: svc\n      password: hunter2-secret\n      user_domain_name: Default\n      project_name: p\n      project_domain_name: Default\n"
    );
    Pcd::new(CloudsFile::parse(&yaml).unwrap(), Duration::from_secs(5), false).unwrap()
}

fn upstream<T: std::fmt::Debug>(r: Result<T, Error>) -> (String, String, String) {
    match r {
        Err(e @ Error::Upstream { .. }) => {
            let chain = e.chain();
            let Error::Upstream { system, detail, .. } = e else { unreachable!() };
            (system, detail, chain)
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_redirect_is_an_error_and_the_token_never_leaves() {
    let other = elsewhere();
    let cloud = redirecting_cloud(&other.base_url());
    let pcd = pcd(&format!("{}/identity/v3", cloud.base_url()));

    let (system, detail, chain) = upstream(pcd.flavors(CLOUD).await);
    assert_eq!(system, "PCD cloud \"pcd-east\" (compute)");
    assert_eq!(detail, "answered with a redirect (HTTP 302), which Gatehouse does not follow");
    assert!(chain.contains(&format!("redirect to {}", other.base_url())), "{chain}");
    assert!(!chain.contains(TOKEN), "{chain}");
    let (system, detail, _) = upstream(pcd.images(CLOUD).await);
    assert_eq!(
        (system.as_str(), detail.as_str()),
        ("PCD cloud \"pcd-east\" (image)", "answered with a redirect (HTTP 301), which Gatehouse does not follow")
    );
    let (system, detail, _) = upstream(pcd.networks(CLOUD).await);
    assert_eq!(
        (system.as_str(), detail.as_str()),
        ("PCD cloud \"pcd-east\" (network)", "answered with a redirect (HTTP 308), which Gatehouse does not follow")
    );

    assert!(other.seen().is_empty(), "the other host was called: {:?}", other.seen());
    // The token did go to the cloud's own endpoints: it is what a followed redirect would carry.
    let compute = cloud.seen().into_iter().find(|s| s.path.starts_with("/compute/")).expect("compute called");
    assert_eq!(compute.header("x-auth-token"), Some(TOKEN));
}

#[tokio::test]
async fn a_keystone_redirect_is_an_error_and_the_credentials_never_leave() {
    let other = elsewhere();
    let cloud = redirecting_cloud(&other.base_url());
    let pcd = pcd(&format!("{}/moved/v3", cloud.base_url()));
    let (system, detail, chain) = upstream(pcd.flavors(CLOUD).await);
    assert_eq!(system, "PCD cloud \"pcd-east\" (identity)");
    assert_eq!(detail, "answered with a redirect (HTTP 307), which Gatehouse does not follow");
    assert!(!chain.contains("hunter2"), "{chain}");
    assert!(other.seen().is_empty(), "the other host was called: {:?}", other.seen());
    assert_eq!(cloud.seen().len(), 1, "{:?}", cloud.seen());
}
