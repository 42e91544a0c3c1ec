//! JMAP (RFC 8620 core, RFC 8621 mail) against a running Petrel over
//! HTTPS: the session resource, the API endpoint's request-level and
//! method-level errors, result references, limits, Mailbox/get on the
//! same store IMAP and SMTP use, and a real client (Python `jmapc`).

mod common;

use std::process::Command;

use common::jmap::*;
use common::*;
use serde_json::{json, Value};

/// RFC 8620 §2: /.well-known/jmap redirects to the session resource, which
/// needs credentials over TLS and lists the capabilities with their
/// limits, the account and absolute URLs.
#[test]
fn session_resource() {
    let j = server("");
    let (status, head, _) = j.curl(&[&format!("{}/.well-known/jmap", j.base())], None);
    assert_eq!(status, 308, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("location: /jmap/session"),
        "{head}"
    );
    let (status, head, _) = j.curl(&[&format!("{}/jmap/session", j.base())], None);
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    let (status, _, body) = j.curl(
        &[
            "-L",
            "-u",
            "joe@example.org:pw",
            &format!("{}/.well-known/jmap", j.base()),
        ],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let (_, head, _) = j.curl(
        &[
            "-u",
            "joe@example.org:pw",
            &format!("{}/jmap/session", j.base()),
        ],
        None,
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-cache, no-store"),
        "{head}"
    );
    let core = &v["capabilities"][CORE];
    for limit in [
        "maxSizeUpload",
        "maxConcurrentUpload",
        "maxSizeRequest",
        "maxConcurrentRequests",
        "maxCallsInRequest",
        "maxObjectsInGet",
        "maxObjectsInSet",
    ] {
        assert!(core[limit].as_u64().is_some_and(|n| n > 0), "{limit}: {v}");
    }
    assert!(v["capabilities"][MAIL].is_object());
    let account = v["primaryAccounts"][MAIL].as_str().unwrap();
    assert_eq!(v["accounts"][account]["name"], "joe@example.org");
    assert_eq!(v["accounts"][account]["isPersonal"], true);
    assert!(v["accounts"][account]["accountCapabilities"][MAIL].is_object());
    assert!(v["accounts"][account]["accountCapabilities"]
        .get(CORE)
        .is_none());
    assert_eq!(v["username"], "joe@example.org");
    assert_eq!(v["apiUrl"], format!("{}/jmap/api", j.base()));
    for key in ["downloadUrl", "uploadUrl", "eventSourceUrl", "state"] {
        assert!(v[key].is_string(), "{key}: {v}");
    }
    // Plain HTTP refuses credentials unless jmap.auth-without-tls.
    let plain = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            "joe@example.org:pw",
        ])
        .arg(format!("http://{}/jmap/session", j.s.addr("http")))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "403");
}

/// RFC 8620 §3.6.1: request-level errors are problem documents with the
/// exact type; §3.6.2 method errors come back as `error` responses and
/// the request goes on.
#[test]
fn request_and_method_errors() {
    let j = server("[jmap]\nmax-calls-in-request = 5\nmax-objects-in-get = 2\n");
    let problem = |body: &str| {
        let (status, v) = j.api_raw(body);
        assert_eq!(status, 400, "{v}");
        v
    };
    assert_eq!(
        problem("{nope")["type"],
        "urn:ietf:params:jmap:error:notJSON"
    );
    assert_eq!(
        problem(r#"{"using":[]}"#)["type"],
        "urn:ietf:params:jmap:error:notRequest"
    );
    assert_eq!(
        problem(r#"{"using":["urn:example:nothing"],"methodCalls":[]}"#)["type"],
        "urn:ietf:params:jmap:error:unknownCapability"
    );
    let six = json!({"using": [CORE], "methodCalls": [
        ["Core/echo", {}, "1"], ["Core/echo", {}, "2"], ["Core/echo", {}, "3"],
        ["Core/echo", {}, "4"], ["Core/echo", {}, "5"], ["Core/echo", {}, "6"]
    ]});
    let v = problem(&six.to_string());
    assert_eq!(v["type"], "urn:ietf:params:jmap:error:limit");
    assert_eq!(v["limit"], "maxCallsInRequest");

    let account = j.account_id();
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Nope/get", {}, "a"],
            ["Mailbox/get", {"accountId": "a999999"}, "b"],
            ["Mailbox/get", {"accountId": account, "ids": ["M1", "M2", "M3"]}, "c"],
            ["Mailbox/get", {"accountId": account, "properties": ["bogus"]}, "d"],
            ["Core/echo", {"#x": {"resultOf": "zz", "name": "Core/echo", "path": "/x"}}, "e"]
        ]),
    );
    let kinds: Vec<&str> = r
        .iter()
        .map(|c| c[1]["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "unknownMethod",
            "accountNotFound",
            "requestTooLarge",
            "invalidArguments",
            "invalidResultReference"
        ]
    );
    assert!(r.iter().all(|c| c[0] == "error"));
    let ids: Vec<&str> = r.iter().map(|c| c[2].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    // A method of a capability the request does not use is unknown.
    let r = j.api(
        &[CORE],
        json!([["Mailbox/get", {"accountId": account}, "m"]]),
    );
    assert_eq!(r[0][1]["type"], "unknownMethod");
}

/// RFC 8620 §4 (Core/echo) and §3.7 (result references, `*` included).
#[test]
fn echo_and_result_references() {
    let j = server("");
    let r = j.api(
        &[CORE],
        json!([
            ["Core/echo", {"hello": true, "list": [{"id": "x1"}, {"id": "x2"}]}, "c1"],
            ["Core/echo", {"#ids": {"resultOf": "c1", "name": "Core/echo", "path": "/list/*/id"}}, "c2"]
        ]),
    );
    assert_eq!(
        r[0],
        json!(["Core/echo", {"hello": true, "list": [{"id": "x1"}, {"id": "x2"}]}, "c1"])
    );
    assert_eq!(r[1], json!(["Core/echo", {"ids": ["x1", "x2"]}, "c2"]));
    // §3.4: createdIds given in the request come back in the response.
    let req = json!({"using": [CORE], "methodCalls": [["Core/echo", {}, "c"]], "createdIds": {"k1": "m5"}, "unknownProperty": 1});
    let (status, v) = j.api_raw(&req.to_string());
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["createdIds"], json!({"k1": "m5"}));
    assert!(v["sessionState"].is_string(), "{v}");
}

/// RFC 8621 §2: Mailbox/get on the store IMAP and SMTP use: the default
/// mailboxes with their roles and rights, counts that follow deliveries
/// and IMAP flag changes, `properties`, `notFound`, a state that moves.
#[tokio::test]
async fn mailboxes_follow_smtp_and_imap() {
    let j = server("");
    let account = j.account_id();
    let get = |args: Value| {
        let mut a = args;
        a["accountId"] = json!(account);
        let r = j.api(&[CORE, MAIL], json!([["Mailbox/get", a, "0"]]));
        assert_eq!(r[0][0], "Mailbox/get", "{:?}", r[0]);
        r[0][1].clone()
    };
    let all = get(json!({}));
    let list = all["list"].as_array().unwrap();
    let mut roles: Vec<&str> = list.iter().filter_map(|m| m["role"].as_str()).collect();
    roles.sort();
    assert_eq!(
        roles,
        ["archive", "drafts", "inbox", "junk", "sent", "trash"]
    );
    let inbox = list.iter().find(|m| m["role"] == "inbox").unwrap();
    assert_eq!(inbox["name"], "INBOX");
    assert_eq!(inbox["parentId"], Value::Null);
    assert_eq!(inbox["myRights"]["mayReadItems"], true);
    assert_eq!(inbox["totalEmails"], 0);
    let inbox_id = inbox["id"].as_str().unwrap().to_string();
    let state0 = all["state"].as_str().unwrap().to_string();

    j.deliver(
        &(0..2)
            .map(|n| format!("From: ann@remote.test\r\nSubject: n{n}\r\n\r\nhi\r\n"))
            .collect::<Vec<_>>(),
    )
    .await;
    // IMAP marks one message seen.
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 1 +FLAGS (\\Seen)\r\n",
    )
    .await;
    let one = get(
        json!({"ids": [inbox_id, "M999", inbox_id, "M999"], "properties": ["totalEmails", "unreadEmails", "totalThreads", "unreadThreads"]}),
    );
    let m = &one["list"][0];
    assert_eq!(m["id"], json!(inbox_id), "id is always returned");
    assert_eq!(
        (
            m["totalEmails"].clone(),
            m["unreadEmails"].clone(),
            m["totalThreads"].clone(),
            m["unreadThreads"].clone()
        ),
        (json!(2), json!(1), json!(2), json!(1))
    );
    assert!(m.get("name").is_none(), "only the asked properties: {m}");
    assert_eq!(one["notFound"], json!(["M999"]));
    assert_eq!(
        one["list"].as_array().unwrap().len(),
        1,
        "asked twice, listed once"
    );
    // RFC 8621 §1.6: the id IMAP shows as MAILBOXID.
    let status = imap(j.s.addr("imap"), "b STATUS INBOX (MAILBOXID)\r\n").await;
    assert!(
        status.contains(&format!("MAILBOXID ({inbox_id})")),
        "{status}"
    );
    assert_ne!(one["state"], json!(state0), "deliveries move the state");
}

/// A real client: Python's jmapc reads the session through
/// /.well-known/jmap, lists the mailboxes with Mailbox/get, and reads the
/// newest message of the inbox with Email/query and Email/get chained by a
/// result reference.
#[tokio::test]
async fn jmapc_lists_mailboxes_and_reads_mail() {
    let j = server("");
    let r = smtp_send(
        j.s.addr("smtp"),
        "ann@remote.test",
        &["joe@example.org"],
        "From: Ann <ann@remote.test>\r\nSubject: hello jmapc\r\n\r\nhi\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 1).await;
    let port = j.s.addr("https").port();
    let stdout = j.python(&format!(
            "from jmapc import Client\n\
             from jmapc.methods import MailboxGet\n\
             c = Client.create_with_password(host='127.0.0.1:{port}', user='joe@example.org', password='pw')\n\
             r = c.request(MailboxGet(ids=None))\n\
             for m in r.data:\n    print(m.role, m.name, m.total_emails)\n\
             inbox = [m.id for m in r.data if m.role == 'inbox'][0]\n\
             from jmapc import EmailQueryFilterCondition, Comparator, Ref\n\
             from jmapc.methods import EmailQuery, EmailGet\n\
             res = c.request([EmailQuery(filter=EmailQueryFilterCondition(in_mailbox=inbox), sort=[Comparator(property='receivedAt', is_ascending=False)], limit=5), EmailGet(ids=Ref('/ids'), properties=['subject', 'from', 'receivedAt'])])\n\
             for e in res[1].response.data:\n    print('email', e.subject, e.mail_from[0].email)\n"
        ));
    assert!(stdout.contains("inbox INBOX 1"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| !l.starts_with("email ")).count(),
        6,
        "{stdout}"
    );
    assert!(
        stdout.contains("email hello jmapc ann@remote.test"),
        "{stdout}"
    );
}

/// RFC 8621 §4.4, §4.2: Email/query by mailbox, newest first, with a
/// limit and the total, feeding Email/get by result reference; keywords
/// from IMAP flags; what is not built yet says so (unsupportedFilter,
/// unsupportedSort).
#[tokio::test]
async fn emails_query_and_get() {
    let j = server("");
    let account = j.account_id();
    j.deliver(&(0..3).map(|n| format!("From: Ann Example <ann@remote.test>\r\nTo: joe@example.org\r\nSubject: number {n}\r\nMessage-ID: <n{n}@remote.test>\r\nDate: Fri, 27 Nov 2026 10:0{n}:00 +0000\r\n\r\nBody of number {n}.\r\n")).collect::<Vec<_>>()).await;
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 3 +FLAGS (\\Flagged)\r\n",
    )
    .await;
    let boxes = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/get", {"accountId": account, "properties": ["role"]}, "0"]]),
    );
    let inbox = boxes[0][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "inbox")
        .unwrap()["id"]
        .clone();
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account, "filter": {"inMailbox": inbox},
                "sort": [{"property": "receivedAt", "isAscending": false}], "limit": 2, "calculateTotal": true}, "q"],
            ["Email/get", {"accountId": account,
                "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["subject", "from", "keywords", "mailboxIds", "threadId", "receivedAt", "sentAt", "messageId", "preview", "size"]}, "g"],
            ["Email/get", {"accountId": account, "ids": ["E999999"]}, "nf"],
            ["Email/query", {"accountId": account, "filter": {"textual": "x"}}, "f"],
            ["Email/query", {"accountId": account, "sort": [{"property": "color"}]}, "s"]
        ]),
    );
    let q = &r[0][1];
    assert_eq!(q["total"], 3, "{q}");
    assert_eq!(q["ids"].as_array().unwrap().len(), 2);
    assert_eq!(q["position"], 0);
    let list = r[1][1]["list"].as_array().unwrap();
    let subjects: Vec<&str> = list
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["number 2", "number 1"], "newest first");
    let newest = &list[0];
    assert_eq!(
        newest["from"],
        json!([{"name": "Ann Example", "email": "ann@remote.test"}])
    );
    assert_eq!(newest["keywords"], json!({"$flagged": true}));
    assert_eq!(
        newest["mailboxIds"],
        json!({ inbox.as_str().unwrap(): true })
    );
    assert!(newest["threadId"].as_str().unwrap().starts_with('T'));
    assert_eq!(newest["sentAt"], "2026-11-27T10:02:00Z");
    assert!(newest["receivedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(newest["messageId"], json!(["n2@remote.test"]));
    assert!(newest["preview"]
        .as_str()
        .unwrap()
        .contains("Body of number 2"));
    assert!(newest["size"].as_u64().unwrap() > 0);
    assert_eq!(r[2][1]["notFound"], json!(["E999999"]));
    assert_eq!(r[3][1]["type"], "unsupportedFilter");
    // RFC 8621 §4.4.1: keyword, size and date conditions in operator trees.
    let count = |filter: Value| {
        let r = j.api(&[CORE, MAIL], json!([["Email/query", {"accountId": account, "filter": filter, "calculateTotal": true}, "q"]]));
        r[0][1]["total"].as_u64().unwrap_or_else(|| panic!("{r:?}"))
    };
    assert_eq!(count(json!({"hasKeyword": "$flagged"})), 1);
    assert_eq!(
        count(json!({"operator": "NOT", "conditions": [{"hasKeyword": "$flagged"}]})),
        2
    );
    assert_eq!(
        count(
            json!({"operator": "OR", "conditions": [{"hasKeyword": "$flagged"}, {"minSize": 100000}]})
        ),
        1
    );
    assert_eq!(
        count(json!({"inMailbox": inbox, "before": "2000-01-01T00:00:00Z"})),
        0
    );
    assert_eq!(count(json!({"after": "2000-01-01T00:00:00Z"})), 3);
    assert_eq!(r[4][1]["type"], "unsupportedSort");
    // The same email id IMAP shows as EMAILID (RFC 8474).
    let fetched = imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc FETCH 3 (EMAILID)\r\n",
    )
    .await;
    let id = newest["id"].as_str().unwrap();
    assert!(fetched.contains(&format!("EMAILID ({id})")), "{fetched}");
}

