//! Standard changes through `ServiceNowChanges` against the ServiceNow simulator: created from a
//! template (by name or sys_id) through the Change Management API, pre-approved and moved to
//! Scheduled, never duplicated on a retry, closed like the others, and refused with the template
//! named when it is unknown or retired.

use std::time::Duration;

use domain::Error;
use domain::changes::{ChangeDetails, ChangeDraft, ChangeKind, ChangeManagement, state};
use gatehouse_servicenow::{Client, ServiceNowChanges, ServiceNowConfig, SnAuth};
use servicenow_sim::{
    DEPLOY_TEMPLATE, DEPLOY_TEMPLATE_NAME, RETIRED_TEMPLATE, RETIRED_TEMPLATE_NAME, SHOP_SERVICE, SnFaults, SnSim,
    SnSimConfig,
};

const CHG: &str = "change_request";

async fn sim() -> SnSim {
    SnSim::start("127.0.0.1:0".parse().unwrap(), SnSimConfig::default()).await.unwrap()
}

fn changes(sim: &SnSim) -> ServiceNowChanges {
    let config = ServiceNowConfig {
        instance_url: sim.base_url(),
        auth: SnAuth::Basic { user: "gatehouse".into(), password: "secret".into() },
        timeout: Duration::from_secs(5),
        max_retries: 2,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..ServiceNowConfig::default()
    };
    ServiceNowChanges::new(Client::new(config).unwrap())
}

fn standard(correlation_id: &str, template: &str) -> ChangeDraft {
    ChangeDraft {
        correlation_id: correlation_id.into(),
        short_description: "Deploy shop 1.4.2 to production".into(),
        description: "Merge requests since the last deployment: !7 Checkout button".into(),
        planned_start: None,
        planned_end: None,
        details: ChangeDetails {
            assignment_group: Some("Platform Team".into()),
            cmdb_ci: Some(SHOP_SERVICE.into()),
            implementation_plan: Some("Not sent: the template's plan stands".into()),
            ..ChangeDetails::default()
        },
        kind: ChangeKind::Standard { template: template.into() },
    }
}

fn stored(sim: &SnSim, sys_id: &str, field: &str) -> String {
    sim.record(CHG, sys_id).unwrap()[field].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_standard_change_from_a_named_template_is_pre_approved_and_scheduled() {
    let sim = sim().await;
    let sn = changes(&sim);
    let c = sn.create(&standard("gitlab:1:abc:production", DEPLOY_TEMPLATE_NAME)).await.unwrap();
    assert_eq!((c.state.as_str(), c.state_display.as_str()), (state::SCHEDULED, "Scheduled"));
    assert_eq!(c.approval, "approved", "pre-approved: nobody was asked");
    assert_eq!(c.correlation_id, "gitlab:1:abc:production");
    assert!(c.number.starts_with("CHG"));
    assert_eq!(stored(&sim, &c.sys_id, "type"), "standard");
    assert_eq!(stored(&sim, &c.sys_id, "short_description"), "Deploy shop 1.4.2 to production");
    // The template's plans and description stand; the deployment's description is a work note.
    assert!(stored(&sim, &c.sys_id, "implementation_plan").starts_with("Run the deploy job"));
    assert!(stored(&sim, &c.sys_id, "description").starts_with("Deploys a release"));
    let notes = sim.work_notes(CHG, &c.sys_id);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].text.contains("!7 Checkout button"), "{notes:?}");
    // Who does it and what it touches come from the environment, resolved by name.
    let group = sim.records("sys_user_group").into_iter().find(|g| g["name"] == "Platform Team").unwrap();
    assert_eq!(sim.record(CHG, &c.sys_id).unwrap()["assignment_group"], group["sys_id"]);
    // No approval step was ever pending.
    assert!(sim.records("sysapproval_group").is_empty());
    // The same draft again (a retried request) finds it: no second change, no second note.
    let again = sn.create(&standard("gitlab:1:abc:production", DEPLOY_TEMPLATE_NAME)).await.unwrap();
    assert_eq!(again.sys_id, c.sys_id);
    assert_eq!(sim.records(CHG).len(), 1);
    assert_eq!(sim.work_notes(CHG, &c.sys_id).len(), 1);
    assert_eq!(sn.find_open("gitlab:1:abc:production").await.unwrap().unwrap().sys_id, c.sys_id);
}

