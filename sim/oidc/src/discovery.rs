//! Discovery (`GET /.well-known/openid-configuration`) and the public signing key (`GET /jwks`).

use super::*;

pub(crate) async fn discovery(State(state): State<Arc<SimState>>) -> Json<Value> {
    let iss = &state.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "email", "email_verified", "name"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login"],
    }))
}

pub(crate) async fn jwks(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({ "keys": [state.key.jwk.clone()] }))
}
