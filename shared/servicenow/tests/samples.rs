//! ServiceNow's published payload samples (`sim/samples/servicenow-api-samples/`) read as records.

use gatehouse_servicenow::Record;
use serde::Deserialize;

macro_rules! sample {
    ($file:literal) => {
        include_str!(concat!("../../../sim/samples/servicenow-api-samples/", $file))
    };
}

#[derive(Deserialize)]
struct One {
    result: Record,
}

#[derive(Deserialize)]
struct Many {
    result: Vec<Record>,
}

fn one(text: &str) -> Record {
    serde_json::from_str::<One>(text).unwrap().result
}

fn many(text: &str) -> Vec<Record> {
    serde_json::from_str::<Many>(text).unwrap().result
}

#[test]
fn table_api_samples() {
    let problems = many(sample!("table-problem-list-response.json"));
    assert_eq!(problems.len(), 1);
    let p = &problems[0];
    assert_eq!(p.sys_id(), Some("04ce72c9c0a8016600b5b7f75ac67b5b"));
    assert_eq!(p.number(), Some("PRB0000050"));
    assert_eq!(p.str("state"), Some("4"));
    assert_eq!(p.str("active"), Some("false"));
    assert_eq!(p.str("approval"), Some("not requested"));
    assert_eq!(p.str("correlation_id"), Some(""));
    assert_eq!(p.str("opened_by"), Some("glide.maint"));
    assert_eq!(p.link("opened_by"), Some("https://instance.servicenow.com/api/now/table/sys_user/glide.maint"));
    assert_eq!(p.str("sys_updated_on"), Some("2016-01-19 04:52:04"));

    let got = one(sample!("table-incident-get-response.json"));
    assert_eq!(got.sys_id(), Some("a9e30c7dc61122760116894de7bcc7bd"));
    assert_eq!(got.number(), Some("INC0000046"));
    assert_eq!(got.str("caller_id"), Some("46c6f9efa9fe198101ddf5eed9adf6e7"));
    assert_eq!(got.display("caller_id").as_deref(), Some("46c6f9efa9fe198101ddf5eed9adf6e7"));
    assert_eq!(got.str("work_notes"), Some(""));

    let created = one(sample!("table-incident-create-response.json"));
    assert_eq!(created.number(), Some("INC0010002"));
    assert_eq!(created.str("sys_created_by"), Some("admin"));

    let patched = one(sample!("table-incident-patch-response.json"));
    assert_eq!(patched.sys_id(), Some("ef43c6d40a0a0b5700c77f9bf387afe3"));
    assert_eq!(patched.str("state"), Some("2"));
}

#[test]
fn change_management_api_samples() {
    let list = many(sample!("sn_chg_rest-change-list-response.json"));
    let got = one(sample!("sn_chg_rest-change-get-response.json"));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0], got, "the list and get samples carry the same record");
    assert_eq!(got.sys_id(), Some("1766f1de47410200e90d87e8dee490f6"));
    assert_eq!(got.number(), Some("CHG0000024"));
    assert_eq!(got.value("state").as_deref(), Some("3"));
    assert_eq!(got.display("state").as_deref(), Some("Closed"));
    assert_eq!(got.value("active").as_deref(), Some("false"));
    assert_eq!(got.str("approval"), Some("approved"));
    assert_eq!(got.display("approval").as_deref(), Some("Approved"));
    assert_eq!(got.str("type"), Some("standard"));
    assert_eq!(got.str("close_code"), Some("successful"));
    assert_eq!(got.display("requested_by").as_deref(), Some("System Administrator"));
    assert_eq!(got.value("sys_updated_on").as_deref(), Some("2015-07-06 18:59:27"));
    assert_eq!(got.display("sys_updated_on").as_deref(), Some("2015-07-06 11:59:27"));
    assert_eq!(got.value("correlation_id").as_deref(), Some(""));
}

#[test]
fn devops_change_info_sample() {
    let info = one(sample!("sn_devops-orchestration-changeinfo-response.json"));
    assert_eq!(info.number(), Some("CHG0030001"));
    assert_eq!(info.sys_id(), Some("ee89341bdb642810765555535e96196e"));
    assert_eq!(info.value("changeFound").as_deref(), Some("true"));
    assert_eq!(info.str("state"), Some("0"));
    assert_eq!(info.str("plannedStartDate"), Some("2023-02-05 08:00:00"));
}
