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
    /// `LIKE`: contains.
    Like(String, String),
    /// `>`, `>=`, `<`, `<=`: by [`compare`] (numbers as numbers; dates as ServiceNow stores them,
    /// `YYYY-MM-DD HH:MM:SS`, compare as text).
    Cmp(String, Ordering, bool, String),
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
            Cond::Like(f, v) => get(f).to_lowercase().contains(&v.to_lowercase()),
            Cond::Cmp(f, wanted, or_equal, v) => {
                let o = compare(&get(f), v);
                o == *wanted || (*or_equal && o == Ordering::Equal)
            }
        }
    }
}

pub(crate) struct ParsedQuery {
    pub(crate) conds: Vec<Cond>,
    pub(crate) order: Vec<(String, bool)>,
}

/// Reads the subset of encoded-query syntax Gatehouse and its auditors use: `field=value`,
/// `field!=value`, `fieldINa,b`, `fieldLIKEtext` (contains), `field>value`,
/// `field>=value`, `field<value`, `field<=value`, `ORDERBYfield`, `ORDERBYDESCfield`, joined with
/// `^` (operators as listed in "Operators available for filters and queries",
/// https://docs.servicenow.com/bundle/istanbul-platform-user-interface/page/use/common-ui-elements/reference/r_OpAvailableFiltersQueries.html;
/// text matching ignores case). Like ServiceNow, a condition it does not understand (another
/// operator, `^OR`, `^NQ`, an unknown field) is silently dropped: "the invalid part of the query
/// condition is dropped, and the results are based on the valid part of the query"
/// (https://docs.servicenow.com/bundle/helsinki-application-development/page/app-store/dev_portal/API_reference/GlideRecord/concept/c_GlideRecordAPI.html).
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
        let f = || field.to_string();
        if let Some(v) = rest.strip_prefix("!=") {
            q.conds.push(Cond::Ne(f(), v.into()));
        } else if let Some(v) = rest.strip_prefix('=') {
            q.conds.push(Cond::Eq(f(), v.into()));
        } else if let Some(v) = rest.strip_prefix("IN") {
            q.conds.push(Cond::In(f(), v.split(',').map(str::to_string).collect()));
        } else if let Some(v) = rest.strip_prefix("LIKE") {
            q.conds.push(Cond::Like(f(), v.into()));
        } else if let Some(v) = rest.strip_prefix(">=") {
            q.conds.push(Cond::Cmp(f(), Ordering::Greater, true, v.into()));
        } else if let Some(v) = rest.strip_prefix("<=") {
            q.conds.push(Cond::Cmp(f(), Ordering::Less, true, v.into()));
        } else if let Some(v) = rest.strip_prefix('>') {
            q.conds.push(Cond::Cmp(f(), Ordering::Greater, false, v.into()));
        } else if let Some(v) = rest.strip_prefix('<') {
            q.conds.push(Cond::Cmp(f(), Ordering::Less, false, v.into()));
        }
    }
    q
}
