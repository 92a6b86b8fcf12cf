//! Every write fits DynamoDB's transaction limit: intake's write of a request with the most
//! approvers fits one write of `MAX_WRITE_ITEMS`, one approver more would not, and longer approver
//! lists are refused at start-up, naming the setting and the limit.

use std::collections::BTreeMap;

use gatehouse_domain::config::{Config, MAX_APPROVERS, Settings};
use gatehouse_domain::ports::{MAX_WRITE_ITEMS, create_items};

const BASE: &[(&str, &str)] = &[
    ("GATEHOUSE_API_TOKENS", "servicenow:0123456789abcdef0123456789abcdef"),
    ("GATEHOUSE_PUBLIC_BASE_URL", "https://gatehouse.example.com"),
    ("GATEHOUSE_CLOUDS_YAML", "/etc/openstack/clouds.yaml"),
    ("GATEHOUSE_APPROVERS", "ops@example.com"),
    ("GATEHOUSE_MAIL_FROM", "gatehouse@example.com"),
    ("GATEHOUSE_LINK_KEY", "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="),
    ("GATEHOUSE_EVIDENCE_KEY", "3q2+796tvu/erb7v3q2+796tvu/erb7v3q2+796tvu8="),
    ("GATEHOUSE_ALLOW_LINK_ONLY_APPROVAL", "true"),
];

fn approvers(n: usize) -> String {
    (0..n).map(|i| format!("ops{i}@example.com")).collect::<Vec<_>>().join(",")
}

fn load(key: &str, value: String) -> Result<Config, gatehouse_domain::config::ConfigError> {
    let mut map: BTreeMap<String, String> = BASE.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.insert(key.into(), value);
    Config::load(&Settings::new(move |k| map.get(k).cloned()))
}

#[test]
fn intakes_write_with_the_most_approvers_fits_one_transaction() {
    // Tokens: one per approver; messages: a mail per approver, the requester's mail, the work note.
    assert!(create_items(MAX_APPROVERS, MAX_APPROVERS + 2) <= MAX_WRITE_ITEMS);
    assert!(create_items(MAX_APPROVERS + 1, MAX_APPROVERS + 3) > MAX_WRITE_ITEMS, "the cap is as high as it can be");
    assert_eq!(MAX_WRITE_ITEMS, 100);
}

#[test]
fn longer_approver_lists_are_refused_naming_the_limit() {
    for (key, prefix) in [("GATEHOUSE_APPROVERS", ""), ("GATEHOUSE_APPROVERS_BY_CLOUD", "pcd-east=")] {
        let most = load(key, format!("{prefix}{}", approvers(MAX_APPROVERS))).unwrap();
        assert_eq!(most.approvers.for_cloud("pcd-east").len(), MAX_APPROVERS, "{key}");
        let err = load(key, format!("{prefix}{}", approvers(MAX_APPROVERS + 1))).unwrap_err();
        assert_eq!(err.setting, key);
        let said = err.to_string();
        assert!(said.contains(&format!("names {} approvers", MAX_APPROVERS + 1)), "{said}");
        assert!(said.contains(&format!("at most {MAX_APPROVERS}")) && said.contains("100 items"), "{said}");
    }
}
