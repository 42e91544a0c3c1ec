//! Shared accounts over JMAP (RFC 8620 §1.6.2, §5.4, §6.1; RFC 8621 §2,
//! §4.7, §9.5) against a running Petrel: joe shares mailboxes with bob
//! and carol through IMAP ACLs (RFC 4314 SETACL); bob and carol see joe's
//! account in their session, with only what the grants allow; Email/copy
//! moves mail between the accounts, driven by curl and by Python's jmapc.

mod common;

use common::jmap::*;
use serde_json::{json, Value};

const JOE: &str = "joe@example.org";
const BOB: &str = "bob@example.org";
const CAROL: &str = "carol@example.org";
const SUBMISSION: &str = "urn:ietf:params:jmap:submission";

fn append(mailbox: &str, n: u32, subject: &str) -> String {
    let msg = format!("From: ann@remote.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@remote.test>\r\n\r\nbody of {subject}\r\n");
    format!("p{n} APPEND {mailbox} {{{}+}}\r\n{msg}\r\n", msg.len())
}

/// joe's mailboxes: Team (bob lrswite, carol lr), Private (no one),
/// Projects/Alpha (bob lr; Projects itself not shared), with "team one"
/// in Team, "private" in Private, "alpha" in Alpha and "both" in Team and
/// Private.
async fn shared_setup(j: &Jmap) {
    j.s.account(BOB);
    j.s.account(CAROL);
    let out = imap(
        j.s.addr("imap"),
        &format!(
            "c1 CREATE Team\r\nc2 CREATE Private\r\nc3 CREATE Projects/Alpha\r\n\
             s1 SETACL Team {BOB} lrswite\r\ns2 SETACL Team {CAROL} lr\r\n\
             s3 SETACL Projects/Alpha {BOB} lr\r\n{}{}{}{}\
             x SELECT Team\r\ny UID COPY 2 Private\r\n",
            append("Team", 1, "team-one"),
            append("Private", 2, "private"),
            append("Projects/Alpha", 3, "alpha"),
            append("Team", 4, "both"),
        ),
    )
    .await;
    for tag in [
        "c1", "c2", "c3", "s1", "s2", "s3", "p1", "p2", "p3", "p4", "y",
    ] {
        assert!(out.contains(&format!("{tag} OK")), "{tag}: {out}");
    }
}

