//! The authorize endpoint: the request checked (client, exact redirect URI, PKCE), the sign-in
//! form, and the redirect back with a single-use code.

use super::*;

pub(crate) fn parse_pairs(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\
         <h1>{t}</h1><p class=\"error\">{d}</p><p>Simulated OpenID provider (oidc-sim).</p></body></html>",
        t = escape(title),
        d = escape(detail)
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

pub(crate) fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, value);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `redirect_uri` with `pairs` added to its query (keeping a query it has).
pub(crate) fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

pub(crate) fn error_redirect(
    state: &SimState,
    redirect_uri: &str,
    error: &str,
    description: &str,
    st: Option<&str>,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(st) = st {
        pairs.push(("state", st));
    }
    pairs.push(("iss", &state.issuer));
    redirect(&with_query(redirect_uri, &pairs))
}

pub(crate) async fn authorize_page(State(state): State<Arc<SimState>>, RawQuery(query): RawQuery) -> Response {
    let params = parse_pairs(query.unwrap_or_default().as_bytes());
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // Client and redirect URI first: until both are known good, never redirect anywhere.
    let Some(client_id) = get("client_id") else {
        return error_page(StatusCode::BAD_REQUEST, "Sign-in refused", "The request names no client_id.");
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(StatusCode::BAD_REQUEST, "Sign-in refused", "The request has no redirect_uri.");
    };
    {
        let data = state.data();
        let Some(client) = data.client(client_id) else {
            return error_page(StatusCode::BAD_REQUEST, "Sign-in refused", &format!("Unknown client {client_id}."));
        };
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in refused",
                &format!("The redirect_uri {redirect_uri} is not registered for client {client_id}."),
            );
        }
    }
    let st = get("state");
    let fail = |error: &str, description: &str| error_redirect(&state, redirect_uri, error, description, st);
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type", "only response_type=code is supported");
    }
    if !get("scope").unwrap_or_default().split(' ').any(|s| s == "openid") {
        return fail("invalid_scope", "scope must contain openid");
    }
    let Some(code_challenge) = get("code_challenge") else {
        return fail("invalid_request", "PKCE is required: code_challenge is missing");
    };
    if get("code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if code_challenge.len() != 43
        || !code_challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return fail("invalid_request", "code_challenge is not a base64url SHA-256");
    }
    if get("prompt").is_some_and(|p| p.split(' ').any(|p| p == "none")) {
        return fail("login_required", "the simulator keeps no sessions: a sign-in is always needed");
    }
    let pending = Pending {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        state: st.map(str::to_string),
        nonce: get("nonce").map(str::to_string),
        code_challenge: code_challenge.to_string(),
        login_hint: get("login_hint").map(str::to_string),
        created: Instant::now(),
    };
    let request_id = random_token();
    let page = {
        let mut data = state.data();
        data.purge(Instant::now());
        data.pending.insert(request_id.clone(), pending.clone());
        sign_in_page(&data, &request_id, &pending, pending.login_hint.as_deref().unwrap_or_default(), None)
    };
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

pub(crate) fn sign_in_page(
    data: &Data,
    request_id: &str,
    pending: &Pending,
    email: &str,
    error: Option<&str>,
) -> String {
    let users: String = data
        .users
        .iter()
        .map(|u| {
            format!(
                "<li><code>{}</code> ({}), password <code>{}</code></li>",
                escape(&u.email),
                escape(&u.name),
                escape(&u.password)
            )
        })
        .collect();
    let error = error.map(|e| format!("<p class=\"error\">{}</p>", escape(e))).unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in</title>\
         <style>body{{font-family:sans-serif;max-width:32em;margin:2em auto}}label{{display:block;margin:.6em 0}}\
         .error{{color:#b00}}</style></head><body>\
         <h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error}\
         <form method=\"post\" action=\"/authorize\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <label>Email <input type=\"email\" name=\"email\" value=\"{email}\" autocomplete=\"username\" required autofocus></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" name=\"action\" value=\"sign-in\">Sign in</button> \
         <button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button>\
         </form>\
         <h2>Test accounts</h2><p>This is a simulated OpenID provider (oidc-sim); its users are:</p><ul>{users}</ul>\
         </body></html>",
        client = escape(&pending.client_id),
        request = escape(request_id),
        email = escape(email),
    )
}

pub(crate) async fn authorize_submit(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let form = parse_pairs(&body);
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let request_id = get("request");
    let mut data = state.data();
    let now = Instant::now();
    data.purge(now);
    let Some(pending) = data.pending.get(request_id).cloned() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in is unknown or expired: go back to the application and start again.",
        );
    };
    if get("action") == "cancel" {
        data.pending.remove(request_id);
        drop(data);
        return error_redirect(
            &state,
            &pending.redirect_uri,
            "access_denied",
            "the user cancelled the sign-in",
            pending.state.as_deref(),
        );
    }
    let email = get("email").trim();
    let user = data.user(email).filter(|u| u.password == get("password")).cloned();
    let Some(user) = user else {
        let page = sign_in_page(&data, request_id, &pending, email, Some("Wrong email or password."));
        return (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response();
    };
    data.pending.remove(request_id);
    let code = random_token();
    data.codes.insert(
        code.clone(),
        IssuedCode {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            nonce: pending.nonce.clone(),
            email: user.email.clone(),
            auth_time: now_secs(),
            expires: now + state.code_ttl,
        },
    );
    drop(data);
    tracing::info!(client_id = %pending.client_id, email = %user.email, "oidc-sim: signed in");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(st) = &pending.state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", &state.issuer));
    redirect(&with_query(&pending.redirect_uri, &pairs))
}
