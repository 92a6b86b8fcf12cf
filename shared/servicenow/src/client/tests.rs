//! Unit tests of the client's parts that need no server: paging links, error bodies, name
//! checks and configuration checks (the calls themselves are tested against the simulator in
//! `tests/`).

use reqwest::header::{HeaderMap, LINK};

use super::failure::MAX_MESSAGE;
use super::transport::find_rel;
use super::*;

#[test]
fn finds_the_next_link() {
    let h = "<https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=0>;rel=\"first\",\
             <https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=1>;rel=\"next\",\
             <https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=9>;rel=\"last\"";
    assert_eq!(
        find_rel(h, "next").as_deref(),
        Some("https://i.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_offset=1")
    );
    assert_eq!(find_rel(h, "prev"), None);
    assert_eq!(find_rel("<a,b>; rel=\"prev next\"", "next").as_deref(), Some("a,b"));
    assert_eq!(find_rel("<x>; REL=next", "next").as_deref(), Some("x"));
    assert_eq!(find_rel("garbage", "next"), None);
    assert_eq!(find_rel("<unterminated", "next"), None);
    let mut headers = HeaderMap::new();
    headers.append(LINK, HeaderValue::from_static("<p>;rel=\"prev\""));
    headers.append(LINK, HeaderValue::from_static("<n>;rel=\"next\""));
    assert_eq!(next_link(&headers).as_deref(), Some("n"));
}

#[test]
fn parses_servicenow_error_bodies() {
    let m = UpstreamMessage::parse(
        401,
        br#"{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}"#,
    );
    assert_eq!(m.message.as_deref(), Some("User Not Authenticated"));
    assert_eq!(m.to_string(), "HTTP 401: User Not Authenticated (Required to provide Auth information)");
    let o = UpstreamMessage::parse(401, br#"{"error_description":"access_denied","error":"server_error"}"#);
    assert_eq!(o.to_string(), "HTTP 401: server_error (access_denied)");
    assert_eq!(UpstreamMessage::parse(503, b"<html>").to_string(), "HTTP 503");
    let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(1000));
    assert!(UpstreamMessage::parse(500, long.as_bytes()).message.unwrap().chars().count() <= MAX_MESSAGE + 1);
}

#[test]
fn validates_names() {
    assert!(check_table("change_request").is_ok());
    assert!(check_table("x_acme_app_thing").is_ok());
    for bad in ["", "Change", "a/b", "a.b", "a?b"] {
        assert!(check_table(bad).is_err(), "{bad:?}");
    }
    assert!(check_sys_id("9d385017c611228701d22104cc95c371").is_ok());
    for bad in ["", ".", "..", "a/b", "a b", "a^b", "a?b"] {
        assert!(check_sys_id(bad).is_err(), "{bad:?}");
    }
    assert!(check_marker("[gatehouse:REQ-1:msg-2]").is_ok());
    for bad in ["", " ", "a\nb", "<b>", "a&b", "é"] {
        assert!(check_marker(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn client_checks_its_configuration() {
    let basic = SnAuth::Basic { user: "u".into(), password: "p".into() };
    let ok = Client::new(ServiceNowConfig::new("https://acme.service-now.com/", basic.clone())).unwrap();
    assert_eq!(ok.instance_url(), "https://acme.service-now.com");
    assert_eq!(ok.form_url("change_request", "abc"), "https://acme.service-now.com/change_request.do?sys_id=abc");
    assert_eq!(
        ok.table_url("sc_req_item", Some("abc")).as_str(),
        "https://acme.service-now.com/api/now/table/sc_req_item/abc"
    );
    let proxied = Client::new(ServiceNowConfig::new("https://proxy/sn/", basic.clone())).unwrap();
    assert_eq!(proxied.table_url("x", None).as_str(), "https://proxy/sn/api/now/table/x");
    assert_eq!(proxied.inner.token_url.as_str(), "https://proxy/sn/oauth_token.do");
    for bad in ["", "acme.service-now.com", "ftp://x", "https://u:p@x", "https://x/?a=1", "https://x/#f"] {
        let err = Client::new(ServiceNowConfig::new(bad, basic.clone())).unwrap_err();
        assert!(!err.to_string().contains("p@x"), "{err}");
    }
    for plain in ["http://acme.service-now.com", "http://10.1.2.3:8080/sn", "http://localhost.example.com"] {
        let err = Client::new(ServiceNowConfig::new(plain, basic.clone())).unwrap_err().to_string();
        assert!(err.contains("GATEHOUSE_SERVICENOW_URL") && err.contains("must be https"), "{plain}: {err}");
    }
    for loopback in ["http://127.0.0.1:8080", "http://127.3.2.1/sn", "http://[::1]:1", "http://localhost:9"] {
        assert!(Client::new(ServiceNowConfig::new(loopback, basic.clone())).is_ok(), "{loopback}");
    }
    let no_user = SnAuth::Basic { user: String::new(), password: "p".into() };
    assert!(Client::new(ServiceNowConfig::new("https://x", no_user)).is_err());
    assert_eq!(format!("{ok:?}"), r#"Client { instance_url: "https://acme.service-now.com", auth: "basic" }"#);
}
