//! Keystone's service catalog and the URLs Gatehouse builds from it.

use serde::Deserialize;
use url::Url;

use crate::clouds::Interface;

/// The OpenStack services Gatehouse talks to; the name is also the catalog's service `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Identity,
    Compute,
    Image,
    Network,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Compute => "compute",
            Service::Image => "image",
            Service::Network => "network",
        }
    }
}

/// One entry of `token.catalog`.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogService {
    #[serde(rename = "type", default)]
    pub service_type: String,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CatalogEndpoint {
    #[serde(default)]
    pub interface: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_id: Option<String>,
    pub url: String,
}

/// Where a service lives: `api` is the versioned base the calls go to, `root` the unversioned one
/// that Glance's relative `next` links start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub root: Url,
    pub api: Url,
}

/// Picks the catalog URL of `service` for `interface` and `region` (matched against `region_id` or
/// `region`); with no region configured the first match wins.
pub fn select<'a>(
    catalog: &'a [CatalogService],
    service: Service,
    interface: Interface,
    region: Option<&str>,
) -> Option<&'a str> {
    catalog
        .iter()
        .filter(|s| s.service_type == service.as_str())
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| Interface::parse(&e.interface) == Some(interface))
        .find(|e| match region {
            None => true,
            Some(r) => e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r),
        })
        .map(|e| e.url.as_str())
}

/// `v2`, `v2.0`, `v2.1`: a path segment that names an API version.
fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v').or_else(|| segment.strip_prefix('V')) else {
        return false;
    };
    let mut parts = rest.splitn(2, '.');
    let major = parts.next().unwrap_or("");
    let minor = parts.next();
    !major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.is_none_or(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
}

