//! Encoded queries (`sysparm_query`) built from typed conditions, and `sysparm_display_value`.
//!
//! ServiceNow joins conditions with `^` and has **no escape** for a `^` inside a value: `a=x^b=y`
//! is always two conditions. It also silently ignores a condition it cannot parse, or one on a
//! field the table does not have, so a malformed query quietly matches more records than meant.
//! Hence the only way to build a [`Query`] is through the typed methods below, which refuse
//! (with [`domain::Error::Invalid`] naming the field) every value that could change the query's
//! shape:
//!
//! - a `^` anywhere (it would start another condition, an `^OR` or an `^NQ`);
//! - a line break or another control character;
//! - `javascript:` (ServiceNow evaluates such values as server-side script);
//! - an empty value (ServiceNow's reading of `field=` is not "equals the empty string");
//! - a `,` in an [`Query::in_list`] value (it separates the list's items).
//!
//! Field names must be plain identifiers (`correlation_id`, dot-walked `caller_id.email`).
//! Because ServiceNow drops conditions on misspelled fields instead of failing, callers that look
//! a record up by a key should also check the answer with [`Query::matches`].

use std::fmt;

use domain::Error;

use crate::record::Record;

/// `sysparm_display_value`, always sent explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DisplayValue {
    /// `false`: stored values (`"state": "3"`, references as `{"link","value"}`).
    #[default]
    Stored,
    /// `true`: display values (`"state": "Closed Complete"`, journal fields as text).
    Display,
    /// `all`: every field as `{"display_value","value"}` (plus `link` for references).
    Both,
}

impl DisplayValue {
    /// The `sysparm_display_value` parameter's value.
    pub fn as_param(self) -> &'static str {
        match self {
            DisplayValue::Stored => "false",
            DisplayValue::Display => "true",
            DisplayValue::Both => "all",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Cond {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    OrderBy(String),
    OrderByDesc(String),
}

/// An encoded query, valid by construction. `to_string()` is the `sysparm_query` text.
///
/// ```
/// use gatehouse_servicenow::Query;
/// let q = Query::new()
///     .eq("correlation_id", "gitlab:4242:abc:production")?
///     .in_list("state", &["-5", "-4", "-3"])?
///     .active(true)
///     .order_by_desc("sys_created_on")?;
/// assert_eq!(q.to_string(), "correlation_id=gitlab:4242:abc:production^stateIN-5,-4,-3^active=true^ORDERBYDESCsys_created_on");
/// assert!(Query::new().eq("correlation_id", "x^active=false").is_err());
/// # Ok::<(), domain::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    conds: Vec<Cond>,
}

impl Query {
    /// The empty query (matches every record).
    pub fn new() -> Query {
        Query::default()
    }

    /// `field=value`.
    pub fn eq(mut self, field: &str, value: impl AsRef<str>) -> Result<Query, Error> {
        let (f, v) = (check_field(field)?, check_value(field, value.as_ref())?);
        self.conds.push(Cond::Eq(f, v));
        Ok(self)
    }

    /// `field!=value`.
    pub fn ne(mut self, field: &str, value: impl AsRef<str>) -> Result<Query, Error> {
        let (f, v) = (check_field(field)?, check_value(field, value.as_ref())?);
        self.conds.push(Cond::Ne(f, v));
        Ok(self)
    }

    /// `fieldINa,b,c`. The list must not be empty and no item may contain a `,`.
    pub fn in_list<S: AsRef<str>>(mut self, field: &str, values: &[S]) -> Result<Query, Error> {
        let f = check_field(field)?;
        if values.is_empty() {
            return Err(Error::invalid(field, "an IN list needs at least one value"));
        }
        let mut items = Vec::with_capacity(values.len());
        for v in values {
            let v = check_value(field, v.as_ref())?;
            if v.contains(',') {
                return Err(Error::invalid(field, "an IN list value must not contain ',' (it separates the items)"));
            }
            items.push(v);
        }
        self.conds.push(Cond::In(f, items));
        Ok(self)
    }

    /// `active=true` or `active=false`.
    pub fn active(mut self, active: bool) -> Query {
        self.conds.push(Cond::Eq("active".into(), active.to_string()));
        self
    }

    /// `ORDERBYfield` (ascending).
    pub fn order_by(mut self, field: &str) -> Result<Query, Error> {
        self.conds.push(Cond::OrderBy(check_field(field)?));
        Ok(self)
    }

    /// `ORDERBYDESCfield` (descending).
    pub fn order_by_desc(mut self, field: &str) -> Result<Query, Error> {
        self.conds.push(Cond::OrderByDesc(check_field(field)?));
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.conds.is_empty()
    }

