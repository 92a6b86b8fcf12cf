//! The systems of record as the auditor reads them, with the auditor's own credentials (never
//! Gatehouse's): ServiceNow's journal (`sys_journal_field`) through the Table API, and GitLab's
//! merge request notes. Credentials come from the environment only and are sent only in headers,
//! never to wherever a redirect points.

use std::time::Duration;

use domain::evidence::{ChainHead, parse_anchors};
use jiff::{SignedDuration, Timestamp};
use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

use super::super::Fail;
use super::super::walk::{one_line, retryable, transport};

pub const SERVICENOW_USER: &str = "GATEHOUSE_AUDIT_SERVICENOW_USER";
pub const SERVICENOW_PASSWORD: &str = "GATEHOUSE_AUDIT_SERVICENOW_PASSWORD";
pub const SERVICENOW_TOKEN: &str = "GATEHOUSE_AUDIT_SERVICENOW_TOKEN";
pub const GITLAB_TOKEN: &str = "GATEHOUSE_AUDIT_GITLAB_TOKEN";

/// The tables Gatehouse writes work notes on: request items and changes.
pub const TABLES: [&str; 2] = ["sc_req_item", "change_request"];

/// Journal entries read per call. The Table API's `sysparm_limit` defaults to 10,000 ("Unusually
/// large sysparm_limit values can impact system performance"), and `sysparm_offset` skips that
/// many records for the next page:
/// https://www.servicenow.com/community/itom-forum/pagination-in-api-response/m-p/900677
const JOURNAL_PAGE: usize = 1000;

/// Retries of one call after the first failure (429, 5xx, a lost connection): 1, 2 and 4 s.
const RETRIES: u32 = 3;

/// One anchor ServiceNow holds: on which record (table and sys_id) and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    pub table: String,
    pub sys_id: String,
    /// `sys_created_on` as ServiceNow stores it (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub written: String,
    pub anchor: ChainHead,
}

