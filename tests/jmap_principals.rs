//! JMAP Sharing (RFC 9670) against a running Petrel: Principals from
//! the directory, Mailbox `shareWith` as the mailbox's IMAP access list
//! (RFC 4314), and ShareNotifications when someone else changes what a
//! user may do. Driven by curl, IMAP and Python's jmapc.

mod common;

use common::jmap::*;
use serde_json::{json, Value};

const PRINCIPALS: &str = "urn:ietf:params:jmap:principals";
const OWNER: &str = "urn:ietf:params:jmap:principals:owner";
const JOE: &str = "joe@example.org";
const BOB: &str = "bob@example.org";
const CAROL: &str = "carol@example.org";

/// A principal's id, found by Principal/query on its address.
fn principal(j: &Jmap, user: &str, email: &str) -> String {
    let acct = j.session_as(user)["primaryAccounts"][PRINCIPALS].clone();
    let r = j.api_as(
        user,
        &[CORE, PRINCIPALS],
        json!([["Principal/query", {"accountId": acct, "filter": {"email": email}}, "q"]]),
    );
    let ids = r[0][1]["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{email}: {r:?}");
    ids[0].as_str().unwrap().to_string()
}

/// joe's IMAP session's answers, quotes taken out (`* ACL Team joe lr`).
async fn acl(j: &Jmap, cmds: &str) -> String {
    imap(j.s.addr("imap"), cmds).await.replace('"', "")
}

/// The id of joe's mailbox `name`.
fn mailbox(j: &Jmap, name: &str) -> String {
    let acct = j.account_id();
    let r = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/query", {"accountId": acct, "filter": {"name": name}}, "q"]]),
    );
    r[0][1]["ids"][0].as_str().unwrap().to_string()
}

