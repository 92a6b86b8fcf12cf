//! Glance v2 at `/image`: version discovery, image list (paged, sorted) and image show.

use std::cmp::Ordering;
use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::{Shared, SimImage, SimState, encode_query, hex_from, json_response, lock, samples};

/// Image statuses Glance accepts in a `status` filter.
const STATUSES: &[&str] =
    &["queued", "saving", "active", "killed", "deleted", "pending_delete", "deactivated", "uploading", "importing"];

/// The keys Glance sorts by (glance/api/v2/images.py, `RequestDeserializer._available_sort_keys`);
/// any other is refused with 400. Sorting is documented at
/// https://specs.openstack.org/openstack/glance-specs/specs/api/v2/lists-image-api-v2.html
/// ("Sorting": classic repeated `sort_key`/`sort_dir`, or `sort=key:dir,…`).
const SORT_KEYS: &[&str] =
    &["name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"];

/// Query parameters carried into a `next` link besides `marker` and `limit` (Glance keeps every
/// parameter of the request but the marker).
const KEPT_IN_NEXT: &[&str] = &["status", "name", "visibility", "sort_key", "sort_dir", "sort"];

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

/// Whether the image has data (a size and checksums).
fn uploaded(img: &SimImage) -> bool {
    !matches!(img.status.as_str(), "queued" | "saving" | "uploading" | "importing" | "killed")
}

/// The day of January 2025 the image at `index` was created: later images are older, so
/// Glance's default order (newest first) is the catalog's own order for up to 28 images, as the
/// demo cloud lists them.
fn created_day(index: usize) -> usize {
    28 - (index % 28)
}

fn size_of(index: usize) -> u64 {
    300 * 1024 * 1024 + (index as u64) * 37 * 1024 * 1024
}

fn image_json(st: &SimState, img: &SimImage, index: usize) -> Value {
    let mut v = samples::IMAGE.clone();
    let uploaded = uploaded(img);
    let day = created_day(index);
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
        "size": if uploaded { json!(size_of(index)) } else { Value::Null },
        "min_ram": img.min_ram,
        "virtual_size": Value::Null,
    });
    if let (Some(obj), Value::Object(fields)) = (v.as_object_mut(), fields) {
        obj.extend(fields);
    }
    v
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Asc,
    Desc,
}

/// One sort key's value of an image. NULL sorts first ascending, as in Glance's MySQL.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortValue<'a> {
    Null,
    Number(u64),
    Text(&'a str),
}

fn sort_value<'a>(img: &'a SimImage, index: usize, key: &str) -> SortValue<'a> {
    match key {
        "name" => SortValue::Text(&img.name),
        "status" => SortValue::Text(&img.status),
        "id" => SortValue::Text(&img.id),
        // Both times fall on the image's day (at 09:00 and 09:30): the day orders them.
        "created_at" | "updated_at" => SortValue::Number(created_day(index) as u64),
        "size" if uploaded(img) => SortValue::Number(size_of(index)),
        // No size yet; container and disk formats are the sample's, the same for every image.
        _ => SortValue::Null,
    }
}

fn sort_key(raw: &str) -> Result<&'static str, String> {
    SORT_KEYS
        .iter()
        .copied()
        .find(|k| *k == raw)
        .ok_or_else(|| format!("Invalid sort key: {raw}. It must be one of the following: {}.", SORT_KEYS.join(", ")))
}

fn sort_dir(raw: &str) -> Result<Dir, String> {
    match raw {
        "asc" => Ok(Dir::Asc),
        "desc" => Ok(Dir::Desc),
        _ => Err(format!("Invalid sort direction: {raw}")),
    }
}