/// Email ids by subject, as joe sees his own account.
fn ids_by_subject(
    j: &Jmap,
    user: &str,
    account: &str,
) -> std::collections::HashMap<String, String> {
    let r = j.api_as(
        user,
        &[CORE, MAIL],
        json!([
            ["Email/query", {"accountId": account}, "q"],
            ["Email/get", {"accountId": account, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}, "properties": ["subject"]}, "g"]
        ]),
    );
    r[1][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// RFC 8620 §1.6.2 and §2: an account sharing mailboxes is listed with
/// isPersonal false, read-only when the grants only allow reading, with
/// the mail capability only (and its owner, RFC 9670); a method of another capability there is
/// accountNotSupportedByMethod (§3.6.2). RFC 8621 §2, §9.5: only shared
/// mailboxes exist there, with the granted rights; isSubscribed is the
/// user's own.
#[tokio::test]
async fn shared_accounts_show_what_is_granted() {
    let j = server("");
    let joe = j.account_id();
    let before = j.session_as(BOB)["state"].clone();
    shared_setup(&j).await;

    let s = j.session_as(BOB);
    let acct = &s["accounts"][&joe];
    assert_eq!(acct["name"], JOE, "{s}");
    assert_eq!(acct["isPersonal"], false);
    assert_eq!(acct["isReadOnly"], false);
    let caps: Vec<&String> = acct["accountCapabilities"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    // The mail capability, and who owns the account (RFC 9670 §1.5.2).
    assert_eq!(
        caps,
        [MAIL, "urn:ietf:params:jmap:principals:owner"],
        "{acct}"
    );
    assert_eq!(
        acct["accountCapabilities"][MAIL]["mayCreateTopLevelMailbox"],
        false
    );
    assert_ne!(s["primaryAccounts"][MAIL], joe.as_str());
    assert_ne!(
        s["state"], before,
        "the session state moves when an account is shared"
    );
    let c = j.session_as(CAROL);
    assert_eq!(
        c["accounts"][&joe]["isReadOnly"], true,
        "carol may only read: {c}"
    );
    // eve has no grant: joe's account does not exist for her.
    j.s.account("eve@example.org");
    assert!(j.session_as("eve@example.org")["accounts"]
        .get(&joe)
        .is_none());
    let r = j.api_as(
        "eve@example.org",
        &[CORE, MAIL],
        json!([["Mailbox/get", {"accountId": joe}, "0"]]),
    );
    assert_eq!(r[0][1]["type"], "accountNotFound", "{r:?}");

    let r = j.api_as(
        BOB,
        &[CORE, MAIL, SUBMISSION],
        json!([
            ["Mailbox/get", {"accountId": joe}, "m"],
            ["Identity/get", {"accountId": joe}, "i"]
        ]),
    );
    assert_eq!(r[1][1]["type"], "accountNotSupportedByMethod", "{r:?}");
    let list = r[0][1]["list"].as_array().unwrap();
    let by_name = |n: &str| list.iter().find(|m| m["name"] == n).cloned();
    let names: std::collections::BTreeSet<&str> =
        list.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Alpha", "Team"].into_iter().collect(),
        "only shared mailboxes: {list:?}"
    );
    let team = by_name("Team").unwrap();
    let alpha = by_name("Alpha").unwrap();
    assert_eq!(alpha["parentId"], Value::Null, "its parent is not shared");
    assert_eq!(
        team["myRights"],
        json!({"mayReadItems": true, "mayAddItems": true, "mayRemoveItems": true,
               "maySetSeen": true, "maySetKeywords": true, "mayCreateChild": false,
               "mayRename": false, "mayDelete": false, "maySubmit": false})
    );
    assert_eq!(alpha["myRights"]["mayReadItems"], true);
    assert_eq!(alpha["myRights"]["maySetSeen"], false);
    assert_eq!(alpha["myRights"]["mayAddItems"], false);
    assert_eq!(team["totalEmails"], 2, "{team}");
    assert_eq!(
        team["isSubscribed"], false,
        "RFC 8621 §2: false by default when shared"
    );

    // isSubscribed is bob's own (§2#10): joe's flag stays; IMAP LSUB of
    // bob shows the same subscription.
    let joe_team_before = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/get", {"accountId": joe, "ids": [team["id"]], "properties": ["isSubscribed"]}, "0"]]),
    )[0][1]["list"][0]["isSubscribed"]
        .clone();
    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([
            ["Mailbox/set", {"accountId": joe, "update": {team["id"].as_str().unwrap(): {"isSubscribed": true}}}, "s"],
            ["Mailbox/set", {"accountId": joe, "update": {team["id"].as_str().unwrap(): {"name": "Renamed"}}}, "r"],
            ["Mailbox/set", {"accountId": joe, "create": {"n": {"name": "New"}}}, "c"],
            ["Mailbox/set", {"accountId": joe, "destroy": [alpha["id"]]}, "d"],
            ["Mailbox/get", {"accountId": joe, "ids": [team["id"]], "properties": ["isSubscribed", "name"]}, "g"]
        ]),
    );
    assert!(
        r[0][1]["updated"]
            .get(team["id"].as_str().unwrap())
            .is_some(),
        "{r:?}"
    );
    let tid = team["id"].as_str().unwrap();
    assert_eq!(
        r[1][1]["notUpdated"][tid]["type"], "forbidden",
        "no x right: {r:?}"
    );
    assert_eq!(
        r[2][1]["notCreated"]["n"]["type"], "forbidden",
        "no top level: {r:?}"
    );
    let aid = alpha["id"].as_str().unwrap();
    assert_eq!(r[3][1]["notDestroyed"][aid]["type"], "forbidden", "{r:?}");
    assert_eq!(r[4][1]["list"][0]["isSubscribed"], true);
    assert_eq!(r[4][1]["list"][0]["name"], "Team");
    let joe_team_after = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/get", {"accountId": joe, "ids": [tid], "properties": ["isSubscribed"]}, "0"]]),
    )[0][1]["list"][0]["isSubscribed"]
        .clone();
    assert_eq!(
        joe_team_before, joe_team_after,
        "joe's subscription is his own"
    );
    let lsub = imap_as(j.s.addr("imap"), BOB, "l LSUB \"\" \"*\"\r\n").await;
    assert!(lsub.contains("Shared/joe@example.org/Team"), "{lsub}");
}