/// RFC 9670 §1.5: the principals capability, the Principals in the
/// user's own account (currentUserPrincipalId), and every account naming
/// its owner's Principal (principals:owner). §2: Principal/get and
/// /query over the directory — the user's domain only by default; a
/// group is type "group"; /set refused; /changes follows the directory.
#[tokio::test]
async fn principals_come_from_the_directory() {
    let j = server("");
    j.s.account(BOB);
    j.s.account("dave@other.test");
    j.s.cli_ok(&["account", "update", BOB, "--name", "Bob Builder"]);
    j.s.cli_ok(&["group", "create", "team@example.org", "--name", "Team"]);
    let s = j.session_as(JOE);
    let joe = j.account_id();
    assert!(s["capabilities"].get(PRINCIPALS).is_some(), "{s}");
    assert_eq!(s["primaryAccounts"][PRINCIPALS], joe.as_str());
    let caps = &s["accounts"][&joe]["accountCapabilities"];
    let me = caps[PRINCIPALS]["currentUserPrincipalId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(caps[OWNER]["principalId"], me.as_str());
    assert_eq!(caps[OWNER]["accountIdForPrincipal"], joe.as_str());

    let r = j.api(
        &[CORE, PRINCIPALS],
        json!([["Principal/get", {"accountId": joe, "ids": null}, "g"]]),
    );
    let list = r[0][1]["list"].as_array().unwrap();
    let emails: Vec<&str> = list.iter().map(|p| p["email"].as_str().unwrap()).collect();
    assert_eq!(
        emails,
        [JOE, BOB, "team@example.org"],
        "dave is in another domain: {list:?}"
    );
    let bob = &list[1];
    assert_eq!(bob["type"], "individual");
    assert_eq!(bob["name"], "Bob Builder");
    assert_eq!(bob["accounts"], Value::Null, "bob shares nothing with joe");
    assert_eq!(list[2]["type"], "group");
    assert_eq!(list[2]["name"], "Team");
    let mine = list.iter().find(|p| p["id"] == me.as_str()).unwrap();
    assert_eq!(mine["accounts"][&joe]["isPersonal"], true, "{mine}");

    // Filters, one at a time, and sorts.
    let q = |filter: Value, sort: Value| -> Vec<String> {
        let r = j.api(
            &[CORE, PRINCIPALS],
            json!([["Principal/query", {"accountId": joe, "filter": filter, "sort": sort}, "q"]]),
        );
        r[0][1]["ids"]
            .as_array()
            .unwrap_or_else(|| panic!("{r:?}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let bob_id = bob["id"].as_str().unwrap().to_string();
    let team_id = list[2]["id"].as_str().unwrap().to_string();
    assert_eq!(q(json!({"name": "builder"}), json!([])), [bob_id.as_str()]);
    assert_eq!(q(json!({"type": "group"}), json!([])), [team_id.as_str()]);
    assert_eq!(q(json!({"text": "TEAM@"}), json!([])), [team_id.as_str()]);
    assert_eq!(q(json!({"accountIds": [joe]}), json!([])), [me.as_str()]);
    assert!(q(json!({"timeZone": "Europe/Paris"}), json!([])).is_empty());
    assert_eq!(
        q(
            json!({}),
            json!([{"property": "email", "isAscending": false}])
        ),
        [team_id.clone(), me.clone(), bob_id.clone()]
    );
    let r = j.api(
        &[CORE, PRINCIPALS],
        json!([
            ["Principal/query", {"accountId": joe, "filter": {"colour": "red"}}, "a"],
            ["Principal/set", {"accountId": joe, "update": {(bob_id.clone()): {"name": "x"}}, "destroy": [me]}, "b"],
            ["Principal/get", {"accountId": joe, "ids": ["P999"], "properties": ["email"]}, "c"]
        ]),
    );
    assert_eq!(r[0][1]["type"], "unsupportedFilter", "{r:?}");
    assert_eq!(r[1][1]["notUpdated"][&bob_id]["type"], "forbidden", "{r:?}");
    assert_eq!(r[1][1]["notDestroyed"][&me]["type"], "forbidden");
    assert_eq!(r[2][1]["notFound"], json!(["P999"]));

    // /changes: an account made, one renamed, the group deleted.
    let state = r[2][1]["state"].as_str().unwrap().to_string();
    let by_name = json!([{"property": "name"}]);
    let old = j.api(
        &[CORE, PRINCIPALS],
        json!([["Principal/query", {"accountId": joe, "sort": by_name}, "q"]]),
    )[0][1]
        .clone();
    assert_eq!(old["queryState"], state.as_str());
    j.s.account(CAROL);
    j.s.cli_ok(&["account", "update", BOB, "--name", "Robert"]);
    j.s.cli_ok(&["group", "delete", "team@example.org"]);
    j.s.cli_ok(&["account", "update", "dave@other.test", "--name", "D"]);
    let carol_id = principal(&j, JOE, CAROL);
    let r = j.api(
        &[CORE, PRINCIPALS],
        json!([["Principal/changes", {"accountId": joe, "sinceState": state}, "c"]]),
    );
    let c = &r[0][1];
    assert_eq!(c["created"], json!([carol_id]), "{c}");
    assert_eq!(
        c["updated"],
        json!([bob_id]),
        "dave's change is not joe's to see: {c}"
    );
    assert_eq!(c["destroyed"], json!([team_id]));
    assert_ne!(c["newState"], state.as_str());
    let r = j.api(
        &[CORE, PRINCIPALS],
        json!([["Principal/changes", {"accountId": joe, "sinceState": state, "maxChanges": 1}, "c"]]),
    );
    assert_eq!(r[0][1]["hasMoreChanges"], true, "{r:?}");
    assert_eq!(r[0][1]["created"], json!([carol_id]));
    // queryChanges splices the old results into the new (RFC 8620 §5.6):
    // bob renamed Robert moves after joe.
    let r = j.api(
        &[CORE, PRINCIPALS],
        json!([
            ["Principal/queryChanges", {"accountId": joe, "sort": by_name, "sinceQueryState": state}, "c"],
            ["Principal/query", {"accountId": joe, "sort": by_name}, "q"]
        ]),
    );
    let new = ids(&r[1][1]);
    assert_eq!(new.len(), 3, "{r:?}");
    assert_eq!(splice(&ids(&old), &r[0][1]), new, "{r:?}");
    assert_ne!(ids(&old)[..2], new[..2], "the order changed");
    // Without the capability in `using`, the methods do not exist.
    let r = j.api(
        &[CORE, MAIL],
        json!([["Principal/get", {"accountId": joe}, "g"]]),
    );
    assert_eq!(r[0][1]["type"], "unknownMethod");
}

/// `jmap.principals = "all"` lists other domains too; a share makes its
/// owner's Principal visible whatever the scope, with the shared account
/// in `accounts`, and the shared account names that Principal as owner.
#[tokio::test]
async fn principal_scope_and_shared_accounts() {
    let j = server("[jmap]\nprincipals = \"all\"\n");
    j.s.account("dave@other.test");
    let joe = j.account_id();
    let r = j.api(
        &[CORE, PRINCIPALS],
        json!([["Principal/query", {"accountId": joe}, "q"]]),
    );
    assert_eq!(r[0][1]["ids"].as_array().unwrap().len(), 2, "{r:?}");

    let k = server("");
    k.s.account("dave@other.test");
    let out = imap(
        k.s.addr("imap"),
        "c CREATE Team\r\ns SETACL Team dave@other.test lr\r\n",
    )
    .await;
    assert!(out.contains("s OK"), "{out}");
    let joe = k.account_id();
    let s = k.session_as("dave@other.test");
    let dave_acct = s["primaryAccounts"][PRINCIPALS].as_str().unwrap();
    let owner = &s["accounts"][&joe]["accountCapabilities"][OWNER];
    assert_eq!(owner["accountIdForPrincipal"], dave_acct, "{s}");
    let joe_principal = owner["principalId"].as_str().unwrap();
    let r = k.api_as(
        "dave@other.test",
        &[CORE, PRINCIPALS],
        json!([["Principal/get", {"accountId": dave_acct, "ids": [joe_principal]}, "g"]]),
    );
    let p = &r[0][1]["list"][0];
    assert_eq!(p["email"], JOE, "joe shares with dave: {r:?}");
    assert_eq!(p["accounts"][&joe]["isReadOnly"], true);
    assert_eq!(p["accounts"][&joe]["isPersonal"], false);
}

/// Mailbox `shareWith` (RFC 9670 §4 on RFC 8621 Mailbox rights) is the
/// IMAP access list: a JMAP change shows in IMAP GETACL and the
/// grantee's myRights, an IMAP SETACL shows in shareWith, the owner's
/// Mailbox state moves, and errors are SetErrors.
#[tokio::test]
async fn share_with_is_the_imap_access_list() {
    let j = server("");
    j.s.account(BOB);
    j.s.account(CAROL);
    let out = imap(j.s.addr("imap"), "c CREATE Team\r\n").await;
    assert!(out.contains("c OK"), "{out}");
    let joe = j.account_id();
    let team = mailbox(&j, "Team");
    let (bob, carol, me) = (
        principal(&j, JOE, BOB),
        principal(&j, JOE, CAROL),
        principal(&j, JOE, JOE),
    );
    let get = |j: &Jmap| {
        j.api(
            &[CORE, MAIL, PRINCIPALS],
            json!([["Mailbox/get", {"accountId": joe, "ids": [team], "properties": ["shareWith"]}, "g"]]),
        )[0][1]
            .clone()
    };
    let g = get(&j);
    assert_eq!(g["list"][0]["shareWith"], Value::Null, "{g}");
    let state = g["state"].as_str().unwrap().to_string();

    let r = j.api(
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            "shareWith": {(bob.clone()): {"mayReadItems": true, "maySetSeen": true}}}}}, "s"]]),
    );
    assert!(r[0][1]["updated"].get(&team).is_some(), "{r:?}");
    assert_ne!(r[0][1]["newState"], state.as_str(), "{r:?}");
    let out = acl(&j, "a GETACL Team\r\n").await;
    assert!(out.contains(&format!("{BOB} lrs")), "{out}");
    let r = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/changes", {"accountId": joe, "sinceState": state}, "c"]]),
    );
    assert_eq!(r[0][1]["updated"], json!([team]), "{r:?}");
    // bob sees joe's account, with exactly those rights.
    let r = j.api_as(
        BOB,
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/get", {"accountId": joe, "properties": ["myRights", "shareWith"]}, "g"]]),
    );
    let mb = &r[0][1]["list"][0];
    assert_eq!(mb["myRights"]["mayReadItems"], true, "{r:?}");
    assert_eq!(mb["myRights"]["maySetSeen"], true);
    assert_eq!(mb["myRights"]["mayAddItems"], false);
    assert_eq!(mb["shareWith"], Value::Null, "bob may not administer it");

    // IMAP SETACL shows in shareWith; one right patched by path.
    let out = imap(j.s.addr("imap"), &format!("a SETACL Team {CAROL} lri\r\n")).await;
    assert!(out.contains("a OK"), "{out}");
    let r = j.api(
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            (format!("shareWith/{bob}/mayAddItems")): true}}}, "s"]]),
    );
    assert!(r[0][1]["updated"].get(&team).is_some(), "{r:?}");
    let sw = &get(&j)["list"][0]["shareWith"];
    assert_eq!(sw[&carol]["mayAddItems"], true, "{sw}");
    assert_eq!(sw[&carol]["maySetSeen"], false);
    assert_eq!(sw[&bob]["mayAddItems"], true);
    assert_eq!(sw[&bob]["maySetSeen"], true);
    let out = acl(&j, "a GETACL Team\r\n").await;
    assert!(out.contains(&format!("{BOB} lrsi")), "{out}");

    // Errors: the owner, an unknown Principal, a bad right, a right bob
    // lacks, and shareWith without the principals capability.
    let r = j.api(
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            (format!("shareWith/{me}")): {"mayReadItems": true}}}}, "a"],
              ["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            "shareWith/P999": {"mayReadItems": true}}}}, "b"],
              ["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            (format!("shareWith/{bob}")): {"mayFly": true}}}}, "c"]]),
    );
    for (i, resp) in r.iter().enumerate() {
        assert_eq!(
            resp[1]["notUpdated"][&team]["type"], "invalidProperties",
            "{i}: {r:?}"
        );
    }
    let r = j.api_as(
        BOB,
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            (format!("shareWith/{carol}")): null}}}, "s"]]),
    );
    assert_eq!(r[0][1]["notUpdated"][&team]["type"], "forbidden", "{r:?}");
    let r = j.api(
        &[CORE, MAIL],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {"shareWith": null}}}, "s"],
               ["Mailbox/get", {"accountId": joe, "properties": ["shareWith"]}, "g"]]),
    );
    assert_eq!(r[0][1]["notUpdated"][&team]["type"], "invalidProperties");
    assert_eq!(r[1][1]["type"], "invalidArguments", "{r:?}");
    // Nothing of the failed calls reached the access list.
    let out = acl(&j, "a GETACL Team\r\n").await;
    assert!(
        out.contains(&format!("{BOB} lrsi")) && out.contains(&format!("{CAROL} lri")),
        "{out}"
    );

    // The whole map replaced: carol's grant goes, bob's changes; a new
    // mailbox made with shareWith.
    let r = j.api(
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/set", {"accountId": joe,
            "update": {(team.clone()): {"shareWith": {(bob.clone()): {"mayReadItems": true}}}},
            "create": {"n": {"name": "Drop", "shareWith": {(carol.clone()): {"mayAddItems": true}}}}}, "s"]]),
    );
    assert!(r[0][1]["created"].get("n").is_some(), "{r:?}");
    let out = acl(&j, "a GETACL Team\r\nb GETACL Drop\r\n").await;
    let line = out.lines().find(|l| l.starts_with("* ACL Team")).unwrap();
    assert!(line.ends_with(&format!("{BOB} lr")), "{out}");
    assert!(!line.contains(CAROL), "{out}");
    assert!(out.contains(&format!("{CAROL} i")), "{out}");
}

