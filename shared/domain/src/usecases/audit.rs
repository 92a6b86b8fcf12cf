//! The audit export's walk over a period (DESIGN.md "Audit evidence"): the period and the cursor a
//! page hands on, both checked; the requests touched in the period a page at a time, each re-read
//! by id (an index answer may lag); and a request read together with its history so that the two
//! agree.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;

use super::Services;
use crate::changes::{ChangeKey, ChangeRecord};
use crate::error::{Error, Result};
use crate::evidence::{ChainBreak, EvidenceKey, Verified, verify};
use crate::model::{HistoryEntry, OutboxMessage, Request, RequestId};
use crate::ports::{READS_AT_ONCE, RequestRead};

/// The period an export covers: every request whose last write lies in [`since`, `until`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub since: Timestamp,
    pub until: Timestamp,
}

impl Period {
    /// `since` (required) and `until` (default `now`), each RFC 3339 with an offset; `until` must
    /// come after `since`. Each problem is a 422 naming its field.
    pub fn parse(since: Option<&str>, until: Option<&str>, now: Timestamp) -> Result<Period> {
        let Some(since) = since else {
            return Err(Error::invalid("since", "is required: the period's start, RFC 3339 (2026-01-01T00:00:00Z)"));
        };
        let since = parse_time("since", since)?;
        let until = match until {
            Some(text) => parse_time("until", text)?,
            None => now,
        };
        if until <= since {
            return Err(Error::invalid("until", format!("must come after since ({since})")));
        }
        Ok(Period { since, until })
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.since <= t && t < self.until
    }
}

/// An RFC 3339 time with its offset (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00+01:00`). A `+`
/// sent unencoded in a query string arrives as a space; that one case is read as the `+` it was.
pub fn parse_time(field: &str, text: &str) -> Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let offset_lost = text.rsplit_once(' ').filter(|(date, offset)| {
        date.len() >= 19
            && offset.len() == 5
            && offset.as_bytes()[2] == b':'
            && offset.bytes().filter(u8::is_ascii_digit).count() == 4
    });
    if let Some((date, offset)) = offset_lost
        && let Ok(t) = format!("{date}+{offset}").parse::<Timestamp>()
    {
        return Ok(t);
    }
    Err(Error::invalid(field, "is not an RFC 3339 time with an offset, such as 2026-01-01T00:00:00Z"))
}

/// A place in the export's order, (`updated_at`, id): where a page ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub updated_at: Timestamp,
    pub id: RequestId,
}

impl Position {
    pub fn of(request: &Request) -> Position {
        Position { updated_at: request.updated_at, id: request.id.clone() }
    }

    /// The opaque cursor a page hands on: base64url (no padding) of `["<updated_at>","<id>"]`.
    pub fn to_cursor(&self) -> String {
        let pair = serde_json::json!([self.updated_at, self.id]);
        URL_SAFE_NO_PAD.encode(pair.to_string())
    }

    /// Reads a cursor `to_cursor` made for a page of `period`; anything else is a 422 on `cursor`.
    pub fn from_cursor(text: &str, period: &Period) -> Result<Position> {
        let bad = || Error::invalid("cursor", "is not a cursor this export handed out: start again without it");
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).map_err(|_| bad())?;
        let (at, id): (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let updated_at = at.parse::<Timestamp>().map_err(|_| bad())?;
        let id = RequestId::parse(&id).ok_or_else(bad)?;
        if !period.contains(updated_at) {
            return Err(Error::invalid(
                "cursor",
                "belongs to another period: keep since and until as the page gave them",
            ));
        }
        Ok(Position { updated_at, id })
    }
}

/// A place in the export's walk over change records, (`updated_at`, key): where a page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePosition {
    pub updated_at: Timestamp,
    pub key: ChangeKey,
}

impl ChangePosition {
    pub fn of(record: &ChangeRecord) -> ChangePosition {
        ChangePosition { updated_at: record.updated_at, key: record.key.clone() }
    }
}

/// Where the export goes on: the requests come first, then the change records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportCursor {
    /// After this request.
    Request(Position),
    /// Among the change records: from their start, or after this one.
    Change(Option<ChangePosition>),
}

