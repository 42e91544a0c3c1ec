//! JMAP for Sieve scripts (RFC 9661) against a running Petrel: with curl
//! (every request written out) and with the `jmap-client` crate as a
//! second, independent client. The scripts are ManageSieve's: one
//! activated over JMAP files real SMTP deliveries.

mod common;

use common::jmap::*;
use serde_json::{json, Value};

const SIEVE: &str = "urn:ietf:params:jmap:sieve";

const LISTS: &str = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"List-Id\" \"rust\" {\n  fileinto :create \"Lists\";\n}\n";

impl Jmap {
    /// Uploads a script; its blob id.
    fn upload_script(&self, account: &str, text: &str) -> String {
        let (status, v) = self.upload(account, "application/sieve", text.as_bytes());
        assert_eq!(status, 201, "{v}");
        v["blobId"].as_str().unwrap().to_string()
    }

    /// One SieveScript call; its response arguments (after checking the
    /// name).
    fn sieve(&self, method: &str, args: Value) -> Value {
        let r = self.api(&[CORE, SIEVE], json!([[method, args, "s"]]));
        assert_eq!(r[0][0], method, "{}", r[0][1]);
        r[0][1].clone()
    }
}

/// Counts the messages of `mailbox` over IMAP, waiting up to 10 s for
/// `want`.
async fn wait_count(j: &Jmap, mailbox: &str, want: usize) -> usize {
    let mut n = 0;
    for _ in 0..100 {
        let out = imap(
            j.s.addr("imap"),
            &format!("b STATUS {mailbox} (MESSAGES)\r\n"),
        )
        .await;
        n = out
            .split("(MESSAGES ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        if n == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    n
}

async fn send_list_mail(j: &Jmap, n: usize) {
    let body = format!(
        "From: ann@remote.test\r\nTo: joe@example.org\r\nList-Id: <rust.lists.example>\r\nSubject: list {n}\r\nMessage-ID: <l{n}@remote.test>\r\n\r\nhello\r\n"
    );
    let r = common::smtp_send(
        j.s.addr("smtp"),
        "ann@remote.test",
        &["joe@example.org"],
        &body,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
}

/// §1.2.1 and §2.1–2.4 with curl: the capability, a script uploaded,
/// created and activated in one call, read back as a blob, filing real
/// mail; then replaced, renamed, deactivated and destroyed.
#[tokio::test]
async fn scripts_are_created_activated_and_filter_mail() {
    let j = server("[sieve]\nmax-scripts = 3\nmax-script-size = 2000\n");
    let account = j.account_id();
    let session = j.session_as("joe@example.org");
    assert_eq!(session["capabilities"][SIEVE], json!({}), "{session}");
    assert_eq!(session["primaryAccounts"][SIEVE], json!(account));
    let cap = &session["accounts"][&account]["accountCapabilities"][SIEVE];
    assert_eq!(cap["maxSizeScript"], 2000, "{cap}");
    assert_eq!(cap["maxNumberScripts"], 3);
    assert_eq!(cap["maxSizeScriptName"], 512);
    assert_eq!(cap["notificationMethods"], json!(["mailto"]));
    assert!(cap["implementation"]
        .as_str()
        .unwrap()
        .starts_with("Petrel"));
    let exts: Vec<&str> = cap["sieveExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        exts.contains(&"fileinto") && exts.contains(&"vacation"),
        "{exts:?}"
    );

    // Without the capability in `using`, the methods are unknown (RFC
    // 8620 §3.6.2).
    let r = j.api(
        &[CORE],
        json!([["SieveScript/get", {"accountId": account}, "0"]]),
    );
    assert_eq!(r[0][0], "error");
    assert_eq!(r[0][1]["type"], "unknownMethod");

    // §2.4: create and activate in one call, by creation reference.
    let blob = j.upload_script(&account, LISTS);
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "create": {"A": {"name": "lists", "blobId": blob}},
               "onSuccessActivateScript": "#A"}),
    );
    let created = &r["created"]["A"];
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["isActive"], true, "{r}");
    assert_eq!(created["name"], "lists");
    let script_blob = created["blobId"].as_str().unwrap().to_string();
    assert_ne!(r["oldState"], r["newState"]);

    // §2.3: /get, and the text is the blob /get names (§2.2).
    let g = j.sieve(
        "SieveScript/get",
        json!({"accountId": account, "ids": null}),
    );
    assert_eq!(g["list"].as_array().unwrap().len(), 1, "{g}");
    assert_eq!(g["list"][0]["id"], json!(id));
    assert_eq!(g["list"][0]["isActive"], true);
    assert_eq!(g["list"][0]["blobId"], json!(script_blob));
    assert_eq!(g["state"], r["newState"]);
    let url = format!(
        "{}/jmap/download/{account}/{script_blob}/lists.siv?type=application/sieve",
        j.base()
    );
    let (status, _, text) = j.curl(&["-u", "joe@example.org:pw", &url], None);
    assert_eq!(status, 200);
    assert_eq!(text, LISTS);
    let g = j.sieve(
        "SieveScript/get",
        json!({"accountId": account, "ids": [id, "F999"], "properties": ["name"]}),
    );
    assert_eq!(g["list"], json!([{"id": id, "name": "lists"}]));
    assert_eq!(g["notFound"], json!(["F999"]));

    // The active script files mail delivered over SMTP.
    send_list_mail(&j, 1).await;
    assert_eq!(wait_count(&j, "Lists", 1).await, 1);

    // Replacing the text (an update naming a new blob) gives a new blob
    // id; the old one names nothing any more.
    let v2 = LISTS.replace("\"Lists\"", "\"Lists2\"");
    let blob2 = j.upload_script(&account, &v2);
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "update": {id.clone(): {"blobId": blob2, "name": "lists-v2"}}}),
    );
    let new_blob = r["updated"][&id]["blobId"].as_str().unwrap().to_string();
    assert_ne!(new_blob, script_blob, "{r}");
    let (status, _, _) = j.curl(&["-u", "joe@example.org:pw", &url], None);
    assert_eq!(status, 404, "the old text's blob id is gone");
    let g = j.sieve("SieveScript/get", json!({"accountId": account}));
    assert_eq!(g["list"][0]["name"], "lists-v2");
    assert_eq!(g["list"][0]["isActive"], true, "renaming keeps it active");
    send_list_mail(&j, 2).await;
    assert_eq!(wait_count(&j, "Lists2", 1).await, 1);

    // §2.4: the active script is not destroyed; deactivated by one call,
    // destroyed by the next.
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "destroy": [id]}),
    );
    assert_eq!(r["notDestroyed"][&id]["type"], "sieveIsActive", "{r}");
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "onSuccessDeactivateScript": true}),
    );
    assert_eq!(r["updated"][&id], json!({"isActive": false}), "{r}");
    send_list_mail(&j, 3).await;
    assert_eq!(wait_count(&j, "INBOX", 1).await, 1, "no script: the Inbox");
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "destroy": [id]}),
    );
    assert_eq!(r["destroyed"], json!([id]), "{r}");
    let g = j.sieve("SieveScript/get", json!({"accountId": account}));
    assert_eq!(g["list"], json!([]));
}

