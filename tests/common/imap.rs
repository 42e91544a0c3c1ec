//! Small IMAP helpers over [`LineClient`] shared by the IMAP suites.

use super::{LineClient, TestServer};

/// Sends `tag text` and reads to the tagged reply; all the lines.
pub async fn cmd(c: &mut LineClient, tag: &str, text: &str) -> Vec<String> {
    c.send(&format!("{tag} {text}\r\n")).await;
    c.imap_until(tag).await
}

/// Whether the tagged reply (the last line) is OK.
pub fn ok(r: &[String]) -> bool {
    r.last().is_some_and(|l| l.split(' ').nth(1) == Some("OK"))
}

/// A session logged in as `user` (password "pw", as `TestServer::account`
/// sets it).
pub async fn login_as(s: &TestServer, user: &str) -> LineClient {
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    let r = cmd(&mut c, "L", &format!("LOGIN {user} pw")).await;
    assert!(ok(&r), "{r:?}");
    c
}

/// APPENDs `m` to `mailbox` (as the client writes the name) with
/// LITERAL+; all the lines of the answer.
pub async fn append(c: &mut LineClient, mailbox: &str, m: &str) -> Vec<String> {
    c.send(&format!("A APPEND {mailbox} {{{}+}}\r\n{m}\r\n", m.len()))
        .await;
    c.imap_until("A").await
}

/// Reads lines until one satisfies `pred` (5 s at most); returns them.
pub async fn lines_until(c: &mut LineClient, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let l = tokio::time::timeout(std::time::Duration::from_secs(5), c.line())
            .await
            .unwrap_or_else(|_| panic!("no matching line; got {got:?}"));
        let done = pred(&l);
        got.push(l);
        if done {
            return got;
        }
    }
}

/// Asserts that nothing arrives within 700 ms.
pub async fn quiet(c: &mut LineClient) {
    let r = tokio::time::timeout(std::time::Duration::from_millis(700), c.line()).await;
    assert!(r.is_err(), "{r:?}");
}