/// RFC 8620 §5.2 with RFC 8621 §4.3: Email/changes from the change log
/// IMAP shares: deliveries are created, an IMAP STORE is an update, an
/// EXPUNGE a destruction; created-then-updated stays created; maxChanges
/// gives intermediate states that lead to the current one.
#[tokio::test]
async fn email_changes_follow_smtp_and_imap() {
    let j = server("");
    let account = j.account_id();
    let changes = |since: &str, max: Option<u64>| {
        let mut args = json!({"accountId": account, "sinceState": since});
        if let Some(m) = max {
            args["maxChanges"] = json!(m);
        }
        j.api(&[CORE, MAIL], json!([["Email/changes", args, "c"]]))[0].clone()
    };
    let state = |r: &Value| r[1]["newState"].as_str().unwrap().to_string();
    let ids = |r: &Value, list: &str| -> Vec<String> {
        r[1][list]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let start = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": account, "ids": []}, "g"]]),
    )[0][1]["state"]
        .as_str()
        .unwrap()
        .to_string();
    j.deliver(
        &(0..3)
            .map(|n| format!("Subject: c{n}\r\n\r\nx\r\n"))
            .collect::<Vec<_>>(),
    )
    .await;
    let addr = j.s.addr("imap");
    let imap =
        |cmds: &'static str| async move { imap(addr, &format!("b SELECT INBOX\r\n{cmds}")).await };
    imap("c STORE 1 +FLAGS (\\Seen)\r\n").await;
    // Created and then updated within the range: created only (§5.2).
    let all = changes(&start, None);
    assert_eq!(all[0], "Email/changes", "{all}");
    assert_eq!(ids(&all, "created").len(), 3, "{all}");
    assert!(
        ids(&all, "updated").is_empty() && ids(&all, "destroyed").is_empty(),
        "{all}"
    );
    assert_eq!(all[1]["hasMoreChanges"], false);
    let after = state(&all);

    // maxChanges = 1: one id at a time through intermediate states.
    let mut since = start.clone();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = changes(&since, Some(1));
        let total =
            ids(&r, "created").len() + ids(&r, "updated").len() + ids(&r, "destroyed").len();
        assert!(total <= 1, "{r}");
        seen.extend(ids(&r, "created"));
        since = state(&r);
        if r[1]["hasMoreChanges"] == false {
            break;
        }
    }
    assert_eq!(since, after);
    assert_eq!(seen.len(), 3, "{seen:?}");

    // An IMAP STORE is an update; an EXPUNGE a destruction.
    imap("c STORE 2 +FLAGS (\\Flagged)\r\n").await;
    let r = changes(&after, None);
    assert_eq!(ids(&r, "updated").len(), 1, "{r}");
    let flagged = state(&r);
    imap("c STORE 3 +FLAGS (\\Deleted)\r\nd EXPUNGE\r\n").await;
    let r = changes(&flagged, None);
    assert_eq!(ids(&r, "destroyed").len(), 1, "{r}");
    assert!(ids(&r, "created").is_empty(), "{r}");

    // Nothing new: the same state back; a bad state cannot be used.
    let now = state(&r);
    let r = changes(&now, None);
    assert_eq!(state(&r), now);
    assert!(ids(&r, "updated").is_empty());
    assert_eq!(
        changes("99999999", None)[1]["type"],
        "cannotCalculateChanges"
    );
    assert_eq!(changes("x", None)[1]["type"], "cannotCalculateChanges");
    assert_eq!(changes(&now, Some(0))[1]["type"], "invalidArguments");
}

/// One store, two views: an Email/set keyword change reaches an IMAP
/// session in IDLE as FETCH FLAGS with a higher MODSEQ, a destroy as
/// EXPUNGE; ifInState guards the call; what is not built yet (creating,
/// moving) gets a SetError naming it.
#[tokio::test]
async fn email_set_keywords_show_in_imap_idle() {
    let j = server("");
    let account = j.account_id();
    j.deliver(
        &(0..2)
            .map(|n| format!("Subject: s{n}\r\n\r\nx\r\n"))
            .collect::<Vec<_>>(),
    )
    .await;
    let q = j.api(&[CORE, MAIL], json!([["Email/query", {"accountId": account, "sort": [{"property": "receivedAt", "isAscending": true}]}, "q"]]));
    let ids: Vec<String> = q[0][1]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let state = q[0][1]["queryState"].as_str().unwrap().to_string();

    let mut c = LineClient::connect(j.s.addr("imap")).await;
    c.line().await;
    c.send("a LOGIN joe@example.org pw\r\nb ENABLE CONDSTORE\r\nc SELECT INBOX\r\n")
        .await;
    let mut modseq_before = 0u64;
    while let Some(l) = c.line_opt().await {
        if let Some(rest) = l.split("HIGHESTMODSEQ ").nth(1) {
            modseq_before = rest
                .trim_end_matches(|ch: char| !ch.is_ascii_digit())
                .parse()
                .unwrap_or(0);
        }
        if l.starts_with("c OK") {
            break;
        }
    }
    c.send("d IDLE\r\n").await;
    assert!(c.line().await.starts_with('+'));

    // A stale ifInState changes nothing.
    let r = j.api(&[CORE, MAIL], json!([["Email/set", {"accountId": account, "ifInState": "1", "update": {ids[0].clone(): {"keywords/$flagged": true}}}, "s"]]));
    assert_eq!(r[0][1]["type"], "stateMismatch", "{r:?}");
    let r = j.api(&[CORE, MAIL], json!([["Email/set", {"accountId": account, "ifInState": state,
        "update": {ids[0].clone(): {"keywords/$flagged": true}, ids[1].clone(): {"mailboxIds/M9": true}},
        "create": {"k1": {"subject": "new"}}}, "s"]]));
    let set = &r[0][1];
    assert_eq!(set["updated"], json!({ ids[0].clone(): null }), "{set}");
    assert_eq!(set["notUpdated"][&ids[1]]["type"], "invalidProperties");
    assert_eq!(
        set["notCreated"]["k1"]["type"], "invalidProperties",
        "no mailboxIds"
    );
    assert_ne!(set["newState"], set["oldState"]);

    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("\\Flagged") {
        assert!(std::time::Instant::now() < deadline, "{seen}");
        let l = tokio::time::timeout(std::time::Duration::from_secs(10), c.line())
            .await
            .unwrap();
        seen.push_str(&l);
        seen.push('\n');
    }
    let modseq_after: u64 = seen
        .split("MODSEQ (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no MODSEQ in {seen}"));
    assert!(modseq_after > modseq_before, "{seen}");

    // Destroy: the IDLE session hears EXPUNGE.
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/set", {"accountId": account, "destroy": [ids[1].clone(), "E999999"]}, "d"]]),
    );
    assert_eq!(r[0][1]["destroyed"], json!([ids[1].clone()]));
    assert_eq!(r[0][1]["notDestroyed"]["E999999"]["type"], "notFound");
    let mut more = String::new();
    while !more.contains("EXPUNGE") {
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(10),
            "{more}"
        );
        let l = tokio::time::timeout(std::time::Duration::from_secs(10), c.line())
            .await
            .unwrap();
        more.push_str(&l);
        more.push('\n');
    }
    c.send("DONE\r\n").await;
    let g = j.api(&[CORE, MAIL], json!([["Email/get", {"accountId": account, "ids": [ids[0].clone(), ids[1].clone()], "properties": ["keywords"]}, "g"]]));
    assert_eq!(g[0][1]["list"][0]["keywords"], json!({"$flagged": true}));
    assert_eq!(g[0][1]["notFound"], json!([ids[1].clone()]));
}

/// RFC 8620 §7.3, §7.1 and RFC 8621 §1.5: the event source pushes a
/// StateChange when mail arrives over SMTP (EmailDelivery included, the
/// event id the new state), only for the asked types, ends after it with
/// closeafter=state, and sends ping events with their interval.
#[tokio::test]
async fn event_source_pushes_state_changes() {
    let j = server("");
    let account = j.account_id();
    let listen = |query: &str, max_secs: &str| {
        std::process::Command::new("curl")
            .args(["-s", "-N", "--max-time", max_secs, "--cacert"])
            .arg(&j.ca)
            .args(["-u", "joe@example.org:pw"])
            .arg(format!("{}/jmap/eventsource?{query}", j.base()))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Delivery: closeafter=state ends the response after one event.
    let curl = listen("types=*&closeafter=state&ping=0", "20");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = smtp_send(
        j.s.addr("smtp"),
        "ann@remote.test",
        &["joe@example.org"],
        "Subject: push\r\n\r\nx\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl ended with {:?}: {text}",
        out.status
    );
    assert!(text.contains("event: state"), "{text}");
    assert!(!text.contains("event: ping"), "ping=0: no pings: {text}");
    let data: Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["@type"], "StateChange");
    let changed = &data["changed"][&account];
    for t in ["Email", "Mailbox", "Thread", "EmailDelivery"] {
        assert!(changed[t].is_string(), "{t}: {data}");
    }
    let id = text.lines().find_map(|l| l.strip_prefix("id: ")).unwrap();
    assert_eq!(id, changed["Email"].as_str().unwrap());

    // Only the asked types: an IMAP flag change is no delivery.
    let curl = listen("types=Mailbox,EmailDelivery&closeafter=state&ping=0", "20");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 1 +FLAGS (\\Seen)\r\n",
    )
    .await;
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let data: Value = serde_json::from_str(
        text.lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or("null"),
    )
    .unwrap();
    let changed = data["changed"][&account]
        .as_object()
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(changed.keys().collect::<Vec<_>>(), ["Mailbox"], "{text}");

    // Pings: every interval, with the interval in their data.
    let curl = listen("types=*&closeafter=no&ping=1", "3");
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("event: ping"), "{text}");
    assert!(text.contains("data: {\"interval\":1}"), "{text}");
    assert!(!text.contains("id:"), "pings set no event id: {text}");

    // Reconnecting with Last-Event-ID: what changed since comes at once.
    let out = std::process::Command::new("curl")
        .args(["-s", "-N", "--max-time", "5", "--cacert"])
        .arg(&j.ca)
        .args([
            "-u",
            "joe@example.org:pw",
            "-H",
            &format!("Last-Event-ID: {id}"),
        ])
        .arg(format!(
            "{}/jmap/eventsource?types=*&closeafter=state&ping=0",
            j.base()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("event: state"),
        "{text}"
    );
}

