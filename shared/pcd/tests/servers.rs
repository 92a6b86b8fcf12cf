//! Creating, finding and deleting servers through HTTP against the PCD simulator.

mod common;

use std::collections::BTreeMap;

use common::{CLOUD, password_by_names, pcd, sim};
use domain::Error;
use domain::compute::{REQUEST_ID_METADATA_KEY, ServerSpec};
use gatehouse_pcd::{Cloud, NOVA_MICROVERSION};
use pcd_sim::{Faults, demo};

fn spec(name: &str, request_id: &str) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        image_id: demo::IMAGE_UBUNTU_2404.into(),
        flavor_id: demo::FLAVOR_M1_SMALL.into(),
        network_id: demo::NETWORK_PROD.into(),
        metadata: BTreeMap::from([(REQUEST_ID_METADATA_KEY.to_string(), request_id.to_string())]),
        boot_volume_gb: None,
        description: Some(format!("Gatehouse request {request_id}")),
        tags: vec!["gatehouse".into()],
    }
}

#[tokio::test]
async fn create_get_find_and_delete() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));

    let id = pcd.create_server(CLOUD, &spec("web-01", "req-1")).await.expect("created");
    assert_eq!(sim.last_compute_microversion().as_deref(), Some(NOVA_MICROVERSION));
    let server = pcd.server(CLOUD, &id).await.unwrap().expect("exists");
    assert_eq!(server.id, id);
    assert_eq!(server.name, "web-01");
    assert!(["BUILD", "ACTIVE"].contains(&server.status.as_str()), "{}", server.status);
    assert_eq!(server.metadata[REQUEST_ID_METADATA_KEY], "req-1");
    assert_eq!(server.fault, None);
    let on_nova = sim.servers().into_iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(on_nova["request_body"]["server"]["description"], "Gatehouse request req-1");
    assert_eq!(on_nova["request_body"]["server"]["tags"], serde_json::json!(["gatehouse"]));

    let found = pcd.servers_named(CLOUD, "web-01").await.unwrap();
    assert_eq!(found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);

    pcd.delete_server(CLOUD, &id).await.unwrap();
    assert_eq!(pcd.server(CLOUD, &id).await.unwrap(), None);
    // Deleting what is gone counts as done.
    pcd.delete_server(CLOUD, &id).await.unwrap();
    assert!(pcd.servers_named(CLOUD, "web-01").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_server_is_none() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    assert_eq!(pcd.server(CLOUD, "00000000-0000-4000-8000-00000000dead").await.unwrap(), None);
}

#[tokio::test]
async fn active_servers_report_their_addresses() {
    let sim = sim().await;
    sim.set_faults(Faults { build_delay_ms: Some(0), ..Default::default() });
    let pcd = pcd(&password_by_names(&sim));
    let id = pcd.create_server(CLOUD, &spec("db-01", "req-2")).await.unwrap();
    let server = pcd.server(CLOUD, &id).await.unwrap().unwrap();
    assert_eq!(server.status, "ACTIVE");
    assert!(!server.addresses.is_empty(), "{server:?}");
}

#[tokio::test]
async fn errored_servers_report_nova_s_fault() {
    let sim = sim().await;
    sim.set_faults(Faults {
        server_error: Some("No valid host was found.".into()),
        build_delay_ms: Some(0),
        ..Default::default()
    });
    let pcd = pcd(&password_by_names(&sim));
    let id = pcd.create_server(CLOUD, &spec("db-02", "req-3")).await.unwrap();
    let server = pcd.server(CLOUD, &id).await.unwrap().unwrap();
    assert_eq!(server.status, "ERROR");
    assert_eq!(server.fault.as_deref(), Some("No valid host was found."));
}