/// §2.4's SetErrors and the rule that activation follows only a call
/// that fully succeeded; §2.5 /query; §2.6 /validate.
#[tokio::test]
async fn errors_query_and_validate() {
    let j = server("[sieve]\nmax-scripts = 3\nmax-script-size = 2000\n");
    let account = j.account_id();
    let good = j.upload_script(&account, "keep;\n");
    let bad = j.upload_script(
        &account,
        "require \"fileinto\";\nif true {\n  fileinto \"x\"\n}\n",
    );
    let unknown = j.upload_script(&account, "require \"convert\";\nkeep;\n");
    let big = j.upload_script(&account, &format!("# {}\nkeep;\n", "x".repeat(2100)));
    let latin1 = {
        let (status, v) = j.upload(&account, "application/sieve", b"# caf\xe9\nkeep;\n");
        assert_eq!(status, 201);
        v["blobId"].as_str().unwrap().to_string()
    };

    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "create": {
            "ok": {"name": "one", "blobId": good},
            "syntax": {"name": "two", "blobId": bad},
            "ext": {"name": "three", "blobId": unknown},
            "big": {"name": "four", "blobId": big},
            "enc": {"name": "five", "blobId": latin1},
            "srv": {"name": "six", "blobId": good, "isActive": true},
            "noblob": {"name": "seven"},
            "nosuch": {"name": "eight", "blobId": "U999999"},
            "badname": {"name": "a\u{1}b", "blobId": good},
        }, "onSuccessActivateScript": "#ok"}),
    );
    let ne = &r["notCreated"];
    assert_eq!(ne["syntax"]["type"], "invalidSieve", "{r}");
    assert!(
        ne["syntax"]["description"]
            .as_str()
            .unwrap()
            .contains("line"),
        "the error says where: {r}"
    );
    assert_eq!(ne["ext"]["type"], "invalidSieve");
    assert!(ne["ext"]["description"]
        .as_str()
        .unwrap()
        .contains("convert"));
    assert_eq!(ne["big"]["type"], "tooLarge");
    assert_eq!(ne["enc"]["type"], "invalidSieve");
    assert_eq!(ne["srv"]["type"], "invalidProperties");
    assert_eq!(ne["srv"]["properties"], json!(["isActive"]));
    assert_eq!(ne["noblob"]["properties"], json!(["blobId"]));
    assert_eq!(ne["nosuch"]["properties"], json!(["blobId"]));
    assert_eq!(ne["badname"]["properties"], json!(["name"]));
    let one = r["created"]["ok"]["id"].as_str().unwrap().to_string();
    // Something failed: onSuccessActivateScript is not applied.
    assert_eq!(r["created"]["ok"]["isActive"], false, "{r}");

    // alreadyExists names the script that has the name.
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "create": {"dup": {"name": "one", "blobId": good}}}),
    );
    assert_eq!(r["notCreated"]["dup"]["type"], "alreadyExists", "{r}");
    assert_eq!(r["notCreated"]["dup"]["existingId"], json!(one));

    // A null name gets one from the server; past maxNumberScripts is
    // overQuota.
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "create": {
            "n1": {"name": null, "blobId": good},
            "n2": {"blobId": good},
            "n3": {"name": "x", "blobId": good},
        }, "onSuccessActivateScript": "#n1"}),
    );
    let n1 = r["created"]["n1"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["created"]["n1"]["name"], "script 1", "{r}");
    assert_eq!(r["created"]["n2"]["name"], "script 2");
    assert_eq!(r["notCreated"]["n3"]["type"], "overQuota");
    assert_eq!(r["created"]["n1"]["isActive"], false);

    // isActive is the server's: an update cannot set it.
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "update": {one.clone(): {"isActive": true}}}),
    );
    assert_eq!(r["notUpdated"][&one]["type"], "invalidProperties", "{r}");
    // An unknown id to activate is ignored; a known one activates.
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "onSuccessActivateScript": "F424242"}),
    );
    assert_eq!(r["updated"], Value::Null, "{r}");
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "onSuccessActivateScript": one}),
    );
    assert_eq!(r["updated"][&one], json!({"isActive": true}), "{r}");
    // Switching reports both; deactivation runs first.
    let r = j.sieve(
        "SieveScript/set",
        json!({"accountId": account, "onSuccessActivateScript": n1,
               "onSuccessDeactivateScript": true}),
    );
    assert_eq!(r["updated"][&one], json!({"isActive": false}), "{r}");
    assert_eq!(r["updated"][&n1], json!({"isActive": true}), "{r}");
    // ifInState (RFC 8620 §5.3).
    let r = j.api(
        &[CORE, SIEVE],
        json!([["SieveScript/set", {"accountId": account, "ifInState": "0",
                 "onSuccessDeactivateScript": true}, "s"]]),
    );
    assert_eq!(r[0][1]["type"], "stateMismatch");

    // §2.5.
    let q = |args: Value| -> Vec<String> {
        let mut a = json!({"accountId": account});
        for (k, v) in args.as_object().unwrap() {
            a[k] = v.clone();
        }
        ids(&j.sieve("SieveScript/query", a))
    };
    let all = q(json!({"sort": [{"property": "name", "isAscending": false}]}));
    let by_name = |n: &str| -> String {
        let g = j.sieve("SieveScript/get", json!({"accountId": account}));
        g["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        all,
        vec![by_name("script 2"), by_name("script 1"), by_name("one")]
    );
    assert_eq!(q(json!({"filter": {"isActive": true}})), vec![n1.clone()]);
    assert_eq!(q(json!({"filter": {"name": "SCRIPT"}})).len(), 2);
    assert_eq!(
        q(json!({"filter": {"isActive": false}, "sort": [{"property": "name"}]})),
        vec![by_name("one"), by_name("script 2")]
    );
    let r = j.api(
        &[CORE, SIEVE],
        json!([["SieveScript/query", {"accountId": account, "filter": {"blobId": "x"}}, "q"]]),
    );
    assert_eq!(r[0][1]["type"], "unsupportedFilter");
    let r = j.api(
        &[CORE, SIEVE],
        json!([["SieveScript/query", {"accountId": account, "sort": [{"property": "blobId"}]}, "q"]]),
    );
    assert_eq!(r[0][1]["type"], "unsupportedSort");

    // §2.6: nothing is stored.
    let v = j.sieve(
        "SieveScript/validate",
        json!({"accountId": account, "blobId": good}),
    );
    assert_eq!(v["error"], Value::Null, "{v}");
    let v = j.sieve(
        "SieveScript/validate",
        json!({"accountId": account, "blobId": bad}),
    );
    assert_eq!(v["error"]["type"], "invalidSieve", "{v}");
    assert!(v["error"]["description"].as_str().unwrap().contains("line"));
    let v = j.sieve(
        "SieveScript/validate",
        json!({"accountId": account, "blobId": big}),
    );
    assert_eq!(v["error"]["type"], "tooLarge", "{v}");
    let r = j.api(
        &[CORE, SIEVE],
        json!([["SieveScript/validate", {"accountId": account, "blobId": "U999999"}, "v"]]),
    );
    assert_eq!(r[0][1]["type"], "invalidArguments");
    assert_eq!(q(json!({})).len(), 3, "validate stored nothing");
}