/// RFC 9670 §3: a change of bob's rights by joe (IMAP or JMAP) gives bob
/// a ShareNotification with the old and new rights; his own changes
/// give none; /changes, /query and /set (destroy only) work on them;
/// jmapc reads them too.
#[tokio::test]
async fn share_notifications_tell_of_rights_changes() {
    let j = server("");
    j.s.account(BOB);
    let out = imap(
        j.s.addr("imap"),
        &format!("c CREATE Team\r\ns SETACL Team {BOB} lr\r\n"),
    )
    .await;
    assert!(out.contains("s OK"), "{out}");
    let joe = j.account_id();
    let team = mailbox(&j, "Team");
    let bob = principal(&j, JOE, BOB);
    let mine = j.session_as(BOB)["primaryAccounts"][PRINCIPALS]
        .as_str()
        .unwrap()
        .to_string();
    let notes = |j: &Jmap| {
        j.api_as(
            BOB,
            &[CORE, PRINCIPALS],
            json!([["ShareNotification/get", {"accountId": mine}, "g"]]),
        )[0][1]
            .clone()
    };
    let g = notes(&j);
    let list = g["list"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{g}");
    let n = &list[0];
    assert_eq!(n["changedBy"]["email"], JOE);
    assert_eq!(n["objectType"], "Mailbox");
    assert_eq!(n["objectAccountId"], joe.as_str());
    assert_eq!(n["objectId"], team.as_str());
    assert_eq!(n["name"], "Team");
    assert_eq!(n["oldRights"], Value::Null);
    assert_eq!(n["newRights"]["mayReadItems"], true);
    assert_eq!(n["newRights"]["maySetSeen"], false);
    assert!(n["created"].as_str().unwrap().ends_with('Z'));
    let state = g["state"].as_str().unwrap().to_string();
    let newest = json!([{"property": "created", "isAscending": false}]);
    let old = j.api_as(
        BOB,
        &[CORE, PRINCIPALS],
        json!([["ShareNotification/query", {"accountId": mine, "sort": newest}, "q"]]),
    )[0][1]
        .clone();

    // By JMAP: a second notification; bob's own subscription makes none.
    j.api(
        &[CORE, MAIL, PRINCIPALS],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {
            (format!("shareWith/{bob}/maySetSeen")): true}}}, "s"]]),
    );
    j.api_as(
        BOB,
        &[CORE, MAIL],
        json!([["Mailbox/set", {"accountId": joe, "update": {(team.clone()): {"isSubscribed": true}}}, "s"]]),
    );
    // The mailbox deleted: access gone.
    let out = imap(j.s.addr("imap"), "d DELETE Team\r\n").await;
    assert!(out.contains("d OK"), "{out}");
    let r = j.api_as(
        BOB,
        &[CORE, PRINCIPALS],
        json!([
            ["ShareNotification/changes", {"accountId": mine, "sinceState": state}, "c"],
            ["ShareNotification/query", {"accountId": mine, "filter": {"objectAccountId": joe},
              "sort": [{"property": "created", "isAscending": false}]}, "q"],
            ["ShareNotification/get", {"accountId": mine, "#ids": {"resultOf": "q", "name": "ShareNotification/query", "path": "/ids"},
              "properties": ["oldRights", "newRights"]}, "g"]
        ]),
    );
    assert_eq!(r[0][1]["created"].as_array().unwrap().len(), 2, "{r:?}");
    let ids = r[1][1]["ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 3, "{r:?}");
    let got = r[2][1]["list"].as_array().unwrap();
    assert_eq!(got[0]["newRights"], Value::Null, "deleted: {got:?}");
    assert_eq!(got[0]["oldRights"]["maySetSeen"], true);
    assert_eq!(got[1]["oldRights"]["maySetSeen"], false);
    assert_eq!(got[1]["newRights"]["maySetSeen"], true);
    let r = j.api_as(
        BOB,
        &[CORE, PRINCIPALS],
        json!([
            ["ShareNotification/queryChanges", {"accountId": mine, "sort": newest, "sinceQueryState": old["queryState"]}, "c"],
            ["ShareNotification/query", {"accountId": mine, "sort": newest}, "q"]
        ]),
    );
    assert_eq!(r[0][1]["added"].as_array().unwrap().len(), 2, "{r:?}");
    assert_eq!(
        splice(&common::jmap::ids(&old), &r[0][1]),
        common::jmap::ids(&r[1][1])
    );

    // Dismissed with /set destroy; made or changed, never.
    let first = ids[2].as_str().unwrap();
    let r = j.api_as(
        BOB,
        &[CORE, PRINCIPALS],
        json!([["ShareNotification/set", {"accountId": mine, "destroy": [first],
            "create": {"x": {"name": "forged"}}, "update": {(ids[0].as_str().unwrap()): {"name": "y"}}}, "s"]]),
    );
    let s = &r[0][1];
    assert_eq!(s["destroyed"], json!([first]), "{s}");
    assert_eq!(s["notCreated"]["x"]["type"], "forbidden");
    assert_eq!(
        s["notUpdated"][ids[0].as_str().unwrap()]["type"],
        "forbidden"
    );
    assert_eq!(notes(&j)["list"].as_array().unwrap().len(), 2);
    assert!(
        notes(&j).to_string().contains("Team"),
        "the name survives the mailbox"
    );

    // A second client: jmapc's CustomMethod.
    let port = j.s.addr("https").port();
    let out = j.python(&format!(
        "from jmapc import Client\n\
         from jmapc.methods import CustomMethod\n\
         c = Client.create_with_password(host='127.0.0.1:{port}', user='{BOB}', password='pw')\n\
         def call(name, data):\n\
         \x20   m = CustomMethod(data=data)\n\
         \x20   m.jmap_method = name\n\
         \x20   CustomMethod.using = {{'{PRINCIPALS}'}}\n\
         \x20   return c.request(m).data\n\
         p = call('Principal/query', {{'accountId': '{mine}', 'filter': {{'email': '{JOE}'}}}})\n\
         g = call('Principal/get', {{'accountId': '{mine}', 'ids': p['ids']}})\n\
         print('principal', g['list'][0]['email'], g['list'][0]['type'])\n\
         n = call('ShareNotification/get', {{'accountId': '{mine}'}})\n\
         print('notes', len(n['list']), sorted(set(x['changedBy']['email'] for x in n['list'])))\n"
    ));
    assert!(
        out.contains(&format!("principal {JOE} individual")),
        "{out}"
    );
    assert!(out.contains(&format!("notes 2 ['{JOE}']")), "{out}");
}
