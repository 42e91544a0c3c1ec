//! Email/query's mail-list path (`{"inMailbox": id}` alone, sorted by
//! arrival, size or sent date) reads one mailbox's listing and orders
//! only the asked-for window; every other query goes through the general
//! path. Both must give the same answer (RFC 8620 §5.5: ids, position,
//! total), with the facts cache on, forgetting all the time, and off.

mod common;

use common::jmap::*;
use serde_json::{json, Value};

#[tokio::test]
async fn mail_list_window_matches_the_general_query() {
    for extra in [
        "",
        // Smaller than the account: it is forgotten after every read.
        "[jmap]\nfacts-cache-messages = 4\n",
        "[jmap]\nfacts-cache-messages = 0\n",
    ] {
        let j = server(extra);
        let account = j.account_id();
        // Sizes and Date headers out of arrival order; most arrive within
        // the same second, so ties on receivedAt are the rule.
        let bodies: Vec<String> = (0..12)
            .map(|i| {
                format!(
                    "From: s{i}@remote.test\r\nTo: joe@example.org\r\nSubject: m{i}\r\nMessage-ID: <l{i}@remote.test>\r\nDate: Fri, 27 Nov 2026 {:02}:00:00 +0000\r\n\r\n{}\r\n",
                    (i * 7) % 12,
                    "x".repeat((i * 37) % 100)
                )
            })
            .collect();
        j.deliver(&bodies).await;
        // One message also in another mailbox, one \Deleted in the Inbox
        // (invisible to JMAP there, RFC 8621 §4.1.1).
        imap(
            j.s.addr("imap"),
            "b CREATE Archive\r\nc SELECT INBOX\r\nd COPY 3 Archive\r\ne STORE 5 +FLAGS (\\Deleted)\r\n",
        )
        .await;
        let roles = j.roles(&account);
        let inbox = roles["inbox"].clone();
        let query = |filter: Value, sort: Value, window: Value| -> Value {
            let mut args = json!({"accountId": account, "filter": filter, "calculateTotal": true});
            if !sort.is_null() {
                args["sort"] = sort;
            }
            for (k, v) in window.as_object().unwrap() {
                args[k] = v.clone();
            }
            let r = j.api(&[CORE, MAIL], json!([["Email/query", args, "q"]]));
            assert_eq!(r[0][0], "Email/query", "{}", r[0][1]);
            r[0][1].clone()
        };
        let plain = json!({"inMailbox": inbox});
        // The same condition under an operator takes the general path.
        let general = json!({"operator": "AND", "conditions": [{"inMailbox": inbox}]});
        let sorts = [
            Value::Null,
            json!([{"property": "receivedAt", "isAscending": false}]),
            json!([{"property": "receivedAt", "isAscending": true}]),
            json!([{"property": "size", "isAscending": false}]),
            json!([{"property": "size"}]),
            json!([{"property": "sentAt", "isAscending": false}]),
            json!([{"property": "sentAt", "isAscending": true}]),
        ];
        let windows = [
            json!({}),
            json!({"limit": 5}),
            json!({"position": 3, "limit": 4}),
            json!({"position": -4}),
            json!({"position": -20, "limit": 3}),
            json!({"position": 100, "limit": 5}),
            json!({"limit": 0}),
        ];
        for sort in &sorts {
            for w in &windows {
                let fast = query(plain.clone(), sort.clone(), w.clone());
                let slow = query(general.clone(), sort.clone(), w.clone());
                for k in ["ids", "position", "total"] {
                    assert_eq!(fast[k], slow[k], "{k} for sort {sort} window {w} ({extra})");
                }
                // 11 visible of 12: the \Deleted one is left out.
                assert_eq!(fast["total"], 11, "{fast}");
            }
        }
        // What the list shows is really in order: sentAt descending is
        // the Date headers' order.
        let q = query(
            plain.clone(),
            json!([{"property": "sentAt", "isAscending": false}]),
            json!({"limit": 3}),
        );
        let ids = q["ids"].clone();
        let r = j.api(
            &[CORE, MAIL],
            json!([["Email/get", {"accountId": account, "ids": ids, "properties": ["sentAt"]}, "g"]]),
        );
        let dates: Vec<&str> = r[0][1]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["sentAt"].as_str().unwrap())
            .collect();
        assert_eq!(
            dates,
            [
                "2026-11-27T11:00:00Z",
                "2026-11-27T10:00:00Z",
                "2026-11-27T09:00:00Z"
            ]
        );
    }
}
