//! /changes and /queryChanges (RFC 8620 §5.2, §5.6; RFC 8621 §2.4,
//! §3.2, §4.5, §6.2, §7.2) against a running Petrel. Thread/changes
//! through destructions; Identity/changes and EmailSubmission/changes
//! from their own log. For queries: random IMAP appends, flag changes, expunges and JMAP
//! keyword changes, moves and destructions; after each round, every query
//! brought up to date from its old query states (the previous round's and
//! the first one's) by splicing `removed` out and `added` in must give
//! what Email/query gives now. Mailbox queries likewise through creation,
//! renames, subscriptions and destruction. Python's jmapc reads an
//! Email/queryChanges answer as a second client.

mod common;

use common::jmap::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// One APPEND of a message to `mailbox` received at minute `n`; a reply
/// to message `parent` joins its Thread; `attach` adds an attachment.
fn append(mailbox: &str, n: u32, parent: Option<u32>, attach: bool) -> String {
    let reply = parent
        .map(|p| format!("In-Reply-To: <m{p}@remote.test>\r\nReferences: <m{p}@remote.test>\r\n"))
        .unwrap_or_default();
    let subject = match parent {
        Some(p) => format!("Re: topic {p}"),
        None => format!("topic {n}"),
    };
    let body = if attach {
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n".to_string()
    } else {
        format!(
            "\r\nword{} text of {n} {}\r\n",
            n % 3,
            "x".repeat(n as usize % 40)
        )
    };
    let msg = format!(
        "From: ann{}@remote.test\r\nTo: joe@example.org\r\nSubject: {subject}\r\nMessage-ID: <m{n}@remote.test>\r\n{reply}Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n{body}",
        n % 4
    );
    format!(
        "ap{n} APPEND {mailbox} \"27-Nov-2026 {:02}:{:02}:00 +0000\" {{{}+}}\r\n{msg}\r\n",
        n / 60 % 24,
        n % 60,
        msg.len()
    )
}

/// The Email queries followed: the mail list's fast path, plain sorts,
/// keyword and thread conditions, collapsed threads, attachments, text.
fn email_queries(inbox: &str, archive: &str) -> Vec<Value> {
    vec![
        json!({"filter": {"inMailbox": inbox}}),
        json!({"sort": [{"property": "receivedAt"}]}),
        json!({"filter": {"hasKeyword": "$flagged"}, "sort": [{"property": "subject"}, {"property": "size", "isAscending": false}]}),
        json!({"filter": {"inMailbox": inbox}, "collapseThreads": true}),
        json!({"filter": {"someInThreadHaveKeyword": "$flagged"}}),
        json!({"filter": {"noneInThreadHaveKeyword": "$seen"}, "sort": [{"property": "allInThreadHaveKeyword", "keyword": "$answered"}, {"property": "receivedAt"}]}),
        json!({"filter": {"hasAttachment": true}, "sort": [{"property": "from"}]}),
        json!({"filter": {"operator": "NOT", "conditions": [{"inMailbox": archive}]}, "sort": [{"property": "size", "isAscending": false}]}),
        json!({"filter": {"text": "word1"}, "collapseThreads": true, "sort": [{"property": "hasKeyword", "keyword": "$seen"}]}),
    ]
}

/// (queryState, ids) of every query of `method` (Email/query,
/// Mailbox/query), in one request.
fn run_queries(
    j: &Jmap,
    method: &str,
    account: &str,
    queries: &[Value],
) -> Vec<(String, Vec<String>)> {
    let calls: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut args = q.clone();
            args["accountId"] = json!(account);
            json!([method, args, i.to_string()])
        })
        .collect();
    j.api(&[CORE, MAIL], json!(calls))
        .iter()
        .map(|r| {
            assert_eq!(r[1]["canCalculateChanges"], json!(true), "{r}");
            (r[1]["queryState"].as_str().unwrap().to_string(), ids(&r[1]))
        })
        .collect()
}

fn run_changes(
    j: &Jmap,
    method: &str,
    account: &str,
    queries: &[Value],
    since: &[(String, Vec<String>)],
) -> Vec<Value> {
    let calls: Vec<Value> = queries
        .iter()
        .zip(since)
        .enumerate()
        .map(|(i, (q, (state, _)))| {
            let mut args = q.clone();
            args["accountId"] = json!(account);
            args["sinceQueryState"] = json!(state);
            args["calculateTotal"] = json!(true);
            json!([method, args, i.to_string()])
        })
        .collect();
    j.api(&[CORE, MAIL], json!(calls))
        .into_iter()
        .map(|r| {
            assert_eq!(r[0], method, "{r}");
            r[1].clone()
        })
        .collect()
}