fn segments(url: &Url) -> Vec<String> {
    url.path_segments().map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

fn with_segments(url: &Url, segments: &[String]) -> Url {
    let mut out = url.clone();
    out.set_query(None);
    out.set_fragment(None);
    out.set_path("");
    if let Ok(mut path) = out.path_segments_mut() {
        path.clear().extend(segments);
    }
    out
}

/// Parses a catalog URL and turns it into the endpoint Gatehouse calls:
///
/// - image (Glance): `…/v2` appended unless the URL already ends in a version, which is then
///   replaced by `v2`; the root is the URL without it;
/// - network (Neutron): likewise with `v2.0`;
/// - compute (Nova): used as published when any path segment is a version (`…/v2.1/<project>`),
///   else `/v2.1` is appended;
/// - identity: `/v3` appended unless the URL ends in `/v3` (a trailing `/v2.0` is replaced).
pub fn normalise(service: Service, published: &str) -> Result<Endpoint, url::ParseError> {
    let url = Url::parse(published.trim())?;
    if url.cannot_be_a_base() {
        return Err(url::ParseError::RelativeUrlWithCannotBeABaseBase);
    }
    let mut segs = segments(&url);
    let endpoint = match service {
        Service::Compute => {
            let root = with_segments(&url, &segs);
            if !segs.iter().any(|s| is_version(s)) {
                segs.push("v2.1".into());
            }
            Endpoint { api: with_segments(&url, &segs), root }
        }
        Service::Image | Service::Network | Service::Identity => {
            let version = match service {
                Service::Image => "v2",
                Service::Network => "v2.0",
                _ => "v3",
            };
            if segs.last().is_some_and(|s| is_version(s)) {
                segs.pop();
            }
            let root = with_segments(&url, &segs);
            segs.push(version.into());
            Endpoint { api: with_segments(&url, &segs), root }
        }
    };
    Ok(endpoint)
}

/// Where the compute version document is: the API URL up to its version segment, with a trailing
/// slash (`…/nova/v2.1/<project>` → `…/nova/v2.1/`), which Nova serves without a token; a URL
/// without a version segment is taken whole.
pub fn version_root(api: &Url) -> Url {
    let mut segs = segments(api);
    if let Some(at) = segs.iter().rposition(|s| is_version(s)) {
        segs.truncate(at + 1);
    }
    segs.push(String::new());
    with_segments(api, &segs)
}

/// `base` with `extra` path segments appended (each escaped as one segment).
pub fn join(base: &Url, extra: &[&str]) -> Url {
    let mut out = base.clone();
    if let Ok(mut path) = out.path_segments_mut() {
        path.pop_if_empty().extend(extra);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(service: Service, url: &str) -> String {
        normalise(service, url).unwrap().api.to_string()
    }

    #[test]
    fn glance_gets_v2_unless_it_has_it() {
        assert_eq!(api(Service::Image, "https://pcd.example.com/glance"), "https://pcd.example.com/glance/v2");
        assert_eq!(api(Service::Image, "https://pcd.example.com/glance/"), "https://pcd.example.com/glance/v2");
        assert_eq!(api(Service::Image, "http://10.0.0.1:9292"), "http://10.0.0.1:9292/v2");
        assert_eq!(api(Service::Image, "http://10.0.0.1:9292/v2/"), "http://10.0.0.1:9292/v2");
        let e = normalise(Service::Image, "https://pcd.example.com/glance/v2").unwrap();
        assert_eq!(e.root.as_str(), "https://pcd.example.com/glance");
    }

    #[test]
    fn neutron_gets_v2_0_unless_it_has_it() {
        assert_eq!(api(Service::Network, "https://pcd.example.com/neutron"), "https://pcd.example.com/neutron/v2.0");
        assert_eq!(api(Service::Network, "http://10.0.0.1:9696/"), "http://10.0.0.1:9696/v2.0");
        assert_eq!(api(Service::Network, "http://10.0.0.1:9696/v2.0"), "http://10.0.0.1:9696/v2.0");
    }

    #[test]
    fn nova_is_used_as_published_when_versioned() {
        assert_eq!(
            api(Service::Compute, "https://pcd.example.com/nova/v2.1/9a1b7c3e"),
            "https://pcd.example.com/nova/v2.1/9a1b7c3e"
        );
        assert_eq!(api(Service::Compute, "https://pcd.example.com/nova/v2.1/"), "https://pcd.example.com/nova/v2.1");
        assert_eq!(api(Service::Compute, "http://10.0.0.1:8774"), "http://10.0.0.1:8774/v2.1");
        assert_eq!(api(Service::Compute, "http://10.0.0.1:8774/v2/abc"), "http://10.0.0.1:8774/v2/abc");
    }

    #[test]
    fn keystone_gets_v3() {
        assert_eq!(api(Service::Identity, "https://pcd.example.com/keystone"), "https://pcd.example.com/keystone/v3");
        assert_eq!(
            api(Service::Identity, "https://pcd.example.com/keystone/v3/"),
            "https://pcd.example.com/keystone/v3"
        );
        assert_eq!(api(Service::Identity, "http://k:5000/v2.0"), "http://k:5000/v3");
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(normalise(Service::Image, "not a url").is_err());
        assert!(normalise(Service::Image, "mailto:x@y").is_err());
    }

    #[test]
    fn versions_are_recognised() {
        for v in ["v2", "v2.0", "v2.1", "v3", "V1"] {
            assert!(is_version(v), "{v}");
        }
        for v in ["v", "v2.", "version", "2.1", "v2.x", "glance"] {
            assert!(!is_version(v), "{v}");
        }
    }

    #[test]
    fn the_version_document_is_at_the_version_segment() {
        let root = |u: &str| version_root(&Url::parse(u).unwrap()).to_string();
        assert_eq!(root("https://pcd.example.com/nova/v2.1/9a1b7c3e"), "https://pcd.example.com/nova/v2.1/");
        assert_eq!(root("http://10.0.0.1:8774/v2.1"), "http://10.0.0.1:8774/v2.1/");
        assert_eq!(root("http://10.0.0.1:8774/v2/abc"), "http://10.0.0.1:8774/v2/");
        assert_eq!(root("http://10.0.0.1:8774/compute"), "http://10.0.0.1:8774/compute/");
    }

    #[test]
    fn joined_segments_are_escaped() {
        let base = Url::parse("https://n/nova/v2.1/p").unwrap();
        assert_eq!(join(&base, &["servers", "a/b c"]).as_str(), "https://n/nova/v2.1/p/servers/a%2Fb%20c");
    }

    fn catalog() -> Vec<CatalogService> {
        serde_json::from_value(serde_json::json!([
            {"type": "compute", "endpoints": [
                {"interface": "admin", "region_id": "RegionOne", "region": "RegionOne", "url": "http://admin/nova"},
                {"interface": "public", "region_id": "RegionTwo", "region": "RegionTwo", "url": "http://two/nova"},
                {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "http://one/nova"}
            ]},
            {"type": "image", "endpoints": [
                {"interface": "internal", "region_id": "RegionOne", "url": "http://internal/glance"}
            ]}
        ]))
        .unwrap()
    }

    #[test]
    fn endpoints_are_selected_by_type_interface_and_region() {
        let c = catalog();
        assert_eq!(select(&c, Service::Compute, Interface::Public, Some("RegionOne")), Some("http://one/nova"));
        assert_eq!(select(&c, Service::Compute, Interface::Public, None), Some("http://two/nova"));
        assert_eq!(select(&c, Service::Compute, Interface::Admin, None), Some("http://admin/nova"));
        assert_eq!(select(&c, Service::Compute, Interface::Public, Some("Nowhere")), None);
        assert_eq!(select(&c, Service::Image, Interface::Public, None), None);
        assert_eq!(select(&c, Service::Image, Interface::Internal, Some("RegionOne")), Some("http://internal/glance"));
        assert_eq!(select(&c, Service::Network, Interface::Public, None), None);
    }
}
