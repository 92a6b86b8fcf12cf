//! Nova microversions: which one Gatehouse sends to a cloud, negotiated from the compute version
//! document (`min_version`, `version`) as openstacksdk does (per resource: the highest the call
//! needs that the cloud offers), so an older Nova never answers 406 ("Version 2.x is not
//! supported by the API", https://docs.openstack.org/api-guide/compute/microversions.html).
//!
//! Everything Gatehouse reads from Nova (flavors, servers, limits) is there in 2.1, so reads and
//! deletes ask for 2.1 ([`Ask::Base`]), which every Nova takes, and need no version document: the
//! catalog's cold path stays one Keystone call plus one parallel round. Server create asks for the
//! highest microversion whose behaviour Gatehouse uses ([`WANTED`]) or the cloud's maximum if that
//! is lower ([`Ask::Negotiated`]), read from the version document once per token. What changes
//! above 2.1 that Gatehouse sends or reads, and what it does below (Nova's "REST API Version
//! History", https://docs.openstack.org/nova/latest/reference/api-microversion-history.html):
//!
//! | from | change | below it |
//! |------|--------|----------|
//! | 2.19 | server `description` on create | not sent; the metadata carries the request id and the RITM |
//! | 2.36, 2.39, 2.57 | `GET /limits` drops the network, image-metadata and personality limits | nothing: only instances, cores and RAM are read, present in every version |
//! | 2.37 | `networks` required on create (`auto`, `none`) | nothing: Gatehouse always names one network, valid in every version |
//! | 2.47 | a server's `flavor` embedded instead of a link | nothing: a server's flavor is never read |
//! | 2.52 | `tags` on create | not sent; Gatehouse finds its servers by metadata, not tags |
//! | 2.55 | flavor `description` | nothing: flavor labels come from vCPUs, RAM and disk |
//! | 2.69 | lists may hold partial records of servers in down cells | nothing: reads are 2.1, and names are compared client-side |
//!
//! Boot from volume uses only `block_device_mapping_v2` fields of 2.1 (`boot_index`, `uuid`,
//! `source_type`, `destination_type`, `volume_size`, `delete_on_termination`). Gatehouse used to
//! send 2.79 with every call; nothing between 2.52 and 2.79 is used, so the highest it needs is
//! 2.52.

use serde::Deserialize;
use serde_json::Value;

/// A compute API microversion, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    pub major: u32,
    pub minor: u32,
}

impl Microversion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Microversion { major, minor }
    }

    /// `2.79` → 2.79; anything else (`""`, `latest`, `2`, `v2.1`) is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.trim().split_once('.')?;
        let digits = |p: &str| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Microversion { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The base of Nova's v2.1 API: its behaviour when no microversion is asked for.
pub const BASE: Microversion = Microversion::new(2, 1);
/// Server `description` on create.
pub const SERVER_DESCRIPTION: Microversion = Microversion::new(2, 19);
/// Server `tags` on create.
pub const SERVER_TAGS_ON_CREATE: Microversion = Microversion::new(2, 52);
/// The highest microversion whose behaviour Gatehouse uses.
pub const WANTED: Microversion = SERVER_TAGS_ON_CREATE;

/// What a compute call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// 2.1, sent without reading the version document: what reads and deletes need.
    Base,
    /// The highest Gatehouse needs that the cloud offers, from the version document.
    Negotiated,
}

/// What one cloud was found to speak, kept with its Keystone token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The microversion sent with every compute call; `None` sends none (a Nova without
    /// microversions, or an unreadable version document), which Nova answers as 2.1.
    pub version: Option<Microversion>,
}

impl Negotiated {
    /// 2.1 behaviour, no header.
    pub const BASE: Negotiated = Negotiated { version: None };

    /// From the version document's `min_version` and `version` (the maximum).
    pub fn from_range(min: Option<Microversion>, max: Option<Microversion>) -> Negotiated {
        let Some(max) = max else { return Negotiated::BASE };
        let min = min.unwrap_or(BASE);
        let version = if max < min {
            // A document that contradicts itself: ask for nothing, as a Nova without microversions.
            return Negotiated::BASE;
        } else if WANTED > max {
            max
        } else if WANTED < min {
            // A Nova that no longer speaks what Gatehouse was written for: its oldest is the
            // closest there is.
            tracing::warn!(%min, wanted = %WANTED, "the cloud's compute API starts above what Gatehouse asks for; sending its minimum");
            min
        } else {
            WANTED
        };
        Negotiated { version: Some(version) }
    }