/// RFC 8621 §2.2: Mailbox/changes from the same log: an IMAP CREATE is a
/// creation, RENAME an update of more than counts (updatedProperties
/// null), a delivery an update of counts only, DELETE a destruction; the
/// messages a deleted mailbox shared with another are Email updates.
#[tokio::test]
async fn mailbox_changes_follow_imap() {
    let j = server("");
    let account = j.account_id();
    let call = |method: &str, args: Value| {
        let mut a = args;
        a["accountId"] = json!(account);
        j.api(&[CORE, MAIL], json!([[method, a, "c"]]))[0][1].clone()
    };
    let addr = j.s.addr("imap");
    let imap = |cmds: String| async move { imap(addr, &cmds).await };
    let s0 = call("Mailbox/get", json!({"ids": []}))["state"]
        .as_str()
        .unwrap()
        .to_string();
    let out = imap("b CREATE Projects\r\n".into()).await;
    let made = out
        .split("MAILBOXID (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let r = call("Mailbox/changes", json!({"sinceState": s0}));
    assert_eq!(r["created"], json!([made]), "{r}");
    let s1 = r["newState"].as_str().unwrap().to_string();

    imap("b RENAME Projects Work\r\n".into()).await;
    let r = call("Mailbox/changes", json!({"sinceState": s1}));
    assert_eq!(r["updated"], json!([made]), "{r}");
    assert_eq!(r["updatedProperties"], Value::Null, "{r}");
    let s2 = r["newState"].as_str().unwrap().to_string();

    let sent = smtp_send(
        j.s.addr("smtp"),
        "ann@remote.test",
        &["joe@example.org"],
        "Subject: m\r\n\r\nx\r\n",
    )
    .await;
    assert!(sent.starts_with("250"), "{sent}");
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 1).await;
    let r = call("Mailbox/changes", json!({"sinceState": s2}));
    assert_eq!(r["updated"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        r["updatedProperties"],
        json!([
            "totalEmails",
            "unreadEmails",
            "totalThreads",
            "unreadThreads"
        ])
    );
    let s3 = r["newState"].as_str().unwrap().to_string();

    imap("b SELECT INBOX\r\nc COPY 1 Work\r\n".into()).await;
    let s4 = call("Mailbox/get", json!({"ids": []}))["state"]
        .as_str()
        .unwrap()
        .to_string();
    imap("d DELETE Work\r\n".into()).await;
    let r = call("Mailbox/changes", json!({"sinceState": s3}));
    assert_eq!(r["destroyed"], json!([made]), "{r}");
    let e = call("Email/changes", json!({"sinceState": s4}));
    assert_eq!(
        e["updated"].as_array().unwrap().len(),
        1,
        "the copy's message lost a mailbox: {e}"
    );
    assert!(e["destroyed"].as_array().unwrap().is_empty(), "{e}");
}

/// RFC 8620 §6.2: a message's blob downloads with the asked type as
/// Content-Type and the name as filename; another account cannot reach
/// it.
#[tokio::test]
async fn blobs_download_for_their_owner_only() {
    let j = server("");
    let account = j.account_id();
    let r = smtp_send(
        j.s.addr("smtp"),
        "ann@remote.test",
        &["joe@example.org"],
        "Subject: whole message\r\n\r\nthe body\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 1).await;
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": ["blobId", "size"]}, "g"]
        ]),
    );
    let email = &r[1][1]["list"][0];
    let blob = email["blobId"].as_str().unwrap();
    let url = format!(
        "{}/jmap/download/{account}/{blob}/m%C3%A9ssage.eml?type=message/rfc822",
        j.base()
    );
    let (status, head, body) = j.curl(&["-u", "joe@example.org:pw", &url], None);
    assert_eq!(status, 200, "{head}");
    let h = head.to_ascii_lowercase();
    assert!(h.contains("content-type: message/rfc822"), "{head}");
    assert!(
        h.contains("content-disposition: attachment; filename*=utf-8''m%c3%a9ssage.eml"),
        "{head}"
    );
    assert!(
        body.contains("Subject: whole message") && body.contains("the body"),
        "{body}"
    );
    assert_eq!(body.len() as u64, email["size"].as_u64().unwrap());

    j.s.account("eve@example.org");
    let (status, _, _) = j.curl(&["-u", "eve@example.org:pw", &url], None);
    assert_eq!(status, 404, "another account's blob");
    let eve = j
        .curl(
            &[
                "-u",
                "eve@example.org:pw",
                &format!("{}/jmap/session", j.base()),
            ],
            None,
        )
        .2;
    let eve: Value = serde_json::from_str(&eve).unwrap();
    let eve_account = eve["primaryAccounts"][MAIL].as_str().unwrap();
    let theirs = format!(
        "{}/jmap/download/{eve_account}/{blob}/m.eml?type=text/plain",
        j.base()
    );
    let (status, _, _) = j.curl(&["-u", "eve@example.org:pw", &theirs], None);
    assert_eq!(
        status, 404,
        "the blob id is looked up in the asking account"
    );
    let (status, _, _) = j.curl(&[&url], None);
    assert_eq!(status, 401);
}

/// RFC 8621 §3: a reply joins its original's thread (the THREADID IMAP
/// shows); Thread/get lists the thread's emails oldest first.
#[tokio::test]
async fn threads_group_replies() {
    let j = server("");
    let account = j.account_id();
    for (n, extra) in [
        (0, "Message-ID: <root@remote.test>\r\nSubject: plan\r\n".to_string()),
        (1, "Message-ID: <other@remote.test>\r\nSubject: unrelated\r\n".to_string()),
        (2, "Message-ID: <reply@remote.test>\r\nIn-Reply-To: <root@remote.test>\r\nReferences: <root@remote.test>\r\nSubject: Re: plan\r\n".to_string()),
    ] {
        let r = smtp_send(j.s.addr("smtp"), "ann@remote.test", &["joe@example.org"], &format!("{extra}\r\nmessage {n}\r\n")).await;
        assert!(r.starts_with("250"), "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 3).await;
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account, "sort": [{"property": "receivedAt", "isAscending": true}]}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": ["threadId", "subject"]}, "g"],
            ["Thread/get", {"accountId": account, "#ids": {"resultOf": "g", "name": "Email/get", "path": "/list/*/threadId"}}, "t"]
        ]),
    );
    let emails = r[1][1]["list"].as_array().unwrap();
    let ids: Vec<&str> = r[0][1]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(emails[0]["threadId"], emails[2]["threadId"], "{emails:?}");
    assert_ne!(emails[0]["threadId"], emails[1]["threadId"]);
    let threads = r[2][1]["list"].as_array().unwrap();
    assert_eq!(
        threads.len(),
        2,
        "the same thread asked twice is listed once: {threads:?}"
    );
    let root = threads
        .iter()
        .find(|t| t["id"] == emails[0]["threadId"])
        .unwrap();
    assert_eq!(root["emailIds"], json!([ids[0], ids[2]]));
    let fetched = imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc FETCH 1 (THREADID)\r\n",
    )
    .await;
    let tid = emails[0]["threadId"].as_str().unwrap();
    assert!(fetched.contains(&format!("THREADID ({tid})")), "{fetched}");
}

/// RFC 8621 §4.1.1: a message IMAP flagged \Deleted is not visible
/// through JMAP: not queried, counted, fetched or changed.
#[tokio::test]
async fn imap_deleted_messages_are_invisible() {
    let j = server("");
    let account = j.account_id();
    j.deliver(
        &(0..2)
            .map(|n| format!("Subject: d{n}\r\n\r\nx\r\n"))
            .collect::<Vec<_>>(),
    )
    .await;
    let q = j.api(&[CORE, MAIL], json!([["Email/query", {"accountId": account, "sort": [{"property": "receivedAt", "isAscending": true}]}, "q"]]));
    let first = q[0][1]["ids"][0].as_str().unwrap().to_string();
    let before = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": account, "ids": []}, "s"]]),
    )[0][1]["state"]
        .clone();
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 1 +FLAGS (\\Deleted)\r\n",
    )
    .await;
    // Flagged \Deleted since: destroyed for JMAP, not updated.
    let c = j.api(
        &[CORE, MAIL],
        json!([["Email/changes", {"accountId": account, "sinceState": before}, "c"]]),
    );
    assert_eq!(c[0][1]["destroyed"], json!([first.clone()]), "{c:?}");
    assert_eq!(c[0][1]["updated"], json!([]));
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account, "calculateTotal": true}, "q"],
            ["Email/get", {"accountId": account, "ids": [first.clone()], "properties": ["subject"]}, "g"],
            ["Mailbox/get", {"accountId": account, "properties": ["role", "totalEmails"]}, "m"],
            ["Email/set", {"accountId": account, "update": {first.clone(): {"keywords/$seen": true}}}, "s"]
        ]),
    );
    assert_eq!(r[0][1]["total"], 1, "{r:?}");
    assert!(!r[0][1]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i == &json!(first)));
    assert_eq!(r[1][1]["notFound"], json!([first.clone()]));
    let inbox = r[2][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "inbox")
        .unwrap()
        .clone();
    assert_eq!(inbox["totalEmails"], 1);
    assert_eq!(r[3][1]["notUpdated"][&first]["type"], "notFound");
}

/// RFC 8621 §4.4.1-§4.4.3 and RFC 8620 §5.5: the text conditions answer
/// the same straight after delivery (messages waiting for the indexer
/// are read) and once indexed; sorts with their collations,
/// collapseThreads, anchors; the thread keyword and hasAttachment
/// conditions.
#[tokio::test]
async fn email_query_text_filters_and_sorts() {
    let j = server("");
    let account = j.account_id();
    let msgs = [
        // E1: the invoice, in its subject only.
        "From: Zed Zimmer <zed@remote.test>\r\nTo: joe@example.org\r\nSubject: Invoice 10\r\nMessage-ID: <i10@remote.test>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nX-Priority: 1\r\n\r\nPlease pay soon.\r\n",
        // E2: a reply to it, in the same thread.
        "From: Ann Able <ann@remote.test>\r\nTo: ops@example.org, joe@example.org\r\nSubject: Re: Invoice 10\r\nMessage-ID: <r10@remote.test>\r\nIn-Reply-To: <i10@remote.test>\r\nDate: Fri, 27 Nov 2026 11:00:00 +0000\r\n\r\nPaid. The pineapple invoice too.\r\n",
        // E3: no invoice anywhere; a larger body.
        "From: Bob Baker <bob@remote.test>\r\nTo: joe@example.org\r\nSubject: 9 lunch ideas\r\nMessage-ID: <l9@remote.test>\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\nX-Priority: 3\r\n\r\nSoup, salad, bread and a very long list of other things to eat: rice, beans, noodles, dumplings, curry, stew, tacos, pasta and pie.\r\n",
    ]
    .map(String::from);
    j.deliver(&msgs).await;
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 3 +FLAGS (\\Flagged)\r\n",
    )
    .await;
    let query = |args: Value| {
        let mut a = args;
        a["accountId"] = json!(account);
        let r = j.api(&[CORE, MAIL], json!([["Email/query", a, "q"]]));
        r[0][1].clone()
    };
    let ids = |args: Value| -> Vec<String> {
        let q = query(args);
        q["ids"]
            .as_array()
            .unwrap_or_else(|| panic!("{q}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    // Ids by subject, to name the expected results.
    let all = ids(json!({"sort": [{"property": "receivedAt", "isAscending": true}]}));
    assert_eq!(all.len(), 3);
    let (inv, re, lunch) = (all[0].as_str(), all[1].as_str(), all[2].as_str());
    let filters = [
        (json!({"text": "pineapple"}), vec![re]),
        (json!({"text": "invoice"}), vec![inv, re]),
        (json!({"body": "invoice"}), vec![re]),
        (json!({"subject": "INVOICE"}), vec![inv, re]),
        (json!({"from": "zimmer"}), vec![inv]),
        (json!({"from": "ann@remote"}), vec![re]),
        (json!({"to": "ops@"}), vec![re]),
        (json!({"cc": "joe"}), vec![]),
        (json!({"header": ["X-Priority"]}), vec![inv, lunch]),
        (json!({"header": ["x-priority", "3"]}), vec![lunch]),
        // Two characters: below the index's reach, read from the messages.
        (json!({"body": "ay"}), vec![inv]),
        (
            json!({"operator": "NOT", "conditions": [{"from": "zed"}, {"text": "soup"}]}),
            vec![re],
        ),
        (json!({"text": "invoice", "hasKeyword": "$flagged"}), vec![]),
        // §4.4.1: words apart must all be there; a quoted phrase as it is.
        (json!({"body": "soon please"}), vec![inv]),
        (json!({"body": "\"soon please\""}), vec![]),
        (json!({"body": "'pay soon'"}), vec![inv]),
    ];
    let run = || {
        filters
            .iter()
            .map(|(f, _)| {
                let mut got = ids(
                    json!({"filter": f, "sort": [{"property": "receivedAt", "isAscending": true}]}),
                );
                got.sort();
                got
            })
            .collect::<Vec<_>>()
    };
    let before = run();
    for ((f, want), got) in filters.iter().zip(&before) {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, &want, "{f}");
    }
    j.s.wait_indexed().await;
    assert_eq!(run(), before, "the index answers as reading does");

    let sorted = |sort: Value| ids(json!({ "sort": sort }));
    // Base subjects (RFC 5256): "Re: Invoice 10" sorts as "Invoice 10";
    // ties by id.
    assert_eq!(sorted(json!([{"property": "subject"}])), [lunch, inv, re]);
    assert_eq!(
        sorted(json!([{"property": "subject", "collation": "i;ascii-numeric"}])),
        [lunch, inv, re],
        "numbers first, then the rest"
    );
    assert_eq!(sorted(json!([{"property": "from"}])), [re, lunch, inv]);
    assert_eq!(
        sorted(json!([{"property": "to", "isAscending": false}, {"property": "sentAt"}])),
        [re, lunch, inv]
    );
    assert_eq!(sorted(json!([{"property": "sentAt"}])), [lunch, inv, re]);
    assert_eq!(
        sorted(json!([{"property": "size", "isAscending": false}]))[0],
        lunch
    );
    assert_eq!(
        sorted(
            json!([{"property": "hasKeyword", "keyword": "$flagged", "isAscending": false}, {"property": "sentAt"}])
        ),
        [lunch, inv, re]
    );
    // Flag the reply: its thread has the keyword on some, not all.
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 2 +FLAGS (\\Seen)\r\n",
    )
    .await;
    assert_eq!(
        sorted(
            json!([{"property": "someInThreadHaveKeyword", "keyword": "$seen", "isAscending": false}, {"property": "sentAt"}])
        ),
        [inv, re, lunch]
    );
    assert_eq!(
        sorted(
            json!([{"property": "allInThreadHaveKeyword", "keyword": "$seen", "isAscending": false}, {"property": "sentAt"}])
        ),
        [lunch, inv, re]
    );
    // §4.4.3: one Email per Thread, the first in sort order.
    let q = query(
        json!({"collapseThreads": true, "calculateTotal": true, "sort": [{"property": "sentAt", "isAscending": false}]}),
    );
    assert_eq!(q["total"], 2, "{q}");
    assert_eq!(q["ids"], json!([re, lunch]));
    // RFC 8620 §5.5: anchors and negative positions.
    let asc = json!([{"property": "sentAt"}]);
    let q = query(json!({"sort": asc, "anchor": inv, "anchorOffset": -1, "limit": 2}));
    assert_eq!(
        (q["position"].clone(), q["ids"].clone()),
        (json!(0), json!([lunch, inv]))
    );
    let q = query(json!({"sort": asc, "anchor": inv, "anchorOffset": 5}));
    assert_eq!(
        (q["position"].clone(), q["ids"].clone()),
        (json!(3), json!([]))
    );
    let q = query(json!({"sort": asc, "position": -1}));
    assert_eq!(q["ids"], json!([re]));
    assert_eq!(
        query(json!({"anchor": "E999999"}))["type"],
        "anchorNotFound"
    );
    assert_eq!(query(json!({"limit": -1}))["type"], "invalidArguments");
    // RFC 8620 §5.5: total only with calculateTotal.
    assert!(query(json!({})).get("total").is_none());
    // §4.4.1 thread conditions: over every Email of the Thread.
    let sorted = |f: Value| {
        let mut got = ids(json!({"filter": f}));
        got.sort();
        got
    };
    let mut thread = vec![inv.to_string(), re.to_string()];
    thread.sort();
    assert_eq!(sorted(json!({"someInThreadHaveKeyword": "$seen"})), thread);
    assert_eq!(
        sorted(json!({"allInThreadHaveKeyword": "$seen"})),
        Vec::<String>::new()
    );
    assert_eq!(sorted(json!({"noneInThreadHaveKeyword": "$seen"})), [lunch]);
    assert_eq!(
        sorted(json!({"allInThreadHaveKeyword": "$flagged"})),
        [lunch]
    );
    imap(
        j.s.addr("imap"),
        "b SELECT INBOX\r\nc STORE 1 +FLAGS (\\Seen)\r\n",
    )
    .await;
    assert_eq!(sorted(json!({"allInThreadHaveKeyword": "$seen"})), thread);
    // hasAttachment: a non-inline attachment (§4.1.4), read from content.
    assert_eq!(sorted(json!({"hasAttachment": true})), Vec::<String>::new());
    j.deliver(&[MULTIPART.to_string()]).await;
    let with = sorted(json!({"hasAttachment": true}));
    assert_eq!(with.len(), 1);
    assert!(![inv, re, lunch].contains(&with[0].as_str()));
    assert_eq!(sorted(json!({"hasAttachment": false})).len(), 3);
    // §4.4.1: HTML is searched without its markup.
    assert_eq!(sorted(json!({"body": "<b>noon"})), Vec::<String>::new());
    assert_eq!(sorted(json!({"text": "at noon"})), with);
    assert_eq!(
        query(json!({"filter": {"hasAttachment": 1}}))["type"],
        "invalidArguments"
    );
    assert_eq!(query(json!({}))["canCalculateChanges"], json!(true));
}