/// RFC 8621 §9.5: Emails only in mailboxes the user may not read do not
/// exist for it (query, get, threads, changes, blobs); mailboxIds lists
/// only the readable ones. §2: keyword changes need maySetSeen /
/// maySetKeywords in all the Email's mailboxes.
#[tokio::test]
async fn shared_mail_is_limited_to_readable_mailboxes() {
    let j = server("");
    let joe = j.account_id();
    shared_setup(&j).await;
    let mine = ids_by_subject(&j, JOE, &joe);
    let theirs = ids_by_subject(&j, BOB, &joe);
    let mut seen: Vec<&str> = theirs.keys().map(String::as_str).collect();
    seen.sort();
    assert_eq!(seen, ["alpha", "both", "team-one"], "{theirs:?}");
    let private = &mine["private"];

    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([
            ["Email/get", {"accountId": joe, "ids": [mine["both"], private], "properties": ["mailboxIds", "threadId", "blobId"]}, "g"],
            ["Mailbox/get", {"accountId": joe, "properties": ["name"]}, "m"]
        ]),
    );
    assert_eq!(r[0][1]["notFound"], json!([private]), "{r:?}");
    let both = &r[0][1]["list"][0];
    let team = r[1][1]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Team")
        .unwrap()["id"]
        .clone();
    assert_eq!(
        both["mailboxIds"],
        json!({team.as_str().unwrap(): true}),
        "Private does not exist for bob"
    );
    // Thread/get: the private message's thread is not found.
    let private_thread = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": joe, "ids": [private], "properties": ["threadId", "blobId"]}, "0"]]),
    )[0][1]["list"][0]
        .clone();
    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Thread/get", {"accountId": joe, "ids": [private_thread["threadId"], both["threadId"]]}, "t"]]),
    );
    assert_eq!(
        r[0][1]["notFound"],
        json!([private_thread["threadId"]]),
        "{r:?}"
    );
    assert_eq!(r[0][1]["list"][0]["emailIds"], json!([mine["both"]]));

    // Blobs: the readable message downloads, the private one does not.
    let url = |blob: &Value| {
        format!(
            "{}/jmap/download/{joe}/{}/m.eml?type=message/rfc822",
            j.base(),
            blob.as_str().unwrap()
        )
    };
    let (ok, _, body) = j.curl(&["-u", &format!("{BOB}:pw"), &url(&both["blobId"])], None);
    assert_eq!(ok, 200);
    assert!(body.contains("body of both"), "{body}");
    let (no, _, _) = j.curl(
        &["-u", &format!("{BOB}:pw"), &url(&private_thread["blobId"])],
        None,
    );
    assert_eq!(no, 404, "a message only in Private");

    // Keywords: $seen where bob has s everywhere; not in Alpha (lr);
    // not on "both", which is also in Private (no w there).
    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([
            ["Email/set", {"accountId": joe, "update": {
                theirs["team-one"].as_str(): {"keywords/$seen": true},
                theirs["alpha"].as_str(): {"keywords/$seen": true},
                theirs["both"].as_str(): {"keywords/$flagged": true}
            }}, "s"],
            ["Email/set", {"accountId": joe, "destroy": [theirs["both"], theirs["alpha"]]}, "d"]
        ]),
    );
    assert!(
        r[0][1]["updated"].get(&theirs["team-one"]).is_some(),
        "{r:?}"
    );
    assert_eq!(r[0][1]["notUpdated"][&theirs["alpha"]]["type"], "forbidden");
    assert_eq!(r[0][1]["notUpdated"][&theirs["both"]]["type"], "forbidden");
    assert_eq!(
        r[1][1]["notDestroyed"][&theirs["both"]]["type"],
        "forbidden"
    );
    assert_eq!(
        r[1][1]["notDestroyed"][&theirs["alpha"]]["type"],
        "forbidden"
    );
    let flags = imap(
        j.s.addr("imap"),
        "x SELECT Team\r\nf UID FETCH 1:* FLAGS\r\n",
    )
    .await;
    assert!(
        flags.contains("UID 1 FLAGS (\\Seen)") || flags.contains("FLAGS (\\Seen) UID 1"),
        "joe's IMAP sees bob's $seen: {flags}"
    );

    // Email/changes: a message joe files only in Private is not news for
    // bob; one in Team is.
    let state = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": joe, "ids": []}, "0"]]),
    )[0][1]["state"]
        .clone();
    let out = imap(
        j.s.addr("imap"),
        &format!(
            "{}{}",
            append("Private", 5, "hidden"),
            append("Team", 6, "visible")
        ),
    )
    .await;
    assert!(out.contains("p5 OK") && out.contains("p6 OK"), "{out}");
    let mine = ids_by_subject(&j, JOE, &joe);
    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Email/changes", {"accountId": joe, "sinceState": state}, "c"]]),
    );
    let changed = &r[0][1];
    assert_eq!(changed["created"], json!([mine["visible"]]), "{changed}");
    assert!(
        !changed.to_string().contains(mine["hidden"].as_str()),
        "{changed}"
    );
}