impl ExportCursor {
    /// Opaque, base64url (no padding): a request's as `Position::to_cursor`; a change record's of
    /// `["change"]` or `["change","<updated_at>",project_id,"<sha>","<environment>"]`.
    pub fn to_cursor(&self) -> String {
        match self {
            ExportCursor::Request(p) => p.to_cursor(),
            ExportCursor::Change(None) => URL_SAFE_NO_PAD.encode(r#"["change"]"#),
            ExportCursor::Change(Some(p)) => {
                let k = &p.key;
                URL_SAFE_NO_PAD
                    .encode(serde_json::json!(["change", p.updated_at, k.project_id, k.sha, k.environment]).to_string())
            }
        }
    }

    /// Reads a cursor `to_cursor` made for a page of `period`; anything else is a 422 on `cursor`.
    pub fn from_cursor(text: &str, period: &Period) -> Result<ExportCursor> {
        let bad = || Error::invalid("cursor", "is not a cursor this export handed out: start again without it");
        let bytes = URL_SAFE_NO_PAD.decode(text.as_bytes()).map_err(|_| bad())?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if value.get(0).and_then(|v| v.as_str()) != Some("change") {
            return Position::from_cursor(text, period).map(ExportCursor::Request);
        }
        if value.as_array().is_some_and(|a| a.len() == 1) {
            return Ok(ExportCursor::Change(None));
        }
        let (_, at, project_id, sha, environment): (String, String, u64, String, String) =
            serde_json::from_value(value).map_err(|_| bad())?;
        let updated_at = at.parse::<Timestamp>().map_err(|_| bad())?;
        let key = super::gate::key(project_id, &sha, &environment).map_err(|_| bad())?;
        if !period.contains(updated_at) {
            return Err(Error::invalid(
                "cursor",
                "belongs to another period: keep since and until as the page gave them",
            ));
        }
        Ok(ExportCursor::Change(Some(ChangePosition { updated_at, key })))
    }
}

/// A change record the store's answer named, at its place; `record` as a re-read by key found it
/// (`None` when it has moved on since, or out of the period), as for requests.
#[derive(Debug, Clone)]
pub struct ChangeCandidate {
    pub position: ChangePosition,
    pub record: Option<ChangeRecord>,
}

/// One page of the walk over the change records of a period.
#[derive(Debug, Clone)]
pub struct ChangesPage {
    pub candidates: Vec<ChangeCandidate>,
    pub more: bool,
}

/// A request, its messages and its history as one consistent read, with what verifying its chain
/// found.
#[derive(Debug, Clone)]
pub struct Consistent {
    pub request: Request,
    pub messages: Vec<OutboxMessage>,
    pub history: Vec<HistoryEntry>,
    pub chain: std::result::Result<Verified, ChainBreak>,
}

/// A request the store's answer named, at its place in the answer; `request` is what a re-read by
/// id found, `None` when it has moved on since (written again: it comes at its new place) or out
/// of the period.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub position: Position,
    pub request: Option<Request>,
}

/// One page of the walk over a period.
#[derive(Debug, Clone)]
pub struct TouchedPage {
    pub candidates: Vec<Candidate>,
    /// More requests follow the last candidate.
    pub more: bool,
}

/// A request the store's answer named, read whole (`Services::touched_reads`); `read` is `None`
/// when it has moved on since or out of the period, as for `Candidate`.
#[derive(Debug, Clone)]
pub struct ReadCandidate {
    pub position: Position,
    pub read: Option<Consistent>,
}

impl Services {
    /// Up to `limit` requests touched in `period` after `after`, in (`updated_at`, id) order, each
    /// re-read by id (strongly consistent): one that was written again since the answer is left
    /// to the page where its new place falls, one written after the period is left out.
    pub async fn touched_page(&self, period: &Period, after: Option<&Position>, limit: usize) -> Result<TouchedPage> {
        let get_all = |ids: Vec<RequestId>| async move {
            futures::stream::iter(ids)
                .map(|id| async move { self.store.get(&id).await })
                .buffered(READS_AT_ONCE)
                .try_collect()
                .await
        };
        let (found, more) = self.touched_with(period, after, limit, get_all, |r| r.updated_at).await?;
        let candidates = found.into_iter().map(|(position, request)| Candidate { position, request }).collect();
        Ok(TouchedPage { candidates, more })
    }