/// The `jmap-client` crate (Stalwart's JMAP client library) as a second
/// client: its typed requests and responses create, activate, list,
/// validate and delete, and what it activates filters SMTP mail. Its
/// one-call helpers put `urn:ietf:params:jmap:contacts` and `:calendars`
/// in every `using`, which RFC 8620 §3.6.1 makes Petrel refuse
/// (unknownCapability), so each request here lists only what it uses.
/// Its SetError names are a draft's (`invalidScript`, `scriptIsActive`
/// for RFC 9661's `invalidSieve`, `sieveIsActive`): it cannot read those
/// answers, so refusals are checked with curl above.
#[tokio::test]
async fn jmap_client_crate_manages_scripts() {
    use jmap_client::client::{Client, Credentials};
    use jmap_client::core::request::Request;
    use jmap_client::core::set::SetObject;
    use jmap_client::sieve::query::Filter;
    use jmap_client::URI;

    fn only_sieve(mut r: Request<'_>) -> Request<'_> {
        r.using = vec![URI::Core, URI::Sieve];
        r
    }

    let j = server("");
    let client = Client::new()
        .credentials(Credentials::basic("joe@example.org", "pw"))
        .accept_invalid_certs(true)
        .follow_redirects(["127.0.0.1"])
        .connect(&j.base())
        .await
        .unwrap();
    let blob = client
        .upload(None, LISTS.as_bytes().to_vec(), Some("application/sieve"))
        .await
        .unwrap()
        .take_blob_id();
    let mut r = client.build();
    let set = r.set_sieve_script();
    let cid = set
        .create()
        .name("lists")
        .blob_id(blob)
        .create_id()
        .unwrap();
    set.arguments().on_success_activate_script(cid.clone());
    let script = only_sieve(r)
        .send_set_sieve_script()
        .await
        .unwrap()
        .created(&cid)
        .unwrap();
    let id = script.id().unwrap().to_string();
    assert!(script.is_active(), "created and activated in one call");
    send_list_mail(&j, 1).await;
    assert_eq!(wait_count(&j, "Lists", 1).await, 1);

    let mut r = client.build();
    r.query_sieve_script().filter(Filter::is_active(true));
    let ids = only_sieve(r)
        .send_query_sieve_script()
        .await
        .unwrap()
        .take_ids();
    assert_eq!(ids, vec![id.clone()]);
    let mut r = client.build();
    r.get_sieve_script().ids([id.as_str()]);
    let got = only_sieve(r)
        .send_get_sieve_script()
        .await
        .unwrap()
        .take_list();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].name(), Some("lists"));
    assert!(got[0].is_active());
    // The blob id /get names downloads as the script.
    let text = client.download(got[0].blob_id().unwrap()).await.unwrap();
    assert_eq!(text, LISTS.as_bytes());

    let validate = |text: &'static [u8]| {
        let client = &client;
        async move {
            let blob = client
                .upload(None, text.to_vec(), None)
                .await
                .unwrap()
                .take_blob_id();
            let mut r = client.build();
            r.validate_sieve_script(blob);
            only_sieve(r)
                .send_validate_sieve_script()
                .await
                .unwrap()
                .unwrap_error()
        }
    };
    validate(b"keep;\n").await.unwrap();

    // Deactivated, the script can go.
    let destroy = || async {
        let mut r = client.build();
        r.set_sieve_script().destroy([id.as_str()]);
        only_sieve(r)
            .send_set_sieve_script()
            .await
            .unwrap()
            .destroyed(&id)
    };
    let mut r = client.build();
    r.set_sieve_script()
        .arguments()
        .on_success_deactivate_script(true);
    only_sieve(r)
        .send_set_sieve_script()
        .await
        .unwrap()
        .unwrap_update_errors()
        .unwrap();
    destroy().await.unwrap();
    let mut r = client.build();
    r.query_sieve_script();
    let left = only_sieve(r)
        .send_query_sieve_script()
        .await
        .unwrap()
        .take_ids();
    assert!(left.is_empty(), "{left:?}");
}
