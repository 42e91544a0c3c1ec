//! Unit tests of a run through Petrel's glue (the extensions offered,
//! the limits configured), without a server.

use super::*;

/// A run of `script` for joe as deliveries run it (the extensions
/// offered, no mailboxes), the envelope sender `from`.
fn run_for(script: &str, from: &str, raw: &str) -> Result<Run, String> {
    let cfg = crate::config::SieveConfig::default();
    let compiled = super::super::compiler(&cfg)
        .compile(script.as_bytes())
        .map_err(|e| format!("compile: {e}"))?;
    let rt = super::super::runtime(&cfg, "mx.test");
    let ctx = rt
        .filter(raw.as_bytes())
        .with_user_address("joe@example.org")
        .with_envelope(::sieve::Envelope::From, from)
        .with_envelope(::sieve::Envelope::To, "joe@example.org");
    let seen = HashMap::new();
    let known = Known {
        all: &[],
        globals: &[],
        boxes: &[],
        seen: &seen,
        now: 0,
        no_response: None,
    };
    interpret(ctx, "t", compiled.into(), &known, &cfg)
}

/// What a script asks for a message (envelope from ann, with a source
/// route).
fn actions(script: &str, raw: &str) -> Result<Vec<String>, String> {
    let run = run_for(script, "<@relay.test:ann@remote.test>", raw)?;
    let mut out: Vec<String> = run
        .files
        .iter()
        .map(|f| {
            f.folder
                .clone()
                .map_or("keep".into(), |n| format!("fileinto {n}"))
        })
        .collect();
    out.extend(run.redirects.iter().map(|(to, _)| format!("redirect {to}")));
    Ok(out)
}

const MSG: &str = "From: Ann <ann@remote.test>\r\nTo: joe@example.org\r\nCc: cc@example.org\r\n\
    Bcc: bcc@example.org\r\nSender: s@remote.test\r\nResent-From: rf@remote.test\r\n\
    Resent-To: rt@example.org\r\nSubject: =?ISO-8859-1?Q?caf=E9?= ABC\r\n\r\nbody\r\n";

fn files(script: &str) -> Vec<String> {
    actions(script, MSG).unwrap_or_else(|e| panic!("{e}: {script}"))
}

const F: &str = "require \"fileinto\";\n";

/// The responses a script writes for a message from `from`.
fn responses(script: &str, from: &str, raw: &str) -> Result<Vec<String>, String> {
    let run = run_for(script, from, raw)?;
    Ok(run
        .redirects
        .iter()
        .filter_map(|(_, id)| run.created.get(id))
        .map(|m| String::from_utf8_lossy(&encoded_subject(m)).into_owned())
        .collect())
}

/// RFC 5429 §2.4: a reject cancels the implicit keep; a second
/// reject, a reject with vacation, and a reject with an action that
/// delivers (keep, fileinto, redirect) are errors (the message is
/// then kept).
#[test]
fn reject_goes_alone() {
    let run = run_for("require \"ereject\";\nereject \"no\";", "a@b.test", MSG).unwrap();
    assert_eq!(run.reject, Some(("no".to_string(), true)));
    assert!(run.files.is_empty(), "the implicit keep is cancelled");
    for script in [
        "require \"reject\";\nreject \"a\";\nreject \"b\";",
        "require [\"reject\", \"ereject\"];\nreject \"a\";\nereject \"b\";",
        "require [\"reject\", \"vacation\"];\nvacation \"away\";\nreject \"a\";",
        "require [\"reject\", \"fileinto\"];\nreject \"a\";\nfileinto \"x\";",
        "require \"reject\";\nreject \"a\";\nkeep;",
        "require \"reject\";\nreject \"a\";\nredirect \"c@d.test\";",
    ] {
        let r = run_for(
            script,
            "a@b.test",
            "From: a@b.test\r\nTo: joe@example.org\r\n\r\nx\r\n",
        );
        assert!(r.is_err(), "{script}");
    }
}