/// RFC 8620 §5.6: from any old query state, the changes splice the old
/// results into the current ones, whatever IMAP and JMAP did between.
#[tokio::test]
async fn email_query_changes_replay_to_the_current_results() {
    let seed: u64 = std::env::var("PETREL_QUERY_CHANGES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8620);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let j = server("");
    let account = j.account_id();
    let imap_addr = j.s.addr("imap");
    let first: String = (0..12)
        .map(|n| append("INBOX", n, (n % 4 == 3).then(|| n - 1), n % 5 == 0))
        .collect();
    imap(imap_addr, &first).await;
    let roles = j.roles(&account);
    let (inbox, archive) = (roles["inbox"].clone(), roles["archive"].clone());
    let queries = email_queries(&inbox, &archive);
    let start = run_queries(&j, "Email/query", &account, &queries);
    let mut previous = start.clone();
    let mut next_n = 12;
    for round in 0..6 {
        // IMAP: new messages (some replies), flags, and an expunge.
        let mut cmds = String::new();
        for _ in 0..rng.gen_range(1..4) {
            let parent = rng.gen_bool(0.5).then(|| rng.gen_range(0..next_n));
            cmds.push_str(&append("INBOX", next_n, parent, rng.gen_bool(0.3)));
            next_n += 1;
        }
        cmds.push_str("s SELECT INBOX\r\n");
        for i in 0..rng.gen_range(1..4) {
            let flag = ["\\Flagged", "\\Seen", "\\Answered", "\\Deleted"][rng.gen_range(0..4)];
            let sign = if rng.gen_bool(0.7) { '+' } else { '-' };
            let seq = rng.gen_range(1..6);
            cmds.push_str(&format!("f{i} STORE {seq} {sign}FLAGS ({flag})\r\n"));
        }
        if rng.gen_bool(0.3) {
            cmds.push_str("x EXPUNGE\r\n");
        }
        imap(imap_addr, &cmds).await;
        // JMAP: keywords, moves and a destruction.
        let all = ids(&j.api(
            &[CORE, MAIL],
            json!([["Email/query", {"accountId": account}, "0"]]),
        )[0][1]);
        let mut update = serde_json::Map::new();
        for _ in 0..rng.gen_range(1..4) {
            let e = &all[rng.gen_range(0..all.len())];
            let patch = match rng.gen_range(0..3) {
                0 => {
                    json!({"keywords/$flagged": if rng.gen_bool(0.5) { json!(true) } else { Value::Null }})
                }
                1 => json!({"keywords/$seen": true}),
                _ => {
                    json!({"mailboxIds": {(if rng.gen_bool(0.5) { &archive } else { &inbox }): true}})
                }
            };
            update.insert(e.clone(), patch);
        }
        let destroy: Vec<&String> = if rng.gen_bool(0.4) {
            vec![&all[rng.gen_range(0..all.len())]]
        } else {
            vec![]
        };
        let destroy: Vec<&String> = destroy
            .into_iter()
            .filter(|d| !update.contains_key(d.as_str()))
            .collect();
        let r = j.api(
            &[CORE, MAIL],
            json!([["Email/set", {"accountId": account, "update": update, "destroy": destroy}, "0"]]),
        );
        assert_eq!(r[0][0], "Email/set", "{r:?}");

        let now = run_queries(&j, "Email/query", &account, &queries);
        for since in [&previous, &start] {
            let answers = run_changes(&j, "Email/queryChanges", &account, &queries, since);
            for (i, a) in answers.iter().enumerate() {
                assert_eq!(a["oldQueryState"], json!(since[i].0), "{a}");
                assert_eq!(a["newQueryState"], json!(now[i].0), "{a}");
                assert_eq!(
                    splice(&since[i].1, a),
                    now[i].1,
                    "seed {seed}, round {round}, query {}: {a}",
                    queries[i]
                );
                assert_eq!(a["total"], json!(now[i].1.len()), "{a}");
            }
        }
        previous = now;
    }
}

/// §5.6: errors and arguments: an unknown or future state, tooManyChanges
/// (each removed or added id is one change), total only when asked,
/// upToId on a query only on immutable properties, and jmapc reading an
/// answer.
#[tokio::test]
async fn email_query_changes_arguments_and_errors() {
    let j = server("");
    let account = j.account_id();
    let imap_addr = j.s.addr("imap");
    imap(
        imap_addr,
        &(0..4)
            .map(|n| append("INBOX", n, None, false))
            .collect::<String>(),
    )
    .await;
    let q = |extra: Value| {
        let mut args = json!({"accountId": account, "sort": [{"property": "receivedAt"}]});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        j.api(&[CORE, MAIL], json!([["Email/query", args, "0"]]))[0][1].clone()
    };
    let qc = |extra: Value| {
        let mut args = json!({"accountId": account, "sort": [{"property": "receivedAt"}]});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        j.api(&[CORE, MAIL], json!([["Email/queryChanges", args, "0"]]))[0].clone()
    };
    let before = q(json!({}));
    let state = before["queryState"].as_str().unwrap().to_string();
    let old = ids(&before);
    // No change: nothing to splice, and no total unless asked.
    let r = qc(json!({"sinceQueryState": state}));
    assert_eq!(r[0], "Email/queryChanges", "{r}");
    assert_eq!(
        (r[1]["removed"].clone(), r[1]["added"].clone()),
        (json!([]), json!([]))
    );
    assert!(r[1].get("total").is_none(), "{r}");
    for bad in ["x", "999999", "3-abc"] {
        assert_eq!(
            qc(json!({"sinceQueryState": bad}))[1]["type"],
            "cannotCalculateChanges"
        );
    }
    assert_eq!(qc(json!({}))[1]["type"], "invalidArguments");
    // Two new messages at the end, one flagged (a mutable property).
    imap(
        imap_addr,
        &format!(
            "{}{}s SELECT INBOX\r\nf STORE 1 +FLAGS (\\Flagged)\r\n",
            append("INBOX", 10, None, false),
            append("INBOX", 11, None, false)
        ),
    )
    .await;
    let r = qc(json!({"sinceQueryState": state, "maxChanges": 2}));
    assert_eq!(r[1]["type"], "tooManyChanges", "{r}");
    let r = qc(json!({"sinceQueryState": state, "maxChanges": 4}));
    let now = ids(&q(json!({})));
    assert_eq!(r[1]["removed"], json!([old[0]]), "{r}");
    assert_eq!(splice(&old, &r[1]), now);
    // upToId: a query on immutable properties leaves out additions past
    // the client's last id; one on keywords ignores it.
    let r = qc(json!({"sinceQueryState": state, "upToId": old[2]}));
    assert_eq!(r[1]["added"], json!([{"id": old[0], "index": 0}]), "{r}");
    let flagged = json!({"filter": {"notKeyword": "$seen"}});
    let fq = q(flagged.clone());
    imap(imap_addr, &append("INBOX", 12, None, false)).await;
    let mut args = flagged.clone();
    args["sinceQueryState"] = fq["queryState"].clone();
    args["upToId"] = json!(old[0]);
    let r = qc(args);
    assert_eq!(r[1]["added"].as_array().unwrap().len(), 1, "{r}");

    // jmapc (a second client) parses an answer.
    let port = j.s.addr("https").port();
    let state = q(json!({}))["queryState"].as_str().unwrap().to_string();
    imap(imap_addr, &append("INBOX", 13, None, true)).await;
    let out = j.python(&format!(
        "from jmapc import Client, Comparator\n\
         from jmapc.methods import EmailQueryChanges\n\
         c = Client.create_with_password(host='127.0.0.1:{port}', user='joe@example.org', password='pw')\n\
         r = c.request(EmailQueryChanges(sort=[Comparator(property='receivedAt')], since_query_state='{state}', calculate_total=True))\n\
         print(r.old_query_state, r.new_query_state, r.total, len(r.removed), [(a.id, a.index) for a in r.added])\n"
    ));
    let last = ids(&q(json!({}))).last().unwrap().clone();
    assert!(
        out.trim().ends_with(&format!("8 0 [('{last}', 7)]")),
        "{out}"
    );
    assert!(out.starts_with(&format!("{state} ")), "{out}");
}

fn mailbox_queries() -> Vec<Value> {
    vec![
        json!({"sort": [{"property": "name"}]}),
        json!({"filter": {"parentId": null}, "sort": [{"property": "name", "isAscending": false}]}),
        json!({"filter": {"isSubscribed": true}, "sort": [{"property": "sortOrder"}, {"property": "name"}]}),
        json!({"filter": {"name": "o"}, "sort": [{"property": "parentId"}, {"property": "name"}]}),
    ]
}

/// RFC 8621 §2.4 (Mailbox/queryChanges as §5.6 says): through creation,
/// an IMAP RENAME that moves a whole subtree, a JMAP rename, a change of
/// parent, subscriptions over IMAP and JMAP, and destruction.
#[tokio::test]
async fn mailbox_query_changes_follow_renames_and_parents() {
    let j = server("");
    let account = j.account_id();
    let imap_addr = j.s.addr("imap");
    let queries = mailbox_queries();
    let start = run_queries(&j, "Mailbox/query", &account, &queries);
    let mut previous = start.clone();
    let set = |args: Value| {
        let mut args = args;
        args["accountId"] = json!(account);
        let r = j.api(&[CORE, MAIL], json!([["Mailbox/set", args, "0"]]));
        assert!(
            r[0][1]["notCreated"].is_null()
                && r[0][1]["notUpdated"].is_null()
                && r[0][1]["notDestroyed"].is_null(),
            "{r:?}"
        );
        r[0][1].clone()
    };
    let check = |round: &str, previous: &mut Vec<(String, Vec<String>)>| {
        let now = run_queries(&j, "Mailbox/query", &account, &queries);
        for since in [&*previous, &start] {
            let answers = run_changes(&j, "Mailbox/queryChanges", &account, &queries, since);
            for (i, a) in answers.iter().enumerate() {
                assert_eq!(a["newQueryState"], json!(now[i].0), "{a}");
                assert_eq!(
                    splice(&since[i].1, a),
                    now[i].1,
                    "{round}, query {}: {a}",
                    queries[i]
                );
            }
        }
        *previous = now;
    };
    let made = set(json!({"create": {
        "p": {"name": "Projects", "isSubscribed": true},
        "a": {"name": "Zoo", "parentId": "#p"},
        "b": {"name": "Alpha", "parentId": "#p", "isSubscribed": true},
        "t": {"name": "Todo"}
    }}));
    let id = |k: &str| made["created"][k]["id"].as_str().unwrap().to_string();
    check("created", &mut previous);
    imap(
        imap_addr,
        "r RENAME Projects Work\r\nu SUBSCRIBE Work/Zoo\r\n",
    )
    .await;
    check("IMAP rename of a parent", &mut previous);
    set(
        json!({"update": {id("t"): {"name": "Done", "isSubscribed": true}, id("a"): {"parentId": null}}}),
    );
    check("JMAP rename and a new parent", &mut previous);
    set(json!({"update": {id("b"): {"parentId": id("t"), "sortOrder": 3}}}));
    set(json!({"destroy": [id("p")]}));
    check("destroyed a parent", &mut previous);
    let before = previous[0].0.clone();
    imap(imap_addr, "c CREATE Done/Old\r\nd UNSUBSCRIBE Done\r\n").await;
    check("IMAP create and unsubscribe", &mut previous);
    // RFC 8621 §2: isSubscribed is a Mailbox property; an IMAP
    // UNSUBSCRIBE is a change of it (was not logged before).
    let r = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/changes", {"accountId": account, "sinceState": before}, "0"]]),
    );
    assert_eq!(r[0][1]["updated"], json!([id("t")]), "{r:?}");
    assert_eq!(r[0][1]["updatedProperties"], Value::Null, "{r:?}");
}