fn client() -> Result<reqwest::Client, Fail> {
    reqwest::Client::builder()
        .user_agent(concat!("gatehouse-audit/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        // Credentials go to the system named, never to wherever a redirect points.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Fail(format!("the HTTP client could not be built: {e}")))
}

/// `raw` as the base URL of `flag`: http(s), a host, no credentials, no query.
fn system_url(flag: &str, raw: &str, credentials: &str) -> Result<Url, Fail> {
    let invalid = || Fail(format!("{flag} {raw:?} is not an http(s) URL"));
    let mut url = Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Fail(format!("{flag} must not carry credentials; they go in {credentials}")));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// An environment variable, set and not blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn sensitive(value: String, name: &str) -> Result<HeaderValue, Fail> {
    let mut header = HeaderValue::from_str(&value)
        .map_err(|_| Fail(format!("{name} contains characters that cannot be sent in a header")))?;
    header.set_sensitive(true);
    Ok(header)
}

/// GET with retries: `Some` answer on success, `None` on 404, a `Fail` naming the status and
/// what the system said (its error message, never the request's headers) on any other refusal.
async fn get(system: &str, hint: &str, request: impl Fn() -> RequestBuilder) -> Result<Option<Response>, Fail> {
    let mut attempt = 0;
    loop {
        let failure = match request().send().await {
            Ok(resp) if resp.status().is_success() => return Ok(Some(resp)),
            Ok(resp) if resp.status() == StatusCode::NOT_FOUND => return Ok(None),
            Ok(resp) if !retryable(resp.status()) => {
                let status = resp.status();
                let said = said(&resp.text().await.unwrap_or_default());
                let hint = if matches!(status.as_u16(), 401 | 403) { hint } else { "" };
                return Err(Fail(format!("{system} refused ({status}){said}{hint}")));
            }
            Ok(resp) => format!("{system} answered {}", resp.status()),
            Err(e) => format!("cannot reach {system}: {}", transport(&e)),
        };
        if attempt >= RETRIES {
            return Err(Fail(format!("{failure} (after {} attempts)", attempt + 1)));
        }
        let wait = Duration::from_secs(1 << attempt);
        eprintln!("gatehouse audit: {failure}; trying again in {} s", wait.as_secs());
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The message of an error body: ServiceNow's `{"error": {"message", "detail"}}`, GitLab's
/// `{"message"}` or `{"error"}`; nothing else of it.
fn said(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let parts: Vec<String> = [&v["error"]["message"], &v["error"]["detail"], &v["message"], &v["error"]]
        .iter()
        .filter_map(|p| p.as_str())
        .map(one_line)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() { String::new() } else { format!(": {}", parts.join(": ")) }
}

enum SnAuth {
    Basic { user: String, password: String },
    Bearer(HeaderValue),
}

/// ServiceNow's Table API, read with the auditor's user: HTTP Basic
/// (`GATEHOUSE_AUDIT_SERVICENOW_USER` and `…_PASSWORD`) or an OAuth access token the auditor
/// obtained (`GATEHOUSE_AUDIT_SERVICENOW_TOKEN`, sent as `Authorization: Bearer`). No `Debug`:
/// it holds the secret.
pub struct ServiceNow {
    http: reqwest::Client,
    base: Url,
    auth: SnAuth,
    /// Journal entries asked per call.
    page: usize,
    /// Only the notes this user wrote (`sys_created_by`), when set.
    author: Option<String>,
}

impl ServiceNow {
    /// `author`: only the notes that user wrote count (Gatehouse's own ServiceNow user, when more
    /// than one deployment writes to the instance).
    pub fn from_env(url: &str, author: Option<&str>) -> Result<ServiceNow, Fail> {
        let author = author.map(servicenow_user).transpose()?;
        let credentials = format!("{SERVICENOW_USER} and {SERVICENOW_PASSWORD}, or {SERVICENOW_TOKEN}");
        let base = system_url("--servicenow-url", url, &credentials)?;
        let auth = match (env(SERVICENOW_TOKEN), env(SERVICENOW_USER), env(SERVICENOW_PASSWORD)) {
            (Some(_), Some(_), _) => {
                return Err(Fail(format!("set either {SERVICENOW_TOKEN} or {SERVICENOW_USER}, not both")));
            }
            (Some(token), None, _) => SnAuth::Bearer(sensitive(format!("Bearer {}", token.trim()), SERVICENOW_TOKEN)?),
            (None, Some(user), Some(password)) => SnAuth::Basic { user, password },
            (None, Some(_), None) => {
                return Err(Fail(format!("{SERVICENOW_USER} is set but {SERVICENOW_PASSWORD} is not")));
            }
            (None, None, _) => {
                return Err(Fail(format!(
                    "--anchors reads ServiceNow with the auditor's own credentials: set {credentials}"
                )));
            }
        };
        Ok(ServiceNow { http: client()?, base, auth, page: JOURNAL_PAGE, author })
    }

    fn journal_url(&self) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "now", "table", "sys_journal_field"]);
        }
        url
    }

    /// Every anchor in a work note Gatehouse could have written (on a request item or a change)
    /// created in [`since`, `until`), oldest first.
    ///
    /// The encoded query (operators: "Operators available for filters and queries",
    /// https://docs.servicenow.com/bundle/istanbul-platform-user-interface/page/use/common-ui-elements/reference/r_OpAvailableFiltersQueries.html;
    /// `LIKE` is "contains") asks for the period widened by a day on each side, whatever time zone
    /// the instance reads the bounds in; the entries' `sys_created_on` comes back as stored, in
    /// UTC, and is checked against the exact period here. ServiceNow drops a condition it cannot
    /// read instead of failing, so every condition is checked here again too.
    pub async fn anchors(&self, since: Timestamp, until: Timestamp) -> Result<Vec<Anchored>, Fail> {
        let day = SignedDuration::from_hours(24);
        let bound = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M:%S").to_string();
        let (from, to) = (since.saturating_sub(day).unwrap_or(since), until.saturating_add(day).unwrap_or(until));
        let by = self.author.as_ref().map(|user| format!("^sys_created_by={user}")).unwrap_or_default();
        let query = format!(
            "element=work_notes^nameIN{}^valueLIKEgatehouse-chain:{by}^sys_created_on>={}^sys_created_on<{}^ORDERBYsys_created_on",
            TABLES.join(","),
            bound(from),
            bound(to)
        );
        let hint = format!("; check that the user of {SERVICENOW_USER} (or the token) may read sys_journal_field");
        let mut found = Vec::new();
        let mut offset = 0;
        loop {
            let mut url = self.journal_url();
            url.query_pairs_mut()
                .append_pair("sysparm_query", &query)
                .append_pair("sysparm_fields", "element_id,element,name,value,sys_created_on,sys_created_by")
                .append_pair("sysparm_display_value", "false")
                .append_pair("sysparm_limit", &self.page.to_string())
                .append_pair("sysparm_offset", &offset.to_string());
            let request = || {
                let call = self.http.get(url.clone()).header("Accept", "application/json");
                match &self.auth {
                    SnAuth::Basic { user, password } => call.basic_auth(user, Some(password)),
                    SnAuth::Bearer(header) => call.header(reqwest::header::AUTHORIZATION, header.clone()),
                }
            };
            let Some(resp) = get("ServiceNow", &hint, request).await? else {
                return Err(Fail(format!(
                    "ServiceNow answered 404 for {}: check --servicenow-url",
                    self.journal_url()
                )));
            };
            let page: Value = resp
                .json()
                .await
                .map_err(|e| Fail(format!("ServiceNow's journal page at offset {offset} is not JSON: {e}")))?;
            let entries = page["result"].as_array().cloned().unwrap_or_default();
            for entry in &entries {
                found.extend(anchors_of(entry, since, until, self.author.as_deref()));
            }
            if entries.len() < self.page {
                return Ok(found);
            }
            offset += entries.len();
        }
    }
}