const MULTIPART: &str = "From: \"Ann Able\" <ann@remote.test>\r\nTo: joe@example.org\r\nSubject: =?UTF-8?Q?R=C3=A9sum=C3=A9?= attached\r\nMessage-ID: <m1@remote.test>\r\nIn-Reply-To: <m0@remote.test>\r\nList-Unsubscribe: <https://remote.test/u>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 at noon?\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\u{e9} at <b>noon</b>?</p>\r\n--alt--\r\n--outer\r\nContent-Type: application/octet-stream; name=\"cv.bin\"\r\nContent-Disposition: attachment; filename=\"cv.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgc=\r\n--outer--\r\n";

/// RFC 8621 §4.1.2-§4.1.4, §4.2: Email/get's parsed header forms, the
/// MIME tree, textBody/htmlBody/attachments, bodyValues decoded from
/// their charsets and truncated, hasAttachment; a part's blob downloads
/// decoded; jmapc reads the same body values.
#[tokio::test]
async fn email_get_bodies_and_header_forms() {
    let j = server("");
    let account = j.account_id();
    j.deliver(&[MULTIPART.to_string()]).await;
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "fetchTextBodyValues": true, "fetchHTMLBodyValues": true}, "g"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["bodyStructure", "headers", "header:Subject:asText", "header:subject",
                    "header:List-Unsubscribe:asURLs", "header:From:asGroupedAddresses", "header:X-None:all", "bodyValues"],
                "bodyProperties": ["partId", "type", "subParts", "header:Content-Type"],
                "fetchAllBodyValues": true, "maxBodyValueBytes": 6}, "s"],
            ["Email/get", {"accountId": account, "ids": [], "properties": ["header:From:asText"]}, "bad"],
            ["Email/get", {"accountId": account, "ids": [], "bodyProperties": ["colour"]}, "bad2"]
        ]),
    );
    // Defaults of §4.2: the body lists and values are in.
    let e = &r[1][1]["list"][0];
    assert_eq!(e["subject"], "Résumé attached");
    assert_eq!(e["inReplyTo"], json!(["m0@remote.test"]));
    assert_eq!(e["bcc"], Value::Null);
    assert_eq!(e["hasAttachment"], true);
    let text = &e["textBody"][0];
    let html = &e["htmlBody"][0];
    assert_eq!(
        (text["type"].as_str(), text["charset"].as_str()),
        (Some("text/plain"), Some("iso-8859-1"))
    );
    assert_eq!(html["type"], "text/html");
    let att = &e["attachments"];
    assert_eq!(att.as_array().unwrap().len(), 1, "{att}");
    assert_eq!(
        (att[0]["name"].as_str(), att[0]["size"].as_u64()),
        (Some("cv.bin"), Some(8))
    );
    let values = &e["bodyValues"];
    let tid = text["partId"].as_str().unwrap();
    assert_eq!(
        values[tid]["value"], "Café at noon?",
        "decoded from Latin-1: {values}"
    );
    assert_eq!(values[tid]["isTruncated"], false);
    assert!(values[html["partId"].as_str().unwrap()]["value"]
        .as_str()
        .unwrap()
        .contains("<b>noon</b>"));

    let s = &r[2][1]["list"][0];
    assert_eq!(s["header:Subject:asText"], "Résumé attached");
    assert_eq!(
        s["header:subject"],
        " =?UTF-8?Q?R=C3=A9sum=C3=A9?= attached"
    );
    assert_eq!(
        s["header:List-Unsubscribe:asURLs"],
        json!(["https://remote.test/u"])
    );
    assert_eq!(
        s["header:From:asGroupedAddresses"],
        json!([{"name": null, "addresses": [{"name": "Ann Able", "email": "ann@remote.test"}]}])
    );
    assert_eq!(s["header:X-None:all"], json!([]));
    let names: Vec<&str> = s["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    // Delivery prepends Return-Path and Received; the rest as written.
    assert_eq!(names[0], "Return-Path", "{names:?}");
    assert!(
        names.ends_with(&[
            "From",
            "To",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "List-Unsubscribe",
            "MIME-Version",
            "Content-Type"
        ]),
        "{names:?}"
    );
    let tree = &s["bodyStructure"];
    assert_eq!(tree["type"], "multipart/mixed");
    assert_eq!(tree["partId"], Value::Null);
    assert_eq!(tree["subParts"][0]["type"], "multipart/alternative");
    assert_eq!(tree["subParts"][0]["subParts"][1]["type"], "text/html");
    assert_eq!(
        tree["subParts"][1]["header:Content-Type"],
        " application/octet-stream; name=\"cv.bin\""
    );
    // All text parts, cut at 6 bytes without splitting a character or a tag.
    let all = s["bodyValues"].as_object().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all
        .values()
        .all(|v| v["isTruncated"] == true && v["value"].as_str().unwrap().len() <= 6));
    assert_eq!(all[tid]["value"], "Café ");
    assert_eq!(
        r[3][1]["type"], "invalidArguments",
        "asText on From is not allowed"
    );
    assert_eq!(r[4][1]["type"], "invalidArguments");

    // The attachment's blob is its decoded bytes.
    let url = format!(
        "{}/jmap/download/{account}/{}/cv.bin?type=application/octet-stream",
        j.base(),
        att[0]["blobId"].as_str().unwrap()
    );
    let out = Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&j.ca)
        .args(["-u", "joe@example.org:pw", &url])
        .output()
        .unwrap();
    assert_eq!(out.stdout, [0, 1, 2, 3, 4, 5, 6, 7]);

    // A second client: jmapc's Email model reads the same values.
    let port = j.s.addr("https").port();
    let stdout = j.python(&format!(
            "from jmapc import Client, Ref\n\
             from jmapc.methods import EmailQuery, EmailGet\n\
             c = Client.create_with_password(host='127.0.0.1:{port}', user='joe@example.org', password='pw')\n\
             res = c.request([EmailQuery(), EmailGet(ids=Ref('/ids'), fetch_text_body_values=True)])\n\
             e = res[1].response.data[0]\n\
             print('text', e.body_values[e.text_body[0].part_id].value)\n\
             print('attachment', e.attachments[0].name, e.attachments[0].size, e.has_attachment)\n"
        ));
    assert!(stdout.contains("text Café at noon?"), "{stdout}");
    assert!(stdout.contains("attachment cv.bin 8 True"), "{stdout}");
}

/// RFC 8620 §6.1 uploads; RFC 8621 §4.6 Email/set creation (text, HTML
/// and an uploaded attachment), creation references and createdIds,
/// mailboxIds patches that IMAP sees as a move; §4.8 Email/import.
#[tokio::test]
async fn uploads_create_move_and_import() {
    let j = server("[jmap]\nmax-size-upload = 1000\n");
    let account = j.account_id();
    let roles = j.roles(&account);
    let (status, up) = j.upload(&account, "application/pdf", b"%PDF-1.4 tiny");
    assert_eq!(status, 201, "{up}");
    assert_eq!(
        (up["type"].as_str(), up["size"].as_u64()),
        (Some("application/pdf"), Some(13))
    );
    let (status, _) = j.upload(&account, "text/plain", &[b'x'; 1001]);
    assert_eq!(status, 413, "over maxSizeUpload");
    let req = json!({
        "using": [CORE, MAIL],
        "createdIds": {},
        "methodCalls": [
            ["Email/set", {"accountId": account, "create": {"d1": {
                "mailboxIds": {roles["drafts"].as_str(): true},
                "keywords": {"$draft": true, "$seen": true},
                "from": [{"name": "Joe", "email": "joe@example.org"}],
                "to": [{"name": "Ann", "email": "ann@remote.test"}],
                "subject": "Draft with a PDF",
                "textBody": [{"partId": "t", "type": "text/plain"}],
                "htmlBody": [{"partId": "h", "type": "text/html"}],
                "bodyValues": {"t": {"value": "See the PDF."}, "h": {"value": "<p>See the <b>PDF</b>.</p>"}},
                "attachments": [{"blobId": up["blobId"], "type": "application/pdf", "name": "tiny.pdf"}]
            }, "bad": {"mailboxIds": {}, "subject": "x"},
               "gone": {"mailboxIds": {roles["drafts"].as_str(): true}, "attachments": [{"blobId": "U999", "type": "a/b"}]}}}, "c"],
            ["Email/get", {"accountId": account, "ids": ["#d1"],
                "properties": ["subject", "keywords", "mailboxIds", "hasAttachment", "attachments", "bodyValues"],
                "fetchTextBodyValues": true}, "g"],
            ["Email/set", {"accountId": account, "update": {"#d1": {
                "mailboxIds/".to_string() + &roles["drafts"]: null,
                "mailboxIds/".to_string() + &roles["sent"]: true,
                "keywords/$draft": null}}}, "u"]
        ]
    });
    let (status, v) = j.api_raw(&req.to_string());
    assert_eq!(status, 200, "{v}");
    let r = v["methodResponses"].as_array().unwrap();
    let made = &r[0][1]["created"]["d1"];
    let email = made["id"].as_str().unwrap().to_string();
    assert!(
        made["blobId"].is_string()
            && made["threadId"].is_string()
            && made["size"].as_u64().unwrap() > 100,
        "{made}"
    );
    assert_eq!(v["createdIds"]["d1"], email.as_str());
    assert_eq!(r[0][1]["notCreated"]["bad"]["type"], "invalidProperties");
    assert_eq!(
        r[0][1]["notCreated"]["gone"],
        json!({"type": "blobNotFound", "notFound": ["U999"]})
    );
    let got = &r[1][1]["list"][0];
    assert_eq!(got["subject"], "Draft with a PDF");
    assert_eq!(got["keywords"], json!({"$draft": true, "$seen": true}));
    assert_eq!(got["hasAttachment"], true);
    assert_eq!(got["attachments"][0]["name"], "tiny.pdf");
    assert_eq!(got["attachments"][0]["size"], 13);
    let text = got["bodyValues"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(text["value"], "See the PDF.");
    assert_eq!(
        r[2][1]["updated"],
        json!({ email.as_str(): null }),
        "{}",
        r[2][1]
    );
    // IMAP sees the move and the keywords: in Sent, not in Drafts, \Seen without \Draft.
    let out = imap(
        j.s.addr("imap"),
        "b STATUS Drafts (MESSAGES)\r\nc SELECT Sent\r\nd FETCH 1 (FLAGS EMAILID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
    )
    .await;
    assert!(out.contains("STATUS \"Drafts\" (MESSAGES 0)"), "{out}");
    assert!(out.contains(&format!("EMAILID ({email})")), "{out}");
    assert!(out.contains("FLAGS (\\Seen \\Recent)"), "{out}");
    assert!(out.contains("Subject: Draft with a PDF"), "{out}");

    // §4.8: a raw message uploaded, then imported into two mailboxes.
    let raw = b"From: Old <old@remote.test>\r\nSubject: from the archive\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nArchived.\r\n";
    let (_, up) = j.upload(&account, "message/rfc822", raw);
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/import", {"accountId": account, "emails": {
            "i1": {"blobId": up["blobId"], "mailboxIds": {roles["inbox"].as_str(): true, roles["archive"].as_str(): true},
                   "keywords": {"$flagged": true}, "receivedAt": "2024-01-01T10:00:05Z"},
            "i2": {"blobId": "U424242", "mailboxIds": {roles["inbox"].as_str(): true}}}}, "i"],
            ["Email/get", {"accountId": account, "ids": ["#i1"], "properties": ["receivedAt", "mailboxIds", "keywords", "subject"]}, "g"]]),
    );
    assert_eq!(r[0][1]["notCreated"]["i2"]["type"], "blobNotFound");
    // RFC 8620 §5.3: a creation id used again names the latest creation.
    let again = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/import", {"accountId": account, "emails": {"i1": {"blobId": up["blobId"], "mailboxIds": {roles["inbox"].as_str(): true}}}}, "a"],
            ["Email/import", {"accountId": account, "emails": {"i1": {"blobId": up["blobId"], "mailboxIds": {roles["trash"].as_str(): true}}}}, "b"],
            ["Email/get", {"accountId": account, "ids": ["#i1"], "properties": ["mailboxIds"]}, "g"]
        ]),
    );
    let second = again[1][1]["created"]["i1"]["id"].clone();
    assert_ne!(again[0][1]["created"]["i1"]["id"], second);
    assert_eq!(again[2][1]["list"][0]["id"], second, "{again:?}");
    assert_eq!(
        again[2][1]["list"][0]["mailboxIds"],
        json!({ roles["trash"].as_str(): true })
    );
    let got = &r[1][1]["list"][0];
    assert_eq!(got["receivedAt"], "2024-01-01T10:00:05Z");
    assert_eq!(got["mailboxIds"].as_object().unwrap().len(), 2);
    assert_eq!(got["keywords"], json!({"$flagged": true}));
    assert_eq!(got["subject"], "from the archive");
}