/// The order a listing asks for, as Glance reads it (glance/api/v2/images.py
/// `_get_sorting_params`, glance/db/sqlalchemy/api.py `image_get_all`): `sort=key:dir,…` or the
/// classic `sort_key`/`sort_dir` (repeated, paired in order; one `sort_dir` applies to every key;
/// none means `desc`), not both; no key means `created_at`; `created_at` and `id` are appended
/// when missing, so the order is total and a marker has one place in it.
fn sort_order(query: &[(String, String)]) -> Result<Vec<(&'static str, Dir)>, String> {
    let values = |name: &str| query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim()).collect::<Vec<_>>();
    let (sort, classic_keys, classic_dirs) = (values("sort"), values("sort_key"), values("sort_dir"));
    let mut keys = Vec::new();
    let mut dirs = Vec::new();
    if let Some(sort) = sort.last() {
        if !classic_keys.is_empty() || !classic_dirs.is_empty() {
            return Err("Old and new sorting syntax cannot be combined".into());
        }
        for part in sort.split(',') {
            let (key, dir) = part.split_once(':').unwrap_or((part, ""));
            keys.push(sort_key(key.trim())?);
            dirs.push(if dir.is_empty() { Dir::Desc } else { sort_dir(dir.trim())? });
        }
    } else {
        for key in classic_keys {
            keys.push(sort_key(key)?);
        }
        for dir in classic_dirs {
            dirs.push(sort_dir(dir)?);
        }
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err("Number of sort dirs does not match the number of sort keys".into());
        }
    }
    if keys.is_empty() {
        keys.push("created_at");
    }
    let default = match dirs.as_slice() {
        [one] => *one,
        _ => Dir::Desc,
    };
    if dirs.len() <= 1 {
        dirs = vec![default; keys.len()];
    }
    for tie_break in ["created_at", "id"] {
        if !keys.contains(&tie_break) {
            keys.push(tie_break);
            dirs.push(default);
        }
    }
    Ok(keys.into_iter().zip(dirs).collect())
}