impl ServiceNow {
    /// The `correlation_id` of change `sys_id` ("Table API", `GET /api/now/table/{tableName}/{sys_id}`,
    /// https://docs.servicenow.com/bundle/vancouver-api-reference/page/integrate/inbound-rest/concept/c_TableAPI.html),
    /// which Gatehouse sets to `gitlab:<project_id>:<sha>:<environment>`; `None` when ServiceNow
    /// has no such change (404) or it has no correlation id.
    pub async fn correlation_of_change(&self, sys_id: &str) -> Result<Option<String>, Fail> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "now", "table", "change_request", sys_id]);
        }
        url.query_pairs_mut()
            .append_pair("sysparm_fields", "correlation_id")
            .append_pair("sysparm_display_value", "false");
        let request = || {
            let call = self.http.get(url.clone()).header("Accept", "application/json");
            match &self.auth {
                SnAuth::Basic { user, password } => call.basic_auth(user, Some(password)),
                SnAuth::Bearer(header) => call.header(reqwest::header::AUTHORIZATION, header.clone()),
            }
        };
        let hint = format!("; check that the user of {SERVICENOW_USER} (or the token) may read change_request");
        let Some(resp) = get("ServiceNow", &hint, request).await? else { return Ok(None) };
        let record: Value =
            resp.json().await.map_err(|e| Fail(format!("ServiceNow's change {sys_id} is not JSON: {e}")))?;
        Ok(record["result"]["correlation_id"].as_str().filter(|c| !c.is_empty()).map(str::to_string))
    }
}

/// A ServiceNow user name as `--servicenow-author` gives it: it goes into an encoded query, where
/// `^` would start another condition.
fn servicenow_user(user: &str) -> Result<String, Fail> {
    let user = user.trim();
    if user.is_empty() || user.chars().any(|c| c == '^' || c == ',' || c.is_control() || c.is_whitespace()) {
        return Err(Fail(format!(
            "--servicenow-author {user:?} is not a ServiceNow user name (no spaces, `^` or `,`)"
        )));
    }
    Ok(user.to_string())
}

/// The anchors of one journal entry, when it is a work note on a table Gatehouse writes, of a
/// record with a sys_id, written in [`since`, `until`) (to the second ServiceNow keeps), by
/// `author` when one is given.
fn anchors_of(entry: &Value, since: Timestamp, until: Timestamp, author: Option<&str>) -> Vec<Anchored> {
    let text = |f: &str| entry[f].as_str().unwrap_or_default();
    let (table, sys_id, written) = (text("name"), text("element_id").to_ascii_lowercase(), text("sys_created_on"));
    let is_sys_id = sys_id.len() == 32 && sys_id.bytes().all(|b| b.is_ascii_hexdigit());
    let at = format!("{}Z", written.replacen(' ', "T", 1)).parse::<Timestamp>().ok();
    let floor = |t: Timestamp| Timestamp::from_second(t.as_second()).unwrap_or(t);
    let in_period = at.is_some_and(|at| at >= floor(since) && at < until);
    let element = text("element");
    let by_author = author.is_none_or(|user| text("sys_created_by") == user);
    if !(element.is_empty() || element == "work_notes")
        || !TABLES.contains(&table)
        || !is_sys_id
        || !in_period
        || !by_author
    {
        return Vec::new();
    }
    parse_anchors(text("value"))
        .into_iter()
        .map(|anchor| Anchored { table: table.into(), sys_id: sys_id.clone(), written: written.into(), anchor })
        .collect()
}

