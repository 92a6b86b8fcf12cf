//! [`Record`]: one ServiceNow record as the API returned it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One record: the `result` object of a Table API answer, kept as JSON.
///
/// A field may come in any of the shapes ServiceNow uses:
/// - a plain string (`"state": "3"`; the Table API's stored or display values);
/// - a reference with its link (`{"link": "...", "value": "<sys_id>"}`);
/// - `{"display_value": ..., "value": ...}` (`sysparm_display_value=all`, or the Change
///   Management API, whose `value` may be a JSON number or boolean);
/// - `{"display_value": ..., "link": ...}` (a reference read with display values).
///
/// The accessors read all of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record(pub Map<String, Value>);

impl Record {
    /// A record from a JSON object (`None` for anything else).
    pub fn from_value(v: Value) -> Option<Record> {
        match v {
            Value::Object(m) => Some(Record(m)),
            _ => None,
        }
    }

    /// The field as sent, whatever its shape.
    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    /// The field's text when it is a string: a plain string, or the `value` of an object (its
    /// `display_value` when it has no `value`). `None` when missing, null or not a string (use
    /// [`Record::value`] for the Change Management API's numbers and booleans).
    pub fn str(&self, field: &str) -> Option<&str> {
        match self.0.get(field)? {
            Value::String(s) => Some(s),
            Value::Object(o) => match o.get("value") {
                Some(v) => v.as_str(),
                None => o.get("display_value").and_then(Value::as_str),
            },
            _ => None,
        }
    }

    /// The stored value as text: a plain value, or the `value` of an object. Numbers read as
    /// ServiceNow writes them in the Table API (`3.0` → `"3"`), booleans as `"true"`/`"false"`.
    pub fn value(&self, field: &str) -> Option<String> {
        match self.0.get(field)? {
            Value::Object(o) => match o.get("value") {
                Some(v) => text(v),
                None => o.get("display_value").and_then(text),
            },
            v => text(v),
        }
    }

    /// The display value as text: the `display_value` of an object, else the plain value (which
    /// is the display value when the record was read with [`crate::DisplayValue::Display`]).
    pub fn display(&self, field: &str) -> Option<String> {
        match self.0.get(field)? {
            Value::Object(o) => match o.get("display_value") {
                Some(v) => text(v),
                None => o.get("value").and_then(text),
            },
            v => text(v),
        }
    }

    /// The reference's `link` (a URL), when the field is a reference read with links.
    pub fn link(&self, field: &str) -> Option<&str> {
        self.0.get(field)?.as_object()?.get("link")?.as_str()
    }

    pub fn sys_id(&self) -> Option<&str> {
        self.str("sys_id").filter(|s| !s.is_empty())
    }

    /// `RITM0010001`, `CHG0030001`, ...
    pub fn number(&self) -> Option<&str> {
        self.str("number").filter(|s| !s.is_empty())
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

impl From<Map<String, Value>> for Record {
    fn from(m: Map<String, Value>) -> Self {
        Record(m)
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_shape() {
        let r = Record::from_value(json!({
            "sys_id": "abc",
            "number": "CHG0030001",
            "state": {"display_value": "Closed", "value": 3.0},
            "active": {"display_value": "false", "value": false},
            "approval": "approved",
            "opened_by": {"link": "https://i/api/now/table/sys_user/u1", "value": "u1"},
            "assigned_to": {"display_value": "Ada", "link": "https://i/api/now/table/sys_user/u2"},
            "empty": "",
            "nothing": null
        }))
        .unwrap();
        assert_eq!(r.sys_id(), Some("abc"));
        assert_eq!(r.number(), Some("CHG0030001"));
        assert_eq!(r.value("state").as_deref(), Some("3"));
        assert_eq!(r.display("state").as_deref(), Some("Closed"));
        assert_eq!(r.str("state"), None);
        assert_eq!(r.value("active").as_deref(), Some("false"));
        assert_eq!(r.str("approval"), Some("approved"));
        assert_eq!(r.display("approval").as_deref(), Some("approved"));
        assert_eq!(r.str("opened_by"), Some("u1"));
        assert_eq!(r.link("opened_by"), Some("https://i/api/now/table/sys_user/u1"));
        assert_eq!(r.str("assigned_to"), Some("Ada"));
        assert_eq!(r.display("assigned_to").as_deref(), Some("Ada"));
        assert_eq!(r.str("empty"), Some(""));
        assert_eq!(r.value("nothing"), None);
        assert_eq!(r.value("missing"), None);
        assert!(Record::from_value(json!([1])).is_none());
    }
}
