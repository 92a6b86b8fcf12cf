//! The simulated instance's records: tables, request item variables, lookups and encoded
//! queries. Inserts and updates (defaults, numbers, the fields stored) are in `writes.rs`; the
//! journals (work notes, comments) in `journal.rs`; the business rules of the change state model
//! and its approvals in `change_model.rs`. How records are shown is in `crate::render`; the
//! tables and their fields in `crate::schema`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::query::{compare, parse_query};
use crate::schema::{JOURNAL_FIELDS, JOURNAL_TABLE, JOURNAL_TABLE_FIELDS, SYS_FIELDS, def, reference_table};

mod change_model;
mod journal;
#[cfg(test)]
mod tests;
mod writes;

use journal::{Journal, journal_row};

/// `sysparm_display_value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Stored,
    Display,
    All,
}

impl Mode {
    pub(crate) fn parse(v: Option<&str>) -> Mode {
        match v.map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Mode::Display,
            Some("all") => Mode::All,
            _ => Mode::Stored,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) seq: u64,
    pub(crate) fields: Map<String, Value>,
}

impl Row {
    pub(crate) fn get(&self, field: &str) -> &str {
        self.fields.get(field).and_then(Value::as_str).unwrap_or("")
    }
}

/// Who writes: the user name (for `sys_*_by`) and whether ServiceNow's rules apply (the
/// simulator's control API acts as an administrator fixing data: no refusals, derived fields
/// still follow).
pub(crate) struct Actor<'a> {
    pub(crate) user: &'a str,
    pub(crate) enforce: bool,
}

/// A write ServiceNow refuses: status and its error body's message and detail.
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
    pub(crate) detail: String,
}

#[derive(Default)]
pub(crate) struct Db {
    tables: BTreeMap<String, Vec<Row>>,
    journal: Vec<Journal>,
    /// Request item sys_id → its variables (name, value) in order: ServiceNow keeps them apart
    /// from the record (`sc_item_option`), and only an order through the catalog creates them.
    variables: HashMap<String, Vec<(String, String)>>,
    seq: u64,
    counters: HashMap<String, u64>,
}

pub(crate) fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn new_sys_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Db {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn rows(&self, table: &str) -> Vec<Row> {
        if table == JOURNAL_TABLE {
            return self.journal.iter().map(journal_row).collect();
        }
        self.tables.get(table).cloned().unwrap_or_default()
    }

    pub(crate) fn row(&self, table: &str, sys_id: &str) -> Option<Row> {
        if table == JOURNAL_TABLE {
            return self.journal.iter().find(|j| j.sys_id == sys_id).map(journal_row);
        }
        self.tables.get(table)?.iter().find(|r| r.get("sys_id") == sys_id).cloned()
    }

    pub(crate) fn delete(&mut self, table: &str, sys_id: &str) -> bool {
        let Some(rows) = self.tables.get_mut(table) else { return false };
        let before = rows.len();
        rows.retain(|r| r.get("sys_id") != sys_id);
        let deleted = rows.len() != before;
        if deleted {
            self.variables.remove(sys_id);
        }
        deleted
    }

    /// The first record whose `field` is exactly `value`.
    pub(crate) fn find(&self, table: &str, field: &str, value: &str) -> Option<Row> {
        self.tables.get(table)?.iter().find(|r| r.get(field) == value).cloned()
    }

    /// The request item's variables (name, value), in order; `None` when it has none (an item
    /// not ordered through the catalog, or whose catalog item has no variables).
    pub(crate) fn variables(&self, sys_id: &str) -> Option<&[(String, String)]> {
        self.variables.get(sys_id).map(Vec::as_slice)
    }

    pub(crate) fn set_variables(&mut self, sys_id: &str, variables: Vec<(String, String)>) {
        self.variables.insert(sys_id.to_string(), variables);
    }

    /// Sets one variable the item has; `false` when it has no such variable.
    pub(crate) fn set_variable(&mut self, sys_id: &str, name: &str, value: &str) -> bool {
        match self.variables.get_mut(sys_id).and_then(|vs| vs.iter_mut().find(|(n, _)| n == name)) {
            Some(slot) => {
                slot.1 = value.to_string();
                true
            }
            None => false,
        }
    }

    /// The user's display name (`sys_user.name`), or the user name.
    fn user_display(&self, user_name: &str) -> String {
        self.tables
            .get("sys_user")
            .and_then(|rows| rows.iter().find(|r| r.get("user_name") == user_name))
            .map(|r| r.get("name").to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user_name.to_string())
    }

    pub(crate) fn user_sys_id(&self, user_name: &str) -> Option<String> {
        self.tables
            .get("sys_user")?
            .iter()
            .find(|r| r.get("user_name") == user_name)
            .map(|r| r.get("sys_id").to_string())
    }

    /// Whether the table has the field: the platform's, the table's own, or one some record has;
    /// a dot-walked field (`requested_for.email`) when each step is a reference to a table that
    /// has the next.
    pub(crate) fn knows(&self, table: &str, field: &str) -> bool {
        if let Some((head, rest)) = field.split_once('.') {
            return reference_table(head).is_some_and(|rt| self.knows(table, head) && self.knows(rt, rest));
        }
        if table == JOURNAL_TABLE {
            return JOURNAL_TABLE_FIELDS.contains(&field);
        }
        SYS_FIELDS.contains(&field)
            || def(table).is_some_and(|d| d.has(field) || (d.journal && JOURNAL_FIELDS.contains(&field)))
            || self.tables.get(table).is_some_and(|rows| rows.iter().any(|r| r.fields.contains_key(field)))
    }

    /// Where a dot-walked field ends: the table and the record holding its last field (`None`
    /// when a reference on the way is empty or points nowhere) and that field. `None` when the
    /// path names no field.
    pub(crate) fn walk<'p>(
        &self,
        table: &str,
        row: Option<Row>,
        path: &'p str,
    ) -> Option<(String, Option<Row>, &'p str)> {
        match path.split_once('.') {
            None => self.knows(table, path).then(|| (table.to_string(), row, path)),
            Some((head, rest)) => {
                let rt = reference_table(head).filter(|_| self.knows(table, head))?;
                let next = row.and_then(|r| self.row(rt, r.get(head)));
                self.walk(rt, next, rest)
            }
        }
    }

    /// A field's stored value, dot-walking through references (empty when a reference is empty).
    fn path_value(&self, table: &str, row: &Row, path: &str) -> String {
        if !path.contains('.') {
            return row.get(path).to_string();
        }
        match self.walk(table, Some(row.clone()), path) {
            Some((_, Some(r), field)) => r.get(field).to_string(),
            _ => String::new(),
        }
    }

    /// The records an encoded query selects, in its order.
    pub(crate) fn select(&self, table: &str, query: &str) -> Vec<Row> {
        let mut rows = self.rows(table);
        let q = parse_query(query, |f| self.knows(table, f));
        rows.retain(|r| q.conds.iter().all(|c| c.matches(&|f| self.path_value(table, r, f))));
        if !q.order.is_empty() {
            let newest_first = q.order[0].1;
            rows.sort_by(|a, b| {
                for (field, desc) in &q.order {
                    let o = compare(&self.path_value(table, a, field), &self.path_value(table, b, field));
                    let o = if *desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                if newest_first { b.seq.cmp(&a.seq) } else { a.seq.cmp(&b.seq) }
            });
        }
        rows
    }
}