/// GitLab's REST API, read with the auditor's token (`GATEHOUSE_AUDIT_GITLAB_TOKEN`, sent as
/// `PRIVATE-TOKEN`). No `Debug`: it holds the token.
pub struct GitLab {
    http: reqwest::Client,
    base: Url,
    token: HeaderValue,
}

impl GitLab {
    pub fn from_env(url: &str) -> Result<GitLab, Fail> {
        let base = system_url("--gitlab-url", url, GITLAB_TOKEN)?;
        let token = env(GITLAB_TOKEN).ok_or_else(|| {
            Fail(format!("--gitlab-url reads GitLab with the auditor's own token: set {GITLAB_TOKEN}"))
        })?;
        Ok(GitLab { http: client()?, base, token: sensitive(token.trim().to_string(), GITLAB_TOKEN)? })
    }

    /// The body of note `note_id` of merge request `mr_iid` of `project` ("Get single merge
    /// request note", `GET /projects/:id/merge_requests/:merge_request_iid/notes/:note_id`,
    /// https://docs.gitlab.com/ee/api/notes.html); `None` when GitLab has no such note (404).
    pub async fn note(&self, project: &str, mr_iid: u64, note_id: u64) -> Result<Option<String>, Fail> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            // `/api/v4` is added unless the URL has it, as for Gatehouse's own GitLab setting.
            if !self.base.path().trim_end_matches('/').ends_with("/api/v4") {
                path.extend(["api", "v4"]);
            }
            path.extend(["projects", project, "merge_requests", &mr_iid.to_string(), "notes", &note_id.to_string()]);
        }
        let hint = format!("; check that {GITLAB_TOKEN} may read the project (read_api)");
        let request = || self.http.get(url.clone()).header("PRIVATE-TOKEN", self.token.clone());
        let Some(resp) = get("GitLab", &hint, request).await? else { return Ok(None) };
        let note: Value = resp.json().await.map_err(|e| Fail(format!("GitLab's note {note_id} is not JSON: {e}")))?;
        Ok(Some(note["body"].as_str().unwrap_or_default().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const HASH: &str = "0f2b8a0c9e1d3f4a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8";
    const SYS_ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_journal_entry_gives_its_anchors_when_it_is_one_gatehouse_could_have_written() {
        let since: Timestamp = "2026-01-01T00:00:00.500Z".parse().unwrap();
        let until: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        let entry = |name: &str, sys_id: &str, at: &str| {
            json!({"element": "work_notes", "name": name, "element_id": sys_id, "sys_created_on": at,
                   "value": format!("Approved.\ngatehouse:m\n\ngatehouse-chain: 3:{HASH}")})
        };
        let found =
            anchors_of(&entry("sc_req_item", &SYS_ID.to_uppercase(), "2026-01-01 00:00:00"), since, until, None);
        assert_eq!(found.len(), 1, "the second the period starts in counts");
        assert_eq!((found[0].sys_id.as_str(), found[0].anchor.count), (SYS_ID, 3));
        assert_eq!(found[0].anchor.hash, HASH);
        assert!(anchors_of(&entry("change_request", SYS_ID, "2026-01-31 23:59:59"), since, until, None).len() == 1);
        for (name, sys_id, at) in [
            ("incident", SYS_ID, "2026-01-05 00:00:00"),
            ("sc_req_item", "not-a-sys-id", "2026-01-05 00:00:00"),
            ("sc_req_item", SYS_ID, "2025-12-31 23:59:59"),
            ("sc_req_item", SYS_ID, "2026-02-01 00:00:00"),
            ("sc_req_item", SYS_ID, "yesterday"),
        ] {
            assert!(anchors_of(&entry(name, sys_id, at), since, until, None).is_empty(), "{name} {sys_id} {at}");
        }
    }

    #[test]
    fn an_error_body_says_only_its_message() {
        let sn = r#"{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}"#;
        assert_eq!(said(sn), ": User Not Authenticated: Required to provide Auth information");
        assert_eq!(said(r#"{"message":"404 Not found"}"#), ": 404 Not found");
        assert_eq!(said("<html>"), "");
    }

    /// The journal as the simulator serves it: a page at a time, oldest first, only anchored work
    /// notes on the tables Gatehouse writes, within the period.
    #[tokio::test]
    async fn servicenows_journal_is_read_page_by_page() {
        use servicenow_sim::{SnSim, SnSimConfig};
        let sim = SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap();
        let item = |n: usize| {
            let id = sim.insert("sc_req_item", serde_json::Map::new());
            for i in 1..=n {
                assert!(sim.set_field(
                    "sc_req_item",
                    &id,
                    "work_notes",
                    &format!("step {i}\n\ngatehouse-chain: {i}:{HASH}")
                ));
            }
            assert!(sim.set_field("sc_req_item", &id, "work_notes", "a note by someone else"));
            id
        };
        let (first, second) = (item(3), item(2));
        let other = sim.insert("incident", serde_json::Map::new());
        assert!(sim.set_field("incident", &other, "work_notes", &format!("gatehouse-chain: 1:{HASH}")));
        let config = sim.config();
        let base = Url::parse(&sim.base_url()).unwrap();
        let reader = |author: Option<&str>| ServiceNow {
            http: client().unwrap(),
            base: base.clone(),
            auth: SnAuth::Basic { user: config.user.clone(), password: config.password.clone() },
            page: 2,
            author: author.map(str::to_string),
        };
        let sn = reader(None);
        let now = Timestamp::now();
        let found = sn.anchors(now - SignedDuration::from_hours(1), now + SignedDuration::from_hours(1)).await.unwrap();
        let got: Vec<(&str, u64)> = found.iter().map(|a| (a.sys_id.as_str(), a.anchor.count)).collect();
        assert_eq!(
            got,
            [(first.as_str(), 1), (first.as_str(), 2), (first.as_str(), 3), (second.as_str(), 1), (second.as_str(), 2)]
        );
        // The simulator's notes above were written by its "system" user: only those count for it,
        // none for Gatehouse's user.
        let hour = (now - SignedDuration::from_hours(1), now + SignedDuration::from_hours(1));
        assert_eq!(reader(Some("system")).anchors(hour.0, hour.1).await.unwrap(), found);
        assert_eq!(reader(Some(&config.user)).anchors(hour.0, hour.1).await.unwrap(), Vec::new());
        let later = sn.anchors(now + SignedDuration::from_hours(1), now + SignedDuration::from_hours(2)).await.unwrap();
        assert!(later.is_empty(), "{later:?}");
        let wrong = SnAuth::Basic { user: config.user.clone(), password: "wrong".into() };
        let refused = ServiceNow { auth: wrong, ..sn };
        let Fail(message) = refused.anchors(now, now + SignedDuration::from_hours(1)).await.err().unwrap();
        assert!(message.starts_with("ServiceNow refused (401 Unauthorized): User Not Authenticated"), "{message}");
        assert!(!message.contains("wrong"), "{message}");
    }

    /// One MR note from the simulator; a note it does not have is `None`; a bad token a refusal.
    #[tokio::test]
    async fn a_merge_request_note_is_read_by_id() {
        use gitlab_sim::{GitLabSim, GitLabSimConfig};
        let sim = GitLabSim::start("127.0.0.1:0".parse().unwrap(), GitLabSimConfig::default()).await.unwrap();
        sim.seed_demo();
        let id = sim.add_note(4242, 7, &format!("Deployed.\n\ngatehouse-chain: 2:{HASH}")).unwrap();
        let token = sensitive(GitLabSimConfig::default().token, GITLAB_TOKEN).unwrap();
        let gl = GitLab { http: client().unwrap(), base: Url::parse(&sim.base_url()).unwrap(), token };
        let body = gl.note("4242", 7, id).await.unwrap().unwrap();
        assert_eq!(parse_anchors(&body), [ChainHead { count: 2, hash: HASH.into() }]);
        assert_eq!(gl.note("4242", 7, id + 1000).await.unwrap(), None);
        let wrong = GitLab { token: sensitive("glpat-wrong".into(), GITLAB_TOKEN).unwrap(), ..gl };
        let Fail(message) = wrong.note("4242", 7, id).await.err().unwrap();
        assert!(message.starts_with("GitLab refused (401 Unauthorized)"), "{message}");
    }

    #[test]
    fn urls_carry_no_credentials() {
        let Fail(message) =
            system_url("--servicenow-url", "https://u:hunter2@acme.service-now.com", "X").err().unwrap();
        assert!(!message.contains("hunter2") && message.contains("X"), "{message}");
        assert!(system_url("--gitlab-url", "ftp://gitlab.example.com", "X").is_err());
        let url = system_url("--gitlab-url", "https://gitlab.example.com/api/v4?x=1", "X").unwrap();
        assert_eq!(url.as_str(), "https://gitlab.example.com/api/v4");
    }
}
