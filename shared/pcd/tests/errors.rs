//! Failures through HTTP against the PCD simulator: each one an `Upstream` error naming the
//! cloud and the service, with a sentence of ours and no secret or raw upstream body.

mod common;

use std::time::Duration;

use common::{CLOUD, password_by_names, pcd, pcd_with_timeout, sim};
use domain::Error;
use gatehouse_pcd::Cloud;
use pcd_sim::Faults;

fn upstream<T: std::fmt::Debug>(r: Result<T, Error>) -> (String, String, Error) {
    match r {
        Err(Error::Upstream { system, detail, source }) => {
            let e = Error::Upstream { system: system.clone(), detail: detail.clone(), source };
            (system, detail, e)
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn a_503_names_the_cloud_and_the_service() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    for (service, fail) in [("compute", 0), ("image", 1), ("network", 2)] {
        sim.set_faults(Faults { fail_services: vec![service.into()], ..Default::default() });
        let r = match fail {
            0 => pcd.flavors(CLOUD).await.map(|_| ()),
            1 => pcd.images(CLOUD).await.map(|_| ()),
            _ => pcd.networks(CLOUD).await.map(|_| ()),
        };
        let (system, detail, e) = upstream(r);
        assert_eq!(system, format!("PCD cloud \"pcd-east\" ({service})"));
        assert_eq!(detail, "answered HTTP 503");
        assert!(!e.to_string().contains("simulated"), "{e}");
        assert!(e.chain().contains("HTTP 503"), "{}", e.chain());
    }
}

#[tokio::test]
async fn identity_down_names_identity() {
    let sim = sim().await;
    sim.set_faults(Faults { fail_services: vec!["identity".into()], ..Default::default() });
    let pcd = pcd(&password_by_names(&sim));
    let (system, detail, _) = upstream(pcd.flavors(CLOUD).await);
    assert_eq!(system, "PCD cloud \"pcd-east\" (identity)");
    assert_eq!(detail, "answered HTTP 503");
}

#[tokio::test]
async fn latency_beyond_the_timeout_is_a_timeout() {
    let sim = sim().await;
    let pcd = pcd_with_timeout(&password_by_names(&sim), Duration::from_millis(300));
    pcd.images(CLOUD).await.expect("fast enough at first");
    sim.set_faults(Faults { latency_ms: 1_000, ..Default::default() });
    let started = std::time::Instant::now();
    let (system, detail, _) = upstream(pcd.networks(CLOUD).await);
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    assert_eq!(system, "PCD cloud \"pcd-east\" (network)");
    assert_eq!(detail, "did not answer within 300 ms");
}

#[tokio::test]
async fn a_wrong_password_names_identity_and_not_the_password() {
    let sim = sim().await;
    let yaml = password_by_names(&sim).replace("password: \"secret\"", "password: \"wr0ng-pa55\"");
    assert!(yaml.contains("wr0ng-pa55"));
    let pcd = pcd(&yaml);
    let (system, detail, e) = upstream(pcd.images(CLOUD).await);
    assert_eq!(system, "PCD cloud \"pcd-east\" (identity)");
    assert_eq!(detail, "refused the credentials in clouds.yaml (HTTP 401)");
    assert!(!e.chain().contains("wr0ng-pa55"));
    assert!(!format!("{e:?}").contains("wr0ng-pa55"));
    assert!(!format!("{pcd:?}").contains("wr0ng-pa55"));
    assert_eq!(sim.calls()["identity.auth"], 1);
    assert!(!sim.calls().contains_key("image.list"));
}

#[tokio::test]
async fn a_cloud_that_cannot_be_reached_says_so() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "clouds:\n  {CLOUD}:\n    auth:\n      auth_url: http://127.0.0.1:{port}/v3\n      user_id: u\n      password: p\n      project_id: x\n"
    );
    let pcd = pcd(&yaml);
    let (system, detail, _) = upstream(pcd.images(CLOUD).await);
    assert_eq!(system, "PCD cloud \"pcd-east\" (identity)");
    assert_eq!(detail, "could not be reached");
}
