//! Listing images, flavors and networks through HTTP against the PCD simulator: the auth
//! variants of clouds.yaml, endpoint selection, paging, the Nova microversion and token reuse.

mod common;

use std::collections::BTreeSet;

use common::{CLOUD, cloud_yaml, password_by_names, pcd, sim};
use domain::Error;
use gatehouse_pcd::{Cloud, NOVA_MICROVERSION};
use pcd_sim::{PcdSim, demo};

/// All three lists work, with what the demo cloud holds.
async fn lists_everything(sim: &PcdSim, yaml: &str) {
    let pcd = pcd(yaml);
    let images = pcd.images(CLOUD).await.expect("images");
    assert_eq!(images.len(), 4, "{images:?}");
    let flavors = pcd.flavors(CLOUD).await.expect("flavors");
    assert_eq!(flavors.len(), 5, "{flavors:?}");
    let networks = pcd.networks(CLOUD).await.expect("networks");
    assert_eq!(networks.len(), 4, "{networks:?}");
    assert_eq!(sim.calls()["identity.auth"], 1);
}

#[tokio::test]
async fn password_auth_by_names_works() {
    let sim = sim().await;
    lists_everything(&sim, &password_by_names(&sim)).await;
}

#[tokio::test]
async fn password_auth_by_ids_works() {
    let sim = sim().await;
    let auth_url = sim.auth_url();
    let yaml = cloud_yaml(
        &[
            ("auth_url", &auth_url),
            ("user_id", demo::USER_ID),
            ("password", "secret"),
            ("project_id", demo::PROJECT_ID),
        ],
        &[("region_name", "RegionOne")],
    );
    lists_everything(&sim, &yaml).await;
}

#[tokio::test]
async fn password_auth_by_names_with_domain_ids_works() {
    let sim = sim().await;
    let auth_url = sim.auth_url();
    let yaml = cloud_yaml(
        &[
            ("auth_url", &auth_url),
            ("username", "admin"),
            ("password", "secret"),
            ("user_domain_id", "default"),
            ("project_name", "demo"),
            ("project_domain_id", "default"),
        ],
        &[("region_name", "RegionOne")],
    );
    lists_everything(&sim, &yaml).await;
}

#[tokio::test]
async fn the_domain_name_fallback_and_an_auth_url_without_v3_work() {
    let sim = sim().await;
    let auth_url = format!("{}/identity", sim.base_url());
    let yaml = cloud_yaml(
        &[
            ("auth_url", &auth_url),
            ("username", "admin"),
            ("password", "secret"),
            ("domain_name", "Default"),
            ("project_name", "demo"),
        ],
        &[("region_name", "RegionOne"), ("interface", "internalURL")],
    );
    lists_everything(&sim, &yaml).await;
}

#[tokio::test]
async fn application_credentials_work() {
    let sim = sim().await;
    let auth_url = sim.auth_url();
    let yaml = cloud_yaml(
        &[
            ("auth_url", &auth_url),
            ("application_credential_id", "appcred-id"),
            ("application_credential_secret", "appcred-secret"),
        ],
        &[("auth_type", "v3applicationcredential"), ("region_name", "RegionOne")],
    );
    lists_everything(&sim, &yaml).await;
}

#[tokio::test]
async fn images_follow_paging_and_only_active_ones_come_back() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    let images = pcd.images(CLOUD).await.unwrap();
    let ids: BTreeSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([demo::IMAGE_UBUNTU_2404, demo::IMAGE_ROCKY_9, demo::IMAGE_DEBIAN_12, demo::IMAGE_WINDOWS_2022])
    );
    let windows = images.iter().find(|i| i.id == demo::IMAGE_WINDOWS_2022).unwrap();
    assert_eq!((windows.name.as_str(), windows.min_disk_gb), ("Windows Server 2022", 40));
    // The simulator serves at most 2 images a page.
    assert!(sim.calls()["image.list"] >= 2, "{:?}", sim.calls());
}

#[tokio::test]
async fn flavors_and_networks_are_mapped() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    let flavors = pcd.flavors(CLOUD).await.unwrap();
    let small = flavors.iter().find(|f| f.id == demo::FLAVOR_M1_SMALL).unwrap();
    assert_eq!((small.name.as_str(), small.vcpus, small.ram_mb, small.disk_gb), ("m1.small", 1, 2048, 20));
    let bfv = flavors.iter().find(|f| f.id == demo::FLAVOR_BFV_MEDIUM).unwrap();
    assert_eq!(bfv.disk_gb, 0);

    let networks = pcd.networks(CLOUD).await.unwrap();
    let by_id = |id: &str| networks.iter().find(|n| n.id == id).unwrap().clone();
    assert_eq!(
        (by_id(demo::NETWORK_SHARED_SERVICES).shared, by_id(demo::NETWORK_SHARED_SERVICES).external),
        (true, false)
    );
    assert_eq!((by_id(demo::NETWORK_PUBLIC).shared, by_id(demo::NETWORK_PUBLIC).external), (false, true));
    assert_eq!(by_id(demo::NETWORK_PROD).label, "prod-net");
}

