//! The simulated instance's dictionary: which tables it knows, their fields, reference fields and
//! choice labels.

/// Fields every record has, set by the platform.
pub(crate) const SYS_FIELDS: [&str; 7] = [
    "sys_id",
    "sys_created_on",
    "sys_created_by",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
    "sys_class_name",
];
/// Journal fields: a write appends an entry to `sys_journal_field`; nothing is stored on the record.
pub(crate) const JOURNAL_FIELDS: [&str; 2] = ["work_notes", "comments"];
/// The virtual table of journal entries.
pub(crate) const JOURNAL_TABLE: &str = "sys_journal_field";
pub(crate) const JOURNAL_TABLE_FIELDS: [&str; 8] =
    ["sys_id", "element_id", "element", "name", "value", "sys_created_on", "sys_created_by", "sys_updated_on"];

pub(crate) const TASK_FIELDS: &[&str] = &[
    "number",
    "state",
    "approval",
    "short_description",
    "description",
    "active",
    "assigned_to",
    "assignment_group",
    "opened_by",
    "opened_at",
    "closed_by",
    "closed_at",
    "priority",
    "impact",
    "urgency",
    "correlation_id",
    "correlation_display",
    "work_notes_list",
    "due_date",
    "cmdb_ci",
    "sys_domain",
];
const RITM_FIELDS: &[&str] =
    &["request", "cat_item", "requested_for", "quantity", "stage", "price", "u_gatehouse_request_id"];
const REQUEST_FIELDS: &[&str] = &["requested_for", "request_state", "stage", "price"];
const CHANGE_FIELDS: &[&str] = &[
    "type",
    "category",
    "phase",
    "start_date",
    "end_date",
    "close_code",
    "close_notes",
    "requested_by",
    "risk",
    "cab_required",
    "implementation_plan",
    "backout_plan",
    "test_plan",
    "justification",
    "business_service",
    "work_start",
    "work_end",
    "approval_set",
    "std_change_producer_version",
];
/// A standard change template (a record producer): what the Change Management API lists and
/// creates changes from.
const STD_PRODUCER_FIELDS: &[&str] = &["name", "short_description", "description", "active", "category", "template"];
/// A template's values for the record it fills: `template` is an encoded query (`field=value^…^EQ`).
const SYS_TEMPLATE_FIELDS: &[&str] = &["name", "table", "template", "active", "short_description"];
const STD_VERSION_FIELDS: &[&str] = &["name", "std_change_producer", "version"];
const GROUP_FIELDS: &[&str] = &["name", "description", "active", "email", "manager", "type"];
const CI_FIELDS: &[&str] = &["name", "short_description", "operational_status", "install_status"];
/// A group's approval of a task (`sysapproval_group`).
const GROUP_APPROVAL_FIELDS: &[&str] = &["parent", "assignment_group", "approval"];
const USER_FIELDS: &[&str] = &["user_name", "name", "first_name", "last_name", "email", "active"];
const CAT_ITEM_FIELDS: &[&str] = &["name", "short_description", "description", "active", "category", "sc_catalogs"];
const VARIABLE_SET_FIELDS: &[&str] = &["title", "internal_name", "description", "type", "order", "active"];
/// The catalog item ↔ variable set relation.
const SET_ITEM_FIELDS: &[&str] = &["sc_cat_item", "variable_set", "order"];
const VARIABLE_FIELDS: &[&str] =
    &["name", "question_text", "type", "order", "mandatory", "default_value", "variable_set", "cat_item", "active"];

pub(crate) struct TableDef {
    pub(crate) fields: &'static [&'static [&'static str]],
    /// Number prefix and first number.
    pub(crate) number: Option<(&'static str, u64)>,
    pub(crate) journal: bool,
}

impl TableDef {
    pub(crate) fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|fs| fs.contains(&field))
    }

    pub(crate) fn is_task(&self) -> bool {
        self.fields.contains(&TASK_FIELDS)
    }
}

pub(crate) fn def(table: &str) -> Option<TableDef> {
    let plain = |fields| Some(TableDef { fields, number: None, journal: false });
    match table {
        "sc_req_item" => {
            Some(TableDef { fields: &[TASK_FIELDS, RITM_FIELDS], number: Some(("RITM", 10001)), journal: true })
        }
        "sc_request" => {
            Some(TableDef { fields: &[TASK_FIELDS, REQUEST_FIELDS], number: Some(("REQ", 10001)), journal: true })
        }
        "change_request" => {
            Some(TableDef { fields: &[TASK_FIELDS, CHANGE_FIELDS], number: Some(("CHG", 30001)), journal: true })
        }
        "sys_user" => plain(&[USER_FIELDS]),
        "sys_user_group" => plain(&[GROUP_FIELDS]),
        "cmdb_ci" | "cmdb_ci_service" => plain(&[CI_FIELDS]),
        "sysapproval_group" => plain(&[GROUP_APPROVAL_FIELDS]),
        "sc_cat_item" => plain(&[CAT_ITEM_FIELDS]),
        "item_option_new_set" => plain(&[VARIABLE_SET_FIELDS]),
        "io_set_item" => plain(&[SET_ITEM_FIELDS]),
        "item_option_new" => plain(&[VARIABLE_FIELDS]),
        "std_change_record_producer" => plain(&[STD_PRODUCER_FIELDS]),
        "sys_template" => plain(&[SYS_TEMPLATE_FIELDS]),
        "std_change_producer_version" => plain(&[STD_VERSION_FIELDS]),
        _ => None,
    }
}

