//! The store contract on the requests touched in a period (`Store::touched`, which the audit
//! export pages through): a period holds exactly the requests whose last write falls in it, in
//! (`updated_at`, id) order, across month and day boundaries; paging with `after` loses and
//! repeats nothing, ties on the time included; a request written again moves to its new place.
//!
//! A declared child of `contract` (its cases are listed in `export_contract!`).

use std::sync::Arc;

use domain::model::{Request, RequestId, Status};
use domain::ports::{Store, Write};
use jiff::{SignedDuration, Timestamp};

use super::{created, sample_request, sys_id};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A request created at `t` (its first and last write).
async fn created_at(store: &Arc<dyn Store>, t: Timestamp) -> Request {
    let mut r = sample_request(&sys_id());
    r.created_at = t;
    r.updated_at = t;
    r.expires_at = t + SignedDuration::from_hours(48);
    r.due_at = None;
    store.create(r.clone(), created(&r), vec![], vec![]).await.unwrap();
    r
}

/// `r` approved at `t`: its last write moves to `t`.
async fn approved_at(store: &Arc<dyn Store>, r: &Request, t: Timestamp) -> Request {
    let mut next = r.clone();
    let entry = next.transition(Status::Approved, "ops@example.com", None, t).unwrap();
    let write = Write { history: vec![entry], ..Write::new(next, r.version) };
    store.apply(write).await.unwrap()
}

fn ids(requests: &[Request]) -> Vec<RequestId> {
    requests.iter().map(|r| r.id.clone()).collect()
}

/// `requests` as the export orders them.
fn ordered(mut requests: Vec<Request>) -> Vec<RequestId> {
    requests.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
    ids(&requests)
}

pub async fn a_period_holds_exactly_the_requests_touched_in_it(store: Arc<dyn Store>) {
    // A period over three months (and a year before it), so a store that buckets by time walks
    // more than one bucket.
    let (since, until) = (at("2031-01-30T12:00:00Z"), at("2031-03-02T00:00:00Z"));
    let before = created_at(&store, since - SignedDuration::from_nanos(1)).await;
    let long_before = created_at(&store, at("2030-06-01T00:00:00Z")).await;
    let at_since = created_at(&store, since).await;
    let in_january = created_at(&store, at("2031-01-31T23:59:59.999999999Z")).await;
    let in_february = created_at(&store, at("2031-02-14T08:30:00.5Z")).await;
    let last_instant = created_at(&store, until - SignedDuration::from_nanos(1)).await;
    let at_until = created_at(&store, until).await;
    let after = created_at(&store, at("2031-04-01T00:00:00Z")).await;
    // Created before the period, written in it: in. Created in it, written after it: out (it
    // belongs to the later period, whole history included).
    let old = created_at(&store, at("2030-12-01T00:00:00Z")).await;
    let revisited = approved_at(&store, &old, at("2031-02-01T00:00:00Z")).await;
    let early = created_at(&store, at("2031-02-02T00:00:00Z")).await;
    let moved_on = approved_at(&store, &early, at("2031-03-05T00:00:00Z")).await;

    let found = store.touched(since, until, None, 100).await.unwrap();
    let expected = ordered(vec![
        at_since.clone(),
        in_january.clone(),
        in_february.clone(),
        last_instant.clone(),
        revisited.clone(),
    ]);
    assert_eq!(ids(&found), expected);
    assert_eq!(found.iter().find(|r| r.id == revisited.id), Some(&revisited), "each as last written");
    for out in [&before, &long_before, &at_until, &after, &moved_on] {
        assert!(!ids(&found).contains(&out.id), "{} at {} is outside the period", out.id, out.updated_at);
    }
    // `limit` cuts the answer at its start; a period with nothing in it is empty.
    assert_eq!(ids(&store.touched(since, until, None, 2).await.unwrap()), expected[..2].to_vec());
    let quiet = store.touched(at("2031-03-10T00:00:00Z"), at("2031-03-20T00:00:00Z"), None, 100).await.unwrap();
    assert!(quiet.is_empty(), "{quiet:?}");
    // The later period holds the request written in it.
    let later = store.touched(until, at("2031-03-31T00:00:00Z"), None, 100).await.unwrap();
    assert_eq!(ids(&later), ordered(vec![at_until, moved_on]));
}

pub async fn paging_with_after_loses_and_repeats_nothing(store: Arc<dyn Store>) {
    let start = at("2031-05-31T23:00:00Z");
    let mut all = Vec::new();
    for n in 0..23u32 {
        // Every third request shares its time with the one before: ties are ordered by id.
        let step = i64::from(n - n / 3);
        all.push(created_at(&store, start + SignedDuration::from_mins(7 * step)).await);
    }
    let (since, until) = (start, start + SignedDuration::from_hours(24));
    let expected = ordered(all.clone());
    for limit in [1, 4, 5, 23, 40] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.touched(since, until, after.clone(), limit).await.unwrap();
            assert!(page.len() <= limit);
            seen.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == limit => after = Some((last.updated_at, last.id.clone())),
                _ => break,
            }
        }
        assert_eq!(seen, expected, "pages of {limit}");
    }
    // A request written again moves to its new place: a walk past its old place meets it again.
    let half = expected.len() / 2;
    let first_half = store.touched(since, until, None, half).await.unwrap();
    let last = first_half.last().unwrap();
    let after = Some((last.updated_at, last.id.clone()));
    let mover = first_half[0].clone();
    let moved = approved_at(&store, &mover, start + SignedDuration::from_hours(20)).await;
    let rest = store.touched(since, until, after, 100).await.unwrap();
    assert_eq!(rest.last(), Some(&moved), "at its new place, as written");
    assert_eq!(rest.len(), expected.len() - half + 1);
}

/// Runs the export cases against a store: `export_contract!(async { … }.await)`.
#[macro_export]
macro_rules! export_contract {
    ($make:expr) => {
        $crate::store_contract!(@cases $make;
            a_period_holds_exactly_the_requests_touched_in_it,
            paging_with_after_loses_and_repeats_nothing);
    };
}
