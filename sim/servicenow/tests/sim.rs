//! The simulator over raw HTTP: the shapes a ServiceNow client sees (authentication, records,
//! lists and journals through the Table API, faults and the control API, the binary). The change
//! state model and its approvals are in `change_model.rs`; the helpers in `common/mod.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use servicenow_sim::SnFaults;

use common::{PASSWORD, USER, body, get, http, send, sim};

fn sample(name: &str) -> Value {
    let path = format!("{}/../samples/servicenow-api-samples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn unauthenticated_calls_get_servicenows_401() {
    let sim = sim().await;
    let url = format!("{}/api/now/table/sc_req_item", sim.base_url());
    let expected = sample("error-401-user-not-authenticated-response.json");
    for req in [
        http().get(&url),
        http().get(&url).basic_auth(USER, Some("wrong")),
        http().get(&url).bearer_auth("not-a-token"),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body(resp).await, expected);
    }
    assert_eq!(get(&sim, "/api/now/table/sc_req_item").await.status(), StatusCode::OK);
    assert_eq!(sim.calls(), 4);
}

#[tokio::test]
async fn oauth_token_endpoint() {
    let sim = sim().await;
    let token_url = format!("{}/oauth_token.do", sim.base_url());
    let form = |pairs: &[(&str, &str)]| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        http().post(&token_url).header("content-type", "application/x-www-form-urlencoded").body(s.finish())
    };
    let resp =
        form(&[("grant_type", "client_credentials"), ("client_id", "gh-client"), ("client_secret", "gh-secret")])
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let t = body(resp).await;
    let sample = sample("oauth_token-password-grant-response.json");
    assert_eq!(t["token_type"], sample["token_type"]);
    assert_eq!(t["scope"], sample["scope"]);
    assert_eq!(t["expires_in"], 1800);
    assert!(t.get("refresh_token").is_none(), "no refresh token for client credentials");
    let token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 86);

    let resp = http().get(format!("{}/api/now/table/change_request", sim.base_url())).bearer_auth(&token).send();
    assert_eq!(resp.await.unwrap().status(), StatusCode::OK);

    let pw = form(&[
        ("grant_type", "password"),
        ("client_id", "gh-client"),
        ("client_secret", "gh-secret"),
        ("username", USER),
        ("password", PASSWORD),
    ]);
    let t = body(pw.send().await.unwrap()).await;
    assert!(t["refresh_token"].is_string() && t["access_token"].is_string());

    let bad = form(&[("grant_type", "client_credentials"), ("client_id", "gh-client"), ("client_secret", "x")]);
    let resp = bad.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(resp).await, json!({"error_description": "access_denied", "error": "server_error"}));
    let odd = form(&[("grant_type", "implicit"), ("client_id", "gh-client"), ("client_secret", "gh-secret")]);
    assert_eq!(odd.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.token_requests(), 4);

    sim.expire_tokens();
    let resp = http().get(format!("{}/api/now/table/change_request", sim.base_url())).bearer_auth(&token).send();
    assert_eq!(resp.await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn table_api_records_in_three_display_modes() {
    let sim = sim().await;
    let resp = send(
        &sim,
        reqwest::Method::POST,
        "/api/now/table/sc_req_item",
        json!({"short_description": "VM web-01", "u_gatehouse_request_id": "r-1", "no_such_field": "x", "sys_created_by": "mallory"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let created = body(resp).await["result"].clone();
    let id = created["sys_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("{}/api/now/table/sc_req_item/{id}", sim.base_url()));
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(created["number"], "RITM0010001");
    assert_eq!(created["state"], "1");
    assert_eq!(created["active"], "true");
    assert_eq!(created["sys_created_by"], USER);
    assert_eq!(created["sys_class_name"], "sc_req_item");
    assert!(created.get("no_such_field").is_none(), "unknown fields are ignored");
    let created_on = created["sys_created_on"].as_str().unwrap();
    assert_eq!(created_on.len(), 19);
    assert_eq!(&created_on[10..11], " ");
    assert_eq!(
        created["opened_by"]["link"].as_str().unwrap().rsplit('/').next(),
        created["opened_by"]["value"].as_str()
    );

    let path = format!("/api/now/table/sc_req_item/{id}");
    let stored = body(get(&sim, &format!("{path}?sysparm_display_value=false")).await).await["result"].clone();
    assert_eq!(stored["state"], "1");
    assert_eq!(stored["approval"], "not requested");
    let display = body(get(&sim, &format!("{path}?sysparm_display_value=true")).await).await["result"].clone();
    assert_eq!(display["state"], "Open");
    assert_eq!(display["approval"], "Not Yet Requested");
    assert_eq!(display["opened_by"]["display_value"], "Gatehouse Integration");
    let all = body(get(&sim, &format!("{path}?sysparm_display_value=all&sysparm_fields=state,number,opened_by")).await)
        .await["result"]
        .clone();
    assert_eq!(all["state"], json!({"display_value": "Open", "value": "1"}));
    assert_eq!(all["number"], json!({"display_value": "RITM0010001", "value": "RITM0010001"}));
    assert!(all["opened_by"]["link"].is_string());
    assert_eq!(all.as_object().unwrap().len(), 3, "sysparm_fields");
    let no_links =
        body(get(&sim, &format!("{path}?sysparm_fields=opened_by&sysparm_exclude_reference_link=true")).await).await;
    assert!(no_links["result"]["opened_by"].is_string());

    let resp = send(&sim, reqwest::Method::PATCH, &path, json!({"state": 2})).await;
    assert_eq!(body(resp).await["result"]["state"], "2");
    let resp =
        send(&sim, reqwest::Method::PUT, &format!("{path}?sysparm_display_value=true"), json!({"state": "3"})).await;
    let closed = body(resp).await["result"].clone();
    assert_eq!(closed["state"], "Closed Complete");
    assert_eq!(closed["active"], "false");
    assert_eq!(closed["sys_mod_count"], "2");

    let missing = get(&sim, "/api/now/table/sc_req_item/0123456789abcdef0123456789abcdef").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let m = body(missing).await;
    assert_eq!(m["status"], "failure");
    assert_eq!(m["error"]["message"], "No Record found");

    // Any other table stores what it is sent.
    let resp = send(&sim, reqwest::Method::POST, "/api/now/table/u_thing", json!({"colour": "blue", "n": 3})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let r = body(resp).await["result"].clone();
    assert_eq!((r["colour"].as_str(), r["n"].as_str()), (Some("blue"), Some("3")));
    assert_eq!(sim.records("u_thing").len(), 1);

    let bad = http()
        .post(format!("{}/api/now/table/u_thing", sim.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lists_page_with_link_and_total_count_and_ignore_unknown_conditions() {
    let sim = sim().await;
    for i in 0..5 {
        let state = if i < 3 { "-5" } else { "4" };
        sim.insert(
            "change_request",
            serde_json::from_value(
                json!({"short_description": format!("c{i}"), "correlation_id": "cid", "state": state}),
            )
            .unwrap(),
        );
    }
    let q =
        "sysparm_query=correlation_id%3Dcid%5EORDERBYDESCnumber&sysparm_fields=number&sysparm_limit=2&sysparm_offset=2";
    let resp = get(&sim, &format!("/api/now/table/change_request?{q}")).await;
    assert_eq!(resp.headers()["x-total-count"], "5");
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    let page = body(resp).await;
    assert_eq!(page["result"], json!([{"number": "CHG0030003"}, {"number": "CHG0030002"}]));
    let rels: Vec<&str> = link.split(',').map(|l| l.rsplit("rel=").next().unwrap()).collect();
    assert_eq!(rels, ["\"first\"", "\"prev\"", "\"next\"", "\"last\""]);
    let next = link.split(',').nth(2).unwrap();
    let next_url = &next[next.find('<').unwrap() + 1..next.find('>').unwrap()];
    assert!(next_url.starts_with(&format!("{}/api/now/table/change_request?", sim.base_url())));
    assert!(next_url.contains("sysparm_offset=4") && next_url.contains("sysparm_limit=2"), "{next_url}");
    let last = http().get(next_url).basic_auth(USER, Some(PASSWORD)).send().await.unwrap();
    assert!(!last.headers()["link"].to_str().unwrap().contains("rel=\"next\""));
    assert_eq!(body(last).await["result"], json!([{"number": "CHG0030001"}]));

    let count = |query: &'static str| {
        let sim = &sim;
        async move {
            let mut u = url::form_urlencoded::Serializer::new(String::new());
            u.append_pair("sysparm_query", query);
            let resp = get(sim, &format!("/api/now/table/change_request?{}", u.finish())).await;
            body(resp).await["result"].as_array().unwrap().len()
        }
    };
    assert_eq!(count("stateIN-5,-4").await, 3);
    assert_eq!(count("state!=-5").await, 2);
    assert_eq!(count("active=true").await, 3, "Canceled changes are not active");
    assert_eq!(count("correlation_idd=nope").await, 5, "a condition on an unknown field is dropped");
    assert_eq!(count("correlation_idSTARTSWITHx").await, 5, "an unknown operator is dropped");
    assert_eq!(count("correlation_id=CID").await, 5, "= ignores case");
    assert_eq!(count("correlation_id=other^ORcorrelation_id=cid").await, 0);
}

#[tokio::test]
async fn journal_fields_are_appended_not_stored() {
    let sim = sim().await;
    let id = sim.insert("sc_req_item", serde_json::from_value(json!({"short_description": "VM"})).unwrap());
    let path = format!("/api/now/table/sc_req_item/{id}");
    send(&sim, reqwest::Method::PATCH, &path, json!({"work_notes": "first note"})).await;
    send(&sim, reqwest::Method::PATCH, &path, json!({"work_notes": "second note", "comments": "for the user"})).await;
    assert!(sim.record("sc_req_item", &id).unwrap().get("work_notes").is_none());
    let notes = sim.work_notes("sc_req_item", &id);
    assert_eq!(notes.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(), ["first note", "second note"]);
    assert_eq!(notes[0].author, USER);
    assert_eq!(sim.comments("sc_req_item", &id).len(), 1);

    let stored = body(get(&sim, &format!("{path}?sysparm_fields=work_notes")).await).await;
    assert_eq!(stored["result"]["work_notes"], "");
    let shown = body(get(&sim, &format!("{path}?sysparm_display_value=true&sysparm_fields=work_notes")).await).await;
    let text = shown["result"]["work_notes"].as_str().unwrap().to_string();
    let at = &notes[0].at;
    assert!(
        text.starts_with(&format!("{} - Gatehouse Integration (Work notes)\nsecond note\n\n", notes[1].at)),
        "{text}"
    );
    assert!(text.ends_with(&format!("{at} - Gatehouse Integration (Work notes)\nfirst note\n\n")), "{text}");

    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("sysparm_query", &format!("element_id={id}^element=work_notes"));
    let entries = body(get(&sim, &format!("/api/now/table/sys_journal_field?{}", q.finish())).await).await;
    let entries = entries["result"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["value"], "first note");
    assert_eq!(entries[0]["element_id"], id.as_str());
    assert_eq!(entries[0]["element"], "work_notes");
    assert_eq!(entries[0]["name"], "sc_req_item");
    assert_eq!(entries[0]["sys_created_by"], USER);
    assert_eq!(entries[0]["sys_created_on"], at.as_str());

    let control: Value = http()
        .get(format!("{}/_sim/work_notes/sc_req_item/{id}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(control[1]["text"], "second note");
}

/// What `gatehouse audit verify --anchors` asks of the journal: the work notes carrying an anchor,
/// in a period, oldest first, a page at a time (`sysparm_limit`/`sysparm_offset`, with
/// `X-Total-Count`), with only the fields it reads.
#[tokio::test]
async fn the_journal_is_read_by_text_period_and_page() {
    let sim = sim().await;
    let mut items = Vec::new();
    for i in 0..3 {
        let id = sim.insert("sc_req_item", serde_json::from_value(json!({"short_description": "VM"})).unwrap());
        let path = format!("/api/now/table/sc_req_item/{id}");
        send(
            &sim,
            reqwest::Method::PATCH,
            &path,
            json!({"work_notes": format!("step {i}\n\ngatehouse-chain: {i}:ab")}),
        )
        .await;
        send(
            &sim,
            reqwest::Method::PATCH,
            &path,
            json!({"work_notes": "no anchor here", "comments": "gatehouse-chain: 9:x"}),
        )
        .await;
        items.push(id);
    }
    let read = |query: String, extra: &'static str| {
        let sim = &sim;
        async move {
            let mut u = url::form_urlencoded::Serializer::new(String::new());
            u.append_pair("sysparm_query", &query);
            u.append_pair("sysparm_fields", "element_id,name,value,sys_created_on");
            let resp = get(sim, &format!("/api/now/table/sys_journal_field?{}{extra}", u.finish())).await;
            assert_eq!(resp.status(), StatusCode::OK);
            let total = resp.headers()["x-total-count"].to_str().unwrap().to_string();
            (total, body(resp).await["result"].as_array().unwrap().clone())
        }
    };
    let period = "^sys_created_on>=2000-01-01 00:00:00^sys_created_on<2999-01-01 00:00:00^ORDERBYsys_created_on";
    let anchored = format!("element=work_notes^valueLIKEGATEHOUSE-CHAIN:{period}");
    let (total, first) = read(anchored.clone(), "&sysparm_limit=2&sysparm_offset=0").await;
    assert_eq!(total, "3", "only the work notes with an anchor (LIKE ignores case), not the comment");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["element_id"], items[0].as_str());
    assert_eq!(first[0]["name"], "sc_req_item");
    assert_eq!(first[0]["value"], "step 0\n\ngatehouse-chain: 0:ab");
    assert_eq!(first[0].as_object().unwrap().len(), 4, "only the fields asked for: {}", first[0]);
    let (_, rest) = read(anchored, "&sysparm_limit=2&sysparm_offset=2").await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["element_id"], items[2].as_str(), "oldest first, across pages");
    let (total, none) = read("element=work_notes^sys_created_on<2000-01-01 00:00:00".into(), "").await;
    assert_eq!((total.as_str(), none.len()), ("0", 0), "nothing written before the period");

    // The journal is written through its record's journal fields, never directly: an ACL refuses.
    let resp = send(&sim, reqwest::Method::POST, "/api/now/table/sys_journal_field", json!({"value": "forged"})).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(resp).await["error"]["detail"], "ACL Exception Insert Failed due to security constraints");
    // A table name ServiceNow could not have: 400 naming it.
    let resp = get(&sim, "/api/now/table/sys-journal-field").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(resp).await["error"]["message"], "Invalid table sys-journal-field");
}
#[tokio::test]
async fn faults_and_control_api() {
    let sim = sim().await;
    let base = sim.base_url();
    let put_faults = |f: Value| http().put(format!("{base}/_sim/faults")).json(&f).send();

    put_faults(json!({"status": 429, "retry_after_secs": 7, "remaining": 1})).await.unwrap();
    let limited = get(&sim, "/api/now/table/sc_req_item").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "7");
    assert_eq!(body(limited).await, sample("error-429-rate-limit-response.json"));
    assert_eq!(get(&sim, "/api/now/table/sc_req_item").await.status(), StatusCode::OK);
    let faults: Value = http().get(format!("{base}/_sim/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(faults["status"], Value::Null, "cleared once used up");

    sim.set_faults(SnFaults { status: Some(503), remaining: Some(2), ..SnFaults::default() });
    assert_eq!(get(&sim, "/api/now/table/sc_req_item").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let unavailable = get(&sim, "/api/now/table/sc_req_item").await;
    assert_eq!(body(unavailable).await["status"], "failure");
    assert_eq!(get(&sim, "/api/now/table/sc_req_item").await.status(), StatusCode::OK);

    sim.set_faults(SnFaults { status: Some(401), remaining: Some(1), ..SnFaults::default() });
    assert_eq!(get(&sim, "/api/now/table/sc_req_item").await.status(), StatusCode::UNAUTHORIZED);

    // A lost answer: the write happens, the caller sees a 503.
    sim.set_faults(SnFaults { drop_response_after_write: true, remaining: Some(1), ..SnFaults::default() });
    assert_eq!(get(&sim, "/api/now/table/sc_req_item").await.status(), StatusCode::OK, "reads are served");
    let lost = send(&sim, reqwest::Method::POST, "/api/now/table/sc_req_item", json!({"short_description": "x"})).await;
    assert_eq!(lost.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sim.records("sc_req_item").len(), 1);
    assert_eq!(sim.faults(), SnFaults::default());

    // Seeding and reading over the control API.
    let created: Value = http()
        .post(format!("{base}/_sim/records/sc_req_item"))
        .json(&json!({"short_description": "seeded", "work_notes": "seeded note"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["sys_id"].as_str().unwrap();
    let all: Value = http().get(format!("{base}/_sim/records/sc_req_item")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let one: Value =
        http().get(format!("{base}/_sim/records/sc_req_item/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["number"], "RITM0010002");
    assert_eq!(sim.work_notes("sc_req_item", id)[0].author, "system");
    assert!(sim.set_field("sc_req_item", id, "state", "7"));
    assert_eq!(sim.record("sc_req_item", id).unwrap()["active"], "false");
    assert!(!sim.set_field("sc_req_item", "0123456789abcdef0123456789abcdef", "state", "2"));

    let calls: Value = http().get(format!("{base}/_sim/calls")).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls["calls"], sim.calls());
    assert_eq!(calls["token_requests"], 0);

    // Latency applies to every call.
    sim.set_faults(SnFaults { latency_ms: 150, ..SnFaults::default() });
    let started = std::time::Instant::now();
    get(&sim, "/api/now/table/sc_req_item").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.stop().await;
}

#[test]
fn the_binary_prints_its_url() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_servicenow-sim"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("SERVICENOW_SIM_URL=").unwrap_or_else(|| panic!("{line:?}")).to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        http()
            .get(format!("{url}/api/now/table/sc_req_item"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .unwrap()
            .status()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, StatusCode::OK);
}
