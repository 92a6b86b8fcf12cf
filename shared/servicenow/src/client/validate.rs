//! Checks on what callers pass before it goes into a URL or a body: table names, sys_ids and
//! work note markers.

use domain::Error;

/// Table names: lowercase letters, digits and `_` (scoped tables too: `x_acme_app_thing`).
pub(super) fn check_table(table: &str) -> Result<(), Error> {
    let ok = !table.is_empty()
        && table.len() <= 80
        && table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(Error::internal_msg(format!("ServiceNow: {table:?} is not a table name"))) }
}

/// A sys_id (32 hex digits) or another record key ServiceNow uses in its place: letters,
/// digits, `.`, `_` and `-`.
pub(super) fn check_sys_id(sys_id: &str) -> Result<(), Error> {
    let ok = !sys_id.is_empty()
        && sys_id.len() <= 64
        && sys_id != "."
        && sys_id != ".."
        && sys_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok { Ok(()) } else { Err(Error::invalid("sys_id", "is not a ServiceNow sys_id")) }
}

pub(super) fn check_marker(marker: &str) -> Result<(), Error> {
    let ok = !marker.trim().is_empty()
        && marker.len() <= 200
        && marker.bytes().all(|b| (b.is_ascii_graphic() || b == b' ') && !b"<>&\"'".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("marker", "must be 1 to 200 printable ASCII characters without < > & \" '"))
    }
}
