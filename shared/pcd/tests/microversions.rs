//! Microversion negotiation and compute limits through HTTP against the PCD simulator: a cloud
//! whose compute API offers less than Gatehouse wants (down to 2.1) works for every call, without
//! a single 406.

mod common;

use std::collections::BTreeMap;

use common::{CLOUD, password_by_names, pcd};
use domain::compute::{REQUEST_ID_METADATA_KEY, ServerSpec};
use gatehouse_pcd::{Cloud, NOVA_MICROVERSION};
use pcd_sim::{Faults, PcdSim, Quota, SimConfig, demo};
use serde_json::{Value, json};

async fn sim_offering(max: (u32, u32)) -> PcdSim {
    let config = SimConfig { max_microversion: max, ..Default::default() };
    PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.expect("pcd-sim starts")
}

fn spec(name: &str) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        image_id: demo::IMAGE_UBUNTU_2404.into(),
        flavor_id: demo::FLAVOR_M1_SMALL.into(),
        network_id: demo::NETWORK_PROD.into(),
        metadata: BTreeMap::from([(REQUEST_ID_METADATA_KEY.to_string(), "req-mv".to_string())]),
        boot_volume_gb: None,
        description: Some("Gatehouse request req-mv".into()),
        tags: vec!["gatehouse".into()],
    }
}

fn create_body(sim: &PcdSim, id: &str) -> Value {
    sim.servers().into_iter().find(|s| s["id"] == id).expect("created")["request_body"]["server"].clone()
}

#[tokio::test]
async fn a_cloud_offering_only_2_1_gets_2_1_and_everything_works() {
    let sim = sim_offering((2, 1)).await;
    let pcd = pcd(&password_by_names(&sim));
    assert_eq!(pcd.flavors(CLOUD).await.unwrap().len(), 5);

    let id = pcd.create_server(CLOUD, &spec("old-01")).await.expect("created at 2.1");
    let body = create_body(&sim, &id);
    assert!(body.get("description").is_none() && body.get("tags").is_none(), "{body}");
    assert_eq!(body["metadata"][REQUEST_ID_METADATA_KEY], "req-mv");
    assert_eq!(pcd.server(CLOUD, &id).await.unwrap().unwrap().name, "old-01");
    assert_eq!(pcd.servers_named(CLOUD, "old-01").await.unwrap().len(), 1);
    assert_eq!(pcd.limits(CLOUD).await.unwrap().instances_used, 1);
    pcd.delete_server(CLOUD, &id).await.unwrap();
    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.1"));
    assert_eq!(sim.calls()["compute.versions"], 1, "the version document is read once per token");
}

#[tokio::test]
async fn features_come_with_the_microversion_that_brought_them() {
    let sim = sim_offering((2, 38)).await;
    let pcd = pcd(&password_by_names(&sim));
    let id = pcd.create_server(CLOUD, &spec("mid-01")).await.unwrap();
    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.38"));
    let body = create_body(&sim, &id);
    assert_eq!(body["description"], "Gatehouse request req-mv", "description is 2.19");
    assert!(body.get("tags").is_none(), "tags at create are 2.52: {body}");

    let sim = sim_offering((2, 104)).await;
    let pcd = common::pcd(&password_by_names(&sim));
    let id = pcd.create_server(CLOUD, &spec("new-01")).await.unwrap();
    assert_eq!(sim.last_compute_microversion().as_deref(), Some(NOVA_MICROVERSION));
    assert_eq!(create_body(&sim, &id)["tags"], json!(["gatehouse"]));
}

#[tokio::test]
async fn reads_ask_for_2_1_without_the_version_document() {
    let sim = sim_offering((2, 104)).await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.flavors(CLOUD).await.unwrap();
    pcd.limits(CLOUD).await.unwrap();
    pcd.servers_named(CLOUD, "none").await.unwrap();
    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.1"));
    assert!(!sim.calls().contains_key("compute.versions"), "{:?}", sim.calls());
}

#[tokio::test]
async fn a_new_token_reads_the_version_document_again() {
    let sim = sim_offering((2, 104)).await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.create_server(CLOUD, &spec("a")).await.unwrap();
    pcd.create_server(CLOUD, &spec("b")).await.unwrap();
    assert_eq!(sim.calls()["compute.versions"], 1);
    assert_eq!(sim.last_compute_microversion().as_deref(), Some(NOVA_MICROVERSION));
    // The cloud is downgraded and the token renewed: the next create follows.
    sim.set_max_microversion(2, 1);
    sim.expire_tokens();
    pcd.create_server(CLOUD, &spec("c")).await.unwrap();
    assert_eq!(sim.calls()["compute.versions"], 2);
    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.1"));
    assert_eq!(sim.servers().len(), 3);
}

#[tokio::test]
async fn a_406_reads_the_version_document_again_and_resends_once() {
    let sim = sim_offering((2, 104)).await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.create_server(CLOUD, &spec("first")).await.unwrap();
    // An API node of an older Nova behind the same endpoint, with the token still good.
    sim.set_max_microversion(2, 1);
    let id = pcd.create_server(CLOUD, &spec("rolled-back")).await.expect("resent at 2.1");
    assert!(create_body(&sim, &id).get("tags").is_none());
    assert_eq!(sim.calls()["compute.create"], 3, "one create, then a 406 and the create again");
    assert_eq!(sim.calls()["compute.versions"], 2);
    assert_eq!(sim.servers().len(), 2);
}

#[tokio::test]
async fn an_outage_while_negotiating_is_an_error_and_is_not_remembered() {
    let sim = sim_offering((2, 104)).await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.flavors(CLOUD).await.unwrap();
    sim.set_faults(Faults { fail_services: vec!["compute".into()], ..Default::default() });
    match pcd.create_server(CLOUD, &spec("during")).await {
        Err(domain::Error::Upstream { system, detail, .. }) => {
            assert_eq!(system, "PCD cloud \"pcd-east\" (compute)");
            assert_eq!(detail, "answered HTTP 503");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
    sim.set_faults(Faults::default());
    let id = pcd.create_server(CLOUD, &spec("after")).await.unwrap();
    assert_eq!(sim.last_compute_microversion().as_deref(), Some(NOVA_MICROVERSION), "not pinned to 2.1");
    assert_eq!(create_body(&sim, &id)["tags"], json!(["gatehouse"]));
}

#[tokio::test]
async fn limits_report_the_quota_and_what_the_project_uses() {
    let sim = sim_offering((2, 104)).await;
    sim.set_quota(Quota { instances: 10, cores: -1, ram: 51200 });
    let pcd = pcd(&password_by_names(&sim));
    pcd.create_server(CLOUD, &spec("one")).await.unwrap();
    let limits = pcd.limits(CLOUD).await.unwrap();
    assert_eq!((limits.max_instances, limits.max_cores, limits.max_ram_mb), (Some(10), None, Some(51200)));
    assert_eq!((limits.instances_used, limits.cores_used, limits.ram_used_mb), (1, 1, 2048));
}

#[tokio::test]
async fn a_create_beyond_the_quota_is_a_quota_error_with_novas_words() {
    let sim = sim_offering((2, 1)).await;
    sim.set_quota(Quota { instances: 1, ..Default::default() });
    let pcd = pcd(&password_by_names(&sim));
    pcd.create_server(CLOUD, &spec("first")).await.unwrap();
    match pcd.create_server(CLOUD, &spec("second")).await {
        Err(domain::Error::Quota { detail, .. }) => {
            assert_eq!(detail, "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances")
        }
        other => panic!("expected Quota, got {other:?}"),
    }
}
