//! Listing images from both ends of Glance's order at once, against the PCD simulator: every
//! active image once, in about half the sequential round trips of paging from one end.

mod common;

use common::{CLOUD, password_by_names, pcd};
use domain::Error;
use gatehouse_pcd::Cloud;
use pcd_sim::{Faults, PcdSim, SimConfig, SimImage};

/// `count` images, every tenth of them deactivated.
fn catalog(count: usize) -> Vec<SimImage> {
    (0..count)
        .map(|i| SimImage {
            id: format!("1a9e2000-0000-4000-8000-{i:012}"),
            name: format!("image-{i:05}"),
            status: if i % 10 == 9 { "deactivated".into() } else { "active".into() },
            min_disk: 0,
            min_ram: 0,
        })
        .collect()
}

fn active_ids(images: &[SimImage]) -> Vec<String> {
    let mut ids: Vec<String> = images.iter().filter(|i| i.status == "active").map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

async fn start(images: Vec<SimImage>, page_size: usize) -> PcdSim {
    let config = SimConfig { images, image_page_size: page_size, ..SimConfig::default() };
    let sim = PcdSim::start("127.0.0.1:0".parse().unwrap(), config).await.expect("pcd-sim starts");
    // The same time for every call keeps the two ends in step, as on a real network.
    sim.set_faults(Faults { latency_ms: 3, ..Default::default() });
    sim
}

async fn listed_ids(sim: &PcdSim) -> Result<Vec<String>, Error> {
    let images = pcd(&password_by_names(sim)).images(CLOUD).await?;
    let mut ids: Vec<String> = images.into_iter().map(|i| i.id).collect();
    ids.sort();
    Ok(ids)
}

fn value<'a>(query: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
}

/// One image list call's query, as (name, value) pairs.
type ListQuery = Vec<(String, String)>;

/// The image list calls made from each end: (oldest first, newest first).
fn calls_by_end(sim: &PcdSim) -> (Vec<ListQuery>, Vec<ListQuery>) {
    sim.image_list_queries().into_iter().partition(|q| value(q, "sort_dir").first() == Some(&"asc"))
}

#[tokio::test]
async fn a_big_catalog_is_listed_once_from_both_ends_in_about_half_the_rounds() {
    let images = catalog(2_500);
    let sim = start(images.clone(), 100).await;

    let ids = listed_ids(&sim).await.expect("images");
    assert_eq!(ids, active_ids(&images), "every active image exactly once");

    let (oldest, newest) = calls_by_end(&sim);
    for query in oldest.iter().chain(&newest) {
        assert_eq!(value(query, "status"), ["active"], "{query:?}");
        assert_eq!(value(query, "limit"), ["1000"], "{query:?}");
        assert_eq!(value(query, "sort_key"), ["created_at", "id"], "{query:?}");
        let dir = value(query, "sort_dir");
        assert!(dir == ["asc", "asc"] || dir == ["desc", "desc"], "{query:?}");
    }
    // Each end follows its own markers, one page after the other: the longer chain is the
    // number of sequential round trips.
    let one_end_pages = ids.len().div_ceil(100);
    let rounds = oldest.len().max(newest.len());
    assert!(!oldest.is_empty() && !newest.is_empty(), "both ends paged");
    assert!(
        rounds <= one_end_pages.div_ceil(2) + 1,
        "{rounds} rounds ({} oldest-first pages, {} newest-first) for what one end takes {one_end_pages}",
        oldest.len(),
        newest.len()
    );
    assert_eq!(sim.calls()["identity.auth"], 1);
}

#[tokio::test]
async fn a_catalog_that_fits_one_page_takes_one_round() {
    let images = catalog(40);
    let sim = start(images.clone(), 1000).await;
    assert_eq!(listed_ids(&sim).await.expect("images"), active_ids(&images));
    let queries = sim.image_list_queries();
    assert!((1..=2).contains(&queries.len()), "{queries:?}");
    assert!(queries.iter().all(|q| value(q, "marker").is_empty()), "only first pages: {queries:?}");
}

// With 28 images or fewer the simulator's `created_at` puts the oldest last (see
// `SimConfig::images`), so oldest first is the catalog reversed: with pages of 4, the first
// oldest-first page is images 27..=24 and image 24 is the marker of the next.

#[tokio::test]
async fn an_image_deleted_after_it_was_listed_mid_page_leaves_a_complete_list() {
    let images = catalog(28);
    let sim = start(images.clone(), 4).await;
    let deleted = images[26].id.clone();
    sim.set_faults(Faults { latency_ms: 3, delete_after_listing: vec![deleted.clone()], ..Default::default() });

    let ids = listed_ids(&sim).await.expect("images");
    assert_eq!(ids, active_ids(&images), "listed before it was deleted, so kept; the rest once");
    assert!(ids.contains(&deleted));
    let (oldest, _) = calls_by_end(&sim);
    assert_eq!(value(&oldest[1], "marker"), [images[24].id.as_str()], "the page boundary is as described");
}

#[tokio::test]
async fn an_image_deleted_while_it_is_the_next_marker_fails_the_listing_clearly() {
    let images = catalog(28);
    let sim = start(images.clone(), 4).await;
    let marker = images[24].id.clone();
    sim.set_faults(Faults { latency_ms: 3, delete_after_listing: vec![marker.clone()], ..Default::default() });

    // Glance refuses a marker it cannot find (400); the listing fails rather than coming back
    // short of images.
    match listed_ids(&sim).await {
        Err(Error::Upstream { system, detail, .. }) => {
            assert_eq!(system, "PCD cloud \"pcd-east\" (image)");
            assert_eq!(detail, "answered HTTP 400");
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    let (oldest, _) = calls_by_end(&sim);
    assert_eq!(value(&oldest[1], "marker"), [marker.as_str()]);
}
