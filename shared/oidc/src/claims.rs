//! The ID token itself: which key verifies it, and its claims checked (OpenID Connect Core 1.0
//! §3.1.3.7, §2) — apart from the client's discovery (`discovery.rs`), key fetching (`jwks.rs`)
//! and code exchange (`token.rs`).

use super::*;

/// The claims of an ID token that are checked here; `iss`, `aud`, `exp` and `nbf` are checked by
/// jsonwebtoken's validation as well.
#[derive(Deserialize)]
pub(crate) struct IdTokenClaims {
    sub: Option<String>,
    aud: Option<Value>,
    azp: Option<String>,
    iat: Option<f64>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Value>,
    amr: Option<Value>,
}

pub(crate) fn refused(why: String) -> Error {
    Error::Forbidden(format!("the identity provider's ID token was refused: {why}"))
}

pub(crate) enum Selected<'a> {
    Key(&'a Jwk),
    /// A key was named but cannot verify this token.
    Refused(String),
    Missing,
}

/// The key among `keys` that verifies a token signed with `alg` under `kid`: by `kid` when given,
/// else the only key fitting `alg` (OpenID Connect Core §10.1 allows leaving `kid` out then).
pub(crate) fn select_key<'a>(keys: &'a [Jwk], kid: Option<&str>, alg: Algorithm) -> Selected<'a> {
    match kid {
        Some(kid) => match keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)) {
            Some(k) => match key_fits(k, alg) {
                Ok(()) => Selected::Key(k),
                Err(why) => Selected::Refused(format!("the provider's key \"{}\" {why}", clip(kid, 100))),
            },
            None => Selected::Missing,
        },
        None => {
            let mut fitting = keys.iter().filter(|k| key_fits(k, alg).is_ok());
            match (fitting.next(), fitting.next()) {
                (Some(k), None) => Selected::Key(k),
                (Some(_), Some(_)) => {
                    Selected::Refused(format!("the token names no key (kid) and the provider has several {alg:?} keys"))
                }
                (None, _) => Selected::Missing,
            }
        }
    }
}

/// Checks the signature and the claims (OpenID Connect Core 1.0 §3.1.3.7, §2) at `now` (seconds
/// since the epoch).
pub(crate) fn verify_claims(
    id_token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: f64,
) -> Result<VerifiedIdentity> {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    let data = jsonwebtoken::decode::<IdTokenClaims>(id_token, key, &validation).map_err(|e| {
        refused(match e.kind() {
            ErrorKind::InvalidSignature => "its signature does not verify with the provider's key".into(),
            ErrorKind::ExpiredSignature => "it has expired (exp)".into(),
            ErrorKind::ImmatureSignature => "it is not valid yet (nbf)".into(),
            ErrorKind::InvalidIssuer => format!("its issuer (iss) is not {issuer}"),
            ErrorKind::InvalidAudience => format!("its audience (aud) does not name this client ({client_id})"),
            ErrorKind::MissingRequiredClaim(claim) => format!("it has no {claim} claim"),
            ErrorKind::InvalidClaimFormat(claim) => format!("its {claim} claim is malformed"),
            ErrorKind::InvalidAlgorithm => format!("its alg {alg:?} does not fit the provider's key"),
            ErrorKind::Json(_) => "its claims are malformed".into(),
            _ => "it could not be verified".into(),
        })
    })?;
    let claims = data.claims;

    // aud was checked to name the client; with several audiences, azp must be the client, and
    // whenever azp is present it must be the client (Core §3.1.3.7 items 3-5).
    let several_audiences = matches!(&claims.aud, Some(Value::Array(a)) if a.len() > 1);
    match claims.azp.as_deref() {
        Some(azp) if azp != client_id => {
            return Err(refused(format!("its authorized party (azp) is not this client ({client_id})")));
        }
        None if several_audiences => {
            return Err(refused("it names several audiences but no authorized party (azp)".into()));
        }
        _ => {}
    }

    let leeway = LEEWAY.as_secs_f64();
    match claims.iat {
        None => return Err(refused("it has no iat claim".into())),
        Some(iat) if !iat.is_finite() => return Err(refused("its iat claim is malformed".into())),
        Some(iat) if iat > now + leeway => return Err(refused("it was issued in the future (iat)".into())),
        Some(iat) if iat < now - MAX_ID_TOKEN_AGE.as_secs_f64() - leeway => {
            return Err(refused(format!(
                "it was issued more than {} minutes ago (iat)",
                MAX_ID_TOKEN_AGE.as_secs() / 60
            )));
        }
        Some(_) => {}
    }

    match claims.nonce.as_deref() {
        None => return Err(refused("it carries no nonce".into())),
        Some(got) if !bool::from(got.as_bytes().ct_eq(nonce.as_bytes())) => {
            return Err(refused("its nonce is not this sign-in's (a replayed or foreign token)".into()));
        }
        Some(_) => {}
    }

    let subject = claims.sub.filter(|s| !s.is_empty()).ok_or_else(|| refused("it has no subject (sub)".into()))?;
    let email = claims.email.map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).ok_or_else(|| {
        refused("it carries no email claim (the provider must release the email scope to this client)".into())
    })?;
    // Some providers send the boolean as a string.
    match &claims.email_verified {
        Some(Value::Bool(true)) => {}
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => {}
        None => {
            return Err(Error::Forbidden(format!(
                "the identity provider does not say that {email} is verified (no email_verified claim); \
                 only a verified e-mail address can sign in"
            )));
        }
        Some(_) => {
            return Err(Error::Forbidden(format!(
                "the identity provider says that {email} is not verified (email_verified is false); \
                 only a verified e-mail address can sign in"
            )));
        }
    }
    let amr = match claims.amr {
        Some(Value::Array(items)) => items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    Ok(VerifiedIdentity { issuer: issuer.to_string(), subject, email, amr })
}
