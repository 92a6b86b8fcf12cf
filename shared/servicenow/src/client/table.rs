//! The Table API operations Gatehouse uses — read, query, create, find-or-create, update and
//! de-duplicated work notes — over the client's transport (retries and checked
//! writes in `transport.rs`, authorisation in `auth.rs`).

use super::*;

impl Client {
    /// `GET /api/now/table/{table}/{sys_id}`; `Ok(None)` when ServiceNow answers 404.
    pub async fn get(&self, table: &str, sys_id: &str, display: DisplayValue) -> Result<Option<Record>, Error> {
        check_table(table)?;
        check_sys_id(sys_id)?;
        let op = Op { table, target: Target::Record(sys_id) };
        let mut url = self.table_url(table, Some(sys_id));
        url.query_pairs_mut().append_pair("sysparm_display_value", display.as_param());
        match self.call(&op, &Req { method: Method::GET, url, body: None }, true).await? {
            None => Ok(None),
            Some(resp) => self.read::<Record>(&op, resp).await.map(Some),
        }
    }

    /// `GET /api/now/table/{table}/{sys_id}` with only `fields` (`sysparm_fields`; dot-walked
    /// fields such as `requested_for.email` and a request item's `variables.<name>` included) and
    /// without reference links (`sysparm_exclude_reference_link=true`), so references read as
    /// plain values. ServiceNow leaves out a field the record lacks. `Ok(None)` on 404.
    pub async fn get_fields(
        &self,
        table: &str,
        sys_id: &str,
        fields: &[&str],
        display: DisplayValue,
    ) -> Result<Option<Record>, Error> {
        check_table(table)?;
        check_sys_id(sys_id)?;
        for f in fields {
            crate::query::check_field(f)?;
        }
        let op = Op { table, target: Target::Record(sys_id) };
        let mut url = self.table_url(table, Some(sys_id));
        {
            let mut q = url.query_pairs_mut();
            if !fields.is_empty() {
                q.append_pair("sysparm_fields", &fields.join(","));
            }
            q.append_pair("sysparm_display_value", display.as_param());
            q.append_pair("sysparm_exclude_reference_link", "true");
        }
        match self.call(&op, &Req { method: Method::GET, url, body: None }, true).await? {
            None => Ok(None),
            Some(resp) => self.read::<Record>(&op, resp).await.map(Some),
        }
    }

    /// `GET /api/now/table/{table}?sysparm_query=…`: up to `limit` records, following
    /// `Link: rel="next"` page by page (`page_size` each, at most `max_pages`). `fields` empty
    /// means every field. A 404 reads as no records (older releases answer so).
    pub async fn query(
        &self,
        table: &str,
        query: &Query,
        fields: &[&str],
        display: DisplayValue,
        limit: usize,
    ) -> Result<Vec<Record>, Error> {
        check_table(table)?;
        for f in fields {
            crate::query::check_field(f)?;
        }
        let op = Op { table, target: Target::List };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let page = limit.min(self.inner.config.page_size as usize);
        let list_url = self.table_url(table, None);
        let mut url = list_url.clone();
        {
            let mut q = url.query_pairs_mut();
            if !query.is_empty() {
                q.append_pair("sysparm_query", &query.to_string());
            }
            if !fields.is_empty() {
                q.append_pair("sysparm_fields", &fields.join(","));
            }
            q.append_pair("sysparm_display_value", display.as_param());
            q.append_pair("sysparm_limit", &page.to_string());
        }
        let mut pages = 0u32;
        loop {
            pages += 1;
            let Some(resp) = self.call(&op, &Req { method: Method::GET, url, body: None }, true).await? else {
                break;
            };
            let next = next_link(resp.headers());
            let records: Vec<Record> = self.read(&op, resp).await?;
            out.extend(records);
            if out.len() >= limit {
                out.truncate(limit);
                break;
            }
            let Some(next) = next else { break };
            if pages >= self.inner.config.max_pages {
                return Err(self.fail(
                    &op,
                    format!("listing records: more than {} pages; narrow the query", self.inner.config.max_pages),
                    None,
                ));
            }
            url = self.follow(&op, &list_url, &next)?;
        }
        Ok(out)
    }

    /// `POST /api/now/table/{table}`; answers the created record (stored values).
    ///
    /// Not idempotent, so not retried blindly: a 429 or a refused connection is retried, but a
    /// 5xx or a timeout (the record may have been created) fails at once. Use
    /// [`Client::find_or_create`] to create safely under retries.
    pub async fn create(&self, table: &str, fields: &Map<String, Value>) -> Result<Record, Error> {
        check_table(table)?;
        let op = Op { table, target: Target::Create };
        let req = Req { method: Method::POST, url: self.write_url(table, None), body: Some(fields) };
        match self.call(&op, &req, false).await? {
            Some(resp) => self.read(&op, resp).await,
            None => Err(self.fail(&op, format!("{}: answered HTTP 404", op.label()), None)),
        }
    }

