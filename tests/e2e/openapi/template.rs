//! template.yaml read as API Gateway routes, and compared with the functions' route tables.

use std::collections::{BTreeMap, BTreeSet};

use http_api::RouteSpec;

use crate::{key, route_key};

/// One HttpApi event of template.yaml.
#[derive(Debug, Clone)]
struct Wired {
    resource: String,
    binary: Option<String>,
    method: String,
    path: String,
}

/// The value of `Name: value` in a flow or block mapping's text (quotes removed).
fn yaml_field(text: &str, name: &str) -> Option<String> {
    let needle = format!("{name}:");
    let at = text
        .match_indices(&needle)
        .find(|(i, _)| *i == 0 || matches!(text.as_bytes()[i - 1], b' ' | b'{' | b',' | b'\n'))?;
    let rest = text[at.0 + needle.len()..].trim_start();
    let value = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next()?
    } else if let Some(quoted) = rest.strip_prefix('\'') {
        quoted.split('\'').next()?
    } else {
        rest.split([',', '}', '\n']).next()?.trim()
    };
    Some(value.trim().to_string())
}

/// Every HttpApi event of template.yaml with its resource and the resource's Handler (the name
/// functions/bootstrap dispatches on).
/// A line-based reader of the layout the template uses (two-space indents, events in flow or block
/// style); it refuses what it cannot read rather than skip it.
fn template_events(template: &str) -> Result<Vec<Wired>, String> {
    let mut events = Vec::new();
    let mut in_resources = false;
    let mut resource: Option<(String, Option<String>)> = None;
    let mut pending: Vec<(String, String)> = Vec::new(); // (event name, text) of the resource
    let mut events_indent: Option<usize> = None;
    let mut event_indent: Option<usize> = None;

    let mut flush = |resource: &Option<(String, Option<String>)>, pending: &mut Vec<(String, String)>| {
        for (name, text) in pending.drain(..) {
            if yaml_field(&text, "Type").as_deref() != Some("HttpApi") {
                continue;
            }
            let (res, binary) = resource.clone().expect("events belong to a resource");
            match (yaml_field(&text, "Method"), yaml_field(&text, "Path")) {
                (Some(method), Some(path)) => {
                    events.push(Wired { resource: res, binary, method: method.to_ascii_uppercase(), path })
                }
                _ => events.push(Wired { resource: res, binary, method: format!("<unreadable {name}>"), path: text }),
            }
        }
    };

    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            flush(&resource, &mut pending);
            in_resources = trimmed == "Resources:";
            resource = None;
            events_indent = None;
            continue;
        }
        if !in_resources {
            continue;
        }
        if indent == 2 {
            flush(&resource, &mut pending);
            resource = Some((trimmed.trim_end_matches(':').to_string(), None));
            events_indent = None;
            continue;
        }
        if let Some(binary) = yaml_field(trimmed, "Handler")
            && let Some((_, b)) = resource.as_mut()
        {
            *b = Some(binary);
        }
        match events_indent {
            Some(ei) if indent > ei => {
                let child = *event_indent.get_or_insert(indent);
                if indent == child {
                    let (name, rest) =
                        trimmed.split_once(':').ok_or_else(|| format!("cannot read event line {line:?}"))?;
                    pending.push((name.trim().to_string(), rest.to_string()));
                } else if let Some((_, text)) = pending.last_mut() {
                    text.push('\n');
                    text.push_str(trimmed);
                }
            }
            Some(_) => events_indent = None,
            None => {}
        }
        if events_indent.is_none() && trimmed == "Events:" {
            events_indent = Some(indent);
            event_indent = None;
        }
    }
    flush(&resource, &mut pending);
    let declared = template.matches("Type: HttpApi").count();
    if declared != events.len() {
        return Err(format!("read {} HttpApi events but the template has {declared}", events.len()));
    }
    Ok(events)
}

/// Everything in which template.yaml and the functions' route tables disagree.
pub fn template_problems(template: &str, functions: &BTreeMap<&'static str, Vec<RouteSpec>>) -> Vec<String> {
    let events = match template_events(template) {
        Ok(events) => events,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let wired: BTreeSet<(String, String, String)> =
        events.iter().map(|e| (e.binary.clone().unwrap_or_default(), e.method.clone(), e.path.clone())).collect();
    for (binary, routes) in functions {
        for route in routes {
            let (method, path) = route_key(route);
            if !wired.contains(&(binary.to_string(), method.clone(), path.clone())) {
                problems.push(format!("{method} {path} is not wired in template.yaml to the {binary} function"));
            }
            if method == "GET" && !wired.contains(&(binary.to_string(), "HEAD".into(), path.clone())) {
                problems.push(format!("HEAD {path} (the GET route's HEAD) is not wired to the {binary} function"));
            }
        }
    }
    for e in &events {
        let Some(binary) = &e.binary else {
            problems.push(format!("{}: an HttpApi event on a resource with no Handler", e.resource));
            continue;
        };
        let method = if e.method == "HEAD" { "GET" } else { e.method.as_str() };
        let served = functions
            .get(binary.as_str())
            .is_some_and(|routes| routes.iter().any(|r| route_key(r) == key(method, &e.path)));
        if !served {
            problems.push(format!(
                "template.yaml wires {} {} to {} ({binary}), which has no such route",
                e.method, e.path, e.resource
            ));
        }
    }
    problems
}