fn compare(order: &[(&str, Dir)], images: &[SimImage], a: usize, b: usize) -> Ordering {
    for (key, dir) in order {
        let o = sort_value(&images[a], a, key).cmp(&sort_value(&images[b], b, key));
        let o = if *dir == Dir::Desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// `GET /image/v2/images?limit=&marker=&status=&name=&visibility=&sort_key=&sort_dir=&sort=`.
pub(crate) async fn list(
    State(st): Shared,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    st.record_image_query(&query);
    if let Err(resp) = st.gate("image", "image.list", &headers, true).await {
        return resp;
    }
    let param = |name: &str| query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let page_size = st.config.image_page_size.max(1);
    let limit = match param("limit") {
        None => page_size,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n < 0 => return error(StatusCode::BAD_REQUEST, "limit param must be positive"),
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX).min(page_size),
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
    let order = match sort_order(&query) {
        Ok(order) => order,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let images = &st.config.images;
    let deleted: HashSet<String> = lock(&st.deleted_images).clone();
    let live = |i: &usize| !deleted.contains(&images[*i].id);
    // A marker is an image (of any status, not a deleted one) and the page starts after it in
    // this order; Glance answers an unknown or deleted one with 400.
    let marker = match param("marker") {
        None => None,
        Some(marker) => match (0..images.len()).filter(live).find(|i| images[*i].id == marker) {
            found @ Some(_) => found,
            None => {
                return error(StatusCode::BAD_REQUEST, &format!("Invalid marker. Image {marker} could not be found."));
            }
        },
    };
    let mut remaining: Vec<usize> = (0..images.len())
        .filter(live)
        .filter(|i| marker.is_none_or(|m| compare(&order, images, *i, m) == Ordering::Greater))
        .filter(|i| status.is_none_or(|s| images[*i].status == s))
        .filter(|i| name.is_none_or(|n| images[*i].name == n))
        .filter(|_| visibility.is_none_or(|v| v == "public" || v == "all"))
        .collect();
    // Only the page is put in order: the first `limit` of what remains, then those sorted.
    let more = remaining.len() > limit;
    if more {
        remaining.select_nth_unstable_by(limit, |a, b| compare(&order, images, *a, *b));
        remaining.truncate(limit);
    }
    remaining.sort_by(|a, b| compare(&order, images, *a, *b));
    let page = remaining;

    let mut body = samples::IMAGE_LIST.clone();
    body["images"] = Value::Array(page.iter().map(|i| image_json(&st, &images[*i], *i)).collect());
    body["first"] = json!("/v2/images");
    if let (Some(last), true) = (page.last(), more) {
        let mut next = format!("/v2/images?marker={}&limit={limit}", encode_query(&images[*last].id));
        for (key, value) in query.iter().filter(|(k, _)| KEPT_IN_NEXT.contains(&k.as_str())) {
            next.push_str(&format!("&{key}={}", encode_query(value)));
        }
        body["next"] = json!(next);
    }
    let doomed = st.faults().delete_after_listing;
    if !doomed.is_empty() {
        let mut deleted = lock(&st.deleted_images);
        for i in page.iter().filter(|i| doomed.contains(&images[**i].id)) {
            deleted.insert(images[*i].id.clone());
        }
    }
    json_response(StatusCode::OK, body)
}

/// `GET /image/v2/images/{id}`. A deleted image is not found.
pub(crate) async fn show(State(st): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("image", "image.get", &headers, true).await {
        return resp;
    }
    let deleted = lock(&st.deleted_images).contains(&id);
    match st.config.images.iter().position(|i| i.id == id).filter(|_| !deleted) {
        Some(pos) => json_response(StatusCode::OK, image_json(&st, &st.config.images[pos], pos)),
        None => error(StatusCode::NOT_FOUND, &format!("No image found with ID {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_default_order_is_newest_first_with_tie_breaks() {
        assert_eq!(sort_order(&[]).unwrap(), [("created_at", Dir::Desc), ("id", Dir::Desc)]);
    }

    #[test]
    fn classic_keys_pair_with_their_directions_in_order() {
        let order =
            sort_order(&q(&[("sort_key", "name"), ("sort_dir", "asc"), ("sort_key", "size"), ("sort_dir", "desc")]));
        assert_eq!(
            order.unwrap(),
            [("name", Dir::Asc), ("size", Dir::Desc), ("created_at", Dir::Desc), ("id", Dir::Desc)]
        );
        // One direction applies to every key, the appended ones too.
        let order = sort_order(&q(&[("sort_key", "created_at"), ("sort_key", "id"), ("sort_dir", "asc")]));
        assert_eq!(order.unwrap(), [("created_at", Dir::Asc), ("id", Dir::Asc)]);
    }

    #[test]
    fn the_new_syntax_defaults_each_direction_to_desc() {
        let order = sort_order(&q(&[("sort", "name:asc,status")])).unwrap();
        assert_eq!(order, [("name", Dir::Asc), ("status", Dir::Desc), ("created_at", Dir::Desc), ("id", Dir::Desc)]);
    }

    #[test]
    fn newest_first_is_oldest_first_reversed_with_ties_broken_by_id() {
        let images: Vec<SimImage> =
            (0..60).map(|i| SimImage::new(&format!("id-{:02}", (i * 37) % 60), "img", "active", 0)).collect();
        let sorted = |pairs: &[(&str, &str)]| {
            let order = sort_order(&q(pairs)).unwrap();
            let mut all: Vec<usize> = (0..images.len()).collect();
            all.sort_by(|a, b| compare(&order, &images, *a, *b));
            all
        };
        let oldest =
            sorted(&[("sort_key", "created_at"), ("sort_dir", "asc"), ("sort_key", "id"), ("sort_dir", "asc")]);
        let mut newest = sorted(&[("sort", "created_at:desc,id:desc")]);
        newest.reverse();
        assert_eq!(oldest, newest);
        // Images 27 and 55 share a day (the last one, oldest): the lower id comes first.
        assert_eq!((created_day(27), created_day(55)), (1, 1));
        let (a, b) = (&images[27].id, &images[55].id);
        assert_eq!(oldest[..2].iter().map(|i| &images[*i].id).collect::<Vec<_>>(), [a.min(b), a.max(b)]);
    }

    #[test]
    fn glance_s_refusals() {
        let err = |pairs: &[(&str, &str)]| sort_order(&q(pairs)).unwrap_err();
        assert!(err(&[("sort_key", "owner")]).starts_with("Invalid sort key: owner. It must be one of"));
        assert_eq!(err(&[("sort_key", "id"), ("sort_dir", "up")]), "Invalid sort direction: up");
        assert_eq!(
            err(&[("sort_key", "id"), ("sort_dir", "asc"), ("sort_dir", "desc"), ("sort_dir", "asc")]),
            "Number of sort dirs does not match the number of sort keys"
        );
        assert_eq!(err(&[("sort", "id:asc"), ("sort_dir", "asc")]), "Old and new sorting syntax cannot be combined");
        assert!(err(&[("sort", "")]).starts_with("Invalid sort key: . It must be one of"));
    }
}
