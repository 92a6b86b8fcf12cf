//! Glance v2 at `/image`: version discovery, image list (paged) and image show.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::{Shared, SimImage, SimState, encode_query, hex_from, json_response, samples};

/// Image statuses Glance accepts in a `status` filter.
const STATUSES: &[&str] =
    &["queued", "saving", "active", "killed", "deleted", "pending_delete", "deactivated", "uploading", "importing"];

fn versions_body(st: &SimState) -> Value {
    let image = format!("{}/image/", st.base);
    samples::rewrite(samples::GLANCE_VERSIONS, &[("http://glance.openstack.example.org/", &image)])
}

/// `GET /image`: the versions list. Glance answers it with 300 Multiple Choices.
pub(crate) async fn versions(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("image", "image.versions", &headers, false).await {
        return resp;
    }
    json_response(StatusCode::MULTIPLE_CHOICES, versions_body(&st))
}

/// `GET /image/versions`: the same list with 200.
pub(crate) async fn versions_ok(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("image", "image.versions", &headers, false).await {
        return resp;
    }
    json_response(StatusCode::OK, versions_body(&st))
}

fn error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    json_response(status, json!({"error": {"code": status.as_u16(), "message": message, "title": title}}))
}

fn image_json(st: &SimState, img: &SimImage, index: usize) -> Value {
    let mut v = samples::IMAGE.clone();
    let uploaded = !matches!(img.status.as_str(), "queued" | "saving" | "uploading" | "importing" | "killed");
    let day = (index % 28) + 1;
    let size = 300 * 1024 * 1024 + (index as u64) * 37 * 1024 * 1024;
    let fields = json!({
        "status": img.status,
        "name": img.name,
        "tags": [],
        "created_at": format!("2025-01-{day:02}T09:00:00Z"),
        "updated_at": format!("2025-01-{day:02}T09:30:00Z"),
        "visibility": "public",
        "self": format!("/v2/images/{}", img.id),
        "min_disk": img.min_disk,
        "protected": false,
        "id": img.id,
        "file": format!("/v2/images/{}/file", img.id),
        "checksum": if uploaded { json!(hex_from(&img.id, 32)) } else { Value::Null },
        "os_hash_algo": if uploaded { json!("sha512") } else { Value::Null },
        "os_hash_value": if uploaded { json!(hex_from(&img.name, 128)) } else { Value::Null },
        "os_hidden": false,
        "owner": st.config.project_id,
        "size": if uploaded { json!(size) } else { Value::Null },
        "min_ram": img.min_ram,
        "virtual_size": Value::Null,
    });
    if let (Some(obj), Value::Object(fields)) = (v.as_object_mut(), fields) {
        obj.extend(fields);
    }
    v
}

/// `GET /image/v2/images?limit=&marker=&status=&name=&visibility=`.
pub(crate) async fn list(
    State(st): Shared,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = st.gate("image", "image.list", &headers, true).await {
        return resp;
    }
    let param = |name: &str| query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let page_size = st.config.image_page_size.max(1);
    let limit = match param("limit") {
        None => page_size,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) => n.min(page_size),
            Err(_) => return error(StatusCode::BAD_REQUEST, "limit param must be an integer"),
        },
    };
    let status = param("status");
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return error(StatusCode::BAD_REQUEST, &format!("Invalid status value: {s}"));
    }
    let name = param("name");
    let visibility = param("visibility");
    if let Some(v) = visibility
        && !["public", "private", "shared", "community", "all"].contains(&v)
    {
        return error(StatusCode::BAD_REQUEST, &format!("Invalid visibility value: {v}"));
    }
    let images = &st.config.images;
    let after = match param("marker") {
        None => None,
        Some(marker) => match images.iter().position(|i| i.id == marker) {
            Some(pos) => Some(pos),
            None => {
                return error(StatusCode::BAD_REQUEST, &format!("Invalid marker. Image {marker} could not be found."));
            }
        },
    };
    let matching: Vec<(usize, &SimImage)> = images
        .iter()
        .enumerate()
        .filter(|(_, i)| status.is_none_or(|s| i.status == s))
        .filter(|(_, i)| name.is_none_or(|n| i.name == n))
        .filter(|_| visibility.is_none_or(|v| v == "public" || v == "all"))
        .collect();
    let remaining: Vec<(usize, &SimImage)> =
        matching.into_iter().filter(|(pos, _)| after.is_none_or(|a| *pos > a)).collect();
    let page: Vec<(usize, &SimImage)> = remaining.iter().take(limit).copied().collect();

    let mut body = samples::IMAGE_LIST.clone();
    body["images"] = Value::Array(page.iter().map(|(pos, img)| image_json(&st, img, *pos)).collect());
    body["first"] = json!("/v2/images");
    if let (Some((_, last)), true) = (page.last(), remaining.len() > page.len()) {
        let mut next = format!("/v2/images?marker={}&limit={limit}", encode_query(&last.id));
        for (key, value) in [("status", status), ("name", name), ("visibility", visibility)] {
            if let Some(value) = value {
                next.push_str(&format!("&{key}={}", encode_query(value)));
            }
        }
        body["next"] = json!(next);
    }
    json_response(StatusCode::OK, body)
}

/// `GET /image/v2/images/{id}`.
pub(crate) async fn show(State(st): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("image", "image.get", &headers, true).await {
        return resp;
    }
    match st.config.images.iter().position(|i| i.id == id) {
        Some(pos) => json_response(StatusCode::OK, image_json(&st, &st.config.images[pos], pos)),
        None => error(StatusCode::NOT_FOUND, &format!("No image found with ID {id}")),
    }
}