/// §5.6 in a shared account (RFC 8620 §1.6.2): changes of the owner
/// replay for the grantee; a grant that changed what it sees makes its
/// old query states unusable (cannotCalculateChanges), with no record in
/// the owner's log.
#[tokio::test]
async fn shared_query_changes_end_when_grants_change() {
    let j = server("");
    j.s.account("bob@example.org");
    let imap_addr = j.s.addr("imap");
    let msgs: String = (0..3).map(|n| append("INBOX", n, None, false)).collect();
    imap(
        imap_addr,
        &format!("{msgs}c CREATE Team\r\ng SETACL INBOX bob@example.org lr\r\n"),
    )
    .await;
    let joe = j.account_id();
    let q = json!({"accountId": joe, "sort": [{"property": "receivedAt"}]});
    let bob = |calls: Value| j.api_as("bob@example.org", &[CORE, MAIL], calls);
    let first = bob(json!([["Email/query", q, "0"]]))[0][1].clone();
    let state = first["queryState"].as_str().unwrap().to_string();
    assert!(state.contains('-'), "{first}");
    imap(
        imap_addr,
        "s SELECT INBOX\r\nf STORE 2 +FLAGS (\\Deleted)\r\n",
    )
    .await;
    let mut qc = q.clone();
    qc["sinceQueryState"] = json!(state);
    let r = bob(json!([["Email/queryChanges", qc, "0"]]));
    let now = ids(&bob(json!([["Email/query", q, "0"]]))[0][1]);
    assert_eq!(now.len(), 2);
    assert_eq!(splice(&ids(&first), &r[0][1]), now, "{r:?}");
    imap(imap_addr, "g SETACL Team bob@example.org lr\r\n").await;
    let r = bob(json!([["Email/queryChanges", qc, "0"]]));
    assert_eq!(r[0][1]["type"], "cannotCalculateChanges", "{r:?}");
}