/// A second Petrel holding `users`@remote.test, and the JMAP server
/// whose queue relays to it.
fn relayed_to_remote(users: &[&str], extra: &str) -> (TestServer, Jmap) {
    let remote = TestServer::start_with(
        "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n",
    );
    for u in users {
        remote.account(&format!("{u}@remote.test"));
    }
    let j = server(&format!(
        "[queue]\nrelay = \"{}\"\nretry = [1]\n{extra}",
        remote.addr("smtp")
    ));
    (remote, j)
}

/// RFC 8621 §6-§7: the account's own Identity; an Email created as a
/// draft is sent by EmailSubmission through the queue to another server
/// (Bcc delivered but removed from the message), the implicit Email/set
/// moves it to Sent; deliveryStatus follows the queue; a held submission
/// (FUTURERELEASE HOLDFOR) is cancelled before anyone gets it; foreign
/// authors and envelope senders are refused. jmapc reads the identity.
#[tokio::test]
async fn submissions_go_through_the_queue() {
    let (remote, j) = relayed_to_remote(&["bob", "carol"], "[jmap]\nmax-delayed-send = 3600\n");
    let account = j.account_id();
    let roles = j.roles(&account);
    const SUB: &str = "urn:ietf:params:jmap:submission";
    let r = j.api(
        &[CORE, MAIL, SUB],
        json!([["Identity/get", {"accountId": account}, "i"]]),
    );
    let idents = r[0][1]["list"].as_array().unwrap().clone();
    assert_eq!(idents.len(), 1, "{r:?}");
    assert_eq!(
        (
            idents[0]["email"].as_str(),
            idents[0]["mayDelete"].as_bool()
        ),
        (Some("joe@example.org"), Some(false))
    );
    let ident = idents[0]["id"].as_str().unwrap().to_string();
    let draft = |subject: &str, from: &str| {
        json!({
            "mailboxIds": {roles["drafts"].as_str(): true},
            "keywords": {"$draft": true},
            "from": [{"email": from}],
            "to": [{"name": "Bob", "email": "bob@remote.test"}],
            "bcc": [{"email": "carol@remote.test"}],
            "subject": subject,
            "textBody": [{"partId": "1"}],
            "bodyValues": {"1": {"value": format!("{subject}, the body.")}}
        })
    };
    let r = j.api(
        &[CORE, MAIL, SUB],
        json!([
            ["Email/set", {"accountId": account, "create": {"d": draft("Sent by JMAP", "joe@example.org")}}, "e"],
            ["EmailSubmission/set", {"accountId": account,
                "create": {"s": {"identityId": ident, "emailId": "#d"}},
                "onSuccessUpdateEmail": {"#s": {
                    "mailboxIds/".to_string() + &roles["drafts"]: null,
                    "mailboxIds/".to_string() + &roles["sent"]: true,
                    "keywords/$draft": null}}}, "s"]
        ]),
    );
    let email = r[0][1]["created"]["d"]["id"].as_str().unwrap().to_string();
    let made = &r[1][1]["created"]["s"];
    assert!(made["id"].is_string(), "{:?}", r[1]);
    assert_eq!(made["undoStatus"], "final");
    // The implicit Email/set answers after the call, with its call id.
    assert_eq!(r[2][0], "Email/set", "{r:?}");
    assert_eq!(r[2][2], "s");
    assert_eq!(r[2][1]["updated"], json!({ email.as_str(): null }));
    let sub_id = made["id"].as_str().unwrap().to_string();

    let bob = wait_for_mail(remote.addr("imap"), "bob@remote.test", 1).await;
    let carol = wait_for_mail(remote.addr("imap"), "carol@remote.test", 1).await;
    for m in [&bob[0], &carol[0]] {
        let text = String::from_utf8_lossy(m);
        assert!(text.contains("Subject: Sent by JMAP"), "{text}");
        assert!(text.contains("Return-Path: <joe@example.org>"), "{text}");
        assert!(
            !text.to_ascii_lowercase().contains("\nbcc:"),
            "Bcc removed: {text}"
        );
    }
    // The queue entry is done: the submission keeps its outcome.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = j.api(
            &[CORE, MAIL, SUB],
            json!([["EmailSubmission/get", {"accountId": account, "ids": [sub_id]}, "g"]]),
        );
        let s = &r[0][1]["list"][0];
        let status = &s["deliveryStatus"];
        if status["bob@remote.test"]["delivered"] == "unknown"
            && status["carol@remote.test"]["delivered"] == "unknown"
        {
            assert!(
                status["bob@remote.test"]["smtpReply"]
                    .as_str()
                    .unwrap()
                    .starts_with("250"),
                "{s}"
            );
            assert_eq!(s["undoStatus"], "final");
            assert_eq!(s["emailId"], email.as_str());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let sent = imap(j.s.addr("imap"), "b SELECT Sent\r\nc FETCH 1 (FLAGS)\r\n").await;
    let fetched = sent
        .lines()
        .find(|l| l.starts_with("* 1 FETCH"))
        .unwrap_or_default();
    assert!(
        sent.contains("* 1 EXISTS") && !fetched.contains("\\Draft"),
        "{sent}"
    );

    // The queue's progress moves the submission state (RFC 8621 §7:
    // undoStatus and deliveryStatus are properties): held for a second,
    // then delivered with no JMAP call in between.
    let r = j.api(
        &[CORE, MAIL, SUB],
        json!([
            ["Email/set", {"accountId": account, "create": {"d": draft("Held briefly", "joe@example.org")}}, "e"],
            ["EmailSubmission/set", {"accountId": account, "create": {"s": {"identityId": ident, "emailId": "#d",
                "envelope": {"mailFrom": {"email": "joe@example.org", "parameters": {"HOLDFOR": "1"}},
                             "rcptTo": [{"email": "bob@remote.test"}]}}}}, "s"]
        ]),
    );
    let brief = r[1][1]["created"]["s"]["id"].as_str().unwrap().to_string();
    let made_at = r[1][1]["newState"].clone();
    assert_eq!(r[1][1]["created"]["s"]["undoStatus"], "pending", "{r:?}");
    wait_for_mail(remote.addr("imap"), "bob@remote.test", 2).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = j.api(
            &[CORE, SUB],
            json!([["EmailSubmission/changes", {"accountId": account, "sinceState": made_at}, "c"],
                   ["EmailSubmission/get", {"accountId": account, "ids": [brief]}, "g"]]),
        );
        let s = &r[1][1]["list"][0];
        if s["deliveryStatus"]["bob@remote.test"]["delivered"] == "unknown" {
            assert_eq!(r[0][1]["updated"], json!([brief]), "{r:?}");
            assert_eq!(s["undoStatus"], "final");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{s}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A held submission can be cancelled; nobody receives it. The
    // query by sentAt is brought up to date by queryChanges (§5.6), but
    // not one on undoStatus, which follows the queue.
    let newest = json!([{"property": "sentAt", "isAscending": false}]);
    let old = j.api(
        &[CORE, SUB],
        json!([["EmailSubmission/query", {"accountId": account, "sort": newest}, "q"],
               ["EmailSubmission/query", {"accountId": account, "filter": {"undoStatus": "final"}}, "u"]]),
    );
    assert_eq!(old[0][1]["canCalculateChanges"], true);
    assert_eq!(old[1][1]["canCalculateChanges"], false);
    let old = old[0][1].clone();
    let r = j.api(
        &[CORE, MAIL, SUB],
        json!([
            ["Email/set", {"accountId": account, "create": {"d": draft("Never sent", "joe@example.org")}}, "e"],
            ["EmailSubmission/set", {"accountId": account, "create": {"s": {"identityId": ident, "emailId": "#d",
                "envelope": {"mailFrom": {"email": "joe@example.org", "parameters": {"HOLDFOR": "600"}},
                             "rcptTo": [{"email": "bob@remote.test"}]}}}}, "s"],
            ["EmailSubmission/set", {"accountId": account, "update": {"#s": {"undoStatus": "canceled"}}}, "u"],
            ["EmailSubmission/get", {"accountId": account, "ids": ["#s"], "properties": ["undoStatus", "sendAt"]}, "g"],
            ["EmailSubmission/set", {"accountId": account, "update": {sub_id.as_str(): {"undoStatus": "canceled"}}}, "late"],
            ["EmailSubmission/set", {"accountId": account, "create": {"x": {"identityId": ident, "emailId": "#d",
                "envelope": {"mailFrom": {"email": "joe@example.org", "parameters": {"HOLDFOR": "7200"}},
                             "rcptTo": [{"email": "bob@remote.test"}]}}}}, "toolong"]
        ]),
    );
    assert_eq!(
        r[1][1]["created"]["s"]["undoStatus"], "pending",
        "{:?}",
        r[1]
    );
    let held = r[1][1]["created"]["s"]["id"].as_str().unwrap();
    assert_eq!(r[2][1]["updated"], json!({ held: null }), "{:?}", r[2]);
    assert_eq!(r[3][1]["list"][0]["undoStatus"], "canceled");
    assert_eq!(r[4][1]["notUpdated"][&sub_id]["type"], "cannotUnsend");
    let q = j.api(
        &[CORE, SUB],
        json!([
            ["EmailSubmission/queryChanges", {"accountId": account, "sort": newest, "sinceQueryState": old["queryState"]}, "c"],
            ["EmailSubmission/query", {"accountId": account, "sort": newest}, "q"],
            ["EmailSubmission/queryChanges", {"accountId": account, "filter": {"undoStatus": "final"}, "sinceQueryState": old["queryState"]}, "u"]
        ]),
    );
    assert_eq!(q[0][1]["added"][0]["id"], held, "{q:?}");
    assert_eq!(splice(&ids(&old), &q[0][1]), ids(&q[1][1]), "{q:?}");
    assert_eq!(q[2][1]["type"], "cannotCalculateChanges");
    assert_eq!(
        r[5][1]["notCreated"]["x"]["type"], "invalidProperties",
        "over maxDelayedSend"
    );
    assert_eq!(
        j.s.cli_ok(&["queue", "list"])
            .lines()
            .filter(|l| l.contains("bob@remote.test"))
            .count(),
        0
    );

    // Only the account's own addresses may send.
    j.s.account("eve@example.org");
    let mut two_authors = draft("Two", "joe@example.org");
    two_authors["from"] = json!([{"email": "joe@example.org"}, {"email": "joe@example.org"}]);
    let r = j.api(
        &[CORE, MAIL, SUB],
        json!([
            ["Email/set", {"accountId": account, "create": {"f": draft("Forged", "eve@example.org"), "ok": draft("Mine", "joe@example.org"), "two": two_authors}}, "e"],
            ["EmailSubmission/set", {"accountId": account, "create": {
                "a": {"identityId": ident, "emailId": "#f"},
                "b": {"identityId": ident, "emailId": "#ok", "envelope": {"mailFrom": {"email": "eve@example.org"}, "rcptTo": [{"email": "bob@remote.test"}]}},
                "c": {"identityId": ident, "emailId": "#ok", "envelope": {"mailFrom": {"email": "joe@example.org"}, "rcptTo": []}},
                "d": {"identityId": ident, "emailId": "#ok", "envelope": {"mailFrom": {"email": "joe@example.org"}, "rcptTo": [{"email": "not an address"}]}},
                "e": {"identityId": "I999", "emailId": "#ok"},
                "g": {"identityId": ident, "emailId": "#two"}
            }}, "s"],
            ["Identity/set", {"accountId": account, "create": {"n": {"email": "eve@example.org", "name": "Eve"}},
                "destroy": [ident]}, "i"]
        ]),
    );
    let nc = &r[1][1]["notCreated"];
    assert_eq!(nc["a"]["type"], "forbiddenFrom", "{nc}");
    assert_eq!(nc["b"]["type"], "forbiddenMailFrom");
    assert_eq!(nc["c"]["type"], "noRecipients");
    assert_eq!(nc["d"]["type"], "invalidRecipients");
    assert_eq!(nc["e"]["type"], "invalidProperties");
    assert_eq!(nc["g"]["type"], "invalidEmail", "two authors, no envelope");
    assert!(nc["g"]["properties"]
        .as_array()
        .is_some_and(|p| p.contains(&json!("from"))));
    assert_eq!(r[2][1]["notCreated"]["n"]["type"], "forbiddenFrom");
    assert_eq!(r[2][1]["notDestroyed"][&ident]["type"], "forbidden");

    // A second client reads the identity.
    let port = j.s.addr("https").port();
    let stdout = j.python(&format!(
            "from jmapc import Client\n\
             from jmapc.methods import IdentityGet\n\
             c = Client.create_with_password(host='127.0.0.1:{port}', user='joe@example.org', password='pw')\n\
             for i in c.request(IdentityGet()).data:\n    print('identity', i.email)\n"
        ));
    assert!(stdout.contains("identity joe@example.org"), "{stdout}");
}

/// RFC 8621 §8 with RFC 3834: the singleton; while it is on, a sender
/// gets one response (to the Return-Path, null envelope sender,
/// Auto-Submitted, In-Reply-To) per period, list and automatic mail
/// none; turned off, nobody.
#[tokio::test]
async fn vacation_response_follows_rfc3834() {
    let (remote, j) = relayed_to_remote(&["ann", "list"], "[smtp]\nauth-without-tls = true\n");
    let account = j.account_id();
    const VAC: &str = "urn:ietf:params:jmap:vacationresponse";
    let r = j.api(
        &[CORE, VAC],
        json!([
            ["VacationResponse/get", {"accountId": account, "ids": null}, "g"],
            ["VacationResponse/set", {"accountId": account, "update": {"singleton": {
                "isEnabled": true, "subject": "Out of office", "textBody": "Back on Monday."}},
                "create": {"x": {}}, "destroy": ["singleton"]}, "s"],
            ["VacationResponse/get", {"accountId": account, "ids": ["singleton", "other"]}, "g2"]
        ]),
    );
    assert_eq!(
        r[0][1]["list"][0],
        json!({"id": "singleton", "isEnabled": false, "fromDate": null,
        "toDate": null, "subject": null, "textBody": null, "htmlBody": null})
    );
    assert_eq!(r[1][1]["updated"], json!({"singleton": null}), "{:?}", r[1]);
    assert_eq!(r[1][1]["notCreated"]["x"]["type"], "singleton");
    assert_eq!(r[1][1]["notDestroyed"]["singleton"]["type"], "singleton");
    assert_eq!(r[2][1]["list"][0]["isEnabled"], true);
    assert_eq!(r[2][1]["notFound"], json!(["other"]));

    let send = |from: &'static str, extra: &'static str, n: u32| {
        let to = j.s.addr("smtp");
        async move {
            let body = format!("From: {from}\r\nTo: joe@example.org\r\nSubject: message {n}\r\nMessage-ID: <m{n}@remote.test>\r\n{extra}\r\nHello.\r\n");
            let r = smtp_send(to, from, &["joe@example.org"], &body).await;
            assert!(r.starts_with("250"), "{r}");
        }
    };
    send("ann@remote.test", "", 1).await;
    send("ann@remote.test", "", 2).await;
    send("list@remote.test", "List-Id: <team.remote.test>\r\n", 3).await;
    send("list@remote.test", "Auto-Submitted: auto-generated\r\n", 4).await;
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 4).await;
    let got = wait_for_mail(remote.addr("imap"), "ann@remote.test", 1).await;
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: Out of office"), "{text}");
    assert!(text.contains("Back on Monday."), "{text}");
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("In-Reply-To: <m1@remote.test>"), "{text}");
    assert!(
        text.contains("Return-Path: <>"),
        "null envelope sender: {text}"
    );
    // Let the queue drain: nothing else went out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while j.s.cli_ok(&["queue", "list"]).contains("remote.test") {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        imap_fetch_all(remote.addr("imap"), "ann@remote.test", "pw")
            .await
            .len(),
        1,
        "once per period"
    );
    assert!(
        imap_fetch_all(remote.addr("imap"), "list@remote.test", "pw")
            .await
            .is_empty(),
        "no response to list or automatic mail"
    );

    // A colleague on the submission port is answered too (the final
    // delivery records the Return-Path the response goes to).
    j.s.account("amy@example.org");
    let r = submit(
        &j.s,
        "amy@example.org",
        &["joe@example.org"],
        "From: amy@example.org\r\nTo: joe@example.org\r\nSubject: lunch?\r\n\r\nHi\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let amy = wait_for_mail(j.s.addr("imap"), "amy@example.org", 1).await;
    assert!(String::from_utf8_lossy(&amy[0]).contains("Subject: Out of office"));

    // The same engine answers for the user's own Sieve script: a sender
    // its vacation answers gets that response alone.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("away.sieve");
    std::fs::write(
        &file,
        "require \"vacation\";\nvacation :subject \"From Sieve\" \"Away.\";\n",
    )
    .unwrap();
    j.s.cli_ok(&[
        "sieve",
        "put",
        "joe@example.org",
        "away",
        file.to_str().unwrap(),
        "--activate",
    ]);
    send("list@remote.test", "", 7).await;
    let got = wait_for_mail(remote.addr("imap"), "list@remote.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("Subject: From Sieve"));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!j.s.cli_ok(&["queue", "list"]).contains("list@remote.test"));
    assert_eq!(
        imap_fetch_all(remote.addr("imap"), "list@remote.test", "pw")
            .await
            .len(),
        1,
        "one response for one message"
    );
    j.s.cli_ok(&["sieve", "deactivate", "joe@example.org"]);

    // Off: nobody is answered, even after the memory is cleared.
    j.api(&[CORE, VAC], json!([["VacationResponse/set", {"accountId": account, "update": {"singleton": {"isEnabled": false}}}, "s"]]));
    send("ann@remote.test", "", 5).await;
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 7).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!j.s.cli_ok(&["queue", "list"]).contains("ann@remote.test"));
    assert_eq!(
        imap_fetch_all(remote.addr("imap"), "ann@remote.test", "pw")
            .await
            .len(),
        1
    );
}

