//! The token endpoint (the code, PKCE and client checked; the ID token signed) and userinfo.

use super::*;
use crate::authorize::parse_pairs;

pub(crate) fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(crate) fn invalid_client(basic: bool, description: &str) -> Response {
    let mut resp = token_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if basic {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"oidc-sim\""));
    }
    resp
}

/// RFC 6749 §2.3.1: the Basic credentials are form-urlencoded before base64.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(()));
    };
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Some(Ok((decode(id), decode(secret))))
}

pub(crate) async fn token(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_pairs(&body);
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // Client authentication.
    let basic = basic_credentials(&headers);
    let used_basic = basic.is_some();
    let (client_id, secret) = match basic {
        Some(Ok(creds)) => {
            if get("client_secret").is_some() {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "more than one client authentication method",
                );
            }
            if get("client_id").is_some_and(|id| id != creds.0) {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                );
            }
            creds
        }
        Some(Err(())) => return invalid_client(true, "malformed Basic credentials"),
        None => match (get("client_id"), get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
            _ => {
                return invalid_client(
                    false,
                    "client authentication is required (client_secret_basic or client_secret_post)",
                );
            }
        },
    };
    let mut data = state.data();
    let now = Instant::now();
    let authenticated = data.client(&client_id).is_some_and(|c| c.client_secret == secret);
    if !authenticated {
        return invalid_client(used_basic, "unknown client or wrong secret");
    }

    if get("grant_type") != Some("authorization_code") {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only authorization_code is supported");
    }
    let Some(code) = get("code") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_request", "code is missing");
    };
    // Spent by any attempt of the client it was issued to, good or bad.
    let issued = match data.codes.get(code) {
        Some(issued) if issued.client_id == client_id => data.codes.remove(code),
        Some(_) => {
            return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code was issued to another client");
        }
        None => None,
    };
    let Some(issued) = issued else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown, expired or already used code");
    };
    if issued.expires <= now {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code expired");
    }
    if get("redirect_uri") != Some(issued.redirect_uri.as_str()) {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    let Some(verifier) = get("code_verifier") else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "code_verifier is missing (PKCE is required)");
    };
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == issued.code_challenge;
    if !verifier_ok {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        );
    }
    let Some(user) = data.user(&issued.email).cloned() else {
        return token_error(StatusCode::BAD_REQUEST, "invalid_grant", "the user no longer exists");
    };
    let access_token = random_token();
    data.access_tokens.insert(access_token.clone(), (user.email.clone(), now + ACCESS_TOKEN_TTL));
    drop(data);

    let iat = now_secs();
    let claims = IdTokenClaims {
        iss: &state.issuer,
        sub: &user.sub,
        aud: &client_id,
        exp: iat + state.id_token_ttl.as_secs(),
        iat,
        auth_time: issued.auth_time,
        nonce: issued.nonce.as_deref(),
        email: &user.email,
        email_verified: user.email_verified,
        name: &user.name,
        amr: ["pwd"],
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(state.key.kid.clone());
    header.typ = Some("JWT".into());
    let id_token = match jsonwebtoken::encode(&header, &claims, &state.key.encoding) {
        Ok(token) => token,
        Err(err) => {
            return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &format!("signing failed: {err}"));
        }
    };
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL.as_secs(),
            "scope": "openid email",
            "id_token": id_token,
        })),
    )
        .into_response()
}

pub(crate) async fn userinfo(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let mut data = state.data();
    data.purge(Instant::now());
    let user =
        token.and_then(|t| data.access_tokens.get(&t).cloned()).and_then(|(email, _)| data.user(&email).cloned());
    match user {
        Some(u) => Json(json!({"sub": u.sub, "email": u.email, "email_verified": u.email_verified, "name": u.name}))
            .into_response(),
        None => {
            let mut resp = StatusCode::UNAUTHORIZED.into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            resp
        }
    }
}
