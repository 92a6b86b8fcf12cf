//! The catalog through HTTP: `gatehouse serve` in front of the PCD simulator.

mod support;

use std::time::Duration;

use pcd_sim::{Faults, PcdSim, SimConfig};
use serde_json::Value;
use support::{Harness, temp_dir};

fn names(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

fn assert_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected);
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(), "{body}");
}

#[tokio::test]
async fn the_demo_cloud_is_listed_and_offers_usable_items_in_dropdown_order() {
    let h = Harness::start().await;
    let (status, clouds) = h.get_json("/v1/clouds").await;
    assert_eq!(status, 200);
    assert_eq!(clouds["clouds"][0]["name"], "demo");
    assert_eq!(clouds["clouds"][0]["region"], "RegionOne");

    let (status, o) = h.get_json("/v1/clouds/demo/options").await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["cloud"], "demo");
    assert_eq!(names(&o["flavors"]), ["m1.tiny", "m1.small", "bfv.medium", "m1.medium", "m1.large"]);
    assert_eq!(o["flavors"][1]["label"], "m1.small — 1 vCPU, 2 GiB RAM, 20 GB disk");
    assert_eq!(o["flavors"][1]["vcpus"], 1);
    assert_eq!(o["flavors"][1]["ram_mb"], 2048);
    assert_eq!(o["flavors"][1]["disk_gb"], 20);
    // Only active images: the deactivated and the queued one are not offered.
    assert_eq!(names(&o["images"]), ["Debian 12", "Rocky Linux 9", "Ubuntu 24.04 LTS", "Windows Server 2022"]);
    assert_eq!(names(&o["networks"]), ["dev-net", "prod-net", "public", "shared-services"]);
    assert_eq!(o["networks"][2]["label"], "public (external)");

    for kind in ["images", "flavors", "networks"] {
        let (status, list) = h.get_json(&format!("/v1/clouds/demo/{kind}")).await;
        assert_eq!(status, 200);
        assert_eq!(list["cloud"], "demo");
        assert_eq!(list["items"], o[kind], "{kind}");
    }
}

#[tokio::test]
async fn a_warm_cache_answers_without_calling_pcd_and_the_three_lists_go_out_once() {
    let h = Harness::start().await;
    h.get_json("/v1/clouds/demo/options").await;
    let before = h.sim.calls();
    for _ in 0..5 {
        assert_eq!(h.get_json("/v1/clouds/demo/flavors").await.0, 200);
    }
    assert_eq!(h.sim.calls(), before, "warm cache calls nothing");
    assert_eq!(before.get("identity.auth"), Some(&1));
    assert_eq!(before.get("compute.flavors"), Some(&1));
    assert_eq!(before.get("network.list"), Some(&1));
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_401_and_unknown_clouds_404() {
    let h = Harness::start().await;
    for path in ["/v1/clouds", "/v1/clouds/demo/options", "/v1/clouds/demo/images"] {
        let resp = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let resp = h.http.get(h.url(path)).bearer_auth("not-the-token").send().await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    let (status, body) = h.get_json("/v1/clouds/nowhere/options").await;
    assert_problem(status, &body, 404);
    assert!(body["detail"].as_str().unwrap().contains("nowhere"));
    let (status, body) = h.get_json("/v1/clouds/demo/volumes").await;
    assert_problem(status, &body, 404);
}

#[tokio::test]
async fn a_failing_pcd_service_gives_502_naming_the_cloud() {
    let h = Harness::start().await;
    h.sim.set_faults(Faults { fail_services: vec!["network".into()], ..Default::default() });
    let (status, body) = h.get_json("/v1/clouds/demo/options").await;
    assert_problem(status, &body, 502);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("\"demo\"") && detail.contains("network"), "{detail}");
    assert!(!detail.contains("computeFault") && !detail.contains('{'), "no upstream body leaks: {detail}");
    h.sim.set_faults(Faults::default());
    assert_eq!(h.get_json("/v1/clouds/demo/options").await.0, 200, "recovers once PCD does");
}

#[tokio::test]
async fn a_token_that_expires_while_the_cache_is_warm_is_renewed_once() {
    let h = Harness::start_with(|c| c.catalog_ttl = Duration::from_millis(200)).await;
    assert_eq!(h.get_json("/v1/clouds/demo/options").await.0, 200);
    h.sim.expire_tokens();
    // Still warm: answered from the cache.
    assert_eq!(h.get_json("/v1/clouds/demo/options").await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Cold again: the first PCD call meets a 401, the client re-authenticates once and goes on.
    let (status, o) = h.get_json("/v1/clouds/demo/options").await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["flavors"].as_array().unwrap().len(), 5);
    assert_eq!(h.sim.calls().get("identity.auth"), Some(&2));
}

#[tokio::test]
async fn one_cloud_down_does_not_take_the_other_with_it_and_both_auth_types_work() {
    let east = PcdSim::start("127.0.0.1:0".parse().unwrap(), SimConfig::default()).await.unwrap();
    let west = PcdSim::start("127.0.0.1:0".parse().unwrap(), SimConfig::default()).await.unwrap();
    let c = SimConfig::default();
    // pcd-east with a password, pcd-west with an application credential, and a cloud whose
    // Keystone is not there at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let yaml = format!(
        "clouds:\n  pcd-east:\n    display_name: East\n    region_name: RegionOne\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      project_name: {}\n      user_domain_name: Default\n      project_domain_name: Default\n  pcd-west:\n    region_name: RegionOne\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      application_credential_id: {}\n      application_credential_secret: {}\n  pcd-gone:\n    region_name: RegionOne\n    auth:\n      auth_url: http://{closed}/identity/v3\n      username: u\n      password: p\n      project_name: p\n      user_domain_name: Default\n      project_domain_name: Default\n",
        east.auth_url(),
        c.username,
        c.password,
        c.project_name,
        west.auth_url(),
        c.app_credential_id,
        c.app_credential_secret,
    );
    let dir = temp_dir("clouds");
    let path = dir.join("clouds.yaml");
    std::fs::write(&path, yaml).unwrap();
    let h = Harness::start_on(east, |config| config.clouds_yaml = path).await;

    let (_, clouds) = h.get_json("/v1/clouds").await;
    let listed: Vec<_> = clouds["clouds"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(listed, ["pcd-east", "pcd-west", "pcd-gone"], "in the order of clouds.yaml");
    assert_eq!(clouds["clouds"][0]["display_name"], "East");

    assert_eq!(h.get_json("/v1/clouds/pcd-east/options").await.0, 200);
    assert_eq!(h.get_json("/v1/clouds/pcd-west/options").await.0, 200);
    let (status, body) = h.get_json("/v1/clouds/pcd-gone/options").await;
    assert_problem(status, &body, 502);
    assert!(body["detail"].as_str().unwrap().contains("pcd-gone"), "{body}");

    // West goes down: east still answers (from PCD, once its cache is cold too).
    west.stop().await;
    let (status, body) = h.get_json("/v1/clouds/pcd-west/networks").await;
    assert_eq!(status, 200, "west's lists are still cached: {body}");
    assert_eq!(h.get_json("/v1/clouds/pcd-east/flavors").await.0, 200);
}
