//! The routes, and the control API under `/_sim` that tests and the demo use when the simulator
//! runs as its own process.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::nova::quota::Quota;
use crate::nova::versions;
use crate::{Faults, Shared, SimState, glance, json_response, keystone, lock, neutron, nova};

pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/identity", get(keystone::versions))
        .route("/identity/", get(keystone::versions))
        .route("/identity/v3", get(keystone::version_v3))
        .route("/identity/v3/", get(keystone::version_v3))
        .route("/identity/v3/auth/tokens", post(keystone::auth_tokens))
        .route("/image", get(glance::versions))
        .route("/image/", get(glance::versions))
        .route("/image/versions", get(glance::versions_ok))
        .route("/image/v2/images", get(glance::list))
        .route("/image/v2/images/{id}", get(glance::show))
        .route("/compute", get(nova::versions))
        .route("/compute/", get(nova::versions))
        .route("/compute/v2.1", get(nova::version_v21))
        .route("/compute/v2.1/", get(nova::version_v21))
        .route("/compute/v2.1/{*rest}", any(nova::dispatch))
        .route("/network", get(neutron::versions))
        .route("/network/", get(neutron::versions))
        .route("/network/v2.0/networks", get(neutron::list))
        .route("/network/v2.0/networks/{id}", get(neutron::show))
        .route("/_sim/faults", get(control_get_faults).put(control_put_faults))
        .route("/_sim/expire-tokens", post(control_expire_tokens))
        .route("/_sim/servers", get(control_servers))
        .route("/_sim/volumes", get(control_volumes))
        .route("/_sim/calls", get(control_calls))
        .route("/_sim/compute", get(control_get_compute).put(control_put_compute))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"error": {
            "code": 404,
            "message": "The resource could not be found.",
            "title": "Not Found"
        }}),
    )
}

fn bad_control(message: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"error": {"code": 400, "message": message, "title": "Bad Request"}}))
}

async fn control_get_faults(State(st): Shared) -> Json<Faults> {
    Json(st.faults())
}

/// `PUT /_sim/faults`: the body is a JSON [`Faults`] (any content type; missing fields default).
async fn control_put_faults(State(st): Shared, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            st.set_faults(f);
            Json(st.faults()).into_response()
        }
        Err(err) => bad_control(format!("invalid faults: {err}")),
    }
}

async fn control_expire_tokens(State(st): Shared) -> StatusCode {
    st.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn control_servers(State(st): Shared) -> Json<Value> {
    Json(Value::Array(st.servers_snapshot()))
}

async fn control_volumes(State(st): Shared) -> Json<Value> {
    Json(Value::Array(lock(&st.servers).volumes_snapshot()))
}

async fn control_calls(State(st): Shared) -> Json<BTreeMap<String, u64>> {
    Json(lock(&st.calls).clone())
}

/// What `/_sim/compute` shows and takes: the microversion the compute API advertises as its
/// maximum (`"2.1"` … `"2.104"`) and the project's quota. A field left out of a PUT is unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_microversion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

fn compute_settings(st: &SimState) -> ComputeSettings {
    ComputeSettings { max_microversion: Some(versions::show(st.max_microversion())), quota: Some(st.quota()) }
}

async fn control_get_compute(State(st): Shared) -> Json<ComputeSettings> {
    Json(compute_settings(&st))
}

/// `PUT /_sim/compute`: lowers (or raises) the advertised maximum microversion, sets the quota.
async fn control_put_compute(State(st): Shared, body: axum::body::Bytes) -> Response {
    let settings = match serde_json::from_slice::<ComputeSettings>(&body) {
        Ok(s) => s,
        Err(err) => return bad_control(format!("invalid compute settings: {err}")),
    };
    if let Some(raw) = &settings.max_microversion {
        match versions::parse(raw).filter(|mv| (versions::MIN_VERSION..=versions::SAMPLE_MAX_VERSION).contains(mv)) {
            Some(mv) => st.set_max_microversion(mv),
            None => return bad_control(format!("max_microversion must be from 2.1 to 2.104, not {raw:?}")),
        }
    }
    if let Some(quota) = settings.quota {
        st.set_quota(quota);
    }
    Json(compute_settings(&st)).into_response()
}
