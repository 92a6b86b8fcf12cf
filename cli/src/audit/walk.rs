//! Walking `GET /v1/audit/export` page by page: the client (the token only ever in the header),
//! retries on 429, 5xx and lost connections, and the `Link: <…>; rel="next"` to the next page.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, LINK};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::Fail;

/// Calls of one page after the first failure: waits of 1, 2 and 4 s.
const RETRIES: u32 = 3;

/// Gatehouse's export, as one command walks it.
pub(super) struct Export {
    http: reqwest::Client,
    base: Url,
    /// `Bearer <token>`, marked sensitive: only ever sent.
    auth: HeaderValue,
}

/// One record of the export: its line as received, and the line read.
pub(super) struct Line<'a> {
    pub(super) text: &'a str,
    pub(super) record: &'a Value,
}

/// What a walk went through.
#[derive(Debug, Default)]
pub(super) struct Walked {
    pub(super) records: usize,
    pub(super) pages: usize,
    /// Requests met again (written while the walk ran): passed over, the first kept.
    pub(super) repeated: usize,
}

impl Export {
    /// `url` (Gatehouse's base URL) and `token` (scope audit), checked.
    pub(super) fn new(url: &str, token: Option<String>) -> Result<Export, Fail> {
        let base = base_url(url)?;
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Fail("GATEHOUSE_TOKEN is not set: it holds a Gatehouse API token of scope audit".into()))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| Fail("GATEHOUSE_TOKEN contains characters that cannot be sent in a header".into()))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-audit/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            // The token goes to Gatehouse only, never to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Fail(format!("the HTTP client could not be built: {e}")))?;
        Ok(Export { http, base, auth })
    }

    fn page_url(&self, query: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v1", "audit", "export"]);
        }
        url.set_query(Some(query));
        url
    }

    /// Every record of the period given by `query` (`since=…&until=…`), in order, to `each`,
    /// which answers whether to go on.
    pub(super) async fn walk(
        &self,
        query: String,
        mut each: impl FnMut(Line<'_>) -> Result<bool, Fail>,
    ) -> Result<Walked, Fail> {
        let mut walked = Walked::default();
        let mut seen = HashSet::new();
        let mut next = Some(query);
        while let Some(query) = next.take() {
            let (body, link) = self.page(&query).await?;
            walked.pages += 1;
            for text in body.lines().filter(|l| !l.trim().is_empty()) {
                let record: Value = serde_json::from_str(text)
                    .map_err(|_| Fail(format!("page {} of the export holds a line that is not JSON", walked.pages)))?;
                let id = record["id"].as_str().unwrap_or_default().to_string();
                if !seen.insert(id) {
                    walked.repeated += 1;
                    continue;
                }
                walked.records += 1;
                if !each(Line { text, record: &record })? {
                    return Ok(walked);
                }
            }
            next = link.as_deref().and_then(next_query);
        }
        Ok(walked)
    }

    /// One page: its body and its `Link` header, after retries.
    async fn page(&self, query: &str) -> Result<(String, Option<String>), Fail> {
        let found = self.fetch(self.page_url(query), false).await?;
        Ok(found.unwrap_or_default())
    }

    /// The evidence record of the ServiceNow record `sys_id` (`GET /v1/audit/records?
    /// servicenow_sys_id=`), or `None` when Gatehouse holds none (404).
    pub(super) async fn record_of_servicenow(&self, sys_id: &str) -> Result<Option<Value>, Fail> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v1", "audit", "records"]);
        }
        url.query_pairs_mut().append_pair("servicenow_sys_id", sys_id);
        let Some((body, _)) = self.fetch(url, true).await? else { return Ok(None) };
        let record = serde_json::from_str(&body)
            .map_err(|_| Fail(format!("Gatehouse's record of ServiceNow sys_id {sys_id} is not JSON")))?;
        Ok(Some(record))
    }

    /// The evidence of the change record of `project_id`, `sha` and `environment`; `None` when
    /// Gatehouse has none.
    pub(super) async fn change_record(
        &self,
        project_id: u64,
        sha: &str,
        environment: &str,
    ) -> Result<Option<Value>, Fail> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v1", "changes", &project_id.to_string(), sha, "evidence"]);
        }
        url.query_pairs_mut().append_pair("environment", environment);
        let Some((body, _)) = self.fetch(url, true).await? else { return Ok(None) };
        let record = serde_json::from_str(&body)
            .map_err(|_| Fail(format!("Gatehouse's change record {project_id}/{sha}/{environment} is not JSON")))?;
        Ok(Some(record))
    }

    /// GET `url` with the token: the body and the `Link` header, after retries; `None` for a 404
    /// when `missing_ok` (a refusal otherwise).
    async fn fetch(&self, url: Url, missing_ok: bool) -> Result<Option<(String, Option<String>)>, Fail> {
        let mut attempt = 0;
        loop {
            let failure = match self.http.get(url.clone()).header(AUTHORIZATION, self.auth.clone()).send().await {
                Ok(resp) if resp.status().is_success() => {
                    let link = resp.headers().get(LINK).and_then(|v| v.to_str().ok()).map(str::to_string);
                    match resp.text().await {
                        Ok(body) => return Ok(Some((body, link))),
                        Err(e) => format!("the answer broke off: {e}"),
                    }
                }
                Ok(resp) if missing_ok && resp.status() == StatusCode::NOT_FOUND => return Ok(None),
                Ok(resp) if !retryable(resp.status()) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    return Err(refusal(status, &body));
                }
                Ok(resp) => format!("Gatehouse answered {}", resp.status()),
                Err(e) => format!("cannot reach Gatehouse at {}: {}", self.base, transport(&e)),
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
}

pub(super) fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// What a refusal means: its status, and the problem's title, detail and fields (nothing else of
/// the body).
fn refusal(status: StatusCode, body: &str) -> Fail {
    let problem: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut text = [&problem["title"], &problem["detail"]]
        .iter()
        .filter_map(|v| v.as_str())
        .map(one_line)
        .collect::<Vec<_>>()
        .join(": ");
    for error in problem["errors"].as_array().into_iter().flatten() {
        let (field, message) = (error["field"].as_str().unwrap_or(""), error["message"].as_str().unwrap_or(""));
        text.push_str(&format!(" ({}: {})", one_line(field), one_line(message)));
    }
    let hint = match status.as_u16() {
        401 => "; check GATEHOUSE_TOKEN",
        403 => "; GATEHOUSE_TOKEN needs the scope audit",
        404 => "; check --url (is this Gatehouse, and does it have /v1/audit/export?)",
        _ => "",
    };
    Fail(format!(
        "Gatehouse refused the export ({status}){}{hint}",
        if text.is_empty() { String::new() } else { format!(": {text}") }
    ))
}

pub(super) fn transport(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    one_line(&text)
}

pub(super) fn one_line(text: &str) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The query of the `rel="next"` link of a `Link` header (RFC 8288). Only the query is used: the
/// next page is asked of the same base URL (Gatehouse may sit under a path prefix it does not know).
pub(super) fn next_query(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        let next = params
            .split(';')
            .map(str::trim)
            .any(|p| p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next"));
        next.then(|| target.split_once('?').map(|(_, q)| q.to_string()))?
    })
}