/// RFC 8620 §5.4 and RFC 8621 §4.7: Email/copy between accounts; the
/// copy keeps the original's keywords and arrival unless given; the
/// accounts must differ; the object names the original by `id`; only
/// mailboxIds, keywords and receivedAt may be set; onSuccessDestroyOriginal
/// makes one implicit Email/set right after. §6.1: an upload is its
/// uploader's, even in a shared account.
#[tokio::test]
async fn email_copy_between_accounts() {
    let j = server("");
    let joe = j.account_id();
    shared_setup(&j).await;
    let bob = j.session_as(BOB)["primaryAccounts"][MAIL]
        .as_str()
        .unwrap()
        .to_string();
    let inbox = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Mailbox/query", {"accountId": bob, "filter": {"role": "inbox"}}, "0"]]),
    )[0][1]["ids"][0]
        .clone();
    let theirs = ids_by_subject(&j, BOB, &joe);
    j.api(
        &[CORE, MAIL],
        json!([["Email/set", {"accountId": joe, "update": {theirs["alpha"].as_str(): {"keywords/$flagged": true}}}, "0"]]),
    );
    let original = j.api(
        &[CORE, MAIL],
        json!([["Email/get", {"accountId": joe, "ids": [theirs["alpha"]], "properties": ["keywords", "receivedAt", "size"]}, "0"]]),
    )[0][1]["list"][0]
        .clone();

    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([
            ["Email/copy", {"fromAccountId": joe, "accountId": bob, "create": {
                "a": {"id": theirs["alpha"], "mailboxIds": {inbox.as_str().unwrap(): true}},
                "noid": {"mailboxIds": {inbox.as_str().unwrap(): true}},
                "subj": {"id": theirs["alpha"], "mailboxIds": {inbox.as_str().unwrap(): true}, "subject": "x"},
                "gone": {"id": "E999999", "mailboxIds": {inbox.as_str().unwrap(): true}},
                "nobox": {"id": theirs["alpha"]}
            }, "onSuccessDestroyOriginal": true}, "c"],
            ["Email/get", {"accountId": bob, "ids": ["#a"], "properties": ["keywords", "receivedAt", "size", "mailboxIds", "subject"]}, "g"],
            ["Email/copy", {"fromAccountId": joe, "accountId": joe, "create": {}}, "same"],
            ["Email/copy", {"fromAccountId": "a999", "accountId": bob, "create": {}}, "nofrom"]
        ]),
    );
    let copy = &r[0][1];
    assert_eq!(copy["fromAccountId"], joe.as_str());
    assert_eq!(copy["accountId"], bob.as_str());
    let made = &copy["created"]["a"];
    for p in ["id", "blobId", "threadId", "size"] {
        assert!(made.get(p).is_some(), "§4.7 created has {p}: {copy}");
    }
    assert_ne!(made["id"], theirs["alpha"].as_str());
    assert_eq!(
        copy["notCreated"]["noid"]["type"], "invalidProperties",
        "{copy}"
    );
    assert_eq!(copy["notCreated"]["subj"]["properties"], json!(["subject"]));
    assert_eq!(copy["notCreated"]["gone"]["type"], "notFound");
    // RFC 8621 §4.10: the copy needs its own mailboxIds.
    assert_eq!(
        copy["notCreated"]["nobox"]["properties"],
        json!(["mailboxIds"])
    );
    // The implicit Email/set follows the copy, under the same call id; bob
    // may not remove mail from Alpha (lr), so the original stays.
    assert_eq!(r[1][0], "Email/set", "{r:?}");
    assert_eq!(r[1][2], "c");
    assert_eq!(
        r[1][1]["notDestroyed"][theirs["alpha"].as_str()]["type"],
        "forbidden",
        "{r:?}"
    );
    let got = &r[2][1]["list"][0];
    assert_eq!(got["keywords"], original["keywords"], "{got}");
    assert_eq!(got["receivedAt"], original["receivedAt"]);
    assert_eq!(got["size"], original["size"]);
    assert_eq!(got["subject"], "alpha");
    assert_eq!(r[3][1]["type"], "invalidArguments", "§5.4#1: {r:?}");
    assert_eq!(r[4][1]["type"], "fromAccountNotFound");

    // From Team (lrswite), with the original destroyed: gone from joe's
    // IMAP; bob's copy gets the keywords it asks for.
    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([
            ["Email/copy", {"fromAccountId": joe, "accountId": bob, "create": {
                "t": {"id": theirs["team-one"], "mailboxIds": {inbox.as_str().unwrap(): true}, "keywords": {"$answered": true}}
            }, "onSuccessDestroyOriginal": true}, "c"],
            ["Email/get", {"accountId": bob, "ids": ["#t"], "properties": ["keywords"]}, "g"]
        ]),
    );
    assert_eq!(r[1][1]["destroyed"], json!([theirs["team-one"]]), "{r:?}");
    assert_eq!(r[2][1]["list"][0]["keywords"], json!({"$answered": true}));
    let team = imap(j.s.addr("imap"), "x STATUS Team (MESSAGES)\r\n").await;
    assert!(team.contains("(MESSAGES 1)"), "{team}");

    // Into joe's account: Team takes mail from bob (i); Alpha does not.
    let boxes = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Mailbox/get", {"accountId": joe, "properties": ["name"]}, "0"]]),
    )[0][1]["list"]
        .clone();
    let id_of = |n: &str| {
        boxes
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let copied = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Email/query", {"accountId": bob}, "0"]]),
    )[0][1]["ids"][0]
        .clone();
    let r = j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Email/copy", {"fromAccountId": bob, "accountId": joe, "create": {
            "in": {"id": copied, "mailboxIds": {id_of("Team"): true}},
            "no": {"id": copied, "mailboxIds": {id_of("Alpha"): true}}
        }}, "c"]]),
    );
    assert!(r[0][1]["created"].get("in").is_some(), "{r:?}");
    assert_eq!(r[0][1]["notCreated"]["no"]["type"], "forbidden", "{r:?}");
    let team = imap(j.s.addr("imap"), "x STATUS Team (MESSAGES)\r\n").await;
    assert!(team.contains("(MESSAGES 2)"), "{team}");

    // §6.1: bob's upload to joe's account is bob's: carol, who can read
    // joe's Team too, cannot fetch it; bob can.
    let (status, up) = j.upload_as(BOB, &joe, "text/plain", b"bob's draft");
    assert_eq!(status, 201, "{up}");
    let blob = up["blobId"].as_str().unwrap();
    let url = format!("{}/jmap/download/{joe}/{blob}/d.txt", j.base());
    let (own, _, body) = j.curl(&["-u", &format!("{BOB}:pw"), &url], None);
    assert_eq!((own, body.as_str()), (200, "bob's draft"));
    let (other, _, _) = j.curl(&["-u", &format!("{CAROL}:pw"), &url], None);
    assert_eq!(other, 404);
}

