//! The outbound rules of every PCD call (DESIGN.md, "Trust and identity", Outbound): https except
//! to a loopback host, and never a redirect followed (the calls carry the Keystone token or the
//! credentials of clouds.yaml).

use url::{Host, Url};

/// What the rule allows, for messages.
pub const HTTPS_RULE: &str = "must be https (plain http only to a loopback host: 127.0.0.0/8, ::1 or localhost)";

/// Whether `url` names a loopback host: 127.0.0.0/8, `::1` or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// https anywhere; http only to a loopback host (the simulators, a tunnel on this machine).
pub fn scheme_allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

/// `scheme://host:port` of a `Location`, for the log: never its path or query, which may carry
/// anything.
pub fn origin_of(location: Option<&str>, base: &Url) -> String {
    match location.and_then(|l| base.join(l).ok()) {
        Some(u) => u.origin().ascii_serialization(),
        None => "no usable Location".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str) -> bool {
        scheme_allowed(&Url::parse(url).unwrap())
    }

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in [
            "https://pcd.example.com/keystone/v3",
            "https://10.0.0.1:5000",
            "http://127.0.0.1:5000/v3",
            "http://127.1.2.3/v3",
            "http://[::1]:9292",
            "http://localhost:8774",
            "http://LOCALHOST./x",
        ] {
            assert!(allowed(ok), "{ok}");
        }
        for bad in [
            "http://pcd.example.com/keystone/v3",
            "http://10.0.0.1:5000",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "ftp://127.0.0.1",
        ] {
            assert!(!allowed(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_origin_of_a_location_is_kept() {
        let base = Url::parse("http://127.0.0.1:5000/compute/v2.1").unwrap();
        assert_eq!(origin_of(Some("http://127.0.0.2:81/x?token=secret"), &base), "http://127.0.0.2:81");
        assert_eq!(origin_of(Some("/elsewhere?token=secret"), &base), "http://127.0.0.1:5000");
        assert_eq!(origin_of(None, &base), "no usable Location");
    }
}
