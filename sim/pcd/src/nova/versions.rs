//! Nova's microversions: the version documents (advertising the simulator's maximum, which a
//! test may lower to 2.1) and the check of the requested microversion, refused as Nova refuses
//! it (406 with `computeFault` "Version 2.x is not supported by the API. Minimum is 2.1 and
//! maximum is 2.y.": nova/api/openstack/wsgi.py maps `InvalidGlobalAPIVersion` to
//! HTTPNotAcceptable; https://docs.openstack.org/api-guide/compute/microversions.html).

use super::*;

/// The oldest microversion this Nova speaks, and what a request without one gets.
pub(crate) const MIN_VERSION: Mv = (2, 1);
/// The newest the published samples advertise (nova master): the default maximum.
pub(crate) const SAMPLE_MAX_VERSION: Mv = (2, 104);

/// `2.79` → (2, 79).
pub(crate) fn parse(raw: &str) -> Option<Mv> {
    let (a, b) = raw.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub(crate) fn show(mv: Mv) -> String {
    format!("{}.{}", mv.0, mv.1)
}

/// The compute microversion asked for in the request headers, if any (as sent, without the
/// service name).
pub(super) fn requested_microversion(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("openstack-api-version").and_then(|v| v.to_str().ok()) {
        for part in v.split(',') {
            let mut words = part.split_whitespace();
            if let (Some(service), Some(version)) = (words.next(), words.next())
                && service.eq_ignore_ascii_case("compute")
            {
                return Some(version.to_string());
            }
        }
    }
    headers.get("x-openstack-nova-api-version").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string())
}

/// The microversion a request is answered at, or Nova's refusal of it; `max` is what this cloud
/// advertises.
pub(super) fn parse_microversion(raw: Option<&str>, max: Mv) -> Result<Mv, Response> {
    let Some(raw) = raw else {
        return Ok(MIN_VERSION);
    };
    if raw.eq_ignore_ascii_case("latest") {
        return Ok(max);
    }
    let Some(mv) = parse(raw) else {
        return Err(bad_request(format!(
            "API Version String {raw} is of invalid format. Must be of format MajorNum.MinorNum."
        )));
    };
    if mv < MIN_VERSION || mv > max {
        return Err(fault(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Version {raw} is not supported by the API. Minimum is {} and maximum is {}.",
                show(MIN_VERSION),
                show(max)
            ),
        ));
    }
    Ok(mv)
}

pub(super) fn with_version_headers(mut resp: Response, mv: Mv) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("compute {}", show(mv))) {
        h.insert("openstack-api-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(&show(mv)) {
        h.insert("x-openstack-nova-api-version", v);
    }
    h.insert(header::VARY, HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"));
    resp
}

/// Sets the advertised maximum into a `v2.1` version entry of the samples.
fn advertise(entry: &mut Value, max: Mv) {
    if entry["id"] == "v2.1" {
        entry["version"] = json!(show(max));
    }
}

/// `GET /compute`: the versions list.
pub(crate) async fn versions(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("compute", "compute.versions", &headers, false).await {
        return resp;
    }
    let compute = format!("{}/compute/", st.base);
    let mut body = samples::rewrite(samples::NOVA_VERSIONS, &[("http://openstack.example.com/", &compute)]);
    let max = st.max_microversion();
    if let Some(list) = body["versions"].as_array_mut() {
        list.iter_mut().for_each(|v| advertise(v, max));
    }
    json_response(StatusCode::OK, body)
}

/// `GET /compute/v2.1`: the v2.1 version document.
pub(crate) async fn version_v21(State(st): Shared, headers: HeaderMap) -> Response {
    if let Err(resp) = st.gate("compute", "compute.versions", &headers, false).await {
        return resp;
    }
    version_doc(&st)
}

pub(super) fn version_doc(st: &SimState) -> Response {
    let compute = format!("{}/compute/", st.base);
    let mut body = samples::rewrite(samples::NOVA_VERSION_V21, &[("http://openstack.example.com/", &compute)]);
    advertise(&mut body["version"], st.max_microversion());
    json_response(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microversion_headers_are_read_and_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(requested_microversion(&h), None);
        h.insert("x-openstack-nova-api-version", HeaderValue::from_static("2.60"));
        assert_eq!(requested_microversion(&h).as_deref(), Some("2.60"));
        h.insert("openstack-api-version", HeaderValue::from_static("volume 3.0, compute 2.79"));
        assert_eq!(requested_microversion(&h).as_deref(), Some("2.79"));
        let max = SAMPLE_MAX_VERSION;
        assert_eq!(parse_microversion(Some("2.79"), max).ok(), Some((2, 79)));
        assert_eq!(parse_microversion(Some("latest"), max).ok(), Some(max));
        assert_eq!(parse_microversion(Some("latest"), (2, 1)).ok(), Some((2, 1)));
        assert_eq!(parse_microversion(None, (2, 1)).ok(), Some(MIN_VERSION));
        assert!(parse_microversion(Some("2.200"), max).is_err());
        assert!(parse_microversion(Some("2.2"), (2, 1)).is_err());
        assert!(parse_microversion(Some("two"), max).is_err());
    }
}