/// A second client: Python (requests) finds joe's account in bob's
/// session (jmapc's Session model leaves `accounts` out) and jmapc copies
/// an Email from it with its EmailCopy method.
#[tokio::test]
async fn jmapc_copies_from_a_shared_account() {
    let j = server("");
    let joe = j.account_id();
    shared_setup(&j).await;
    let theirs = ids_by_subject(&j, BOB, &joe);
    let port = j.s.addr("https").port();
    let out = j.python(&format!(
        "from jmapc import Client, Email\n\
         from jmapc.methods import EmailCopy, MailboxGet, EmailGet\n\
         c = Client.create_with_password(host='127.0.0.1:{port}', user='{BOB}', password='pw')\n\
         import requests\n\
         accounts = requests.get('https://127.0.0.1:{port}/jmap/session', auth=('{BOB}', 'pw')).json()['accounts']\n\
         shared = [a for a, v in accounts.items() if not v['isPersonal']]\n\
         print('shared', shared)\n\
         inbox = [m.id for m in c.request(MailboxGet(ids=None)).data if m.role == 'inbox'][0]\n\
         r = c.request(EmailCopy(from_account_id=shared[0], create={{'x': Email(id='{id}', mailbox_ids={{inbox: True}})}}))\n\
         new = r.created['x'].id\n\
         g = c.request(EmailGet(ids=[new], properties=['subject', 'mailboxIds']))\n\
         print('copied', g.data[0].subject, list(g.data[0].mailbox_ids) == [inbox])\n",
        id = theirs["both"]
    ));
    assert!(out.contains(&format!("shared ['{joe}']")), "{out}");
    assert!(out.contains("copied both True"), "{out}");
}

