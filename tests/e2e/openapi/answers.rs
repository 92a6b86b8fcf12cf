//! What a route answers, as received, checked against the document: the status is documented,
//! with its content type, and a JSON body matches the schema (the part of JSON Schema the
//! document uses).

use reqwest::RequestBuilder;
use serde_json::Value;

use crate::document::resolve;

/// An answer as received: status, content type (without parameters), body, WWW-Authenticate.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub challenge: String,
}

pub async fn answer(req: RequestBuilder) -> Answer {
    let resp = req.send().await.unwrap();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let content_type = header("content-type").split(';').next().unwrap_or("").trim().to_string();
    let challenge = header("www-authenticate");
    let status = resp.status().as_u16();
    Answer { status, content_type, challenge, body: resp.text().await.unwrap() }
}

/// Checks an answer of `method path` against the document: its status is documented, with its
/// content type, and a JSON body matches the schema.
pub fn conforms(doc: &Value, method: &str, path: &str, a: &Answer) -> Vec<String> {
    let at = format!("{method} {path} → {}", a.status);
    let Some(operation) = doc["paths"][path].get(method.to_ascii_lowercase()) else {
        return vec![format!("{at}: not documented")];
    };
    let Some(response) = operation["responses"].get(a.status.to_string()) else {
        return vec![format!("{at}: status not documented ({})", a.body)];
    };
    let response = resolve(doc, response);
    let Some(media) = response["content"].get(&a.content_type) else {
        return vec![format!("{at}: content type {:?} not documented", a.content_type)];
    };
    let mut problems = Vec::new();
    if a.content_type.ends_with("json") {
        match serde_json::from_str::<Value>(&a.body) {
            Ok(body) => check_schema(doc, &media["schema"], &body, &at, &mut problems),
            Err(e) => problems.push(format!("{at}: not JSON: {e}")),
        }
    } else {
        check_schema(doc, &media["schema"], &Value::String(a.body.clone()), &at, &mut problems);
    }
    problems
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// The part of JSON Schema the document uses for answers: `$ref`, `type`, `const`, `enum`,
/// `oneOf`, `required`, `properties` (an answer's every field must be documented) and `items`.
fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(branches) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        let fits = branches.iter().any(|b| {
            let mut p = Vec::new();
            check_schema(doc, b, value, at, &mut p);
            p.is_empty()
        });
        if !fits {
            problems.push(format!("{at}: {value} fits none of {}", Value::Array(branches.clone())));
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        problems.push(format!("{at}: {value} is not {c}"));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {}", Value::Array(options.clone())));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
        problems.push(format!("{at}: {value} is not of type {types:?}"));
        return;
    }
    if let Some(object) = value.as_object() {
        for field in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(field) {
                problems.push(format!("{at}: required field {field} missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, v) in object {
                match properties.get(name) {
                    Some(s) => check_schema(doc, s, v, &format!("{at}.{name}"), problems),
                    None if schema["additionalProperties"].is_boolean() && schema["additionalProperties"] == true => {}
                    None => problems.push(format!("{at}: field {name} is answered but not documented")),
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check_schema(doc, items, v, &format!("{at}[{i}]"), problems);
        }
    }
}

pub fn problem_type(a: &Answer) -> String {
    serde_json::from_str::<Value>(&a.body).ok().and_then(|v| v["type"].as_str().map(String::from)).unwrap_or_default()
}
