//! Neutron v2.0 at `/network`: version discovery, network list and show.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::{Shared, SimNetwork, SimState, json_response, samples, uuid_from};

/// `GET /network`: the versions list.
pub(crate) async fn versions(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("network", "network.versions", &headers, false).await {
        return resp;
    }
    let network = format!("{}/network", st.base);
    let body = samples::rewrite(samples::NEUTRON_VERSIONS, &[("http://23.253.228.211:9696", &network)]);
    json_response(StatusCode::OK, body)
}

/// The id of the (single, simulated) subnet of a network.
pub(crate) fn subnet_id(network: &SimNetwork) -> String {
    uuid_from(&format!("subnet-of-{}", network.id))
}

fn network_json(st: &SimState, net: &SimNetwork) -> Value {
    let mut v = samples::NETWORK.clone();
    let project = &st.config.project_id;
    let fields = json!({
        "admin_state_up": true,
        "created_at": "2025-01-01T08:00:00Z",
        "updated_at": "2025-01-01T08:00:00Z",
        "dns_domain": "",
        "id": net.id,
        "name": net.name,
        "project_id": project,
        "tenant_id": project,
        "qos_policy_id": null,
        "revision_number": 1,
        "router:external": net.external,
        "pvlan": false,
        "shared": net.shared,
        "status": net.status,
        "subnets": [subnet_id(net)],
        "vlan_transparent": false,
        "qinq": false,
        "description": "",
        "is_default": false,
    });
    if let (Some(obj), Value::Object(fields)) = (v.as_object_mut(), fields) {
        obj.extend(fields);
    }
    v
}

/// Does a query value match a JSON field the way Neutron compares filters?
fn filter_matches(field: &Value, wanted: &str) -> bool {
    match field {
        Value::Bool(b) => match wanted.to_ascii_lowercase().as_str() {
            "true" | "1" => *b,
            "false" | "0" => !*b,
            _ => false,
        },
        Value::String(s) => s == wanted,
        Value::Number(n) => n.to_string() == wanted,
        _ => false,
    }
}

/// `GET /network/v2.0/networks` with Neutron's exact-match filters (`name`, `id`, `status`,
/// `shared`, `router:external`, `admin_state_up`; a repeated key matches any of its values).
pub(crate) async fn list(
    State(st): Shared,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = st.gate("network", "network.list", &headers, true).await {
        return resp;
    }
    const FILTERS: &[&str] =
        &["id", "name", "status", "shared", "router:external", "admin_state_up", "project_id", "tenant_id"];
    let networks: Vec<Value> = st
        .config
        .networks
        .iter()
        .map(|n| network_json(&st, n))
        .filter(|n| {
            FILTERS.iter().all(|key| {
                let wanted: Vec<&str> = query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect();
                wanted.is_empty() || wanted.iter().any(|w| filter_matches(&n[*key], w))
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({ "networks": networks }))
}

/// `GET /network/v2.0/networks/{id}`.
pub(crate) async fn show(State(st): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("network", "network.get", &headers, true).await {
        return resp;
    }
    match st.config.networks.iter().find(|n| n.id == id) {
        Some(net) => json_response(StatusCode::OK, json!({"network": network_json(&st, net)})),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"NeutronError": {
                "type": "NetworkNotFound",
                "message": format!("Network {id} could not be found."),
                "detail": ""
            }}),
        ),
    }
}