/// RFC 5435 §4, §5: valid_notify_method and notify_method_capability
/// (mailto: only; an unknown method or item is false, not an error);
/// §3.2: notify with another method is an error; §7: notify keeps
/// the implicit keep; §3.4: importance 2 by default.
#[test]
fn notify_tests_and_methods() {
    let script = "require [\"enotify\", \"fileinto\"];\n\
        if valid_notify_method \"mailto:a@b.test\" { fileinto \"valid\"; }\n\
        if valid_notify_method \"xmpp:a@b.test\" { fileinto \"xmpp\"; }\n\
        if valid_notify_method \"mailto:\" { fileinto \"empty\"; }\n\
        if notify_method_capability \"xmpp:a@b.test\" \"online\" \"yes\" { fileinto \"x-online\"; }\n\
        if notify_method_capability \"mailto:a@b.test\" \"no-such-item\" \"yes\" { fileinto \"item\"; }\n\
        notify \"mailto:a@b.test\";\n";
    assert_eq!(files(script), ["fileinto valid", "redirect a@b.test"]);
    assert_eq!(
        files("require \"enotify\";\nnotify \"mailto:a@b.test\";\n"),
        ["keep", "redirect a@b.test"],
        "notify leaves the implicit keep"
    );
    let run = run_for(script, "ann@remote.test", MSG).unwrap();
    let note = String::from_utf8_lossy(run.notices.values().next().expect("a notification"));
    assert!(note.contains("Importance: Normal"), "{note}");
    // RFC 5436 §2.7: no :message, no subject header: the message's.
    assert!(note.contains("Subject: caf\u{e9} ABC"), "{note}");
    let other = "require \"enotify\";\nnotify \"xmpp:a@b.test\";\n";
    let e = run_for(other, "ann@remote.test", MSG).unwrap_err();
    assert!(e.contains("not supported"), "{e}");
}

/// RFC 5230 through Petrel's runtime: the response's header (default
/// Subject "Auto: …", From the user, To the sender, In-Reply-To,
/// References, Auto-Submitted, Date, a non-ASCII subject as an
/// encoded word); none when the user is not a named recipient, for
/// a list, or for a mailer-daemon; vacation beside fileinto is fine,
/// two vacations are an error.
#[test]
fn vacation_responses() {
    let v = "require [\"vacation\", \"fileinto\"];\nvacation \"Away.\";\nfileinto \"x\";";
    let msg = "From: ann@remote.test\r\nTo: joe@example.org\r\nSubject: plans\r\nMessage-ID: <m1@remote.test>\r\n\r\nhi\r\n";
    let r = responses(v, "ann@remote.test", msg).unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    let h = &r[0];
    for want in [
        "Subject: Auto: plans",
        "From: joe@example.org",
        "To: ann@remote.test",
        "In-Reply-To: <m1@remote.test>",
        "References: <m1@remote.test>",
        "Auto-Submitted: auto-replied",
        "Date: ",
    ] {
        assert!(h.contains(want), "{want}: {h}");
    }
    let utf = "require \"vacation\";\nvacation :subject \"Café\" \"Away.\";";
    let r = responses(utf, "ann@remote.test", msg).unwrap();
    assert!(r[0].contains("Subject: =?utf-8?B?Q2Fmw6k=?="), "{}", r[0]);
    let long = "é".repeat(40);
    let enc = String::from_utf8(encoded_subject(
        format!("Subject: {long}\r\nTo: x\r\n\r\nb").as_bytes(),
    ))
    .unwrap();
    assert!(
        enc.contains("?=\r\n =?utf-8?B?") && enc.ends_with("\r\nTo: x\r\n\r\nb"),
        "{enc}"
    );
    assert!(enc.lines().all(|l| l.len() <= 78), "{enc}");
    let bare = msg.replace("Subject: plans\r\n", "");
    let r = responses(v, "ann@remote.test", &bare).unwrap();
    assert!(r[0].contains("Subject: Automated reply"), "{}", r[0]);
    let bcc = msg.replace("To: joe@example.org", "To: team@remote.test");
    assert!(responses(v, "ann@remote.test", &bcc).unwrap().is_empty());
    let list = msg.replace("Subject:", "List-Id: <l.remote.test>\r\nSubject:");
    assert!(responses(v, "ann@remote.test", &list).unwrap().is_empty());
    assert!(responses(v, "mailer-daemon@remote.test", msg)
        .unwrap()
        .is_empty());
    let twice = "require \"vacation\";\nvacation \"a\";\nvacation \"b\";";
    assert!(responses(twice, "ann@remote.test", msg).is_err());
}

/// RFC 5228 §5: address, allof, anyof, exists, false, header, not,
/// size, true; §5.1 address on From, To, Cc, Bcc, Sender,
/// Resent-From, Resent-To; §2.4.1 integers to 2^31-1; §2.7.3 the
/// i;octet and i;ascii-casemap comparators; §2.7.2 encoded words in
/// ISO-8859-1 compared as UTF-8; §5.4 envelope without the source
/// route.
#[test]
fn base_tests_and_comparators() {
    for h in [
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "resent-from",
        "resent-to",
    ] {
        let s = format!("{F}if address :domain :is \"{h}\" [\"remote.test\", \"example.org\"] {{ fileinto \"{h}\"; }}");
        assert_eq!(files(&s), [format!("fileinto {h}")], "{h}");
    }
    let s = format!(
        "{F}if allof (exists \"Subject\", not exists \"X-None\", true, not false,\n\
         anyof (false, size :under 2147483647), size :over 0,\n\
         header :contains \"Subject\" \"café\") {{ fileinto \"all\"; }}"
    );
    assert_eq!(files(&s), ["fileinto all"]);
    let s = format!("{F}if header :comparator \"i;octet\" :contains \"Subject\" \"abc\" {{ fileinto \"octet\"; }}\n\
        if header :comparator \"i;ascii-casemap\" :contains \"Subject\" \"abc\" {{ fileinto \"casemap\"; }}");
    assert_eq!(files(&s), ["fileinto casemap"]);
    let s = "require [\"fileinto\", \"envelope\"];\nif envelope :is \"from\" \"ann@remote.test\" { fileinto \"routed\"; }".to_string();
    assert_eq!(files(&s), ["fileinto routed"]);
}