/// `--url` checked: http(s), a host, no credentials in it.
fn base_url(raw: &str) -> Result<Url, Fail> {
    let invalid = || Fail(format!("--url {raw:?} is not an http(s) URL such as https://gatehouse.example.com"));
    let mut url = Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Fail("--url must not carry credentials; the token goes in GATEHOUSE_TOKEN".into()));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let header = r#"</v1/audit/export?since=a&until=b>; rel="prev", </v1/audit/export?since=a&until=b&cursor=c>; rel="next""#;
        assert_eq!(next_query(header).as_deref(), Some("since=a&until=b&cursor=c"));
        assert_eq!(next_query(r#"</x?q=1>; rel="prev""#), None);
        assert_eq!(next_query("garbage"), None);
    }

    #[test]
    fn pages_keep_a_base_path_and_the_token_is_required() {
        let export = Export::new("https://api.example.com/prod/", Some("t".repeat(40))).unwrap();
        assert_eq!(export.page_url("since=a").as_str(), "https://api.example.com/prod/v1/audit/export?since=a");
        assert!(Export::new("https://api.example.com", None).is_err());
        assert!(Export::new("ftp://api.example.com", Some("t".into())).is_err());
        let Fail(message) = Export::new("https://user:secret@api.example.com", Some("t".into())).err().unwrap();
        assert!(!message.contains("secret"));
    }

    #[test]
    fn a_refusal_says_what_the_problem_says_and_no_more() {
        let body = r#"{"title":"The input breaks a rule","detail":"1 field","errors":[{"field":"since","message":"is required"}],"x":"secret"}"#;
        let Fail(message) = refusal(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert!(message.contains("(since: is required)"), "{message}");
        assert!(!message.contains("secret"));
        let Fail(message) = refusal(StatusCode::FORBIDDEN, "");
        assert!(message.contains("scope audit"), "{message}");
    }
}