fn thread_of(j: &Jmap, account: &str, email: &str) -> String {
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": account, "ids": [email], "properties": ["threadId"]}, "0"]]),
    );
    r[0][1]["list"][0]["threadId"].as_str().unwrap().to_string()
}

/// RFC 8621 §3.2 (Thread/changes as RFC 8620 §5.2 says): a Thread that
/// lost some of its Emails is updated, one that lost all is destroyed
/// (by JMAP destroy or IMAP EXPUNGE), one made and emptied since the
/// state is not named at all.
#[tokio::test]
async fn thread_changes_across_destructions() {
    let j = server("");
    let account = j.account_id();
    let imap_addr = j.s.addr("imap");
    // m1 + its reply m2 (one Thread), m3 and m4 alone.
    let msgs: String = [(1, None), (2, Some(1)), (3, None), (4, None)]
        .iter()
        .map(|(n, p)| append("INBOX", *n, *p, false))
        .collect();
    imap(imap_addr, &msgs).await;
    let all = ids(&j.api(
        &[CORE, MAIL],
        json!([["Email/query", {"accountId": account, "sort": [{"property": "receivedAt"}]}, "0"]]),
    )[0][1]);
    let (m1, m2, m3) = (&all[0], &all[1], &all[2]);
    let (t1, t3, t4) = (
        thread_of(&j, &account, m1),
        thread_of(&j, &account, m3),
        thread_of(&j, &account, &all[3]),
    );
    assert_eq!(thread_of(&j, &account, m2), t1);
    let state = |j: &Jmap| {
        j.api(
            &[CORE, MAIL],
            json!([["Thread/get", {"accountId": account, "ids": []}, "0"]]),
        )[0][1]["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let s0 = state(&j);
    // A new message, destroyed again before anyone asks.
    imap(imap_addr, &append("INBOX", 5, None, false)).await;
    let m5 = ids(&j.api(
        &[CORE, MAIL],
        json!([["Email/query", {"accountId": account, "filter": {"text": "topic 5"}}, "0"]]),
    )[0][1]);
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/set", {"accountId": account, "destroy": [m2, m3, m5[0]]}, "0"]]),
    );
    assert_eq!(r[0][1]["destroyed"].as_array().unwrap().len(), 3, "{r:?}");
    let s1 = state(&j);
    // m4 by IMAP: \Deleted and EXPUNGE (it is the third message left).
    let out = imap(
        imap_addr,
        "s SELECT INBOX\r\nf STORE 2 +FLAGS (\\Deleted)\r\nx EXPUNGE\r\n",
    )
    .await;
    assert!(out.contains("* 2 EXPUNGE"), "{out}");
    let changes = |since: &str| {
        j.api(
            &[CORE, MAIL],
            json!([["Thread/changes", {"accountId": account, "sinceState": since}, "0"]]),
        )[0][1]
            .clone()
    };
    let c = changes(&s0);
    assert_eq!(c["created"], json!([]), "{c}");
    assert_eq!(c["updated"], json!([t1]), "{c}");
    let mut gone = vec![t3.clone(), t4.clone()];
    gone.sort();
    assert_eq!(c["destroyed"], json!(gone), "{c}");
    let c = changes(&s1);
    assert_eq!(
        (c["updated"].clone(), c["destroyed"].clone()),
        (json!([]), json!([t4])),
        "{c}"
    );
    let r = j.api(
        &[CORE, MAIL],
        json!([["Thread/get", {"accountId": account, "ids": [t1, t3]}, "0"]]),
    );
    assert_eq!(r[0][1]["list"][0]["emailIds"], json!([m1]), "{r:?}");
    assert_eq!(r[0][1]["notFound"], json!([t3]), "{r:?}");
}

/// RFC 8620 §5.2 for Identity (RFC 8621 §6) and EmailSubmission (§7):
/// created, updated and destroyed from any earlier state, an object made
/// and destroyed since not named, maxChanges splitting the way with
/// hasMoreChanges, and an unknown state refused.
#[tokio::test]
async fn identity_and_submission_changes() {
    const SUB: &str = "urn:ietf:params:jmap:submission";
    let j = server("[jmap]\nmax-delayed-send = 3600\n");
    j.s.account("bob@example.org");
    let account = j.account_id();
    let roles = j.roles(&account);
    let api = |calls: Value| j.api(&[CORE, MAIL, SUB], calls);
    let changes = |kind: &str, since: &str, max: Option<u64>| {
        let mut args = json!({"accountId": account, "sinceState": since});
        if let Some(m) = max {
            args["maxChanges"] = json!(m);
        }
        api(json!([[format!("{kind}/changes"), args, "0"]]))[0][1].clone()
    };
    let list = |v: &Value, k: &str| -> Vec<String> {
        let mut l: Vec<String> = v[k]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        l.sort();
        l
    };
    let r = api(json!([["Identity/get", {"accountId": account}, "0"]]));
    let own = r[0][1]["list"][0]["id"].as_str().unwrap().to_string();
    let i0 = r[0][1]["state"].as_str().unwrap().to_string();
    let r = api(json!([["Identity/set", {"accountId": account, "create": {
        "a": {"email": "joe@example.org", "name": "Joe at work"},
        "b": {"email": "joe@example.org", "name": "Joe, briefly"}}}, "0"]]));
    let (a, b) = (
        r[0][1]["created"]["a"]["id"].as_str().unwrap().to_string(),
        r[0][1]["created"]["b"]["id"].as_str().unwrap().to_string(),
    );
    let i1 = r[0][1]["newState"].as_str().unwrap().to_string();
    let r = api(json!([["Identity/set", {"accountId": account,
        "update": {a.as_str(): {"name": "Joe J."}, own.as_str(): {"textSignature": "-- Joe"}},
        "destroy": [b]}, "0"]]));
    assert!(r[0][1]["notUpdated"].is_null(), "{r:?}");
    let c = changes("Identity", &i0, None);
    assert_eq!(list(&c, "created"), vec![a.clone()], "{c}");
    assert_eq!(list(&c, "updated"), vec![own.clone()], "{c}");
    assert_eq!(list(&c, "destroyed"), Vec::<String>::new(), "{c}");
    assert_eq!(c["hasMoreChanges"], json!(false));
    let c = changes("Identity", &i1, None);
    let mut both = vec![a.clone(), own.clone()];
    both.sort();
    assert_eq!(list(&c, "updated"), both, "{c}");
    assert_eq!(list(&c, "destroyed"), vec![b.clone()], "{c}");
    // maxChanges 1: one object at a time, through intermediate states.
    let mut since = i0.clone();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let c = changes("Identity", &since, Some(1));
        let n = ["created", "updated", "destroyed"]
            .iter()
            .map(|k| list(&c, k).len())
            .sum::<usize>();
        assert!(n <= 1, "{c}");
        seen.extend(
            ["created", "updated", "destroyed"]
                .iter()
                .flat_map(|k| list(&c, k)),
        );
        since = c["newState"].as_str().unwrap().to_string();
        if c["hasMoreChanges"] == json!(false) {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    // Walked one state at a time, b shows up made, then destroyed.
    let mut want = vec![a.clone(), b.clone(), own.clone()];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(
        changes("Identity", "x", None)["type"],
        "cannotCalculateChanges"
    );
    assert_eq!(
        changes("Identity", "99999", None)["type"],
        "cannotCalculateChanges"
    );

    // A held submission: made, cancelled (an update), destroyed.
    let s0 = api(json!([["EmailSubmission/get", {"accountId": account, "ids": []}, "0"]]))[0][1]
        ["state"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api(json!([
        ["Email/set", {"accountId": account, "create": {"d": {
            "mailboxIds": {roles["drafts"].as_str(): true},
            "from": [{"email": "joe@example.org"}], "to": [{"email": "bob@example.org"}],
            "subject": "held", "textBody": [{"partId": "1"}],
            "bodyValues": {"1": {"value": "later"}}}}}, "e"],
        ["EmailSubmission/set", {"accountId": account, "create": {"s": {"identityId": own, "emailId": "#d",
            "envelope": {"mailFrom": {"email": "joe@example.org", "parameters": {"HOLDFOR": "600"}},
                         "rcptTo": [{"email": "bob@example.org"}]}}}}, "s"]
    ]));
    let sub = r[1][1]["created"]["s"]["id"].as_str().unwrap().to_string();
    let s1 = r[1][1]["newState"].as_str().unwrap().to_string();
    let c = changes("EmailSubmission", &s0, None);
    assert_eq!(list(&c, "created"), vec![sub.clone()], "{c}");
    api(
        json!([["EmailSubmission/set", {"accountId": account, "update": {sub.as_str(): {"undoStatus": "canceled"}}}, "0"]]),
    );
    let c = changes("EmailSubmission", &s1, None);
    assert_eq!(list(&c, "updated"), vec![sub.clone()], "{c}");
    let r = api(json!([["EmailSubmission/set", {"accountId": account, "destroy": [sub]}, "0"]]));
    assert_eq!(r[0][1]["destroyed"], json!([sub]), "{r:?}");
    let c = changes("EmailSubmission", &s1, None);
    assert_eq!(list(&c, "destroyed"), vec![sub.clone()], "{c}");
    let c = changes("EmailSubmission", &s0, None);
    let none: Vec<String> = vec![];
    assert_eq!(
        (
            list(&c, "created"),
            list(&c, "updated"),
            list(&c, "destroyed")
        ),
        (none.clone(), none.clone(), none),
        "made and destroyed since s0: {c}"
    );
}

/// One step of the IMAP/JMAP agreement property: what a client may do
/// to one account's mail over either protocol.
#[derive(Debug, Clone)]
enum Step {
    Append(u8),
    ImapFlag { pick: u8, flag: u8, add: bool },
    ImapCopy { pick: u8 },
    ImapMove { pick: u8 },
    ImapExpunge,
    JmapKeyword { pick: u8, keyword: u8, on: bool },
    JmapMove { pick: u8, both: bool },
    JmapDestroy { pick: u8 },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        any::<u8>().prop_map(Step::Append),
        (any::<u8>(), 0u8..4, any::<bool>()).prop_map(|(pick, flag, add)| Step::ImapFlag {
            pick,
            flag,
            add
        }),
        any::<u8>().prop_map(|pick| Step::ImapCopy { pick }),
        any::<u8>().prop_map(|pick| Step::ImapMove { pick }),
        Just(Step::ImapExpunge),
        (any::<u8>(), 0u8..3, any::<bool>()).prop_map(|(pick, keyword, on)| Step::JmapKeyword {
            pick,
            keyword,
            on
        }),
        (any::<u8>(), any::<bool>()).prop_map(|(pick, both)| Step::JmapMove { pick, both }),
        any::<u8>().prop_map(|pick| Step::JmapDestroy { pick }),
    ]
}

/// IMAP's view of a mailbox: EMAILID → keywords as JMAP names them,
/// leaving out what JMAP does not show (\Deleted messages, \Recent).
async fn imap_view(
    addr: std::net::SocketAddr,
    mailbox: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = imap(
        addr,
        &format!("s SELECT {mailbox}\r\nf FETCH 1:* (EMAILID FLAGS)\r\n"),
    )
    .await;
    let mut view = std::collections::BTreeMap::new();
    for l in out.lines().filter(|l| l.contains(" FETCH (")) {
        let id = l
            .split("EMAILID (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap()
            .to_string();
        let flags = l
            .split("FLAGS (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or_default();
        if flags
            .split(' ')
            .any(|f| f.eq_ignore_ascii_case("\\Deleted"))
        {
            continue;
        }
        let mut kws: Vec<String> = flags
            .split(' ')
            .filter(|f| !f.is_empty() && !f.eq_ignore_ascii_case("\\Recent"))
            .map(|f| match f.to_ascii_lowercase().as_str() {
                "\\seen" => "$seen".to_string(),
                "\\flagged" => "$flagged".to_string(),
                "\\answered" => "$answered".to_string(),
                "\\draft" => "$draft".to_string(),
                other => other.to_string(),
            })
            .collect();
        kws.sort();
        view.insert(id, kws);
    }
    view
}

/// JMAP's view of the same mailbox: Email id → keywords.
fn jmap_view(
    j: &Jmap,
    account: &str,
    mailbox: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let r = j.api(
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account, "filter": {"inMailbox": mailbox}}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": ["keywords"]}, "g"]
        ]),
    );
    r[1][1]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:?}"))
        .iter()
        .map(|e| {
            let mut kws: Vec<String> = e["keywords"].as_object().unwrap().keys().cloned().collect();
            kws.sort();
            (e["id"].as_str().unwrap().to_string(), kws)
        })
        .collect()
}

