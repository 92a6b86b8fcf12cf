//! The export as CSV (RFC 4180): one row per history entry, with its record's identity beside
//! each (a request's requester and cloud; a change's environment), so a spreadsheet can filter and
//! sort the whole period. A request's entries fill `from` and `to`, a change's `event`. Fields that hold a comma, a quote
//! or a line break are quoted, quotes doubled; rows end with CRLF. Values are written as Gatehouse
//! recorded them (a spreadsheet should import them as text, not evaluate them).

use serde_json::Value;

pub(super) const HEADER: [&str; 16] = [
    "record_id",
    "number",
    "requester",
    "cloud",
    "status",
    "entry",
    "at",
    "actor",
    "from",
    "to",
    "note",
    "proof",
    "hash",
    "kind",
    "environment",
    "event",
];

/// One field, quoted when it must be.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// One row, with its CRLF.
pub(super) fn row<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields.iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The rows of one evidence record: one per history entry (none for a request without history).
pub(super) fn rows(record: &Value) -> String {
    let request = &record["request"];
    let fixed = [
        text(&record["id"]),
        text(&record["servicenow"]["number"]),
        text(&request["requester"]["email"]),
        text(&request["cloud"]),
        text(&record["status"]),
    ];
    let mut out = String::new();
    for (i, entry) in record["history"].as_array().into_iter().flatten().enumerate() {
        let mut fields = fixed.to_vec();
        fields.push(i.to_string());
        for name in ["at", "actor", "from", "to", "note", "proof", "hash"] {
            fields.push(text(&entry[name]));
        }
        fields.extend([text(&record["kind"]), text(&record["environment"]), text(&entry["event"])]);
        out.push_str(&row(&fields));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(
            row(&["a", "b,c", "say \"hi\"", "two\nlines", ""]),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
        );
        let record = json!({
            "kind": "request", "id": "r1", "status": "active", "servicenow": {"number": "RITM1"},
            "request": {"requester": {"email": "ada@example.com"}, "cloud": "demo"},
            "history": [
                {"at": "2026-01-01T00:00:00Z", "actor": "servicenow", "from": null, "to": "pending_approval", "note": "received, asked", "hash": "ab"},
                {"at": "2026-01-01T00:01:00Z", "actor": "ops@example.com", "from": "pending_approval", "to": "approved", "note": null, "proof": "link only", "hash": "cd"}
            ]
        });
        assert_eq!(
            rows(&record),
            "r1,RITM1,ada@example.com,demo,active,0,2026-01-01T00:00:00Z,servicenow,,pending_approval,\"received, asked\",,ab,request,,\r\n\
             r1,RITM1,ada@example.com,demo,active,1,2026-01-01T00:01:00Z,ops@example.com,pending_approval,approved,,link only,cd,request,,\r\n"
        );
        let change = json!({
            "kind": "change", "id": "4242/af5b/production", "status": "reported", "environment": "production",
            "servicenow": {"number": "CHG1"},
            "history": [{"at": "2026-01-01T00:00:00Z", "actor": "gatehouse", "event": "closed", "note": "closed", "hash": "ef"}]
        });
        assert_eq!(
            rows(&change),
            "4242/af5b/production,CHG1,,,reported,0,2026-01-01T00:00:00Z,gatehouse,,,closed,,ef,change,production,closed\r\n"
        );
    }
}