/// §2.4.2 strings (escapes, multi-line with dot-stuffing), §2.4.2.4
/// encoded-character (a malformed sequence stays as written), §2.10.7
/// fifteen nested blocks and test lists (an invalid header name is
/// refused when the script is stored),, §3.1 elsif only after if,
/// §2.10.5 an extension not required is unknown (§3.2, require first:
/// `scripts::tests::require_comes_first`).
#[test]
fn grammar() {
    let s =
        format!("{F}if header :is \"X-Q\" \"a\\\"b\\\\c\" {{ fileinto text:\r\n..dot\r\n.\r\n; }}");
    assert_eq!(
        actions(&s, "X-Q: a\"b\\c\r\n\r\n").unwrap(),
        ["fileinto .dot\r\n"]
    );
    // sieve-rs refuses an invalid header name when the script is
    // compiled (stored), so it never errs at delivery.
    let s = format!("{F}if header :is \"bad name:\" \"x\" {{ fileinto \"no\"; }}");
    assert!(actions(&s, MSG)
        .unwrap_err()
        .contains("Invalid header name"));
    let s = "require [\"fileinto\", \"encoded-character\"];\n\
        if header :contains \"Subject\" \"${hex:41 42}\" { fileinto \"${unicode: zz}\"; }";
    assert_eq!(files(s), ["fileinto ${unicode: zz}"]);
    let nested = format!(
        "{F}{}fileinto \"deep\";{}",
        "if true { ".repeat(15),
        " }".repeat(15)
    );
    assert_eq!(files(&nested), ["fileinto deep"]);
    let tests = format!(
        "{F}if {}true{} {{ fileinto \"deep\"; }}",
        "allof(".repeat(15),
        ")".repeat(15)
    );
    assert_eq!(files(&tests), ["fileinto deep"]);
    for bad in [
        "if true { keep; } else { keep; } elsif true { keep; }",
        "fileinto \"x\";",
    ] {
        assert!(actions(bad, MSG).is_err(), "{bad}");
    }
}

#[test]
fn return_path_is_read_and_removed() {
    let raw = b"Return-Path: <ann@example.org>\r\nSubject: x\r\n\r\nbody";
    assert_eq!(envelope_from(raw), "ann@example.org");
    assert_eq!(without_return_path(raw), b"Subject: x\r\n\r\nbody");
    assert_eq!(envelope_from(b"Return-Path: <>\r\n\r\n"), "");
    assert_eq!(envelope_from(b"Subject: x\r\n\r\n"), "");
    assert_eq!(without_return_path(b"Subject: x\r\n"), b"Subject: x\r\n");
}

/// The message each file action of a run stores: the original or the
/// one editheader changed.
fn stored(run: &Run, raw: &str) -> Vec<String> {
    run.files
        .iter()
        .map(|f| match run.modified.get(&f.message) {
            Some(m) => String::from_utf8_lossy(m).into_owned(),
            None => raw.to_string(),
        })
        .collect()
}

const E: &str = "require [\"editheader\", \"fileinto\"];\n";

