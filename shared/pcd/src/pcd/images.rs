//! Glance (image): the active images, paged from both ends at once.
//!
//! Glance v2 pages by `marker` (the id of the last image seen), so each page's address is known
//! only from the one before and a big catalog costs one round trip per page, in sequence. Paging
//! one total order from both ends at once — oldest first and newest first, each by marker — and
//! stopping where the two meet takes about half as many sequential round trips.

use std::collections::HashSet;

use domain::Error;
use domain::catalog::Image;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;

use super::{CloudClient, MAX_PAGES};
use crate::endpoint::{self, Endpoint, Service};

/// Glance's page size Gatehouse asks for: its default `api_limit_max`, the largest page a Glance
/// gives unless its operator changed it (a larger `limit` is trimmed to it, not refused), so a big
/// catalog takes as few of the sequential marker-paged round trips as the cloud allows
/// (https://docs.openstack.org/glance/latest/configuration/glance_api.html#DEFAULT.api_limit_max,
/// glance/common/config.py).
const IMAGE_PAGE: &str = "1000";

/// The order both ends page through: `created_at`, then `id`, which makes it total (ids are
/// unique), so the newest-first order is exactly the oldest-first one reversed and a marker has
/// one place in both. Glance takes repeated `sort_key`/`sort_dir` pairs, paired in order
/// (https://docs.openstack.org/api-ref/image/v2/index.html#list-images,
/// https://specs.openstack.org/openstack/glance-specs/specs/api/v2/lists-image-api-v2.html
/// "Sorting"). Its `next` link keeps only one value of a repeated parameter
/// (glance/api/v2/images.py, `ResponseSerializer.index` builds it from a dict of the query), one
/// more reason to follow our own URL with `marker=`.
const SORT_KEYS: [&str; 2] = ["created_at", "id"];

/// Which end of the order a stream of pages starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Oldest,
    Newest,
}

impl End {
    fn sort_dir(self) -> &'static str {
        match self {
            End::Oldest => "asc",
            End::Newest => "desc",
        }
    }
}

/// What one end has listed so far.
#[derive(Default)]
struct Side {
    /// Every id this end was shown, whatever its status.
    seen: HashSet<String>,
    /// The active images this end collected (none the other end collected first), in its order.
    images: Vec<Image>,
    /// The last id of its last page: where its next page starts.
    marker: Option<String>,
}

impl Side {
    /// Takes one page in; true when it shows an image the `other` end was already shown: the two
    /// ends have met, so between them they have listed everything.
    fn take(&mut self, page: Vec<GlanceImage>, other: &Side) -> bool {
        let mut met = false;
        for image in page {
            if other.seen.contains(&image.id) {
                met = true;
                continue;
            }
            if !self.seen.insert(image.id.clone()) || image.status != "active" {
                continue;
            }
            let GlanceImage { id, name, min_disk, min_ram, .. } = image;
            self.images.push(Image::new(id, name.unwrap_or_default(), min_disk.unwrap_or(0), min_ram.unwrap_or(0)));
        }
        met
    }
}

impl CloudClient {
    /// The active images. Both ends' first pages go out together, so a catalog that fits one
    /// page still costs one round trip (the other answer, if it came, is not needed). Each end
    /// then asks for its next page as soon as its last one answered, on our own URL with
    /// `marker=` (never the `next` link's host), until a page shows an image the other end has,
    /// or an end has no `next` page (it listed everything from its end on), or [`MAX_PAGES`]
    /// pages (both ends counted) were asked for. The first failing page fails the listing.
    pub(super) async fn images(&self) -> Result<Vec<Image>, Error> {
        let (mut oldest, mut newest) = (Side::default(), Side::default());
        let mut in_flight = FuturesUnordered::new();
        in_flight.push(self.image_page(End::Oldest, None));
        in_flight.push(self.image_page(End::Newest, None));
        let mut asked = 2;
        while let Some((end, page)) = in_flight.next().await {
            let page = page?;
            let (this, other) = match end {
                End::Oldest => (&mut oldest, &newest),
                End::Newest => (&mut newest, &oldest),
            };
            let last = page.images.last().map(|i| i.id.clone());
            let has_next = page.next.as_deref().is_some_and(|n| !n.is_empty());
            let met = this.take(page.images, other);
            // A page that ends where the one before did would be asked for forever.
            let moved = last.is_some() && last != this.marker;
            if met || !has_next || !moved {
                break;
            }
            this.marker = last;
            if asked < MAX_PAGES {
                asked += 1;
                in_flight.push(self.image_page(end, this.marker.clone()));
            }
        }
        // Dropping what is still in flight cancels it.
        drop(in_flight);
        let mut images = oldest.images;
        images.extend(newest.images.into_iter().rev());
        Ok(images)
    }

    /// One page of active images from `end`, after `marker`.
    async fn image_page(&self, end: End, marker: Option<String>) -> (End, Result<GlancePage, Error>) {
        let url = |e: &Endpoint| {
            let mut u = endpoint::join(&e.api, &["images"]);
            {
                let mut q = u.query_pairs_mut();
                q.append_pair("status", "active").append_pair("limit", IMAGE_PAGE);
                for key in SORT_KEYS {
                    q.append_pair("sort_key", key).append_pair("sort_dir", end.sort_dir());
                }
                if let Some(m) = &marker {
                    q.append_pair("marker", m);
                }
            }
            u
        };
        (end, self.get_json(Service::Image, url).await)
    }
}

#[derive(Deserialize)]
struct GlancePage {
    #[serde(default)]
    images: Vec<GlanceImage>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct GlanceImage {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    min_disk: Option<u64>,
    #[serde(default)]
    min_ram: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ids: &[&str]) -> Vec<GlanceImage> {
        ids.iter()
            .map(|id| GlanceImage {
                id: id.to_string(),
                name: Some(format!("image {id}")),
                status: if id.starts_with('x') { "queued".into() } else { "active".into() },
                min_disk: None,
                min_ram: None,
            })
            .collect()
    }

    fn ids(side: &Side) -> Vec<&str> {
        side.images.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn the_ends_meet_on_a_shared_id_and_keep_it_once() {
        let (mut oldest, mut newest) = (Side::default(), Side::default());
        assert!(!oldest.take(page(&["a", "b", "c"]), &newest));
        assert!(!newest.take(page(&["g", "f", "e"]), &oldest));
        assert!(oldest.take(page(&["d", "e", "f"]), &newest));
        assert_eq!(ids(&oldest), ["a", "b", "c", "d"]);
        assert_eq!(ids(&newest), ["g", "f", "e"]);
    }

    #[test]
    fn images_that_are_not_active_are_seen_but_not_kept() {
        let (mut oldest, newest) = (Side::default(), Side::default());
        assert!(!oldest.take(page(&["a", "x1", "b", "a"]), &newest));
        assert_eq!(ids(&oldest), ["a", "b"]);
        assert!(oldest.seen.contains("x1"));
    }
}
