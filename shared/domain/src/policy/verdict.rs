//! The answer of an evaluation: open or not, until when, and why.

use jiff::Zoned;
use serde::{Deserialize, Serialize};

/// Whether deploying is allowed at the moment asked about, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowVerdict {
    pub open: bool,
    /// The first moment from the one asked about (included) at which every rule allows deploying,
    /// in the environment's zone; serialised as RFC 3339 with the offset
    /// (`2026-12-01T19:00:00+01:00`). `None` when none comes within
    /// [`SEARCH_HORIZON_DAYS`](super::SEARCH_HORIZON_DAYS) (or the change's planned window is
    /// over). When `open`, the moment asked about.
    #[serde(default, with = "rfc3339_with_offset")]
    pub next_open_at: Option<Zoned>,
    /// The rule that decided, as a sentence: the one that keeps it closed longest, or, when open,
    /// the window it is open in.
    pub rule: String,
    /// The policy does not name the environment and has no `default:`: deploys there are blocked.
    #[serde(skip)]
    pub unnamed: bool,
}

/// `Option<Zoned>` as RFC 3339 with the offset and no zone annotation.
mod rfc3339_with_offset {
    use jiff::fmt::temporal::{Pieces, PiecesOffset};
    use jiff::tz::{Offset, TimeZone};
    use jiff::{Timestamp, Zoned};
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(value: &Option<Zoned>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(z) => s.collect_str(&z.timestamp().display_with_offset(z.offset())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Zoned>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else { return Ok(None) };
        let bad = || de::Error::custom(format!("\"{text}\" is not an RFC 3339 time with an offset"));
        let ts: Timestamp = text.parse().map_err(|_| bad())?;
        let offset = match Pieces::parse(text.as_str()).map_err(|_| bad())?.offset() {
            Some(PiecesOffset::Numeric(n)) => n.offset(),
            _ => Offset::UTC,
        };
        Ok(Some(ts.to_zoned(TimeZone::fixed(offset))))
    }
}