    /// From a compute version document: `{"version": {...}}` (`GET /v2.1/`) or `{"versions":
    /// [...]}` (`GET /`, where the `v2.1` entry counts). `None` when there is neither.
    pub fn from_document(doc: &Value) -> Option<Negotiated> {
        let entry: VersionEntry = if let Some(one) = doc.get("version") {
            serde_json::from_value(one.clone()).ok()?
        } else {
            let all: Vec<VersionEntry> = serde_json::from_value(doc.get("versions")?.clone()).ok()?;
            all.into_iter().find(|v| v.id == "v2.1")?
        };
        Some(Negotiated::from_range(Microversion::parse(&entry.min_version), Microversion::parse(&entry.version)))
    }

    /// Whether a feature of microversion `from` may be used.
    pub fn supports(&self, from: Microversion) -> bool {
        self.version.unwrap_or(BASE) >= from
    }
}

#[derive(Deserialize)]
struct VersionEntry {
    #[serde(default)]
    id: String,
    #[serde(default)]
    min_version: String,
    #[serde(default)]
    version: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> Option<Microversion> {
        Microversion::parse(s)
    }

    #[test]
    fn microversions_parse_and_order_numerically() {
        assert_eq!(v("2.79"), Some(Microversion::new(2, 79)));
        assert!(v("2.100") > v("2.99"));
        for bad in ["", "latest", "2", "v2.1", "2.x", "2.", ".1", "2.1.1"] {
            assert_eq!(v(bad), None, "{bad}");
        }
        assert_eq!(Microversion::new(2, 52).to_string(), "2.52");
        assert_eq!(crate::NOVA_MICROVERSION, WANTED.to_string());
    }

    #[test]
    fn the_highest_wanted_that_the_cloud_offers_is_chosen() {
        let chosen = |min: &str, max: &str| Negotiated::from_range(v(min), v(max)).version.map(|m| m.to_string());
        assert_eq!(chosen("2.1", "2.104").as_deref(), Some("2.52"));
        assert_eq!(chosen("2.1", "2.52").as_deref(), Some("2.52"));
        assert_eq!(chosen("2.1", "2.38").as_deref(), Some("2.38"));
        assert_eq!(chosen("2.1", "2.1").as_deref(), Some("2.1"));
        assert_eq!(chosen("2.60", "2.104").as_deref(), Some("2.60"));
        assert_eq!(chosen("", ""), None, "no microversions: nothing sent");
        assert_eq!(chosen("2.5", "2.1"), None, "a contradictory document");
    }

    #[test]
    fn features_follow_the_negotiated_version() {
        let at = |max: &str| Negotiated::from_range(v("2.1"), v(max));
        assert!(!at("2.1").supports(SERVER_DESCRIPTION));
        assert!(at("2.19").supports(SERVER_DESCRIPTION) && !at("2.19").supports(SERVER_TAGS_ON_CREATE));
        assert!(at("2.104").supports(SERVER_TAGS_ON_CREATE));
        assert!(!Negotiated::BASE.supports(SERVER_DESCRIPTION));
        assert!(Negotiated::BASE.supports(BASE));
    }

    #[test]
    fn both_shapes_of_the_version_document_are_read() {
        let one = json!({"version": {"id": "v2.1", "status": "CURRENT", "version": "2.38", "min_version": "2.1"}});
        assert_eq!(Negotiated::from_document(&one).unwrap().version, v("2.38"));
        let list = json!({"versions": [
            {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": ""},
            {"id": "v2.1", "status": "CURRENT", "version": "2.104", "min_version": "2.1"}
        ]});
        assert_eq!(Negotiated::from_document(&list).unwrap().version, Some(WANTED));
        let legacy = json!({"version": {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": ""}});
        assert_eq!(Negotiated::from_document(&legacy), Some(Negotiated::BASE));
        assert_eq!(Negotiated::from_document(&json!({"error": "nope"})), None);
    }

    #[test]
    fn the_published_version_documents_give_what_gatehouse_wants() {
        for text in [
            include_str!("../../../sim/samples/openstack-api-samples/nova-version-v2.1-response.json"),
            include_str!("../../../sim/samples/openstack-api-samples/nova-versions-list-response.json"),
        ] {
            let doc: Value = serde_json::from_str(text).unwrap();
            assert_eq!(Negotiated::from_document(&doc).unwrap().version, Some(WANTED));
        }
    }
}
