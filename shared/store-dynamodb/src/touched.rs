//! The requests and change records touched in a period (`Store::touched`,
//! `ChangeRecords::changes_touched`, for the audit export) through `gsi2`: every request item
//! carries `gsi2pk = UPD#{yyyy-mm}`, the month (UTC) of its `updated_at`, and
//! `gsi2sk = {updated_at}#{id}`, rewritten with each write of the request; a change record's item
//! likewise `CHGUPD#{yyyy-mm}` and `{updated_at}#{pk}`. A period is read month by month, each
//! month one range query on the sort key.
//!
//! A month rather than a day: whatever the bucket's length, the bucket of the current time takes
//! every write of the moment, so a longer one costs nothing when writing, and a year's export is
//! 12 queries rather than 365 (DynamoDB splits a hot partition of an index by its sort key range:
//! "Best practices for designing and using partition keys effectively",
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html).

use domain::changes::{ChangeKey, ChangeRecord};
use domain::model::{Request, RequestId};
use domain::{Error, Result};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use crate::{DynamoStore, GSI2, decode_data, sortable};

/// The first day of `t`'s month, UTC.
fn month_of(t: Timestamp) -> Date {
    t.to_zoned(TimeZone::UTC).date().first_of_month()
}

/// The `gsi2` partitions of requests and of change records.
const REQUESTS: &str = "UPD";
const CHANGES: &str = "CHGUPD";

fn partition(prefix: &str, month: Date) -> String {
    format!("{prefix}#{}", month.strftime("%Y-%m"))
}

/// The `gsi2pk` of a request last written at `updated_at`.
pub(crate) fn month_partition(updated_at: Timestamp) -> String {
    partition(REQUESTS, month_of(updated_at))
}

/// The `gsi2pk` of a change record last written at `updated_at`.
pub(crate) fn change_month_partition(updated_at: Timestamp) -> String {
    partition(CHANGES, month_of(updated_at))
}

impl DynamoStore {
    pub(crate) async fn touched_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, RequestId)>,
        limit: usize,
    ) -> Result<Vec<Request>> {
        let after = after.map(|(at, id)| (at, id.as_str().to_string()));
        self.walk_touched(REQUESTS, "request", since, until, after, limit).await
    }

    pub(crate) async fn changes_touched_between(
        &self,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, ChangeKey)>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>> {
        let after = after.map(|(at, key)| (at, key.storage_key()));
        self.walk_touched(CHANGES, "change", since, until, after, limit).await
    }

    /// The items of `prefix`'s partitions written in [`since`, `until`) after (`at`, `id`), in
    /// (`updated_at`, id) order, decoded as `what`.
    async fn walk_touched<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
        what: &str,
        since: Timestamp,
        until: Timestamp,
        after: Option<(Timestamp, String)>,
        limit: usize,
    ) -> Result<Vec<T>> {
        let start = match &after {
            Some((at, _)) if *at >= since => *at,
            _ => since,
        };
        if start >= until || limit == 0 {
            return Ok(vec![]);
        }
        // BETWEEN is inclusive at both ends. No key equals `sortable(until)` (every key goes on
        // with `#{id}`), so it admits exactly the times before `until`. A `~` after the last id
        // seen sorts after that key and before every later one (request ids are lower-case hex
        // and `-`; change keys letters, digits and `#-_./`, all below `~`).
        let lower = match &after {
            Some((at, id)) if *at >= since => format!("{}#{id}~", sortable(*at)),
            _ => sortable(since),
        };
        let upper = sortable(until);
        let last_month = month_of(until - SignedDuration::from_nanos(1));
        let mut month = month_of(start);
        let mut found = Vec::new();
        while found.len() < limit && month <= last_month {
            let items = self
                .query_all(
                    Some(GSI2),
                    "gsi2pk = :pk AND gsi2sk BETWEEN :lower AND :upper",
                    vec![(":pk", partition(prefix, month)), (":lower", lower.clone()), (":upper", upper.clone())],
                    limit - found.len(),
                )
                .await?;
            for item in &items {
                found.push(decode_data::<T>(item, what)?);
            }
            month = month
                .checked_add(1.month())
                .map_err(|e| Error::internal("DynamoDB store: the month after a period's month", e))?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_bucketed_by_the_utc_month_of_its_last_write() {
        assert_eq!(month_partition("2031-01-31T23:59:59.999999999Z".parse().unwrap()), "UPD#2031-01");
        assert_eq!(month_partition("2031-02-01T00:30:00+01:00".parse().unwrap()), "UPD#2031-01");
        assert_eq!(month_partition("2031-02-01T00:00:00Z".parse().unwrap()), "UPD#2031-02");
        // The key just past a seen one sorts before the next id at the same time.
        let t = sortable("2031-01-01T00:00:00Z".parse().unwrap());
        let seen = format!("{t}#0190e8d4-0000-7000-8000-00000000000a");
        let next = format!("{t}#0190e8d4-0000-7000-8000-00000000000b");
        assert!(seen < format!("{seen}~") && format!("{seen}~") < next);
    }
}