#[tokio::test]
async fn nova_calls_carry_the_microversion() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.flavors(CLOUD).await.unwrap();
    // What Gatehouse reads of a flavor is all in 2.1: asked for without the version document.
    assert_eq!(sim.last_compute_microversion().as_deref(), Some("2.1"));
    assert!(!sim.calls().contains_key("compute.versions"), "{:?}", sim.calls());
    assert_eq!(NOVA_MICROVERSION, "2.52");
}

#[tokio::test]
async fn the_admin_and_other_region_endpoints_are_not_used() {
    // The simulator lists other-region and admin endpoints first and does not serve them: every
    // list succeeding shows they were skipped.
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.images(CLOUD).await.unwrap();
    pcd.flavors(CLOUD).await.unwrap();
    pcd.networks(CLOUD).await.unwrap();
    let calls = sim.calls();
    for key in ["image.list", "compute.flavors", "network.list"] {
        assert!(calls.get(key).is_some_and(|n| *n >= 1), "{key} not served: {calls:?}");
    }
}

#[tokio::test]
async fn a_cloud_with_another_region_fails_naming_the_cloud_and_the_service() {
    let sim = sim().await;
    let yaml = password_by_names(&sim).replace("region_name: \"RegionOne\"", "region_name: \"Atlantis\"");
    let pcd = pcd(&yaml);
    match pcd.images(CLOUD).await {
        Err(Error::Upstream { system, detail, .. }) => {
            assert_eq!(system, "PCD cloud \"pcd-east\" (image)");
            assert!(detail.contains("no public endpoint in region \"Atlantis\""), "{detail}");
        }
        other => panic!("expected Upstream, got {other:?}"),
    }
}

#[tokio::test]
async fn the_token_is_reused_and_renewed_once_after_it_is_refused() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    pcd.images(CLOUD).await.unwrap();
    pcd.flavors(CLOUD).await.unwrap();
    pcd.networks(CLOUD).await.unwrap();
    pcd.flavors(CLOUD).await.unwrap();
    assert_eq!(sim.calls()["identity.auth"], 1);

    sim.expire_tokens();
    assert_eq!(pcd.flavors(CLOUD).await.unwrap().len(), 5);
    assert_eq!(sim.calls()["identity.auth"], 2);
    pcd.networks(CLOUD).await.unwrap();
    assert_eq!(sim.calls()["identity.auth"], 2);
}

#[tokio::test]
async fn concurrent_calls_share_one_authentication() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    let (i, f, n) = tokio::join!(pcd.images(CLOUD), pcd.flavors(CLOUD), pcd.networks(CLOUD));
    i.unwrap();
    f.unwrap();
    n.unwrap();
    assert_eq!(sim.calls()["identity.auth"], 1);

    sim.expire_tokens();
    let (i, f, n) = tokio::join!(pcd.images(CLOUD), pcd.flavors(CLOUD), pcd.networks(CLOUD));
    i.unwrap();
    f.unwrap();
    n.unwrap();
    assert_eq!(sim.calls()["identity.auth"], 2);
}

#[tokio::test]
async fn clouds_come_from_clouds_yaml_without_calling_them() {
    let sim = sim().await;
    let yaml = format!(
        "{}  other:\n    display_name: \"Other (lab)\"\n    auth:\n      auth_url: \"http://127.0.0.1:9/v3\"\n      user_id: u\n      password: p\n      project_id: x\n",
        password_by_names(&sim)
    );
    let pcd = pcd(&yaml);
    let clouds = pcd.clouds();
    assert_eq!(clouds.len(), 2);
    assert_eq!(
        (clouds[0].name.as_str(), clouds[0].display_name.as_str(), clouds[0].region.as_deref()),
        (CLOUD, CLOUD, Some("RegionOne"))
    );
    assert_eq!(
        (clouds[1].name.as_str(), clouds[1].display_name.as_str(), clouds[1].region.as_deref()),
        ("other", "Other (lab)", None)
    );
    assert!(sim.calls().is_empty());
}

#[tokio::test]
async fn an_unknown_cloud_is_not_found() {
    let sim = sim().await;
    let pcd = pcd(&password_by_names(&sim));
    match pcd.images("nope").await {
        Err(Error::NotFound(what)) => assert_eq!(what, "cloud \"nope\""),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_is_renewed_a_minute_before_it_expires() {
    let config = pcd_sim::SimConfig { token_ttl: std::time::Duration::from_millis(60_400), ..Default::default() };
    let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let pcd = pcd(&password_by_names(&sim));
    pcd.flavors(CLOUD).await.unwrap();
    pcd.flavors(CLOUD).await.unwrap();
    assert_eq!(sim.calls()["identity.auth"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    pcd.flavors(CLOUD).await.unwrap();
    assert_eq!(sim.calls()["identity.auth"], 2);
    assert_eq!(sim.calls()["compute.flavors"], 3, "renewed before use, not after a 401");
}
