//! Outbound hardening (DESIGN.md, "Trust and identity", Outbound), as a user would meet it:
//! a PCD that redirects gets a clear 502 and never the token at the other host, the demo refuses
//! to listen beyond loopback, and the data folder it creates is private.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use support::{Harness, temp_dir};
use tokio::net::TcpListener;

const TOKEN: &str = "pcd-token-that-must-stay-home-0123456789";

/// What the other host was sent: method, path and headers.
type Calls = Arc<Mutex<Vec<(Method, String, HeaderMap)>>>;

async fn serve(listener: TcpListener, app: Router) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Another host than 127.0.0.1: a listener on 127.0.0.2 (Linux routes all of 127.0.0.0/8 to
/// lo), else another port on 127.0.0.1 (another origin all the same). It records every call and
/// would answer every list, had anyone come.
async fn other_host() -> (SocketAddr, Calls) {
    let listener = match TcpListener::bind("127.0.0.2:0").await {
        Ok(l) => l,
        Err(_) => TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push((method, uri.to_string(), headers));
            axum::Json(json!({"flavors": [], "images": [], "networks": []}))
        }
    });
    (serve(listener, app).await, calls)
}

/// A Keystone whose catalog names this same server for compute, image and network, each of
/// which answers `302 Location: http://<other>/…` (the same path on the other host). Records the
/// services' calls too.
async fn redirecting_pcd(other: SocketAddr) -> (SocketAddr, Calls) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let catalog = ["compute", "image", "network"]
        .map(|t| json!({"type": t, "endpoints": [{"interface": "public", "region_id": "RegionOne", "url": format!("{base}/{t}")}]}));
    let keystone = move || async move {
        let body = json!({"token": {"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": catalog}});
        (StatusCode::CREATED, [("X-Subject-Token", TOKEN)], axum::Json(body))
    };
    let services = move |method: Method, uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let location = format!("http://{other}{}", uri.path());
            seen.lock().unwrap().push((method, uri.to_string(), headers));
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, location.parse().unwrap());
            resp
        }
    };
    let app = Router::new().route("/identity/v3/auth/tokens", post(keystone)).fallback(services);
    (serve(listener, app).await, calls)
}

/// Status, problem body and content type of a GET with the demo token.
async fn get(h: &Harness, path: &str) -> (u16, Value, String) {
    let resp = h.get(path).send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, resp.json().await.unwrap_or(Value::Null), content_type)
}

#[tokio::test]
async fn a_302_from_pcd_to_another_host_is_not_followed_with_the_token() {
    let (other, other_calls) = other_host().await;
    let (pcd, pcd_calls) = redirecting_pcd(other).await;
    let dir = temp_dir("outbound");
    let clouds_yaml = dir.join("clouds.yaml");
    std::fs::write(
        &clouds_yaml,
        format!(
            "clouds:\n  moved:\n    auth:\n      auth_url: http://{pcd}/identity/v3\n      username: svc\n      password: pcd-password-secret\n      user_domain_name: Default\n      project_name: p\n      project_domain_name: Default\n    region_name: RegionOne\n"
        ),
    )
    .unwrap();
    let h = Harness::start_with(|c| c.clouds_yaml = clouds_yaml).await;

    // The catalog reads a cloud's images, flavors and networks together, so any of the three
    // services may be the one that reports the redirect.
    for path in
        ["/v1/clouds/moved/flavors", "/v1/clouds/moved/images", "/v1/clouds/moved/networks", "/v1/clouds/moved/options"]
    {
        let (status, problem, content_type) = get(&h, path).await;
        assert_eq!((status, content_type.as_str()), (502, "application/problem+json"), "{path}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        let service = detail.strip_prefix("PCD cloud \"moved\" (").and_then(|rest| {
            rest.strip_suffix("): answered with a redirect (HTTP 302), which Gatehouse does not follow")
        });
        assert!(matches!(service, Some("compute" | "image" | "network")), "{path}: {detail}");
        assert!(!problem.to_string().contains(TOKEN), "{problem}");
    }

    // The other host never received a request, and so never the X-Auth-Token.
    let leaked = other_calls.lock().unwrap();
    assert!(
        leaked.is_empty(),
        "the redirect was followed: {:?}",
        leaked.iter().map(|(m, u, h)| (m, u, h.get("x-auth-token"))).collect::<Vec<_>>()
    );
    // …although the calls that were redirected did carry it: following them would have leaked it.
    let redirected = pcd_calls.lock().unwrap();
    assert!(!redirected.is_empty());
    assert!(redirected.iter().all(|(_, _, h)| h.get("x-auth-token").is_some_and(|t| t == TOKEN)));
}

#[tokio::test]
async fn serve_demo_refuses_a_listen_address_beyond_loopback() {
    let data_dir = std::env::temp_dir().join(format!("gatehouse-outbound-demo-{}", std::process::id()));
    let args = gatehouse::serve::ServeArgs {
        listen: "0.0.0.0:0".parse().unwrap(),
        data_dir: Some(data_dir.clone()),
        demo: true,
        metrics_listen: None,
    };
    let err = match gatehouse::serve::start(args).await {
        Ok(_) => panic!("the demo started on 0.0.0.0"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("serve --demo listens on loopback only"), "{err}");
    assert!(err.contains("--listen 0.0.0.0:"), "{err}");
    assert!(!data_dir.exists(), "nothing was written before refusing");
}

#[cfg(unix)]
#[tokio::test]
async fn the_demo_data_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data_dir = std::env::temp_dir().join(format!("gatehouse-outbound-private-{}", uuid_like())).join("data");
    let args = gatehouse::serve::ServeArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: Some(data_dir.clone()),
        demo: true,
        metrics_listen: None,
    };
    let running = gatehouse::serve::start(args).await.expect("the demo starts on loopback");
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(data_dir.parent().unwrap()), 0o700, "every folder created");
    assert_eq!(mode(&data_dir.join("outbox")), 0o700);
    for file in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm", "clouds.yaml"] {
        let path = data_dir.join(file);
        assert!(path.exists(), "{file}");
        assert_eq!(mode(&path), 0o600, "{file}");
    }
    drop(running);
    let _ = std::fs::remove_dir_all(data_dir.parent().unwrap());
}

fn uuid_like() -> String {
    domain::model::RequestId::generate().to_string()
}