/// RFC 8621 §2.3, §2.5: Mailbox/set creates, renames, moves, subscribes
/// and destroys on the IMAP tree (IMAP LIST sees it); the destroy rules;
/// Mailbox/query. §3.2 Thread/changes and §5 SearchSnippet/get.
#[tokio::test]
async fn mailbox_set_thread_changes_and_snippets() {
    let j = server("");
    let account = j.account_id();
    let roles = j.roles(&account);
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Mailbox/set", {"accountId": account, "create": {
                "p": {"name": "Projects", "isSubscribed": true, "sortOrder": 5},
                "c": {"name": "Petrel", "parentId": "#p", "isSubscribed": false},
                "bad": {"name": "a/b"},
                "dup": {"name": "Drafts"},
                "r": {"name": "Old", "role": "archive"}
            }}, "c"],
            ["Mailbox/query", {"accountId": account, "filter": {"parentId": "#p"}}, "q"],
            ["Mailbox/query", {"accountId": account, "filter": {"hasAnyRole": true}, "sort": [{"property": "name"}]}, "roles"]
        ]),
    );
    let set = &r[0][1];
    let (p, c) = (
        set["created"]["p"]["id"].as_str().unwrap().to_string(),
        set["created"]["c"]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        set["notCreated"]["bad"]["type"], "invalidProperties",
        "{set}"
    );
    assert_eq!(set["notCreated"]["dup"]["type"], "invalidProperties");
    assert_eq!(
        set["notCreated"]["r"]["type"], "invalidProperties",
        "archive is Archive's role: {set}"
    );
    assert_eq!(r[1][1]["ids"], json!([c]));
    assert!(r[2][1]["ids"].as_array().unwrap().len() >= 5, "{:?}", r[2]);
    assert_eq!(set["created"]["p"]["sortOrder"], 5, "{set}");
    // sortOrder is kept, changes the Mailbox state, and sorts.
    let before = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/get", {"accountId": account, "ids": []}, "s"]]),
    )[0][1]["state"]
        .clone();
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Mailbox/set", {"accountId": account, "update": {c.as_str(): {"sortOrder": 1}, roles["inbox"].as_str(): {"sortOrder": 9}}}, "u"],
            ["Mailbox/set", {"accountId": account, "update": {c.as_str(): {"sortOrder": -1}}}, "bad"],
            ["Mailbox/get", {"accountId": account, "ids": [p.clone(), c.clone(), roles["inbox"].clone()], "properties": ["sortOrder"]}, "g"],
            ["Mailbox/query", {"accountId": account, "filter": {"hasAnyRole": false}, "sort": [{"property": "sortOrder", "isAscending": false}]}, "q"],
            ["Mailbox/changes", {"accountId": account, "sinceState": before}, "ch"]
        ]),
    );
    assert_eq!(
        r[1][1]["notUpdated"][c.as_str()]["type"],
        "invalidProperties",
        "{}",
        r[1][1]
    );
    let orders: Vec<&Value> = r[2][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["sortOrder"])
        .collect();
    assert_eq!(orders, [&json!(5), &json!(1), &json!(9)], "{}", r[2][1]);
    let q: Vec<&str> = r[3][1]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let (pi, ci) = (
        q.iter().position(|x| *x == p).unwrap(),
        q.iter().position(|x| *x == c).unwrap(),
    );
    assert!(pi < ci, "5 before 1 descending: {q:?}");
    let changed = r[4][1]["updated"].as_array().unwrap();
    assert!(
        changed.contains(&json!(c)) && changed.contains(&json!(roles["inbox"])),
        "{}",
        r[4][1]
    );
    let list = imap(
        j.s.addr("imap"),
        "b LIST \"\" \"Projects*\"\r\nc LSUB \"\" \"*\"\r\n",
    )
    .await;
    assert!(list.contains("\"Projects/Petrel\""), "{list}");
    assert!(
        list.contains("LSUB (\\HasChildren) \"/\" \"Projects\""),
        "{list}"
    );
    assert!(
        !list.contains("LSUB (\\HasNoChildren) \"/\" \"Projects/Petrel\""),
        "not subscribed: {list}"
    );

    // Rename and move the child to the top; a parent with a child or a
    // mailbox with mail is not destroyed.
    j.deliver(&[
        "Subject: hello there\r\nMessage-ID: <t1@remote.test>\r\n\r\nThe quick brown fox.\r\n"
            .to_string(),
    ])
    .await;
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Mailbox/set", {"accountId": account, "destroy": [p.clone(), roles["inbox"].clone()]}, "d1"],
            ["Mailbox/set", {"accountId": account, "update": {c.as_str(): {"name": "Heron", "parentId": null}}}, "u"],
            ["Email/set", {"accountId": account, "update": {"#x": {}}}, "none"]
        ]),
    );
    let email = r[0][1]["ids"][0].as_str().unwrap().to_string();
    assert_eq!(
        r[1][1]["notDestroyed"][&p]["type"], "mailboxHasChild",
        "{:?}",
        r[1]
    );
    assert_eq!(
        r[1][1]["notDestroyed"][&roles["inbox"]]["type"],
        "forbidden"
    );
    assert_eq!(
        r[2][1]["updated"],
        json!({ c.as_str(): null }),
        "{:?}",
        r[2]
    );
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/set", {"accountId": account, "update": {email.as_str(): {("mailboxIds/".to_string() + &c): true}}}, "m"],
            ["Mailbox/set", {"accountId": account, "destroy": [c.clone()]}, "d2"],
            ["Mailbox/get", {"accountId": account, "ids": [c.clone()], "properties": ["name", "parentId", "totalEmails"]}, "g"],
            ["Mailbox/set", {"accountId": account, "destroy": [c.clone(), p.clone()], "onDestroyRemoveEmails": true}, "d3"],
            ["Email/get", {"accountId": account, "ids": [email], "properties": ["mailboxIds"]}, "e"]
        ]),
    );
    assert_eq!(
        r[1][1]["notDestroyed"][&c]["type"], "mailboxHasEmail",
        "{:?}",
        r[1]
    );
    assert_eq!(
        r[2][1]["list"][0],
        json!({"id": c, "name": "Heron", "parentId": null, "totalEmails": 1})
    );
    assert_eq!(r[3][1]["destroyed"], json!([c, p]), "{:?}", r[3]);
    assert_eq!(
        r[4][1]["list"][0]["mailboxIds"],
        json!({ roles["inbox"].as_str(): true }),
        "still in the inbox"
    );
    let list = imap(j.s.addr("imap"), "b LIST \"\" \"*\"\r\n").await;
    assert!(
        !list.contains("Heron") && !list.contains("Projects"),
        "{list}"
    );

    // Thread/changes: a reply updates the thread, a new message creates one.
    let state = j.api(
        &[CORE, MAIL],
        json!([["Thread/get", {"accountId": account, "ids": []}, "t"]]),
    )[0][1]["state"]
        .clone();
    j.deliver(&[
        "Subject: Re: hello there\r\nMessage-ID: <t2@remote.test>\r\nIn-Reply-To: <t1@remote.test>\r\n\r\nA lazy dog.\r\n".to_string(),
        "Subject: other\r\nMessage-ID: <o1@remote.test>\r\n\r\nThe quick fox again, quick!\r\n".to_string(),
    ])
    .await;
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Thread/changes", {"accountId": account, "sinceState": state}, "tc"],
            ["Email/get", {"accountId": account, "ids": [email], "properties": ["threadId"]}, "e"],
            ["Email/query", {"accountId": account, "filter": {"text": "quick"}}, "q"],
            ["SearchSnippet/get", {"accountId": account, "filter": {"text": "quick"},
                "#emailIds": {"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "s"],
            ["SearchSnippet/get", {"accountId": account, "filter": {"subject": "HELLO"}, "emailIds": [email, "E99999"]}, "s2"]
        ]),
    );
    let tc = &r[0][1];
    let first_thread = r[1][1]["list"][0]["threadId"].clone();
    assert_eq!(tc["updated"], json!([first_thread]), "{tc}");
    assert_eq!(tc["created"].as_array().unwrap().len(), 1, "{tc}");
    let snippets = r[3][1]["list"].as_array().unwrap();
    assert_eq!(snippets.len(), 2);
    for s in snippets {
        assert!(
            s["preview"]
                .as_str()
                .unwrap()
                .contains("<mark>quick</mark>"),
            "{s}"
        );
        assert_eq!(s["subject"], Value::Null, "quick is not in the subjects");
    }
    assert_eq!(r[4][1]["list"][0]["subject"], "<mark>hello</mark> there");
    assert_eq!(r[4][1]["list"][0]["preview"], Value::Null);
    assert_eq!(r[4][1]["notFound"], json!(["E99999"]));
}

