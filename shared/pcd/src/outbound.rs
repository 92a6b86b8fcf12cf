//! The outbound rules of every PCD call (DESIGN.md, "Trust and identity", Outbound): https except
//! to a loopback host, and never a redirect followed (the calls carry the Keystone token or the
//! credentials of clouds.yaml).

use url::Url;

pub use domain::outbound::{HTTPS_RULE, scheme_allowed};

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

    #[test]
    fn only_the_origin_of_a_location_is_kept() {
        let base = Url::parse("http://127.0.0.1:5000/compute/v2.1").unwrap();
        assert_eq!(origin_of(Some("http://127.0.0.2:81/x?token=secret"), &base), "http://127.0.0.2:81");
        assert_eq!(origin_of(Some("/elsewhere?token=secret"), &base), "http://127.0.0.1:5000");
        assert_eq!(origin_of(None, &base), "no usable Location");
    }
}
