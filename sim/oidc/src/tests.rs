use super::*;
use crate::authorize::{sign_in_page, with_query};
use crate::sign_in::{between, parse_form};

#[test]
fn stable_sub_ignores_case_and_differs_per_user() {
    assert_eq!(stable_sub("Approver@Demo.invalid"), stable_sub("approver@demo.invalid"));
    assert_ne!(stable_sub(demo::APPROVER_EMAIL), stable_sub(demo::SECOND_EMAIL));
    assert_eq!(stable_sub("a@b").len(), 26);
}

#[test]
fn debug_hides_secrets() {
    let config = OidcSimConfig::default();
    let shown = format!("{config:?}");
    assert!(!shown.contains(demo::CLIENT_SECRET), "{shown}");
    assert!(!shown.contains("\"demo\""), "{shown}");
}

#[test]
fn parses_its_own_form() {
    let data = Data {
        clients: vec![],
        users: OidcSimConfig::default().users,
        pending: HashMap::new(),
        codes: HashMap::new(),
        access_tokens: HashMap::new(),
    };
    let pending = Pending {
        client_id: "c".into(),
        redirect_uri: "http://x/cb".into(),
        state: None,
        nonce: None,
        code_challenge: String::new(),
        login_hint: None,
        created: Instant::now(),
    };
    let page = sign_in_page(&data, "r&1", &pending, "a\"b", Some("Wrong <email>"));
    let form = parse_form(&page).unwrap();
    assert_eq!(form.action, "/authorize");
    assert_eq!(form.hidden, vec![("request".to_string(), "r&1".to_string())]);
    assert_eq!(between(&page, "<p class=\"error\">", "</p>"), Some("Wrong &lt;email&gt;"));
}

#[test]
fn redirect_keeps_an_existing_query() {
    assert_eq!(with_query("http://h/cb?x=1", &[("code", "a b")]), "http://h/cb?x=1&code=a+b");
}