/// RFC 8621 §4.9: Email/parse reads an uploaded message and, through
/// its part's blob id, the message attached to it; other blobs are not
/// parsable or not found.
#[tokio::test]
async fn email_parse_reads_uploads_and_attached_messages() {
    let j = server("");
    let account = j.account_id();
    let outer = "From: Ann <ann@remote.test>\r\nSubject: Fwd: the plan\r\nMessage-ID: <f1@remote.test>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: Bob <bob@remote.test>\r\nSubject: the plan\r\nDate: Mon, 2 Feb 2026 08:00:00 +0100\r\n\r\nStep one.\r\n--b--\r\n";
    let (_, up) = j.upload(&account, "message/rfc822", outer.as_bytes());
    let (_, pdf) = j.upload(&account, "application/pdf", b"%PDF-1.4 not mail");
    let blob = up["blobId"].as_str().unwrap();
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/parse", {"accountId": account, "blobIds": [blob, pdf["blobId"], "U999"],
                "fetchTextBodyValues": true}, "p"],
        ]),
    );
    let p = &r[0][1];
    let e = &p["parsed"][blob];
    assert_eq!(e["subject"], "Fwd: the plan", "{p}");
    assert_eq!(e["messageId"], json!(["f1@remote.test"]));
    assert_eq!(
        e["from"],
        json!([{"name": "Ann", "email": "ann@remote.test"}])
    );
    assert_eq!(e["hasAttachment"], true);
    assert_eq!(p["notParsable"], json!([pdf["blobId"]]));
    assert_eq!(p["notFound"], json!(["U999"]));
    let attached = e["attachments"][0]["blobId"].as_str().unwrap().to_string();
    assert!(attached.starts_with(&format!("{blob}-")), "{attached}");
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/parse", {"accountId": account, "blobIds": [attached],
            "properties": ["subject", "sentAt", "bodyValues", "textBody", "id", "size"], "fetchTextBodyValues": true}, "p"]]),
    );
    let inner = &r[0][1]["parsed"][&attached];
    assert_eq!(inner["subject"], "the plan", "{inner}");
    assert_eq!(inner["sentAt"], "2026-02-02T08:00:00+01:00");
    assert_eq!(inner["id"], Value::Null);
    let tid = inner["textBody"][0]["partId"].as_str().unwrap();
    // The CRLF before the boundary belongs to the boundary (RFC 2046 §5.1.1).
    assert_eq!(inner["bodyValues"][tid]["value"], "Step one.");
}

/// RFC 9425: Quota/get shows the directory's limits with the store's
/// usage (none while unlimited), /changes and /query.
#[tokio::test]
async fn quotas_show_limits_and_usage() {
    let j = server("");
    let account = j.account_id();
    const QUOTA: &str = "urn:ietf:params:jmap:quota";
    let r = j.api(
        &[CORE, QUOTA],
        json!([["Quota/get", {"accountId": account, "ids": null}, "g"]]),
    );
    assert_eq!(r[0][1]["list"], json!([]), "unlimited: no quota");
    j.s.cli_ok(&[
        "account",
        "update",
        "joe@example.org",
        "--quota",
        "100000",
        "--quota-messages",
        "10",
    ]);
    let before = j.api(
        &[CORE, QUOTA],
        json!([["Quota/get", {"accountId": account, "ids": null}, "g"]]),
    )[0][1]
        .clone();
    // Sorted by use: the delivery moves both; queryChanges splices to the
    // new order (RFC 8620 §5.6).
    let by_use = json!([{"property": "used", "isAscending": false}]);
    let old = j.api(
        &[CORE, QUOTA],
        json!([["Quota/query", {"accountId": account, "sort": by_use}, "q"]]),
    )[0][1]
        .clone();
    j.deliver(&["Subject: counted\r\n\r\nsome bytes\r\n".to_string()])
        .await;
    let r = j.api(
        &[CORE, QUOTA],
        json!([
            ["Quota/get", {"accountId": account, "ids": ["octets", "count", "nope"]}, "g"],
            ["Quota/changes", {"accountId": account, "sinceState": before["state"]}, "c"],
            ["Quota/query", {"accountId": account, "filter": {"resourceType": "count"}}, "q"]
        ]),
    );
    let list = r[0][1]["list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let octets = &list[0];
    assert_eq!(
        (
            octets["resourceType"].as_str(),
            octets["hardLimit"].as_u64(),
            octets["scope"].as_str()
        ),
        (Some("octets"), Some(100000), Some("account"))
    );
    assert!(octets["used"].as_u64().unwrap() > 10, "{octets}");
    assert_eq!(list[1]["used"], 1);
    assert_eq!(list[1]["types"], json!(["Mail"]));
    assert_eq!(r[0][1]["notFound"], json!(["nope"]));
    assert_eq!(r[1][1]["updated"], json!(["octets", "count"]), "{:?}", r[1]);
    assert_eq!(r[2][1]["ids"], json!(["count"]));
    let r = j.api(
        &[CORE, QUOTA],
        json!([
            ["Quota/queryChanges", {"accountId": account, "sort": by_use, "sinceQueryState": old["queryState"]}, "c"],
            ["Quota/query", {"accountId": account, "sort": by_use}, "q"],
            ["Quota/queryChanges", {"accountId": account, "sort": by_use, "sinceQueryState": "99999"}, "f"]
        ]),
    );
    assert_ne!(r[0][1]["newQueryState"], old["queryState"], "{r:?}");
    assert_eq!(splice(&ids(&old), &r[0][1]), ids(&r[1][1]), "{r:?}");
    assert_eq!(r[2][1]["type"], "cannotCalculateChanges");
    let same = j.api(
        &[CORE, QUOTA],
        json!([["Quota/queryChanges", {"accountId": account, "sinceQueryState": r[1][1]["queryState"]}, "c"]]),
    );
    assert_eq!(same[0][1]["removed"], json!([]), "{same:?}");
    // The same numbers IMAP GETQUOTAROOT shows.
    let q = imap(j.s.addr("imap"), "b GETQUOTAROOT INBOX\r\n").await;
    assert!(q.contains("MESSAGE 1 10"), "{q}");
}

/// RFC 8887 with two clients: Python `websockets` over TLS (wss) and
/// tokio-tungstenite on the plain listener (jmap.auth-without-tls):
/// the subprotocol is required; Requests get Responses with their
/// requestId, bad ones RequestErrors; WebSocketPushEnable brings
/// StateChanges with a pushState for an SMTP delivery, and an old
/// pushState brings what changed since at once.
#[tokio::test]
async fn websocket_requests_and_push() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let j = server("[jmap]\nauth-without-tls = true\n");
    let account = j.account_id();
    let session: Value = serde_json::from_str(
        &j.curl(
            &[
                "-u",
                "joe@example.org:pw",
                &format!("{}/jmap/session", j.base()),
            ],
            None,
        )
        .2,
    )
    .unwrap();
    let ws_cap = &session["capabilities"]["urn:ietf:params:jmap:websocket"];
    assert_eq!(ws_cap["supportsPush"], true);
    let url = ws_cap["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("wss://") && url.ends_with("/jmap/ws"),
        "{url}"
    );
    let state0 = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": account, "ids": []}, "s"]]),
    )[0][1]["state"]
        .clone();
    let auth = format!("Basic {}", base64_encode("joe@example.org:pw"));

    // Rust client on the plain listener.
    let plain = format!("ws://{}/jmap/ws", j.s.addr("http"));
    let mut req = plain.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", auth.parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req.clone()).await.is_err(),
        "no jmap subprotocol"
    );
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "jmap".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "jmap");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"@type": "Request", "id": "R1", "using": [CORE], "methodCalls": [["Core/echo", {"hello": true}, "c"]]}))).await.unwrap();
    let read = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| -> Value {
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), StreamExt::next(ws))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str::<Value>(t.as_str()).unwrap();
            }
        }
    };
    let r = read(&mut ws).await;
    assert_eq!(
        (r["@type"].as_str(), r["requestId"].as_str()),
        (Some("Response"), Some("R1")),
        "{r}"
    );
    assert_eq!(r["methodResponses"][0][1], json!({"hello": true}));
    ws.send(send(
        json!({"@type": "Request", "id": "R2", "using": ["urn:x"], "methodCalls": []}),
    ))
    .await
    .unwrap();
    let r = read(&mut ws).await;
    assert_eq!(
        (r["@type"].as_str(), r["requestId"].as_str()),
        (Some("RequestError"), Some("R2")),
        "{r}"
    );
    assert_eq!(r["type"], "urn:ietf:params:jmap:error:unknownCapability");
    ws.send(send(json!({"@type": "Bogus"}))).await.unwrap();
    assert_eq!(
        read(&mut ws).await["type"],
        "urn:ietf:params:jmap:error:notRequest"
    );
    ws.send(send(
        json!({"@type": "WebSocketPushEnable", "dataTypes": ["Email", "Mailbox"]}),
    ))
    .await
    .unwrap();
    j.deliver(&["Subject: pushed\r\n\r\nhi\r\n".to_string()])
        .await;
    let push = read(&mut ws).await;
    assert_eq!(push["@type"], "StateChange", "{push}");
    let changed = &push["changed"][&account];
    assert!(
        changed["Email"].is_string() && changed["Mailbox"].is_string(),
        "{push}"
    );
    assert!(
        changed.get("Thread").is_none(),
        "only the asked types: {push}"
    );
    let push_state = push["pushState"].clone();
    // §4.3.5.3: after WebSocketPushDisable, no more StateChanges: the
    // next message is the echo's Response, not the second delivery's push.
    ws.send(send(json!({"@type": "WebSocketPushDisable"})))
        .await
        .unwrap();
    j.deliver(&[
        "Subject: not pushed\r\n\r\nhi\r\n".to_string(),
        "Subject: pushed\r\n\r\nhi\r\n".to_string(),
    ])
    .await;
    ws.send(send(json!({"@type": "Request", "id": "R3", "using": [CORE], "methodCalls": [["Core/echo", {}, "c"]]}))).await.unwrap();
    assert_eq!(read(&mut ws).await["requestId"], "R3");
    // §4.3: a message in two frames is one message.
    {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        let body = json!({"@type": "Request", "id": "R4", "using": [CORE], "methodCalls": [["Core/echo", {"split": 1}, "c"]]}).to_string();
        let (a, b) = body.as_bytes().split_at(20);
        ws.send(Message::Frame(Frame::message(
            a.to_vec(),
            OpCode::Data(Data::Text),
            false,
        )))
        .await
        .unwrap();
        ws.send(Message::Frame(Frame::message(
            b.to_vec(),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await
        .unwrap();
    }
    assert_eq!(
        read(&mut ws).await["methodResponses"][0][1],
        json!({"split": 1})
    );
    // §4.3.1: a binary frame closes the connection with 1003.
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    match closed {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 1003),
        other => panic!("{other:?}"),
    }

    // Python websockets over TLS: an old pushState gets the change at
    // once; a Request on the same socket.
    let port = j.s.addr("https").port();
    let script = format!(
        "import asyncio, json, ssl, websockets\n\
         async def main():\n\
         \x20   ctx = ssl.create_default_context(cafile='{ca}')\n\
         \x20   async with websockets.connect('wss://127.0.0.1:{port}/jmap/ws', ssl=ctx, subprotocols=['jmap'], additional_headers={{'Authorization': '{auth}'}}) as ws:\n\
         \x20       await ws.send(json.dumps({{'@type': 'WebSocketPushEnable', 'dataTypes': None, 'pushState': '{old}'}}))\n\
         \x20       print('push', await ws.recv())\n\
         \x20       await ws.send(json.dumps({{'@type': 'Request', 'id': 'P1', 'using': ['{CORE}', '{MAIL}'], 'methodCalls': [['Email/query', {{'accountId': '{account}'}}, 'q']]}}))\n\
         \x20       print('response', await ws.recv())\n\
         asyncio.run(asyncio.wait_for(main(), 20))\n",
        ca = j.ca.display(),
        old = state0.as_str().unwrap(),
    );
    let stdout = j.python(&script);
    let line = |p: &str| -> Value {
        let l = stdout
            .lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{stdout}"));
        serde_json::from_str(&l[p.len() + 1..]).unwrap()
    };
    let p = line("push");
    let now = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": account, "ids": []}, "s"]]),
    )[0][1]["state"]
        .clone();
    assert_eq!(p["pushState"], now, "{p}");
    assert_ne!(push_state, now);
    assert!(
        p["changed"][&account]["EmailDelivery"].is_string(),
        "all types: {p}"
    );
    let r = line("response");
    assert_eq!(r["requestId"], "P1");
    assert_eq!(
        r["methodResponses"][0][1]["ids"].as_array().unwrap().len(),
        3,
        "{r}"
    );
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Bearer tokens: `petrel account token create` prints one that JMAP
/// takes (curl and jmapc's API-token login); a wrong one, a revoked one
/// and one of a disabled account are refused; `list` shows it without
/// the secret.
#[tokio::test]
async fn bearer_tokens_from_the_cli() {
    let j = server("");
    let token =
        j.s.cli_ok(&[
            "account",
            "token",
            "create",
            "joe@example.org",
            "--name",
            "laptop",
        ])
        .trim()
        .to_string();
    assert!(token.starts_with("ptk_"), "{token}");
    let session = |t: &str| {
        let (status, _, body) = j.curl(
            &[
                "-H",
                &format!("Authorization: Bearer {t}"),
                &format!("{}/jmap/session", j.base()),
            ],
            None,
        );
        (status, body)
    };
    let (status, body) = session(&token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"username\":\"joe@example.org\""), "{body}");
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(session(&forged).0, 401);
    assert_eq!(session("ptk_1_2_nonsense").0, 401);
    let list = j.s.cli_ok(&["account", "token", "list", "joe@example.org"]);
    assert!(
        list.contains("laptop") && !list.contains(&token[token.len() - 20..]),
        "{list}"
    );

    // jmapc with the token.
    let port = j.s.addr("https").port();
    let stdout = j.python(&format!(
        "from jmapc import Client\n\
             from jmapc.methods import MailboxGet\n\
             c = Client.create_with_api_token(host='127.0.0.1:{port}', api_token='{token}')\n\
             print('boxes', len(c.request(MailboxGet(ids=None)).data))\n"
    ));
    assert!(stdout.contains("boxes 6"), "{stdout}");

    j.s.cli_ok(&["account", "update", "joe@example.org", "--disabled"]);
    assert_eq!(session(&token).0, 401, "disabled account");
    j.s.cli_ok(&["account", "update", "joe@example.org", "--enabled"]);
    assert_eq!(session(&token).0, 200);
    let id = list.split_whitespace().next().unwrap();
    j.s.cli_ok(&["account", "token", "revoke", "joe@example.org", id]);
    assert_eq!(session(&token).0, 401, "revoked");
}

