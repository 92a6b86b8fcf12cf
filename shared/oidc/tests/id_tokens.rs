//! ID token verification against the small OpenID provider served in the test (`support`), whose
//! ID tokens are whatever the test signs: the algorithms accepted, the checks of an ID token one by
//! one, and key rotation (an unknown `kid` refetches the key set, once).

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Error;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{CLIENT_ID, Provider, TestKey, expect_forbidden, now, redeem, swap_header};

#[tokio::test]
async fn rsa_pss_and_eddsa_tokens_verify() {
    let p = Provider::start().await;
    let rsa = TestKey::rsa("rsa-1", Algorithm::RS256);
    let ed = TestKey::ed25519("ed-1");
    p.publish(&rsa.jwk);
    p.publish(&ed.jwk);
    let client = p.client();
    for (name, token) in [
        ("RS256", rsa.sign(&p.claims())),
        ("PS256", rsa.sign_as(Algorithm::PS256, Some("rsa-1"), &p.claims())),
        ("EdDSA", ed.sign(&p.claims())),
    ] {
        p.answer_id_token(&token);
        let who = redeem(&client).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(who.subject, "user-42", "{name}");
    }
    // A token that names no kid is verified with the only key fitting its alg.
    p.answer_id_token(&ed.sign_as(Algorithm::EdDSA, None, &p.claims()));
    redeem(&client).await.unwrap();
}

#[tokio::test]
async fn bad_id_tokens_are_forbidden() {
    let p = Provider::start().await;
    let client = p.client();
    let good = p.claims();
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let impostor = TestKey::es256("key-1"); // same kid, another key: not published
    let header_b64 = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let payload_b64 = URL_SAFE_NO_PAD.encode(good.to_string());
    let hs256 = jsonwebtoken::encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("key-1".into());
            h
        },
        &good,
        &EncodingKey::from_secret(b"any shared secret at all").unwrap(),
    )
    .unwrap();
    let now = now();

    let cases: Vec<(&str, String, &str)> = vec![
        ("wrong nonce", p.key.sign(&with(json!({"nonce": "another-nonce"}))), "nonce"),
        ("no nonce", p.key.sign(&with(json!({"nonce": null}))), "nonce"),
        ("wrong aud", p.key.sign(&with(json!({"aud": "another-client"}))), "aud"),
        ("no aud", p.key.sign(&with(json!({"aud": null}))), "aud"),
        ("several aud, no azp", p.key.sign(&with(json!({"aud": [CLIENT_ID, "other"]}))), "azp"),
        ("wrong azp", p.key.sign(&with(json!({"azp": "other"}))), "azp"),
        ("wrong iss", p.key.sign(&with(json!({"iss": "https://evil.example.com"}))), "iss"),
        ("expired", p.key.sign(&with(json!({"exp": now - 120, "iat": now - 420}))), "expired"),
        ("no exp", p.key.sign(&with(json!({"exp": null}))), "exp"),
        ("iat in the future", p.key.sign(&with(json!({"iat": now + 600}))), "iat"),
        ("no iat", p.key.sign(&with(json!({"iat": null}))), "iat"),
        ("nbf in the future", p.key.sign(&with(json!({"nbf": now + 600}))), "nbf"),
        ("no sub", p.key.sign(&with(json!({"sub": null}))), "sub"),
        ("no email", p.key.sign(&with(json!({"email": null}))), "email"),
        ("email not verified", p.key.sign(&with(json!({"email_verified": false}))), "not verified"),
        ("email_verified absent", p.key.sign(&with(json!({"email_verified": null}))), "no email_verified claim"),
        ("signed by another key", impostor.sign(&good), "signature"),
        ("alg none", format!("{}.{payload_b64}.", header_b64(json!({"alg": "none", "typ": "JWT"}))), "alg none"),
        ("alg none with kid", format!("{}.{payload_b64}.", header_b64(json!({"alg": "none", "kid": "key-1"}))), "alg"),
        ("HS256 under the EC key's kid", hs256.clone(), "HS256"),
        (
            "ES384 header on the P-256 key",
            swap_header(&p.key.sign(&good), json!({"alg": "ES384", "kid": "key-1"})),
            "ES384",
        ),
        (
            "RS256 header on the P-256 key",
            swap_header(&p.key.sign(&good), json!({"alg": "RS256", "kid": "key-1"})),
            "RS256",
        ),
        ("not a JWT", "not.a.jwt".to_string(), "well-formed"),
    ];
    for (name, token, needle) in cases {
        p.answer_id_token(&token);
        let result = redeem(&client).await;
        if result.is_ok() {
            panic!("{name}: accepted");
        }
        expect_forbidden(result, needle, &token);
    }

    // An HMAC key published in the JWKS does not help an HS256 token either.
    p.publish(&json!({"kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(b"any shared secret at all")}));
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("hmac".into());
    let token =
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(b"any shared secret at all").unwrap()).unwrap();
    p.answer_id_token(&token);
    expect_forbidden(redeem(&client).await, "HS256", &token);

    // email_verified as the string "true" (some providers) is accepted, and the good token still is.
    p.answer_id_token(&p.key.sign(&with(json!({"email_verified": "true", "amr": null}))));
    let who = redeem(&client).await.unwrap();
    assert!(who.amr.is_empty());
    p.answer_id_token(&p.key.sign(&with(json!({"aud": [CLIENT_ID, "other"], "azp": CLIENT_ID}))));
    redeem(&client).await.unwrap();
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_once() {
    let p = Provider::start().await;
    let client = p.client();
    p.answer_id_token(&p.key.sign(&p.claims()));
    redeem(&client).await.unwrap();
    assert_eq!(p.jwks_hits(), 1);

    let stranger = TestKey::es256("key-unknown");
    let token = stranger.sign(&p.claims());
    p.answer_id_token(&token);
    expect_forbidden(redeem(&client).await, "key-unknown", &token);
    assert_eq!(p.jwks_hits(), 2, "one refetch for the unknown kid");

    // Rate-limited: another unknown kid right after does not fetch again.
    p.answer_id_token(&TestKey::es256("key-other").sign(&p.claims()));
    assert!(matches!(redeem(&client).await, Err(Error::Forbidden(_))));
    assert_eq!(p.jwks_hits(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_found_by_refetching() {
    let p = Provider::start().await;
    let client = p.client();
    p.answer_id_token(&p.key.sign(&p.claims()));
    redeem(&client).await.unwrap();
    assert_eq!(p.jwks_hits(), 1);

    let next = TestKey::es256("key-2");
    p.publish(&next.jwk);
    p.answer_id_token(&next.sign(&p.claims()));
    let who = redeem(&client).await.unwrap();
    assert_eq!(who.email, "approver@example.com");
    assert_eq!(p.jwks_hits(), 2);
}