/// RFC 5293 §7: the actions that store or send use the header as it
/// is then; tests see the changes made so far; `:index` counts the
/// fields as they are when it runs; `:last` adds at the end.
#[test]
fn editheader_changes_what_is_stored_and_sent() {
    let raw =
        "Received: from a\r\nSubject: hi\r\nX-Hello: 1\r\nX-Hello: 2\r\nX-Hello: 3\r\n\r\nbody\r\n";
    let s = format!(
        "{E}fileinto \"before\";\naddheader \"X-Top\" \"t\";\naddheader :last \"X-End\" \"e\";\n\
         deleteheader :index 1 \"X-Hello\";\ndeleteheader :index 2 \"X-Hello\";\n\
         if header :is \"X-Top\" \"t\" {{ fileinto \"seen\"; }}\nredirect \"bob@remote.test\";"
    );
    let run = run_for(&s, "ann@remote.test", raw).unwrap();
    let m = stored(&run, raw);
    assert_eq!(m[0], raw, "the first fileinto stores the original");
    let after = &m[1];
    assert!(after.starts_with("X-Top: t\r\n"), "{after}");
    assert!(after.contains("X-Hello: 2\r\n"), "{after}");
    assert!(
        !after.contains("X-Hello: 1") && !after.contains("X-Hello: 3"),
        "the first and the third went: {after}"
    );
    let end = after.find("X-End: e").expect("X-End");
    assert!(end > after.find("X-Hello: 2").unwrap(), "{after}");
    let (_, id) = &run.redirects[0];
    let sent = String::from_utf8_lossy(&run.modified[id]).into_owned();
    assert!(
        sent.contains("X-Top: t"),
        "the redirect sends the change: {sent}"
    );

    // addheader then deleteheader :index 1 leaves the message as it was.
    let s = format!(
        "{E}addheader \"X-Hello\" \"World\";\ndeleteheader :index 1 \"X-Hello\";\nfileinto \"x\";"
    );
    let run = run_for(&s, "ann@remote.test", raw).unwrap();
    let m = stored(&run, raw);
    assert!(
        !m[0].contains("World") && m[0].contains("X-Hello: 1"),
        "{}",
        m[0]
    );
}

/// RFC 5293 §6: Received and Auto-Submitted cannot be deleted (the
/// attempt is ignored, not an error); Subject can be deleted and added.
#[test]
fn editheader_keeps_trace_fields() {
    let raw = "Received: from a\r\nAuto-Submitted: auto-generated\r\nSubject: old\r\n\r\nbody\r\n";
    let s = format!(
        "{E}deleteheader \"Received\";\ndeleteheader \"Auto-Submitted\";\n\
         deleteheader \"Subject\";\naddheader \"Subject\" \"new\";\nkeep;"
    );
    let run = run_for(&s, "ann@remote.test", raw).unwrap();
    let m = &stored(&run, raw)[0];
    assert!(m.contains("Received: from a"), "{m}");
    assert!(m.contains("Auto-Submitted: auto-generated"), "{m}");
    assert!(m.contains("Subject: new") && !m.contains("old"), "{m}");
}

/// RFC 5293 §4, §5: a field name that is not one, and a constant value
/// past the limit (1,024 octets, more than the 998 §4 allows as the
/// least), are errors when the script is compiled.
#[test]
fn editheader_refuses_bad_fields() {
    for bad in [
        "addheader \"X Bad\" \"v\";",
        "addheader \"X:Bad\" \"v\";",
        "deleteheader \"X:Bad\";",
        &format!("addheader \"X-Long\" \"{}\";", "a".repeat(1025)),
    ] {
        let e = run_for(&format!("{E}{bad}"), "a@b.test", MSG).unwrap_err();
        assert!(e.starts_with("compile"), "{bad}: {e}");
    }
    let ok = format!("{E}addheader \"X-Long\" \"{}\";", "a".repeat(998));
    let run = run_for(&ok, "a@b.test", MSG).unwrap();
    assert!(stored(&run, MSG)[0].contains(&"a".repeat(998)));
}

/// The JMAP VacationResponse's script (RFC 8621 §8 through RFC 5230):
/// its subject, text and HTML parts, answered for an alias too.
#[test]
fn jmap_vacation_script_responds() {
    let v = crate::vacation::Vacation {
        is_enabled: true,
        subject: Some("Out \"today\"".into()),
        html_body: Some("<p>Back &amp; soon</p>".into()),
        ..Default::default()
    };
    let joe: crate::directory::Account = serde_json::from_value(serde_json::json!({
        "id": 1, "address": "joe@example.org", "aliases": ["j@example.org"],
        "name": "Joe", "role": "user", "enabled": true
    }))
    .unwrap();
    let script = crate::vacation::script(&v, &joe);
    let msg = "From: ann@remote.test\r\nTo: j@example.org\r\nSubject: hi\r\nMessage-ID: <m@r>\r\n\r\nhi\r\n";
    let r = responses(&script, "ann@remote.test", msg).unwrap();
    assert_eq!(r.len(), 1, "the alias is named: {r:?}");
    let m = mail_parser::MessageParser::default()
        .parse(r[0].as_bytes())
        .unwrap();
    assert_eq!(m.subject(), Some("Out \"today\""));
    assert_eq!(
        m.body_text(0).as_deref().map(str::trim),
        Some("Back & soon")
    );
    assert!(m.body_html(0).unwrap().contains("<p>Back &amp; soon</p>"));
    assert_eq!(m.in_reply_to().as_text(), Some("m@r"));
}