/// RFC 8620 §7.2: a push subscription gets its PushVerification over
/// HTTPS, nothing else until verified; a wrong code is refused; verified,
/// an SMTP delivery is pushed as a StateChange (JSON, TTL header); url is
/// never returned; another credential does not see it; private addresses
/// are refused by default.
#[tokio::test]
async fn push_subscriptions_verify_then_push() {
    let (j, addr, mut pushes, _pki) = server_with_push_receiver().await;
    let account = j.account_id();
    let url = format!("https://127.0.0.1:{}/push/joe", addr.port());
    let r = j.api(
        &[CORE],
        json!([["PushSubscription/set", {"create": {"p": {"deviceClientId": "dev-1", "url": url, "types": ["Email"]},
            "keyed": {"deviceClientId": "dev-2", "url": url, "keys": {"p256dh": "x", "auth": "y"}},
            "plain": {"deviceClientId": "dev-3", "url": "http://127.0.0.1/"}}}, "s"]]),
    );
    let made = &r[0][1]["created"]["p"];
    let id = made["id"].as_str().unwrap().to_string();
    assert!(made["expires"].is_string(), "{r:?}");
    assert_eq!(r[0][1]["notCreated"]["keyed"]["type"], "invalidProperties");
    assert_eq!(
        r[0][1]["notCreated"]["plain"]["type"], "invalidProperties",
        "https only"
    );
    // §8.6: creation is rate-limited.
    let again = j.api(&[CORE], json!([["PushSubscription/set", {"create": {"q": {"deviceClientId": "dev-4", "url": url}}}, "s"]]));
    assert_eq!(
        again[0][1]["notCreated"]["q"]["type"], "forbidden",
        "{again:?}"
    );
    let (head, v) = next_push(&mut pushes).await;
    assert!(head.starts_with("POST /push/joe "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/json") && lower.contains("\nttl: "),
        "{head}"
    );
    assert_eq!(
        (v["@type"].as_str(), v["pushSubscriptionId"].as_str()),
        (Some("PushVerification"), Some(id.as_str()))
    );
    let code = v["verificationCode"].as_str().unwrap().to_string();
    assert!(code.len() >= 32, "enough entropy: {code}");

    // Not verified: a delivery is not pushed.
    j.deliver(&["Subject: before\r\n\r\nx\r\n".to_string()])
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(pushes.try_recv().is_err(), "nothing before verification");
    let r = j.api(
        &[CORE],
        json!([
            ["PushSubscription/set", {"update": {id.as_str(): {"verificationCode": "wrong"}}}, "w"],
            ["PushSubscription/set", {"update": {id.as_str(): {"verificationCode": code}}}, "v"],
            ["PushSubscription/get", {"ids": null}, "g"],
            ["PushSubscription/get", {"ids": null, "properties": ["url"]}, "u"]
        ]),
    );
    assert_eq!(r[0][1]["notUpdated"][&id]["type"], "invalidProperties");
    assert_eq!(
        r[1][1]["updated"],
        json!({ id.as_str(): null }),
        "{:?}",
        r[1]
    );
    let got = &r[2][1]["list"][0];
    assert_eq!(got["deviceClientId"], "dev-1");
    assert_eq!(got["verificationCode"], code.as_str());
    assert!(
        got.get("url").is_none() && got.get("keys").is_none(),
        "{got}"
    );
    assert_eq!(r[3][1]["type"], "forbidden");

    j.deliver(&["Subject: pushed\r\n\r\nx\r\n".to_string()])
        .await;
    let (_, change) = next_push(&mut pushes).await;
    assert_eq!(change["@type"], "StateChange", "{change}");
    let types = change["changed"][&account].as_object().unwrap();
    assert_eq!(
        types.keys().collect::<Vec<_>>(),
        ["Email"],
        "only the asked types: {change}"
    );

    // Another credential (a token of the same account) sees none of it.
    let token =
        j.s.cli_ok(&["account", "token", "create", "joe@example.org"])
            .trim()
            .to_string();
    let (_, _, body) = j.curl(
        &["-H", &format!("Authorization: Bearer {token}"), &format!("{}/jmap/api", j.base())],
        Some(&json!({"using": [CORE], "methodCalls": [["PushSubscription/get", {"ids": null}, "g"]]}).to_string()),
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["methodResponses"][0][1]["list"], json!([]), "{v}");

    // By default a private address is refused.
    let strict = server("");
    let r = strict.api(&[CORE], json!([["PushSubscription/set", {"create": {"p": {"deviceClientId": "d", "url": url}}}, "s"]]));
    assert_eq!(
        r[0][1]["notCreated"]["p"]["type"], "invalidProperties",
        "{r:?}"
    );
    let r = j.api(
        &[CORE],
        json!([["PushSubscription/set", {"destroy": [id]}, "d"]]),
    );
    assert_eq!(r[0][1]["destroyed"], json!([id]));
}

/// RFC 8620 §7.2 `keys`: with a P-256 key and an auth secret, every push
/// (the PushVerification first) is encrypted as RFC 8291 says, in the
/// aes128gcm coding (RFC 8188); Mozilla's `http_ece` (Python) decrypts
/// it with the client's private key. Keys that are no P-256 point are
/// refused.
#[tokio::test]
async fn encrypted_pushes_decrypt_with_http_ece() {
    let (j, addr, mut pushes, _pki) = server_with_push_receiver().await;
    let account = j.account_id();
    let url = format!("https://127.0.0.1:{}/push/enc", addr.port());
    let made = j.python(
        "from cryptography.hazmat.primitives.asymmetric import ec\n\
         from cryptography.hazmat.primitives import serialization\n\
         import base64, os\n\
         k = ec.generate_private_key(ec.SECP256R1())\n\
         pub = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)\n\
         b = lambda x: base64.urlsafe_b64encode(x).decode().rstrip('=')\n\
         print(format(k.private_numbers().private_value, 'x'), b(pub), b(os.urandom(16)))\n",
    );
    let parts: Vec<&str> = made.split_whitespace().collect();
    let (private, p256dh, auth) = (parts[0], parts[1], parts[2]);
    let decrypt = |v: &Value| -> Value {
        let raw = v["raw"]
            .as_str()
            .unwrap_or_else(|| panic!("not encrypted: {v}"));
        let out = j.python(&format!(
            "import base64, http_ece\n\
             from cryptography.hazmat.primitives.asymmetric import ec\n\
             k = ec.derive_private_key(int('{private}', 16), ec.SECP256R1())\n\
             auth = base64.urlsafe_b64decode('{auth}' + '==')\n\
             print(http_ece.decrypt(base64.b64decode('{raw}'), private_key=k, auth_secret=auth, version='aes128gcm').decode())\n"
        ));
        serde_json::from_str(out.trim()).unwrap()
    };
    let mut off_curve = vec![4u8];
    off_curve.extend([1u8; 64]);
    use base64::Engine;
    let off_curve = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(off_curve);
    let r = j.api(
        &[CORE],
        json!([["PushSubscription/set", {"create": {
            "e": {"deviceClientId": "enc", "url": url, "keys": {"p256dh": p256dh, "auth": auth}},
            "bad": {"deviceClientId": "bad", "url": url, "keys": {"p256dh": off_curve, "auth": auth}}}}, "s"]]),
    );
    let id = r[0][1]["created"]["e"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        r[0][1]["notCreated"]["bad"]["type"], "invalidProperties",
        "{r:?}"
    );
    let (head, v) = next_push(&mut pushes).await;
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-encoding: aes128gcm")
            && lower.contains("content-type: application/json")
            && lower.contains("\nttl: "),
        "{head}"
    );
    let verification = decrypt(&v);
    assert_eq!(verification["@type"], "PushVerification", "{verification}");
    assert_eq!(verification["pushSubscriptionId"], id.as_str());
    let code = verification["verificationCode"].as_str().unwrap();
    let r = j.api(
        &[CORE],
        json!([["PushSubscription/set", {"update": {id.as_str(): {"verificationCode": code}}}, "v"]]),
    );
    assert_eq!(r[0][1]["updated"], json!({ id.as_str(): null }), "{r:?}");
    j.deliver(&["Subject: sealed\r\n\r\nx\r\n".to_string()])
        .await;
    let (_, v) = next_push(&mut pushes).await;
    let change = decrypt(&v);
    assert_eq!(change["@type"], "StateChange", "{change}");
    assert!(change["changed"][&account]["Email"].is_string(), "{change}");
}

/// RFC 9404: Blob/upload from text, base64 and a range of another blob;
/// Blob/get as text or base64, ranges, sizes and digests; Blob/lookup
/// finds the Email, Thread and Mailbox of a message's blob.
#[tokio::test]
async fn blob_methods() {
    let j = server("");
    let account = j.account_id();
    const BLOB: &str = "urn:ietf:params:jmap:blob";
    j.deliver(&["Subject: looked up\r\n\r\nbody\r\n".to_string()])
        .await;
    let r = j.api(
        &[CORE, MAIL, BLOB],
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": ["blobId", "threadId", "mailboxIds"]}, "g"],
            ["Blob/upload", {"accountId": account, "create": {
                "b": {"data": [{"data:asText": "Hello, "}, {"data:asBase64": "d29ybGQ="}], "type": "text/plain"},
                "c": {"data": [{"blobId": "#b", "offset": 7, "length": 5}, {"data:asText": "!"}]},
                "bad": {"data": [{"blobId": "#b", "offset": 100}]},
                "gone": {"data": [{"blobId": "U9999"}]}
            }}, "u"],
            ["Blob/get", {"accountId": account, "ids": ["#b", "#c", "U9999"], "properties": ["data:asText", "size", "digest:sha-256"]}, "g1"],
            ["Blob/get", {"accountId": account, "ids": ["#b"], "properties": ["data:asBase64"], "offset": 7, "length": 10}, "g2"]
        ]),
    );
    let e = &r[1][1]["list"][0];
    let up = &r[2][1];
    assert_eq!(up["created"]["b"]["size"], 12, "{up}");
    assert_eq!(up["notCreated"]["bad"]["type"], "invalidProperties");
    assert_eq!(up["notCreated"]["gone"]["type"], "blobNotFound");
    let got = r[3][1]["list"].as_array().unwrap();
    assert_eq!(got[0]["data:asText"], "Hello, world");
    assert_eq!(got[0]["size"], 12);
    // sha-256("Hello, world") in base64, as Python's hashlib gives it.
    assert_eq!(
        got[0]["digest:sha-256"],
        "SufDtqwL7/Zx76jPVzhhUcBuWMpTp42D82EHMWzsEl8="
    );
    assert_eq!(got[1]["data:asText"], "world!");
    assert_eq!(r[3][1]["notFound"], json!(["U9999"]));
    let part = &r[4][1]["list"][0];
    assert_eq!(part["data:asBase64"], "d29ybGQ=", "{part}");
    assert_eq!(part["isTruncated"], true, "7+10 goes past 12");

    let r = j.api(
        &[CORE, MAIL, BLOB],
        json!([["Blob/lookup", {"accountId": account, "typeNames": ["Email", "Thread", "Mailbox"], "ids": [e["blobId"], "B424242"]}, "l"],
               ["Blob/lookup", {"accountId": account, "typeNames": ["Calendar"], "ids": []}, "x"]]),
    );
    let m = &r[0][1]["list"][0]["matchedIds"];
    assert_eq!(m["Email"], json!([e["id"]]));
    assert_eq!(m["Thread"], json!([e["threadId"]]));
    assert_eq!(m["Mailbox"].as_array().unwrap().len(), 1);
    assert_eq!(r[0][1]["notFound"], json!(["B424242"]));
    assert_eq!(r[1][1]["type"], "unknownDataType");
}

/// RFC 8620 §6: uploads have their own quota (`jmap.upload-quota`,
/// apart from the mail quota); an upload that would pass it deletes the
/// oldest uploads first until it fits, through the endpoint and
/// Blob/upload alike. §6.1: the upload itself succeeds.
#[tokio::test]
async fn upload_quota_drops_the_oldest_uploads() {
    let j = server("[jmap]\nmax-size-upload = 1000\nupload-quota = 2500\n");
    let account = j.account_id();
    let mut blobs = Vec::new();
    for i in 0..3 {
        let (status, up) = j.upload(&account, "text/plain", &vec![b'a' + i; 1000]);
        assert_eq!(status, 201, "{up}");
        blobs.push(up["blobId"].as_str().unwrap().to_string());
    }
    let fetch = |b: &str| {
        let url = format!("{}/jmap/download/{account}/{b}/x.txt", j.base());
        j.curl(&["-u", "joe@example.org:pw", &url], None).0
    };
    assert_eq!(fetch(&blobs[0]), 404, "the oldest made room");
    assert_eq!(fetch(&blobs[1]), 200);
    assert_eq!(fetch(&blobs[2]), 200);
    let r = j.api(
        &[CORE, "urn:ietf:params:jmap:blob"],
        json!([["Blob/upload", {"accountId": account, "create": {"n": {"data": [{"data:asText": "x".repeat(900)}]}}}, "u"]]),
    );
    assert_eq!(r[0][1]["created"]["n"]["size"], 900, "{r:?}");
    assert_eq!(
        fetch(&blobs[1]),
        404,
        "2000 + 900 > 2500: the next oldest went"
    );
    assert_eq!(fetch(&blobs[2]), 200);
}
