//! The evidence record as a printable HTML page (`Accept: text/html`): the same record as the
//! JSON, laid out for a person. Every value is escaped; the page loads nothing and runs nothing
//! (the CSP allows inline styles only).

use html_escape::encode_safe as esc;
use serde_json::Value;

/// No scripts, no frames, nothing fetched: the page is text and its inline style.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #cbd2d9}
table{border-collapse:collapse;margin:.5rem 0;width:100%}th,td{text-align:left;padding:4px 8px;vertical-align:top;border-bottom:1px solid #e4e7eb}
th{color:#52606d;font-weight:600}td.hash{font-family:ui-monospace,monospace;font-size:.75rem;word-break:break-all}
.ok{padding:.75rem 1rem;background:#e3f9e5;border-radius:4px}.broken{padding:.75rem 1rem;background:#ffe3e3;border-radius:4px;font-weight:600}
.note{color:#52606d;font-size:.9rem}@media print{body{margin:0;max-width:none}.ok,.broken{border:1px solid #52606d}}";

/// A value as text: strings as they are, null as a dash, anything else as its JSON.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name).unwrap_or(&Value::Null)
}

fn rows(pairs: &[(&str, String)]) -> String {
    let mut out = String::from("<table>");
    for (k, v) in pairs {
        out.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v)));
    }
    out.push_str("</table>");
    out
}

