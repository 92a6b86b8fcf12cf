//! The control API (same port, no credentials), for use from another process: `POST /_sim/clients`
//! registers a client or adds redirect URIs to one, `POST /_sim/users` adds or replaces a user.

use super::*;

#[derive(Deserialize)]
struct ClientBody {
    client_id: String,
    client_secret: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

pub(crate) async fn control_add_client(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let body: ClientBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(err) => return (StatusCode::BAD_REQUEST, Json(json!({"error": err.to_string()}))).into_response(),
    };
    if body.client_id.is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "client_id is empty"}))).into_response();
    }
    let mut data = state.data();
    let client = match data.clients.iter_mut().find(|c| c.client_id == body.client_id) {
        Some(client) => {
            if let Some(secret) = body.client_secret {
                client.client_secret = secret;
            }
            for uri in body.redirect_uris {
                if !client.redirect_uris.contains(&uri) {
                    client.redirect_uris.push(uri);
                }
            }
            client.clone()
        }
        None => {
            let Some(secret) = body.client_secret else {
                return (StatusCode::BAD_REQUEST, Json(json!({"error": "a new client needs a client_secret"})))
                    .into_response();
            };
            let client =
                OidcClient { client_id: body.client_id, client_secret: secret, redirect_uris: body.redirect_uris };
            data.clients.push(client.clone());
            client
        }
    };
    Json(json!({"client_id": client.client_id, "redirect_uris": client.redirect_uris})).into_response()
}

#[derive(Deserialize)]
struct UserBody {
    email: String,
    password: String,
    name: Option<String>,
    sub: Option<String>,
    email_verified: Option<bool>,
}

pub(crate) async fn control_add_user(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let body: UserBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(err) => return (StatusCode::BAD_REQUEST, Json(json!({"error": err.to_string()}))).into_response(),
    };
    if body.email.trim().is_empty() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "email is empty"}))).into_response();
    }
    let mut user = OidcUser::new(body.email.trim(), &body.password, body.name.as_deref().unwrap_or(body.email.trim()));
    if let Some(sub) = body.sub {
        user.sub = sub;
    }
    if let Some(verified) = body.email_verified {
        user.email_verified = verified;
    }
    let answer = json!({"email": user.email, "sub": user.sub});
    state.data().upsert_user(user);
    Json(answer).into_response()
}