#[tokio::test]
async fn names_match_exactly_not_as_a_regex() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    let web10 = pcd.create_server(CLOUD, &spec("web-10", "r")).await.unwrap();
    let web1 = pcd.create_server(CLOUD, &spec("web-1", "r")).await.unwrap();
    let dotted = pcd.create_server(CLOUD, &spec("app.1", "r")).await.unwrap();
    let lookalike = pcd.create_server(CLOUD, &spec("appx1", "r")).await.unwrap();

    let ids = |v: Vec<domain::compute::ServerState>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(pcd.servers_named(CLOUD, "web-1").await.unwrap()), [web1]);
    assert_eq!(ids(pcd.servers_named(CLOUD, "web-10").await.unwrap()), [web10]);
    assert_eq!(ids(pcd.servers_named(CLOUD, "app.1").await.unwrap()), [dotted]);
    assert_eq!(ids(pcd.servers_named(CLOUD, "appx1").await.unwrap()), [lookalike]);
    assert!(pcd.servers_named(CLOUD, "web-").await.unwrap().is_empty());
}

#[tokio::test]
async fn quota_refusals_are_quota_errors() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    for status in [403, 413] {
        sim.set_faults(Faults { quota: Some(status), ..Default::default() });
        match pcd.create_server(CLOUD, &spec("web-01", "req-q")).await {
            Err(Error::Quota { system, detail }) => {
                assert_eq!(system, "PCD cloud \"pcd-east\" (compute)");
                assert!(detail.to_lowercase().contains("quota"), "{status}: {detail}");
                assert!(!detail.contains('{'), "{detail}");
            }
            other => panic!("{status}: expected Quota, got {other:?}"),
        }
    }
    assert!(sim.servers().is_empty());
}

#[tokio::test]
async fn a_5xx_on_create_is_upstream() {
    let sim = sim().await;
    sim.set_faults(Faults { create_status: Some(500), ..Default::default() });
    let pcd = pcd(&password_by_names(&sim));
    match pcd.create_server(CLOUD, &spec("web-01", "req-5")).await {
        Err(Error::Upstream { system, detail, .. }) => {
            assert_eq!(system, "PCD cloud \"pcd-east\" (compute)");
            assert_eq!(detail, "answered HTTP 500");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn disk_0_flavors_boot_from_a_volume() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    let mut bfv = spec("vol-01", "req-v");
    bfv.flavor_id = demo::FLAVOR_BFV_MEDIUM.into();

    // Without the block device mapping the simulator (like Nova) refuses a disk-0 flavor.
    assert!(pcd.create_server(CLOUD, &bfv).await.is_err());

    bfv.boot_volume_gb = Some(30);
    let id = pcd.create_server(CLOUD, &bfv).await.expect("boots from volume");
    let servers = sim.servers();
    let created = servers.iter().find(|s| s["id"] == id.as_str()).expect("in the simulator");
    assert_eq!(created["boot_from_volume"], true);
    let body = &created["request_body"]["server"];
    assert_eq!(body["imageRef"], "");
    assert_eq!(
        body["block_device_mapping_v2"],
        serde_json::json!([{
            "boot_index": 0,
            "uuid": demo::IMAGE_UBUNTU_2404,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": 30,
            "delete_on_termination": true
        }])
    );
    assert_eq!(body["networks"], serde_json::json!([{"uuid": demo::NETWORK_PROD}]));
    assert_eq!(body["metadata"][REQUEST_ID_METADATA_KEY], "req-v");
}

#[tokio::test]
async fn one_metadata_item_is_set_and_the_others_are_kept() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    let id = pcd.create_server(CLOUD, &spec("web-01", "req-m")).await.unwrap();

    pcd.set_server_metadata(CLOUD, &id, "gatehouse_retire_at", "2026-12-01T18:00:00Z").await.unwrap();
    let server = pcd.server(CLOUD, &id).await.unwrap().unwrap();
    assert_eq!(server.metadata["gatehouse_retire_at"], "2026-12-01T18:00:00Z");
    assert_eq!(server.metadata[REQUEST_ID_METADATA_KEY], "req-m", "the other items stay");
    assert_eq!(sim.calls()["compute.metadata_set"], 1);

    let gone = pcd.set_server_metadata(CLOUD, "00000000-0000-4000-8000-00000000dead", "k", "v").await;
    assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
    sim.set_faults(Faults { fail_services: vec!["compute".into()], ..Default::default() });
    let down = pcd.set_server_metadata(CLOUD, &id, "gatehouse_retire_at", "2027-01-01T00:00:00Z").await;
    assert!(matches!(down, Err(Error::Upstream { .. })), "{down:?}");
}
