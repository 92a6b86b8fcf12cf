//! Journals: work notes and comments are appended as `sys_journal_field` entries, never stored
//! on the record, and read back per record (oldest first) or as ServiceNow displays the field
//! (newest first). Modelled on ServiceNow's "Journal fields" reference (journal fields "create
//! entries in the Journal Entries [sys_journal_field] table") and "Retrieve journal entries"
//! (https://www.servicenow.com/docs/r/australia/api-reference/web-services/retrieving-journal-entries.html:
//! an entry names its record by `element_id`, the record's sys_id, and its field by `element`).
//! Each entry is created by the user whose write added it (`sys_created_by`, as on every record:
//! an integration user's REST writes carry its user name), which `--servicenow-author` filters on.

use serde_json::{Map, Value};

use super::{Db, Row, new_sys_id};
use crate::JournalEntry;

#[derive(Clone, Debug)]
pub(super) struct Journal {
    seq: u64,
    pub(super) sys_id: String,
    table: String,
    element_id: String,
    element: String,
    value: String,
    created_on: String,
    created_by: String,
}

impl Db {
    /// Whether any journal entry belongs to the record.
    pub(crate) fn has_journal(&self, sys_id: &str) -> bool {
        self.journal.iter().any(|j| j.element_id == sys_id)
    }

    /// The journal entries of one record's field, oldest first.
    pub(crate) fn journal(&self, table: &str, sys_id: &str, element: &str) -> Vec<JournalEntry> {
        self.journal
            .iter()
            .filter(|j| j.table == table && j.element_id == sys_id && j.element == element)
            .map(|j| JournalEntry { at: j.created_on.clone(), author: j.created_by.clone(), text: j.value.clone() })
            .collect()
    }

    /// A journal field as ServiceNow displays it: newest entry first.
    pub(crate) fn journal_text(&self, table: &str, sys_id: &str, element: &str) -> String {
        let label = if element == "work_notes" { "Work notes" } else { "Additional comments" };
        let mut out = String::new();
        for j in
            self.journal.iter().rev().filter(|j| j.table == table && j.element_id == sys_id && j.element == element)
        {
            out.push_str(&format!(
                "{} - {} ({label})\n{}\n\n",
                j.created_on,
                self.user_display(&j.created_by),
                j.value
            ));
        }
        out
    }

    pub(super) fn add_notes(&mut self, table: &str, sys_id: &str, notes: Vec<(String, String)>, user: &str, at: &str) {
        for (element, value) in notes {
            let seq = self.next_seq();
            self.journal.push(Journal {
                seq,
                sys_id: new_sys_id(),
                table: table.to_string(),
                element_id: sys_id.to_string(),
                element,
                value,
                created_on: at.to_string(),
                created_by: user.to_string(),
            });
        }
    }
}

pub(super) fn journal_row(j: &Journal) -> Row {
    let mut fields = Map::new();
    for (k, v) in [
        ("sys_id", &j.sys_id),
        ("element_id", &j.element_id),
        ("element", &j.element),
        ("name", &j.table),
        ("value", &j.value),
        ("sys_created_on", &j.created_on),
        ("sys_created_by", &j.created_by),
        ("sys_updated_on", &j.created_on),
    ] {
        fields.insert(k.into(), Value::String(v.clone()));
    }
    Row { seq: j.seq, fields }
}
