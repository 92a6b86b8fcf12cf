//! The subset of ServiceNow's encoded queries the simulator reads, and its ordering.

use std::cmp::Ordering;

/// Integers compare as numbers (choice values like `-5`), everything else as text.
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

pub(crate) enum Cond {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
}

impl Cond {
    /// Text comparisons ignore case, as ServiceNow's database does.
    /// `get` reads a (possibly dot-walked) field of the record.
    pub(crate) fn matches(&self, get: &dyn Fn(&str) -> String) -> bool {
        let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        match self {
            Cond::Eq(f, v) => same(&get(f), v),
            Cond::Ne(f, v) => !same(&get(f), v),
            Cond::In(f, vs) => {
                let value = get(f);
                vs.iter().any(|v| same(&value, v))
            }
        }
    }
}

pub(crate) struct ParsedQuery {
    pub(crate) conds: Vec<Cond>,
    pub(crate) order: Vec<(String, bool)>,
}

/// Reads the subset of encoded-query syntax Gatehouse uses: `field=value`, `field!=value`,
/// `fieldINa,b`, `ORDERBYfield`, `ORDERBYDESCfield`, joined with `^`. Like ServiceNow, a
/// condition it does not understand (another operator, `^OR`, `^NQ`, an unknown field) is
/// silently dropped.
pub(crate) fn parse_query(query: &str, knows: impl Fn(&str) -> bool) -> ParsedQuery {
    let mut q = ParsedQuery { conds: Vec::new(), order: Vec::new() };
    for part in query.split('^') {
        if let Some(f) = part.strip_prefix("ORDERBYDESC") {
            if knows(f) {
                q.order.push((f.to_string(), true));
            }
            continue;
        }
        if let Some(f) = part.strip_prefix("ORDERBY") {
            if knows(f) {
                q.order.push((f.to_string(), false));
            }
            continue;
        }
        let end = part
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
            .unwrap_or(part.len());
        let (field, rest) = part.split_at(end);
        if field.is_empty() || !knows(field) {
            continue;
        }
        if let Some(v) = rest.strip_prefix("!=") {
            q.conds.push(Cond::Ne(field.into(), v.into()));
        } else if let Some(v) = rest.strip_prefix('=') {
            q.conds.push(Cond::Eq(field.into(), v.into()));
        } else if let Some(v) = rest.strip_prefix("IN") {
            q.conds.push(Cond::In(field.into(), v.split(',').map(str::to_string).collect()));
        }
    }
    q
}