    /// Whether `record` satisfies every condition, compared exactly (case-sensitive) on stored
    /// values. Use it on records read with [`DisplayValue::Stored`] or [`DisplayValue::Both`]
    /// that include the queried fields: ServiceNow drops conditions it does not understand, so
    /// an exact lookup should not trust the server's filtering alone. A field missing from the
    /// record counts as empty.
    pub fn matches(&self, record: &Record) -> bool {
        let get = |f: &str| record.value(f).unwrap_or_default();
        self.conds.iter().all(|c| match c {
            Cond::Eq(f, v) => get(f) == *v,
            Cond::Ne(f, v) => get(f) != *v,
            Cond::In(f, vs) => vs.contains(&get(f)),
            Cond::OrderBy(_) | Cond::OrderByDesc(_) => true,
        })
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.conds.iter().enumerate() {
            if i > 0 {
                f.write_str("^")?;
            }
            match c {
                Cond::Eq(k, v) => write!(f, "{k}={v}")?,
                Cond::Ne(k, v) => write!(f, "{k}!={v}")?,
                Cond::In(k, vs) => write!(f, "{k}IN{}", vs.join(","))?,
                Cond::OrderBy(k) => write!(f, "ORDERBY{k}")?,
                Cond::OrderByDesc(k) => write!(f, "ORDERBYDESC{k}")?,
            }
        }
        Ok(())
    }
}

/// A field name: identifiers of ASCII letters, digits and `_`, dot-walked with `.`.
pub(crate) fn check_field(field: &str) -> Result<String, Error> {
    let ok = !field.is_empty()
        && field.len() <= 200
        && field.split('.').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !part.as_bytes()[0].is_ascii_digit()
        });
    if ok {
        Ok(field.to_string())
    } else {
        Err(Error::invalid(field, "is not a ServiceNow field name (letters, digits, '_' and '.' only)"))
    }
}

fn check_value(field: &str, value: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty in a query condition"));
    }
    if value.contains('^') {
        return Err(Error::invalid(
            field,
            "must not contain '^': ServiceNow encoded queries cannot escape it, so it would start another condition",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain line breaks or other control characters"));
    }
    if value.to_ascii_lowercase().contains("javascript:") {
        return Err(Error::invalid(field, "must not contain 'javascript:' (ServiceNow would run it as a script)"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_encoded_queries() {
        let q = Query::new()
            .eq("correlation_id", "gitlab:1:abc:prod")
            .unwrap()
            .ne("state", "4")
            .unwrap()
            .in_list("state", &["-5", "0"])
            .unwrap()
            .active(true)
            .order_by("number")
            .unwrap()
            .order_by_desc("sys_created_on")
            .unwrap();
        assert_eq!(
            q.to_string(),
            "correlation_id=gitlab:1:abc:prod^state!=4^stateIN-5,0^active=true^ORDERBYnumber^ORDERBYDESCsys_created_on"
        );
        assert_eq!(Query::new().to_string(), "");
        assert!(Query::new().is_empty());
        assert_eq!(Query::new().eq("caller_id.email", "a@b").unwrap().to_string(), "caller_id.email=a@b");
        assert_eq!(DisplayValue::Stored.as_param(), "false");
        assert_eq!(DisplayValue::Display.as_param(), "true");
        assert_eq!(DisplayValue::Both.as_param(), "all");
    }

    #[test]
    fn refuses_values_that_would_change_the_query() {
        for bad in ["x^active=false", "x^ORstate=1", "x^NQactive=true", "^", "a\nb", "a\rb", "", "javascript:gs.x()"] {
            let err = Query::new().eq("correlation_id", bad).unwrap_err();
            assert_eq!(err.invalid_field(), Some("correlation_id"), "{bad:?}");
            assert!(Query::new().ne("correlation_id", bad).is_err());
            assert!(Query::new().in_list("state", &[bad]).is_err());
        }
        assert!(Query::new().in_list("state", &["1,2"]).is_err());
        assert!(Query::new().in_list::<&str>("state", &[]).is_err());
        for bad_field in ["", "state=1", "a^b", "a b", "a..b", ".a", "1a", "state!"] {
            assert!(Query::new().eq(bad_field, "1").is_err(), "{bad_field:?}");
            assert!(Query::new().order_by_desc(bad_field).is_err(), "{bad_field:?}");
        }
    }

    #[test]
    fn matches_checks_exactly() {
        let q = Query::new()
            .eq("correlation_id", "gitlab:1:abc:prod")
            .unwrap()
            .in_list("state", &["-5", "-4"])
            .unwrap()
            .active(true)
            .order_by_desc("sys_created_on")
            .unwrap();
        let rec = |cid: &str, state: &str| {
            Record::from_value(
                json!({"correlation_id": cid, "state": {"value": state, "display_value": "x"}, "active": "true"}),
            )
            .unwrap()
        };
        assert!(q.matches(&rec("gitlab:1:abc:prod", "-4")));
        assert!(!q.matches(&rec("gitlab:1:abc:Prod", "-4")));
        assert!(!q.matches(&rec("gitlab:1:abc:prod", "3")));
        assert!(!Query::new().ne("x", "1").unwrap().matches(&Record::from_value(json!({"x": "1"})).unwrap()));
    }
}