#[tokio::test]
async fn a_template_given_by_sys_id_and_a_report_that_closes_it() {
    let sim = sim().await;
    let sn = changes(&sim);
    let c = sn.create(&standard("gitlab:1:def:production", DEPLOY_TEMPLATE)).await.unwrap();
    assert_eq!((c.state.as_str(), stored(&sim, &c.sys_id, "type").as_str()), (state::SCHEDULED, "standard"));
    // Scheduled → Implement → Review → Closed, one write each.
    let before: u64 = stored(&sim, &c.sys_id, "sys_mod_count").parse().unwrap();
    let closed = sn.close(&c.sys_id, true, "Deployed by pipeline 9").await.unwrap();
    assert_eq!(closed.state, state::CLOSED);
    assert_eq!(stored(&sim, &c.sys_id, "close_code"), "successful");
    assert_eq!(stored(&sim, &c.sys_id, "sys_mod_count").parse::<u64>().unwrap(), before + 3);
    // A second standard change is cancelled like any other.
    let d = sn.create(&standard("gitlab:1:fed:production", DEPLOY_TEMPLATE)).await.unwrap();
    let cancelled = sn.cancel(&d.sys_id, "gatehouse:cancel:1", "Pipeline failed").await.unwrap();
    assert_eq!(cancelled.state, state::CANCELED);
}

#[tokio::test]
async fn an_unknown_or_retired_template_is_an_upstream_error_naming_it() {
    let sim = sim().await;
    let sn = changes(&sim);
    let renamed = DEPLOY_TEMPLATE_NAME.to_lowercase();
    for template in ["No such template", RETIRED_TEMPLATE_NAME, RETIRED_TEMPLATE, renamed.as_str()] {
        match sn.create(&standard("gitlab:1:x:production", template)).await {
            Err(Error::Upstream { system, detail, .. }) => {
                assert_eq!(system, "ServiceNow std_change_record_producer");
                assert!(detail.contains(&format!("{template:?}")), "{detail}");
                assert!(detail.contains("no active standard change template"), "{detail}");
            }
            other => panic!("{template}: expected Upstream, got {other:?}"),
        }
    }
    assert!(sim.records(CHG).is_empty(), "nothing created");
    // Two active templates of one name: the name is ambiguous; the sys_id is not.
    let twin = sim.add_standard_template(DEPLOY_TEMPLATE_NAME, true);
    match sn.create(&standard("gitlab:1:y:production", DEPLOY_TEMPLATE_NAME)).await {
        Err(Error::Upstream { detail, .. }) => assert!(detail.contains("name it by sys_id"), "{detail}"),
        other => panic!("expected Upstream, got {other:?}"),
    }
    let c = sn.create(&standard("gitlab:1:y:production", &twin)).await.unwrap();
    assert_eq!(c.state, state::SCHEDULED);
}

#[tokio::test]
async fn a_lost_create_answer_makes_no_second_change() {
    let sim = sim().await;
    let sn = changes(&sim);
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    let c = sn.create(&standard("gitlab:1:lost:production", DEPLOY_TEMPLATE_NAME)).await.unwrap();
    assert_eq!(sim.records(CHG).len(), 1, "created once, found on the retry");
    assert_eq!((c.state.as_str(), c.approval.as_str()), (state::SCHEDULED, "approved"));
    assert_eq!(sim.work_notes(CHG, &c.sys_id).len(), 1);
}
