//! RFC 9007 (MDN/send, MDN/parse) with RFC 8098's message format, against
//! a running Petrel: joe sends a read receipt for ann's message through
//! JMAP; ann receives it by SMTP-to-queue delivery; Python's `email`
//! package (an independent MIME parser) checks the report; MDN/parse reads
//! it back.

mod common;

use common::jmap::*;
use common::*;
use serde_json::{json, Value};

const MDN: &str = "urn:ietf:params:jmap:mdn";
const SUBMISSION: &str = "urn:ietf:params:jmap:submission";

fn python_parse(raw: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mdn.eml");
    std::fs::write(&f, raw).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, email\n\
             m = email.message_from_binary_file(open(sys.argv[1], 'rb'))\n\
             print('type', m.get_content_type(), m.get_param('report-type'))\n\
             print('return-path', m['Return-Path'])\n\
             print('dnt', m['Disposition-Notification-To'])\n\
             print('subject', m['Subject'])\n\
             parts = m.get_payload()\n\
             print('parts', len(parts), [p.get_content_type() for p in parts])\n\
             print('text', parts[0].get_payload(decode=True).decode().strip())\n\
             print('report-cte', parts[1].get('Content-Transfer-Encoding', '7bit'))\n\
             fields = parts[1].get_payload()[0]\n\
             [print('field', k, '=', fields[k]) for k in ['Reporting-UA', 'Final-Recipient', 'Original-Message-ID', 'Disposition', 'X-Test']]\n",
        )
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn read_receipts_sent_and_parsed() {
    let j = server("");
    j.s.account("ann@example.org");
    let account = j.account_id();
    j.deliver(&[
        "From: Ann <ann@example.org>\r\nTo: joe@example.org\r\nSubject: Lunch\r\nMessage-ID: <lunch@example.org>\r\nDisposition-Notification-To: Ann <ann@example.org>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nNoon?\r\n".to_string(),
        "From: Ann <ann@example.org>\r\nTo: joe@example.org\r\nSubject: No receipt\r\nMessage-ID: <plain@example.org>\r\n\r\nhi\r\n".to_string(),
        "From: Ann <ann@example.org>\r\nTo: joe@example.org\r\nSubject: Lunch again\r\nMessage-ID: <lunch2@example.org>\r\nDisposition-Notification-To: ann@example.org\r\n\r\nOne?\r\n".to_string(),
        // Its Disposition-Notification-To is the envelope sender's address.
        "From: Ann <ann@remote.test>\r\nTo: joe@example.org\r\nSubject: Auto\r\nMessage-ID: <auto@remote.test>\r\nDisposition-Notification-To: Ann <\"ann\"@REMOTE.test>\r\n\r\nhi\r\n".to_string(),
    ])
    .await;
    let r = j.api(
        &[CORE, MAIL, SUBMISSION],
        json!([
            ["Identity/get", {"accountId": account}, "i"],
            ["Email/query", {"accountId": account, "sort": [{"property": "receivedAt", "isAscending": true}]}, "q"]
        ]),
    );
    let identity = r[0][1]["list"][0]["id"].as_str().unwrap().to_string();
    let ids: Vec<String> = r[1][1]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let (lunch, plain, again, auto) = (
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[3].clone(),
    );
    let displayed = json!({"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "displayed"});
    let send = |id: &str, send: Value, update: Value| {
        j.api(
            &[CORE, MAIL, MDN],
            json!([["MDN/send", {"accountId": account, "identityId": id, "send": send,
                "onSuccessUpdateEmail": update}, "m"]]),
        )
    };

    // The read receipt, with $mdnsent set by the implicit Email/set.
    let r = send(
        &identity,
        json!({"k1": {"forEmailId": lunch, "disposition": displayed,
            "reportingUA": "jmap-test; 1.0", "extensionFields": {"X-Test": "yes"}}}),
        json!({"#k1": {"keywords/$mdnsent": true}}),
    );
    assert_eq!(r[0][0], "MDN/send", "{}", r[0][1]);
    let sent = &r[0][1]["sent"]["k1"];
    assert_eq!(sent["finalRecipient"], "rfc822; joe@example.org", "{sent}");
    assert_eq!(sent["originalMessageId"], "<lunch@example.org>");
    assert_eq!(sent["subject"], "Read: Lunch");
    assert_eq!(r[1][0], "Email/set", "{r:?}");
    assert!(r[1][1]["updated"].get(&lunch).is_some(), "{}", r[1][1]);

    // RFC 9007 §2.1: a second one is mdnAlreadySent.
    let r = send(
        &identity,
        json!({"k2": {"forEmailId": lunch, "disposition": displayed}}),
        Value::Null,
    );
    assert_eq!(
        r[0][1]["notSent"]["k2"]["type"], "mdnAlreadySent",
        "{}",
        r[0][1]
    );
    assert!(r[0][1]["sent"].is_null());
    // No Disposition-Notification-To, a bad disposition, no such Email.
    let r = send(
        &identity,
        json!({
            "a": {"forEmailId": plain, "disposition": displayed},
            "b": {"forEmailId": plain, "disposition": {"actionMode": "manual-action", "sendingMode": "mdn-sent-manually", "type": "read"}},
            "c": {"forEmailId": "E999999", "disposition": displayed},
            "d": {"disposition": displayed}
        }),
        Value::Null,
    );
    let not = &r[0][1]["notSent"];
    assert_eq!(not["a"]["type"], "invalidProperties", "{not}");
    assert_eq!(not["b"]["properties"][0], "disposition", "{not}");
    assert_eq!(not["c"]["type"], "notFound", "{not}");
    assert_eq!(not["d"]["properties"][0], "forEmailId", "{not}");
    // RFC 8098 §2.1: sent automatically only where the request names
    // the Return-Path's one address (compared without quotes, domain in
    // any case).
    let automatic = json!({"actionMode": "automatic-action", "sendingMode": "mdn-sent-automatically", "type": "processed"});
    let r = send(
        &identity,
        json!({"no": {"forEmailId": again, "disposition": automatic},
            "yes": {"forEmailId": auto, "disposition": automatic},
            "utf8": {"forEmailId": auto, "disposition": displayed, "reportingUA": "Pétrel"}}),
        Value::Null,
    );
    let not = &r[0][1]["notSent"];
    assert_eq!(not["no"]["properties"][0], "disposition", "{}", r[0][1]);
    assert!(not["no"]["description"]
        .as_str()
        .unwrap()
        .contains("automatically"));
    assert!(r[0][1]["sent"].get("yes").is_some(), "{}", r[0][1]);
    // §3.1: the report part is 7bit.
    assert_eq!(not["utf8"]["properties"][0], "reportingUA", "{not}");
    // An unknown identity is invalidArguments (§2.1).
    let r = send(
        "I999",
        json!({"x": {"forEmailId": lunch, "disposition": displayed}}),
        Value::Null,
    );
    assert_eq!(r[0][0], "error");
    assert_eq!(r[0][1]["type"], "invalidArguments");

    // Ann has it: RFC 8098 §3's format, read by another parser.
    let msgs = wait_for_mail(j.s.addr("imap"), "ann@example.org", 1).await;
    let raw = &msgs[0];
    let out = python_parse(raw);
    for want in [
        "type multipart/report disposition-notification",
        "return-path <>",
        "dnt None",
        "subject Read: Lunch",
        "parts 2 ['text/plain', 'message/disposition-notification']",
        "field Reporting-UA = jmap-test; 1.0",
        "field Final-Recipient = rfc822; joe@example.org",
        "field Original-Message-ID = <lunch@example.org>",
        "field Disposition = manual-action/MDN-sent-manually; displayed",
        "field X-Test = yes",
        "report-cte 7bit",
    ] {
        assert!(out.contains(want), "{want} not in {out}");
    }
    assert!(
        out.contains("text This is a disposition notification"),
        "{out}"
    );

    // MDN/parse of the same bytes, uploaded by joe.
    let (status, up) = j.upload(&account, "message/rfc822", raw);
    assert_eq!(status, 201, "{up}");
    let blob = up["blobId"].as_str().unwrap();
    let r = j.api(
        &[CORE, MAIL, MDN],
        json!([["MDN/parse", {"accountId": account, "blobIds": [blob, lunch.replace('E', "B"), "U999999"]}, "p"]]),
    );
    let p = &r[0][1];
    let m = &p["parsed"][blob];
    assert_eq!(m["disposition"], displayed, "{p}");
    assert_eq!(m["finalRecipient"], "rfc822; joe@example.org");
    assert_eq!(m["originalMessageId"], "<lunch@example.org>");
    assert_eq!(m["reportingUA"], "jmap-test; 1.0");
    assert_eq!(m["extensionFields"]["X-Test"], "yes");
    assert_eq!(m["includeOriginalMessage"], false);
    assert_eq!(p["notFound"], json!(["U999999"]), "{p}");

    // RFC 8098 §2.1: no MDN for an MDN, even one that asks for it.
    let text = String::from_utf8_lossy(raw).replace(
        "Subject: Read: Lunch",
        "Subject: Read: Lunch\r\nDisposition-Notification-To: ann@example.org",
    );
    j.deliver(&[text]).await;
    let r = j.api(
        &[CORE, MAIL],
        json!([["Email/query", {"accountId": account, "filter": {"subject": "Read: Lunch"}}, "q"]]),
    );
    let report = r[0][1]["ids"][0].as_str().unwrap().to_string();
    let r = send(
        &identity,
        json!({"r": {"forEmailId": report, "disposition": displayed}}),
        Value::Null,
    );
    let why = r[0][1]["notSent"]["r"]["description"]
        .as_str()
        .unwrap_or("");
    assert!(
        why.contains("itself a disposition notification"),
        "{}",
        r[0][1]
    );
}

/// RFC 8621 §7: reports that come back for a submission are matched to
/// it by the Message-ID they report on: each DSN's blob joins dsnBlobIds
/// and each MDN's mdnBlobIds, oldest first; a DSN's Action `delivered`
/// sets the recipient's `delivered` to "yes" while `delayed` changes
/// nothing; an MDN `displayed` sets `displayed` to "yes". The reports
/// arrive over SMTP as a remote MTA and MUA send them.
#[tokio::test]
async fn submission_reports_update_delivery_status() {
    let remote = TestServer::start_with(
        "[smtp]\nauth-without-tls = true\n[imap]\nauth-without-tls = true\n",
    );
    remote.account("bob@remote.test");
    let j = server(&format!(
        "[queue]\nrelay = \"{}\"\nretry = [1]\n",
        remote.addr("smtp")
    ));
    let account = j.account_id();
    let roles = j.roles(&account);
    let ident = j.api(
        &[CORE, MAIL, SUBMISSION],
        json!([["Identity/get", {"accountId": account}, "i"]]),
    )[0][1]["list"][0]["id"]
        .clone();
    let r = j.api(
        &[CORE, MAIL, SUBMISSION],
        json!([
            ["Email/set", {"accountId": account, "create": {"d": {
                "mailboxIds": {roles["sent"].as_str(): true},
                "from": [{"email": "joe@example.org"}],
                "to": [{"email": "bob@remote.test"}],
                "subject": "Report back",
                "header:Disposition-Notification-To:asAddresses": [{"email": "joe@example.org"}],
                "textBody": [{"partId": "1"}],
                "bodyValues": {"1": {"value": "Did it arrive?"}}
            }}}, "e"],
            ["EmailSubmission/set", {"accountId": account,
                "create": {"s": {"identityId": ident, "emailId": "#d"}}}, "s"],
            ["Email/get", {"accountId": account, "ids": ["#d"], "properties": ["messageId"]}, "g"]
        ]),
    );
    let sub = r[1][1]["created"]["s"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r:?}"))
        .to_string();
    let mid = r[2][1]["list"][0]["messageId"][0]
        .as_str()
        .unwrap()
        .to_string();
    let got = wait_for_mail(remote.addr("imap"), "bob@remote.test", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains(&mid));

    let status = |j: &Jmap| {
        j.api(
            &[CORE, MAIL, SUBMISSION],
            json!([["EmailSubmission/get", {"accountId": account, "ids": [sub]}, "g"]]),
        )[0][1]["list"][0]
            .clone()
    };
    // Relayed onwards: not known to be in bob's store (§7#10).
    let before = status(&j);
    assert_eq!(
        before["deliveryStatus"]["bob@remote.test"]["delivered"], "unknown",
        "{before}"
    );
    assert_eq!(before["dsnBlobIds"], json!([]));

    let dsn = |action: &str| {
        format!(
            "From: MAILER-DAEMON@mx.remote.test\r\nTo: joe@example.org\r\nSubject: Delivery report\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
             --r\r\nContent-Type: text/plain\r\n\r\nReport.\r\n\
             --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.test\r\n\r\n\
             Final-Recipient: rfc822; Bob@remote.test\r\nAction: {action}\r\nStatus: 2.0.0\r\n\r\n\
             --r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{mid}>\r\nSubject: Report back\r\n\r\n--r--\r\n"
        )
    };
    for (n, action) in [(1, "delayed"), (2, "delivered")] {
        let r = smtp_send(j.s.addr("smtp"), "", &["joe@example.org"], &dsn(action)).await;
        assert!(r.starts_with("250"), "{r}");
        wait_for_mail(j.s.addr("imap"), "joe@example.org", n).await;
    }
    let after = status(&j);
    assert_eq!(
        after["dsnBlobIds"].as_array().map(Vec::len),
        Some(2),
        "{after}"
    );
    assert_eq!(
        after["deliveryStatus"]["bob@remote.test"]["delivered"], "yes",
        "{after}"
    );
    assert_eq!(
        after["deliveryStatus"]["bob@remote.test"]["displayed"],
        "unknown"
    );
    // The blobs are the reports as received, oldest first.
    let first = after["dsnBlobIds"][0].as_str().unwrap();
    let url = format!("{}/jmap/download/{account}/{first}/r.eml", j.base());
    let (ok, _, body) = j.curl(&["-u", "joe@example.org:pw", &url], None);
    assert_eq!(ok, 200);
    assert!(body.contains("Action: delayed"), "{body}");

    let mdn = format!(
        "From: Bob <bob@remote.test>\r\nTo: joe@example.org\r\nSubject: Read: Report back\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"m\"\r\n\r\n\
         --m\r\nContent-Type: text/plain\r\n\r\nShown.\r\n\
         --m\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: bob-pc; Mail 1\r\n\
         Final-Recipient: rfc822;bob@remote.test\r\nOriginal-Message-ID: <{mid}>\r\n\
         Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--m--\r\n"
    );
    let r = smtp_send(j.s.addr("smtp"), "", &["joe@example.org"], &mdn).await;
    assert!(r.starts_with("250"), "{r}");
    wait_for_mail(j.s.addr("imap"), "joe@example.org", 3).await;
    let last = status(&j);
    assert_eq!(
        last["mdnBlobIds"].as_array().map(Vec::len),
        Some(1),
        "{last}"
    );
    assert_eq!(
        last["deliveryStatus"]["bob@remote.test"]["displayed"], "yes",
        "{last}"
    );
}
