use super::*;
use crate::claims::{Selected, select_key};
use crate::token::form_encode;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn https_anywhere_http_only_on_loopback() {
    for ok in [
        "https://login.example.com",
        "http://127.0.0.1:9000",
        "http://127.5.0.1",
        "http://[::1]:80",
        "http://localhost:1",
    ] {
        assert!(scheme_allowed(&url(ok)), "{ok}");
    }
    for bad in ["http://login.example.com", "http://10.0.0.1", "ftp://localhost", "http://localhost.example.com"] {
        assert!(!scheme_allowed(&url(bad)), "{bad}");
    }
}

#[test]
fn the_issuer_must_be_https_except_on_loopback() {
    let secret = || Secret::new("s3cret");
    let t = Duration::from_secs(5);
    for bad in
        ["http://login.example.com", "not a url", "https://login.example.com/?x=1", "https://login.example.com/#f"]
    {
        let err = OidcClient::new(bad, "gatehouse", secret(), t).unwrap_err();
        assert!(err.to_string().contains("GATEHOUSE_OIDC_ISSUER"), "{err}");
    }
    for ok in ["https://login.example.com", "https://login.example.com/realms/x/", "http://127.0.0.1:8080"] {
        OidcClient::new(ok, "gatehouse", secret(), t).unwrap();
    }
    let c = OidcClient::new("https://login.example.com/tenant/", "gatehouse", secret(), t).unwrap();
    assert_eq!(c.issuer(), "https://login.example.com/tenant/");
    assert_eq!(c.discovery_url.as_str(), "https://login.example.com/tenant/.well-known/openid-configuration");
    assert!(OidcClient::new("https://login.example.com", " ", secret(), t).is_err());
    assert!(OidcClient::new("https://login.example.com", "x", Secret::new(""), t).is_err());
    assert!(OidcClient::new("https://login.example.com", "x", secret(), Duration::ZERO).is_err());
}

#[test]
fn debug_hides_the_secret() {
    let c = OidcClient::new(
        "https://login.example.com",
        "gatehouse",
        Secret::new("hunter2-secret"),
        Duration::from_secs(5),
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("gatehouse") && shown.contains("***"), "{shown}");
}

#[test]
fn client_credentials_are_form_urlencoded() {
    assert_eq!(form_encode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
    assert_eq!(form_encode("plain-id_1.x"), "plain-id_1.x");
}

#[test]
fn keys_are_chosen_by_kid_and_must_fit_the_alg() {
    let ec: Jwk = serde_json::from_value(serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    }))
    .unwrap();
    let enc: Jwk = serde_json::from_value(serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    }))
    .unwrap();
    let oct: Jwk = serde_json::from_value(serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})).unwrap();
    let keys = vec![ec.clone(), enc, oct];
    assert!(matches!(select_key(&keys, Some("ec1"), Algorithm::ES256), Selected::Key(k) if *k == ec));
    assert!(matches!(select_key(&keys, Some("ec1"), Algorithm::ES384), Selected::Refused(_)));
    assert!(matches!(select_key(&keys, Some("ec1"), Algorithm::RS256), Selected::Refused(_)));
    assert!(matches!(select_key(&keys, Some("enc"), Algorithm::ES256), Selected::Refused(_)));
    assert!(matches!(select_key(&keys, Some("hmac"), Algorithm::ES256), Selected::Refused(_)));
    assert!(matches!(select_key(&keys, Some("nope"), Algorithm::ES256), Selected::Missing));
    // Without a kid: the only key that fits.
    assert!(matches!(select_key(&keys, None, Algorithm::ES256), Selected::Key(k) if *k == ec));
    assert!(matches!(select_key(&keys, None, Algorithm::RS256), Selected::Missing));
}

#[test]
fn clip_cuts_and_drops_control_characters() {
    assert_eq!(clip("abc\ndef", 100), "abcdef");
    assert_eq!(clip("abcdef", 3), "abc…");
}