    /// The first record `existing` finds (checked with [`Query::matches`]), or a new one from
    /// `fields`; `true` when this call created it (also when an attempt's answer was lost and
    /// the record was then found). Before any retry of the create after a 5xx or
    /// a timeout, `existing` is asked again, so the record is created at most once. `existing`
    /// must find the record `fields` creates (a `correlation_id`, say).
    pub async fn find_or_create(
        &self,
        table: &str,
        existing: &Query,
        fields: &Map<String, Value>,
    ) -> Result<(Record, bool), Error> {
        check_table(table)?;
        let op = Op { table, target: Target::Create };
        let req = Req { method: Method::POST, url: self.write_url(table, None), body: Some(fields) };
        match self.write_checked(&op, &req, Check::Existing { table, query: existing }).await? {
            Written::Already { found, by_us } => Ok((found, by_us)),
            Written::Now(resp) => Ok((self.read(&op, resp).await?, true)),
        }
    }

    /// `PATCH /api/now/table/{table}/{sys_id}`; answers the updated record (stored values).
    /// Retried like a read, except when `fields` carries a journal field (`work_notes`,
    /// `comments`): each write of those appends an entry, so only safe retries (429, refused
    /// connection) are made; use [`Client::add_work_note`] for notes.
    pub async fn update(&self, table: &str, sys_id: &str, fields: &Map<String, Value>) -> Result<Record, Error> {
        check_table(table)?;
        check_sys_id(sys_id)?;
        let op = Op { table, target: Target::Record(sys_id) };
        let idempotent = !JOURNAL_FIELDS.iter().any(|f| fields.contains_key(*f));
        let req = Req { method: Method::PATCH, url: self.write_url(table, Some(sys_id)), body: Some(fields) };
        match self.call(&op, &req, idempotent).await? {
            Some(resp) => self.read(&op, resp).await,
            None => Err(self.missing(&op)),
        }
    }

    /// Adds a work note to the record, exactly once. The note's text carries `marker` (appended
    /// on its own line when `text` does not contain it already). Before the write, and before
    /// any retry of it, the record's work notes are read and the write is skipped when the
    /// marker is there: a lost answer, a retry or a second delivery of the same note never
    /// writes it twice. The marker must be unique per note (for example
    /// `[gatehouse:REQ-1f2e:msg-3]`): printable ASCII without `< > & " '`, at most 200 bytes.
    pub async fn add_work_note(&self, table: &str, sys_id: &str, text: &str, marker: &str) -> Result<(), Error> {
        check_table(table)?;
        check_sys_id(sys_id)?;
        check_marker(marker)?;
        let note = if text.contains(marker) { text.to_string() } else { format!("{}\n{marker}", text.trim_end()) };
        let mut body = Map::new();
        body.insert("work_notes".into(), Value::String(note));
        let op = Op { table, target: Target::Record(sys_id) };
        let mut url = self.write_url(table, Some(sys_id));
        url.query_pairs_mut().append_pair("sysparm_fields", "sys_id");
        let req = Req { method: Method::PATCH, url, body: Some(&body) };
        match self.write_checked(&op, &req, Check::WorkNote { table, sys_id, marker }).await? {
            Written::Already { .. } => {
                tracing::debug!(table, sys_id, marker, "ServiceNow work note already present; not written again");
            }
            Written::Now(resp) => {
                let _ = resp.bytes().await;
                tracing::debug!(table, sys_id, marker, "ServiceNow work note written");
            }
        }
        Ok(())
    }

    /// Whether a work note of the record contains `marker`. Reads the record's `work_notes`
    /// display value (the whole journal); when the table has no such field in the answer,
    /// queries `sys_journal_field` instead.
    pub async fn has_work_note(&self, table: &str, sys_id: &str, marker: &str) -> Result<bool, Error> {
        check_table(table)?;
        check_sys_id(sys_id)?;
        let op = Op { table, target: Target::Record(sys_id) };
        let mut url = self.table_url(table, Some(sys_id));
        url.query_pairs_mut()
            .append_pair("sysparm_display_value", DisplayValue::Display.as_param())
            .append_pair("sysparm_fields", "work_notes");
        let Some(resp) = self.call(&op, &Req { method: Method::GET, url, body: None }, true).await? else {
            return Err(self.missing(&op));
        };
        let rec: Record = self.read(&op, resp).await?;
        if let Some(journal) = rec.display("work_notes") {
            return Ok(journal.contains(marker));
        }
        let q = Query::new().eq("element_id", sys_id)?.eq("element", "work_notes")?.eq("name", table)?;
        let entries = self.query("sys_journal_field", &q, &["value"], DisplayValue::Stored, 10_000).await?;
        Ok(entries.iter().any(|e| e.value("value").is_some_and(|v| v.contains(marker))))
    }
}
