//! The outbound rule every client follows (DESIGN.md, "Trust and identity", Outbound): upstream
//! URLs are https, except to a loopback host (the simulators, a tunnel on this machine). One
//! definition for the PCD, ServiceNow, GitLab and OpenID clients.

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

/// https to a host anywhere; http only to a loopback host.
pub fn scheme_allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(url),
        _ => false,
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
}