/// The table a reference field points to.
pub(crate) fn reference_table(field: &str) -> Option<&'static str> {
    Some(match field {
        "assigned_to" | "opened_by" | "closed_by" | "requested_for" | "requested_by" => "sys_user",
        "assignment_group" | "sys_domain" => "sys_user_group",
        "request" => "sc_request",
        "cat_item" | "sc_cat_item" => "sc_cat_item",
        "variable_set" => "item_option_new_set",
        "cmdb_ci" => "cmdb_ci",
        "business_service" => "cmdb_ci_service",
        "template" => "sys_template",
        "std_change_producer" => "std_change_record_producer",
        "std_change_producer_version" => "std_change_producer_version",
        _ => return None,
    })
}

/// The table `table`'s reference field `field` points to: as [`reference_table`], except where a
/// table has a plain field of that name (`sys_template.template` holds the template's values).
pub(crate) fn reference_of(table: &str, field: &str) -> Option<&'static str> {
    if table == "sys_template" && field == "template" {
        return None;
    }
    reference_table(field)
}

/// The fields a referenced record is displayed by, in the order tried (`sys_user.name`,
/// `sc_cat_item.name`, a task's number, a variable set's title).
pub(crate) const DISPLAY_FIELDS: [&str; 4] = ["name", "number", "title", "user_name"];

pub(crate) fn choice_label(table: &str, field: &str, value: &str) -> Option<&'static str> {
    Some(match (table, field, value) {
        ("sc_req_item", "state", "1") => "Open",
        ("sc_req_item", "state", "2") => "Work in Progress",
        ("sc_req_item", "state", "3") => "Closed Complete",
        ("sc_req_item", "state", "4") => "Closed Incomplete",
        ("sc_req_item", "state", "7") => "Closed Skipped",
        // Stage of a request item (the catalog workflow's progress). "complete" (Completed) and
        // "Request Cancelled" (value with a space, as scripts set it) close an item:
        // https://www.servicenow.com/community/itsm-forum/request-management-states-and-stages-best-practice/td-p/3413764
        ("sc_req_item", "stage", "waiting_for_approval") => "Waiting for Approval",
        ("sc_req_item", "stage", "request_approved") => "Request Approved",
        ("sc_req_item", "stage", "fulfillment") => "Fulfillment",
        ("sc_req_item", "stage", "delivery") => "Delivery",
        ("sc_req_item", "stage", "complete") => "Completed",
        ("sc_req_item", "stage", "Request Cancelled") => "Request Cancelled",
        ("change_request", "state", "-5") => "New",
        ("change_request", "state", "-4") => "Assess",
        ("change_request", "state", "-3") => "Authorize",
        ("change_request", "state", "-2") => "Scheduled",
        ("change_request", "state", "-1") => "Implement",
        ("change_request", "state", "0") => "Review",
        ("change_request", "state", "3") => "Closed",
        ("change_request", "state", "4") => "Canceled",
        ("change_request", "type", "normal") => "Normal",
        ("change_request", "type", "standard") => "Standard",
        ("change_request", "type", "emergency") => "Emergency",
        ("change_request", "close_code", "successful") => "Successful",
        ("change_request", "close_code", "successful_issues") => "Successful with issues",
        ("change_request", "close_code", "unsuccessful") => "Unsuccessful",
        ("change_request", "phase", "requested") => "Requested",
        ("change_request", "risk", "2") => "High",
        ("change_request", "risk", "3") => "Moderate",
        ("change_request", "risk", "4") => "Low",
        (_, "approval", "not requested") => "Not Yet Requested",
        (_, "approval", "requested") => "Requested",
        (_, "approval", "approved") => "Approved",
        (_, "approval", "rejected") => "Rejected",
        (_, "approval", "cancelled") => "Cancelled",
        (_, "approval", "not_required") => "No Longer Required",
        (_, "impact" | "urgency", "1") => "1 - High",
        (_, "impact" | "urgency", "2") => "2 - Medium",
        (_, "impact" | "urgency", "3") => "3 - Low",
        (_, "priority", "1") => "1 - Critical",
        (_, "priority", "2") => "2 - High",
        (_, "priority", "3") => "3 - Moderate",
        (_, "priority", "4") => "4 - Low",
        (_, "priority", "5") => "5 - Planning",
        _ => return None,
    })
}