/// A table with `columns` (heading, field of each item) over `items`; the `hash` column in a
/// fixed-width font.
fn table(items: &Value, columns: &[(&str, &str)], empty: &str) -> String {
    let list = items.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return format!("<p class=\"note\">{}</p>", esc(empty));
    }
    let mut out = String::from("<table><tr>");
    for (heading, _) in columns {
        out.push_str(&format!("<th>{}</th>", esc(heading)));
    }
    out.push_str("</tr>");
    for item in list {
        out.push_str("<tr>");
        for (_, name) in columns {
            let class = if *name == "hash" { " class=\"hash\"" } else { "" };
            out.push_str(&format!("<td{class}>{}</td>", esc(&cell(item, name))));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

fn cell(item: &Value, name: &str) -> String {
    match field(item, name) {
        Value::Array(parts) => parts.iter().map(text).collect::<Vec<_>>().join(", "),
        other => text(other),
    }
}

fn person(v: &Value) -> String {
    match (field(v, "name"), field(v, "email")) {
        (Value::Null, Value::Null) => "—".into(),
        (name, email) => format!("{} <{}>", text(name), text(email)),
    }
}

/// The banner saying whether the chain verifies, from the record's `chain_ok`, `chain_break` and
/// the head `head`.
fn chain_banner(record: &Value, head: &Value) -> String {
    let entries = field(record, "history").as_array().map_or(0, Vec::len);
    if record["chain_ok"] == true {
        format!(
            "<p class=\"ok\">History chain verified: {} entries chained, {} recorded before chaining.</p>",
            esc(&text(field(head, "count"))),
            esc(&text(field(head, "unchained")))
        )
    } else {
        let broken = field(record, "chain_break");
        format!(
            "<p class=\"broken\">History chain BROKEN at entry {} (of {entries}): {}</p>",
            esc(&text(field(broken, "entry"))),
            esc(&text(field(broken, "reason")))
        )
    }
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>Evidence {}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    )
}

/// The page for a change record's evidence (`change_record::evidence`).
pub fn render_change(record: &Value) -> String {
    let number = text(field(field(record, "servicenow"), "number"));
    let gitlab = field(record, "gitlab");
    let mut body = format!(
        "<h1>Evidence: {} — change {}</h1>{}<h2>Change</h2>{}",
        esc(&number),
        esc(&text(field(record, "id"))),
        chain_banner(record, field(record, "chain")),
        rows(&[
            ("Status", text(field(record, "status"))),
            ("ServiceNow change", format!("{number} (sys_id {})", text(field(field(record, "servicenow"), "sys_id")))),
            ("Project", format!("{} ({})", text(field(gitlab, "project_path")), text(field(gitlab, "project_id")))),
            ("Commit", text(field(gitlab, "sha"))),
            ("Environment", text(field(record, "environment"))),
            ("Title", text(field(record, "title"))),
            ("Pipeline", text(field(gitlab, "pipeline_url"))),
            ("Merge request", text(field(gitlab, "merge_request_iid"))),
            ("Emergency", text(field(record, "emergency_reason"))),
            ("Planned", format!("{} – {}", text(field(record, "planned_start")), text(field(record, "planned_end")))),
            ("Verify job played", text(field(gitlab, "played_job"))),
            ("Deployment", text(field(record, "deployment"))),
            ("Created", text(field(record, "created_at"))),
            ("Last written", text(field(record, "updated_at"))),
        ])
    );
    body.push_str("<h2>Requested by</h2>");
    body.push_str(&table(
        field(record, "requested_by"),
        &[("At", "at"), ("Who", "actor"), ("Run as", "user"), ("Identity", "proof")],
        "No request recorded.",
    ));
    body.push_str("<h2>History</h2>");
    body.push_str(&table(
        field(record, "history"),
        &[
            ("At", "at"),
            ("Actor", "actor"),
            ("Run as", "user"),
            ("Step", "event"),
            ("Note", "note"),
            ("Identity", "proof"),
            ("Hash", "hash"),
        ],
        "No history (recorded before change histories were kept).",
    ));
    document(&number, &body)
}

/// The whole page for one evidence record.
pub fn render(record: &Value) -> String {
    let request = field(record, "request");
    let number = text(field(field(record, "servicenow"), "number"));
    let id = text(field(record, "id"));
    let history = field(record, "history");
    let chain = chain_banner(record, field(request, "chain"));
    let decision = field(record, "decision");
    let mut body = format!(
        "<h1>Evidence: {} — request {}</h1>{chain}<h2>Request</h2>{}",
        esc(&number),
        esc(&id),
        rows(&[
            ("Status", text(field(record, "status"))),
            ("Error", text(field(record, "error"))),
            ("ServiceNow item", format!("{number} (sys_id {})", text(field(field(record, "servicenow"), "sys_id")))),
            ("Requested for", person(field(request, "requester"))),
            ("Opened by", person(field(request, "opened_by"))),
            ("Cloud", text(field(request, "cloud"))),
            ("Image", text(field(field(request, "image"), "name"))),
            ("Flavor", text(field(field(request, "flavor"), "name"))),
            ("Network", text(field(field(request, "network"), "name"))),
            ("Server name", text(field(request, "server_name"))),
            ("Count", text(field(request, "count"))),
            ("Justification", text(field(request, "justification"))),
            ("Metadata", text(field(request, "metadata"))),
            ("Created", text(field(request, "created_at"))),
            ("Last written", text(field(request, "updated_at"))),
            ("Retire at", text(field(record, "retire_at"))),
        ])
    );
    body.push_str("<h2>Approvals</h2>");
    body.push_str(&table(
        field(record, "approvals"),
        &[
            ("Stage", "stage"),
            ("Group", "group"),
            ("Rule", "rule"),
            ("Approver", "approver"),
            ("Delegate", "delegate"),
            ("At", "at"),
            ("Identity", "proof"),
        ],
        "No approval was counted in a stage.",
    ));
    body.push_str(&rows(&[
        ("Decided by", text(field(decision, "decided_by"))),
        ("Identity", text(field(decision, "proof"))),
        ("Comment", text(field(decision, "comment"))),
        ("Approved by the policy itself", text(field(decision, "auto_approved"))),
    ]));
    body.push_str("<h2>Servers</h2>");
    body.push_str(&table(
        field(record, "servers"),
        &[("Id", "id"), ("Name", "name"), ("Status", "status"), ("Addresses", "addresses")],
        "No server was created.",
    ));
    body.push_str("<h2>History</h2>");
    body.push_str(&table(
        history,
        &[
            ("At", "at"),
            ("Actor", "actor"),
            ("From", "from"),
            ("To", "to"),
            ("Note", "note"),
            ("Identity", "proof"),
            ("Hash", "hash"),
        ],
        "No history.",
    ));
    let mails = field(record, "mails");
    body.push_str("<h2>Mails</h2>");
    body.push_str(&format!("<p class=\"note\">{}</p>", esc(&text(field(mails, "kept")))));
    body.push_str("<h3>Sent</h3>");
    body.push_str(&table(
        field(mails, "sent"),
        &[("To", "to"), ("Template", "template"), ("Subject", "subject"), ("Sent", "sent_at")],
        "No mail was sent.",
    ));
    body.push_str("<h3>Owed</h3>");
    body.push_str(&table(
        field(mails, "owed"),
        &[
            ("To", "to"),
            ("Template", "template"),
            ("Queued", "queued_at"),
            ("Status", "status"),
            ("Attempts", "attempts"),
            ("Last error", "last_error"),
        ],
        "No mail is owed or dead.",
    ));
    document(&number, &body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let record = json!({
            "id": "0190e8d4-0000-7000-8000-000000000001", "status": "active", "chain_ok": false,
            "chain_break": {"entry": 1, "reason": "<b>edited</b>"},
            "servicenow": {"number": "RITM<1>", "sys_id": "\"x\""},
            "request": {"justification": "<script>alert(1)</script>", "requester": {"name": "A & B", "email": "a@example.com"}},
            "history": [{"actor": "<img src=x onerror=alert(1)>", "hash": "ab"}],
            "approvals": [], "servers": [], "mails": {"kept": "k", "owed": []}, "decision": {}
        });
        let page = render(&record);
        assert!(!page.contains("<script>") && !page.contains("<img") && !page.contains("<b>edited"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"), "{page}");
        assert!(page.contains("BROKEN at entry 1"));
        let change = json!({
            "id": "4242/abc/production", "chain_ok": true, "chain": {"count": 2, "unchained": 0},
            "servicenow": {"number": "CHG<1>"}, "gitlab": {"project_path": "<acme>"},
            "title": "<script>x</script>", "history": [{"actor": "ci", "event": "requested", "note": "<i>n</i>"}],
            "requested_by": []
        });
        let page = render_change(&change);
        assert!(!page.contains("<script>") && !page.contains("<i>n") && !page.contains("<acme>"), "{page}");
        assert!(page.contains("History chain verified: 2 entries chained"), "{page}");
    }
}
