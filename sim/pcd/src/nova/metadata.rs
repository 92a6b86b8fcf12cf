//! One server metadata item: `PUT /servers/{server_id}/metadata/{key}` with `{"meta": {key: value}}`
//! creates or replaces that item and leaves the others
//! (https://docs.openstack.org/api-ref/compute/#create-or-update-metadata-item). Nova's refusals:
//! a body that is not exactly one item (its JSON schema, 400), a key other than the URL's
//! ("Request body and URI mismatch", 400), keys and values longer than 255 (400), and a server it
//! does not have (404).

use super::*;

pub(crate) fn set_item(st: &SimState, id: &str, key: &str, body: &[u8]) -> Response {
    let meta = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut doc)) => doc.remove("meta"),
        Ok(_) => None,
        Err(_) => return bad_request("Malformed request body"),
    };
    let Some(Value::Object(meta)) = meta else {
        return bad_request("Invalid input for field/attribute meta. Value: None. 'meta' is a required property");
    };
    if meta.len() != 1 {
        return bad_request(format!(
            "Invalid input for field/attribute meta. Value: {}. It must have exactly one property",
            Value::Object(meta.clone())
        ));
    }
    let Some(value) = meta.get(key) else { return bad_request("Request body and URI mismatch") };
    let Some(text) = value.as_str() else {
        return bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {value}. is not of type 'string'"
        ));
    };
    if key.is_empty() || key.chars().count() > 255 || text.chars().count() > 255 {
        return bad_request(format!(
            "Invalid input for field/attribute {key}: keys and values are 1 to 255 characters"
        ));
    }
    let mut servers = lock(&st.servers);
    let Some(server) = servers.list.iter_mut().find(|s| s.id == id) else { return instance_not_found(id) };
    server.metadata.insert(key.to_string(), Value::String(text.to_string()));
    json_response(StatusCode::OK, json!({"meta": {key: text}}))
}