/// RFC 8620 §7.3 with §1.6.2: bob's event source names joe's account when
/// mail arrives in a mailbox joe shares with him; the event id holds the
/// state of both accounts, so a reconnection with Last-Event-ID gets what
/// changed in joe's account meanwhile.
#[tokio::test]
async fn event_source_pushes_shared_account_changes() {
    let j = server("");
    let joe = j.account_id();
    shared_setup(&j).await;
    let listen = |extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-s", "-N", "--max-time", "20", "--cacert"])
            .arg(&j.ca)
            .args(["-u", &format!("{BOB}:pw")])
            .args(extra)
            .arg(format!(
                "{}/jmap/eventsource?types=Email&closeafter=state&ping=0",
                j.base()
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let curl = listen(&[]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let out = imap(j.s.addr("imap"), &append("Team", 7, "pushed")).await;
    assert!(out.contains("p7 OK"), "{out}");
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let data: Value = serde_json::from_str(
        text.lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("no event: {text}")),
    )
    .unwrap();
    assert!(data["changed"][&joe]["Email"].is_string(), "{data}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_string();
    let joe_num = joe.trim_start_matches('a');
    assert!(
        id.contains(&format!(";{joe_num}:")),
        "the id carries joe's state: {id}"
    );

    // Missed while away: it comes at once on reconnection.
    let out = imap(j.s.addr("imap"), &append("Team", 8, "missed")).await;
    assert!(out.contains("p8 OK"), "{out}");
    let curl = listen(&["-H", &format!("Last-Event-ID: {id}")]);
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("\"{joe}\"")), "{text}");
}

/// RFC 8620 §7.2 with §1.6.2: bob's verified push subscription hears of
/// mail arriving in joe's shared mailbox, named by joe's account.
#[tokio::test]
async fn push_subscription_hears_shared_account_changes() {
    let (j, addr, mut pushes, _pki) = server_with_push_receiver().await;
    let joe = j.account_id();
    shared_setup(&j).await;
    let url = format!("https://127.0.0.1:{}/push/bob", addr.port());
    let r = j.api_as(
        BOB,
        &[CORE],
        json!([["PushSubscription/set", {"create": {"p": {"deviceClientId": "bob-1", "url": url, "types": ["Email"]}}}, "s"]]),
    );
    let id = r[0][1]["created"]["p"]["id"].as_str().unwrap().to_string();
    let (_, v) = next_push(&mut pushes).await;
    let code = v["verificationCode"].as_str().unwrap().to_string();
    let r = j.api_as(
        BOB,
        &[CORE],
        json!([["PushSubscription/set", {"update": {id.as_str(): {"verificationCode": code}}}, "v"]]),
    );
    assert!(r[0][1]["updated"].get(&id).is_some(), "{r:?}");
    let out = imap(j.s.addr("imap"), &append("Team", 9, "to-push")).await;
    assert!(out.contains("p9 OK"), "{out}");
    let (head, change) = next_push(&mut pushes).await;
    assert!(head.starts_with("POST /push/bob "), "{head}");
    assert!(change["changed"][&joe]["Email"].is_string(), "{change}");
}