    /// `touched_page`, the page's requests read whole at once (`Store::read_requests`) and their
    /// chains checked as `read_consistent` does: what the export sends.
    pub async fn touched_reads(
        &self,
        period: &Period,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<(Vec<ReadCandidate>, bool)> {
        let read_all = |ids: Vec<RequestId>| async move {
            let reads = self.store.read_requests(ids).await?;
            let key = self.config.evidence_key.clone();
            let checked =
                crate::parallel::map_in_chunks(reads, move |read| read.map(|read| checked(&key, read))).await?;
            futures::stream::iter(checked)
                .map(|found| async move {
                    match found {
                        Some(found) => self.settled(found).await.map(Some),
                        None => Ok(None),
                    }
                })
                .buffered(READS_AT_ONCE)
                .try_collect()
                .await
        };
        let (found, more) = self.touched_with(period, after, limit, read_all, |c| c.request.updated_at).await?;
        Ok((found.into_iter().map(|(position, read)| ReadCandidate { position, read }).collect(), more))
    }

    /// The walk both share: the store's answer, its requests re-read with `read_all` (one answer
    /// per id, in order), each kept when its fresh state (`updated_at` of it) is still in the
    /// period and not written since the answer.
    async fn touched_with<'a, T, Fut>(
        &'a self,
        period: &'a Period,
        after: Option<&Position>,
        limit: usize,
        read_all: impl FnOnce(Vec<RequestId>) -> Fut + 'a,
        updated_at: impl Fn(&T) -> Timestamp,
    ) -> Result<(Vec<(Position, Option<T>)>, bool)>
    where
        Fut: std::future::Future<Output = Result<Vec<Option<T>>>> + 'a,
    {
        let after = after.map(|p| (p.updated_at, p.id.clone()));
        let mut found = self.store.touched(period.since, period.until, after, limit.saturating_add(1)).await?;
        let more = found.len() > limit;
        found.truncate(limit);
        let fresh = read_all(found.iter().map(|listed| listed.id.clone()).collect()).await?;
        if fresh.len() != found.len() {
            return Err(Error::internal_msg(format!(
                "the store answered {} reads for {} requests",
                fresh.len(),
                found.len()
            )));
        }
        let candidates = found
            .iter()
            .zip(fresh)
            .map(|(listed, fresh)| {
                let kept = fresh.filter(|f| {
                    let at = updated_at(f);
                    period.contains(at) && at <= listed.updated_at
                });
                (Position::of(listed), kept)
            })
            .collect();
        Ok((candidates, more))
    }

