//! How the Table API shows a record: stored or display values, reference links, journal fields,
//! dot-walked fields and request item variables.

use serde_json::{Map, Value, json};

use crate::db::{Db, Mode, Row};
use crate::schema::{DISPLAY_FIELDS, JOURNAL_FIELDS, JOURNAL_TABLE, choice_label, def, reference_of};

/// `variables.<name>` in `sysparm_fields`: a request item's catalog variable, read like a field.
/// https://github.com/insomniacc/PSSnow/issues/43 (read with `variables.subject`; not writable
/// through the Table API, so writes of `variables.*` are ignored like any unknown field).
const VARIABLES: &str = "variables.";

/// One field as shown: stored value, display value, and the reference's link.
struct Cell {
    value: String,
    display: String,
    link: Option<String>,
}

impl Db {
    /// The record as the Table API shows it. With `fields`, only those, in that order; a field
    /// the table lacks is left out ("Invalid fields are ignored",
    /// https://www.servicenow.com/docs/r/australia/api-reference/rest-apis/c_TableAPI.html), and
    /// so is a variable the item does not have. Dot-walked fields (`requested_for.email`) come
    /// under their dotted name, as the Table API answers them:
    /// https://developer.servicenow.com/blog.do?p=/post/dot-walking-in-the-rest-table-api-2/
    pub(crate) fn render(
        &self,
        table: &str,
        row: &Row,
        mode: Mode,
        fields: Option<&[String]>,
        links: bool,
        base: &str,
    ) -> Map<String, Value> {
        let sys_id = row.get("sys_id");
        let journal = table != JOURNAL_TABLE && (def(table).is_some_and(|d| d.journal) || self.has_journal(sys_id));
        let mut own: Vec<String> = row.fields.keys().cloned().collect();
        if journal {
            own.extend(JOURNAL_FIELDS.iter().map(|s| s.to_string()));
        }
        let names = match fields {
            Some(wanted) => wanted.to_vec(),
            None => own.clone(),
        };
        let mut out = Map::new();
        for name in names {
            let cell = if let Some(variable) = name.strip_prefix(VARIABLES) {
                self.variable(sys_id, variable)
            } else if name.contains('.') {
                self.dot_walked(table, row, &name, links, base)
            } else if !own.contains(&name) {
                None
            } else if journal && JOURNAL_FIELDS.contains(&name.as_str()) {
                Some(Cell { value: String::new(), display: self.journal_text(table, sys_id, &name), link: None })
            } else {
                Some(self.cell(table, row, &name, links, base))
            };
            if let Some(cell) = cell {
                out.insert(name, shape(cell, mode));
            }
        }
        out
    }

    fn variable(&self, sys_id: &str, name: &str) -> Option<Cell> {
        let (_, value) = self.variables(sys_id)?.iter().find(|(n, _)| n == name)?;
        Some(Cell { value: value.clone(), display: value.clone(), link: None })
    }

    /// A field reached through references; empty when a reference on the way is empty.
    fn dot_walked(&self, table: &str, row: &Row, path: &str, links: bool, base: &str) -> Option<Cell> {
        let (end_table, end_row, field) = self.walk(table, Some(row.clone()), path)?;
        Some(match end_row {
            Some(r) => self.cell(&end_table, &r, field, links, base),
            None => Cell { value: String::new(), display: String::new(), link: None },
        })
    }

    fn cell(&self, table: &str, row: &Row, name: &str, links: bool, base: &str) -> Cell {
        let value = row.get(name).to_string();
        match reference_of(table, name).filter(|_| table != JOURNAL_TABLE && !value.is_empty()) {
            Some(rt) => {
                let display = self.reference_display(rt, &value);
                let link = links.then(|| format!("{base}/api/now/table/{rt}/{value}"));
                Cell { value, display, link }
            }
            None => {
                let display = choice_label(table, name, &value).map(str::to_string).unwrap_or_else(|| value.clone());
                Cell { value, display, link: None }
            }
        }
    }

    /// A referenced record's display value: its name, number, title or user name (the sys_id
    /// when the simulator has no such record).
    fn reference_display(&self, table: &str, sys_id: &str) -> String {
        let Some(row) = self.row(table, sys_id) else { return sys_id.to_string() };
        DISPLAY_FIELDS.iter().map(|f| row.get(f)).find(|v| !v.is_empty()).unwrap_or(sys_id).to_string()
    }
}

fn shape(cell: Cell, mode: Mode) -> Value {
    let Cell { value, display, link } = cell;
    match (mode, link) {
        (Mode::Stored, None) => Value::String(value),
        (Mode::Stored, Some(link)) => json!({"link": link, "value": value}),
        (Mode::Display, None) => Value::String(display),
        (Mode::Display, Some(link)) => json!({"display_value": display, "link": link}),
        (Mode::All, None) => json!({"display_value": display, "value": value}),
        (Mode::All, Some(link)) => json!({"display_value": display, "link": link, "value": value}),
    }
}