/// RFC 8621 §1.5 and the "one store, two views": after any
/// sequence of IMAP and JMAP changes, IMAP (FETCH EMAILID FLAGS) and
/// JMAP (Email/query + Email/get) show the same messages with the same
/// keywords in each mailbox, and Email/changes from the first state
/// replays to that view (proptest, shrinking to the shortest failing
/// sequence).
#[test]
fn imap_and_jmap_views_agree() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&proptest::collection::vec(step(), 1..14), |steps| {
        let j = server("");
        let account = j.account_id();
        let addr = j.s.addr("imap");
        let roles = j.roles(&account);
        let (inbox, archive) = (roles["inbox"].clone(), roles["archive"].clone());
        let start = j.api(&[CORE, MAIL], json!([["Email/get", {"accountId": account, "ids": []}, "0"]]))[0][1]["state"]
            .as_str()
            .unwrap()
            .to_string();
        rt.block_on(async {
            imap(addr, &(0..3).map(|n| append("INBOX", n, None, false)).collect::<String>()).await;
            let mut next = 3u32;
            for s in &steps {
                let all = ids(&j.api(&[CORE, MAIL], json!([["Email/query", {"accountId": account}, "0"]]))[0][1]);
                let pick = |p: u8| all.get(p as usize % all.len().max(1)).cloned();
                let seq = |p: u8| p as usize % 4 + 1;
                match s {
                    Step::Append(p) => {
                        let parent = (*p % 2 == 0 && next > 0).then(|| *p as u32 % next);
                        imap(addr, &append(if p % 3 == 0 { "Archive" } else { "INBOX" }, next, parent, false)).await;
                        next += 1;
                    }
                    Step::ImapFlag { pick, flag, add } => {
                        let f = ["\\Seen", "\\Flagged", "\\Deleted", "$Label"][*flag as usize];
                        let sign = if *add { '+' } else { '-' };
                        imap(addr, &format!("s SELECT INBOX\r\nf STORE {} {sign}FLAGS ({f})\r\n", seq(*pick))).await;
                    }
                    Step::ImapCopy { pick } => {
                        imap(addr, &format!("s SELECT INBOX\r\nc COPY {} Archive\r\n", seq(*pick))).await;
                    }
                    Step::ImapMove { pick } => {
                        imap(addr, &format!("s SELECT Archive\r\nm MOVE {} INBOX\r\n", seq(*pick))).await;
                    }
                    Step::ImapExpunge => {
                        imap(addr, "s SELECT INBOX\r\nx EXPUNGE\r\n").await;
                    }
                    Step::JmapKeyword { pick: p, keyword, on } => {
                        if let Some(e) = pick(*p) {
                            let k = ["$seen", "$flagged", "$label"][*keyword as usize];
                            let v = if *on { json!(true) } else { Value::Null };
                            j.api(&[CORE, MAIL], json!([["Email/set", {"accountId": account, "update": {e: {format!("keywords/{k}"): v}}}, "0"]]));
                        }
                    }
                    Step::JmapMove { pick: p, both } => {
                        if let Some(e) = pick(*p) {
                            let boxes = if *both { json!({inbox.as_str(): true, archive.as_str(): true}) } else { json!({archive.as_str(): true}) };
                            j.api(&[CORE, MAIL], json!([["Email/set", {"accountId": account, "update": {e: {"mailboxIds": boxes}}}, "0"]]));
                        }
                    }
                    Step::JmapDestroy { pick: p } => {
                        if let Some(e) = pick(*p) {
                            j.api(&[CORE, MAIL], json!([["Email/set", {"accountId": account, "destroy": [e]}, "0"]]));
                        }
                    }
                }
            }
            for (name, id) in [("INBOX", &inbox), ("Archive", &archive)] {
                let i = imap_view(addr, name).await;
                let m = jmap_view(&j, &account, id);
                prop_assert_eq!(&i, &m, "{} after {:?}", name, steps);
            }
            // Email/changes from the first state names every Email now
            // visible as created (nothing existed then).
            let c = j.api(&[CORE, MAIL], json!([["Email/changes", {"accountId": account, "sinceState": start}, "0"]]));
            let mut created: Vec<String> = c[0][1]["created"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            created.sort();
            let mut now = ids(&j.api(&[CORE, MAIL], json!([["Email/query", {"accountId": account}, "0"]]))[0][1]);
            now.sort();
            prop_assert_eq!(created, now, "after {:?}", steps);
            prop_assert_eq!(&c[0][1]["destroyed"], &json!([]));
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