    /// Up to `limit` change records touched in `period` after `after`, in (`updated_at`, key)
    /// order, each re-read by key, as `touched_page` does for requests.
    pub async fn changes_page(
        &self,
        period: &Period,
        after: Option<&ChangePosition>,
        limit: usize,
    ) -> Result<ChangesPage> {
        let after = after.map(|p| (p.updated_at, p.key.clone()));
        let mut found =
            self.changes.changes_touched(period.since, period.until, after, limit.saturating_add(1)).await?;
        let more = found.len() > limit;
        found.truncate(limit);
        let candidates = futures::stream::iter(found)
            .map(|listed| async move {
                let position = ChangePosition::of(&listed);
                let fresh = self.changes.get_change(&listed.key).await?;
                let record = fresh.filter(|r| period.contains(r.updated_at) && r.updated_at <= listed.updated_at);
                Ok::<_, Error>(ChangeCandidate { position, record })
            })
            .buffered(READS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(ChangesPage { candidates, more })
    }

    /// Request `id` with its messages and history, read so that they agree (`Store::read_request`),
    /// and what the chain check found (`settled`).
    pub async fn read_consistent(&self, id: &RequestId) -> Result<Option<Consistent>> {
        match self.store.read_request(id).await? {
            Some(read) => self.settled(checked(&self.config.evidence_key, read)).await.map(Some),
            None => Ok(None),
        }
    }

    /// `found`, or a later read of it: where the store reads a request, its messages and its
    /// history one after the other, a write in between makes them disagree for a moment, so when
    /// the chain does not verify and the head has moved since, all is read again (twice at most;
    /// what still does not verify then is what is stored).
    async fn settled(&self, mut found: Consistent) -> Result<Consistent> {
        for _ in 0..2 {
            if found.chain.is_ok() {
                break;
            }
            match self.store.read_request(&found.request.id).await? {
                Some(fresh) if fresh.request.chain != found.request.chain => {
                    found = checked(&self.config.evidence_key, fresh)
                }
                _ => break,
            }
        }
        Ok(found)
    }
}

/// A read whose chain is checked.
fn checked(key: &EvidenceKey, read: RequestRead) -> Consistent {
    let chain = verify(key, read.request.id.as_str(), &read.history, &read.request.chain);
    Consistent { request: read.request, messages: read.messages, history: read.history, chain }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_period_needs_since_and_ends_after_it() {
        let now = at("2026-06-01T00:00:00Z");
        let p = Period::parse(Some("2026-01-01T00:00:00Z"), None, now).unwrap();
        assert_eq!(p, Period { since: at("2026-01-01T00:00:00Z"), until: now });
        let p = Period::parse(Some("2026-01-01T01:00:00+01:00"), Some("2026-02-01T00:00:00Z"), now).unwrap();
        assert_eq!(p.since, at("2026-01-01T00:00:00Z"));
        assert_eq!(Period::parse(None, None, now).unwrap_err().invalid_field(), Some("since"));
        assert_eq!(Period::parse(Some("yesterday"), None, now).unwrap_err().invalid_field(), Some("since"));
        assert_eq!(Period::parse(Some("2026-01-01"), None, now).unwrap_err().invalid_field(), Some("since"));
        assert_eq!(
            Period::parse(Some("2026-01-01T00:00:00Z"), Some("x"), now).unwrap_err().invalid_field(),
            Some("until")
        );
        let before = Period::parse(Some("2026-02-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"), now);
        assert_eq!(before.unwrap_err().invalid_field(), Some("until"));
        let empty = Period::parse(Some("2026-02-01T00:00:00Z"), Some("2026-02-01T00:00:00Z"), now);
        assert_eq!(empty.unwrap_err().invalid_field(), Some("until"));
        // A `+` that a query string turned into a space.
        assert_eq!(parse_time("since", "2026-01-01T01:00:00 01:00").unwrap(), at("2026-01-01T00:00:00Z"));
        assert!(!p.contains(p.until) && p.contains(p.since));
    }

    #[test]
    fn a_cursor_reads_back_and_anything_else_is_refused() {
        let period = Period { since: at("2026-01-01T00:00:00Z"), until: at("2026-02-01T00:00:00Z") };
        let position = Position { updated_at: at("2026-01-05T10:00:00.123456789Z"), id: RequestId::generate() };
        let cursor = position.to_cursor();
        assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{cursor}");
        assert_eq!(Position::from_cursor(&cursor, &period).unwrap(), position);
        for bad in ["", "not-a-cursor", "W10", &URL_SAFE_NO_PAD.encode(r#"["2026-01-05T10:00:00Z","../etc"]"#)] {
            assert_eq!(Position::from_cursor(bad, &period).unwrap_err().invalid_field(), Some("cursor"), "{bad}");
        }
        let other = Period { since: at("2026-03-01T00:00:00Z"), until: at("2026-04-01T00:00:00Z") };
        assert_eq!(Position::from_cursor(&cursor, &other).unwrap_err().invalid_field(), Some("cursor"));
        // The export's cursors: a request's reads as before, a change record's and the changes' start.
        let request = ExportCursor::Request(position);
        assert_eq!(ExportCursor::from_cursor(&request.to_cursor(), &period).unwrap(), request);
        let start = ExportCursor::Change(None);
        assert_eq!(ExportCursor::from_cursor(&start.to_cursor(), &period).unwrap(), start);
        let key = ChangeKey { project_id: 4242, sha: "a".repeat(40), environment: "prod/eu".into() };
        let change = ExportCursor::Change(Some(ChangePosition { updated_at: at("2026-01-09T00:00:00Z"), key }));
        assert_eq!(ExportCursor::from_cursor(&change.to_cursor(), &period).unwrap(), change);
        assert_eq!(ExportCursor::from_cursor(&change.to_cursor(), &other).unwrap_err().invalid_field(), Some("cursor"));
        let forged = URL_SAFE_NO_PAD.encode(r#"["change","2026-01-09T00:00:00Z",1,"../x","prod"]"#);
        assert_eq!(ExportCursor::from_cursor(&forged, &period).unwrap_err().invalid_field(), Some("cursor"));
    }
}
