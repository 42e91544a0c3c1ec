//! THREAD=REFERENCES, step by step (RFC 5256 §3, BASE.6.4.THREAD): each
//! test builds a mailbox whose messages exercise one step of the
//! algorithm as the RFC words it, and checks the tree THREAD answers.

mod common;

use common::imap::{append, cmd, login_as, ok};
use common::*;

/// A message: Message-ID (or none), References, In-Reply-To, Subject,
/// and a Date `n` seconds after a fixed time (UTC).
struct M<'a> {
    id: Option<&'a str>,
    refs: &'a str,
    irt: &'a str,
    subject: &'a str,
    at: u32,
}

fn m<'a>(id: &'a str, refs: &'a str, subject: &'a str, at: u32) -> M<'a> {
    M {
        id: (!id.is_empty()).then_some(id),
        refs,
        irt: "",
        subject,
        at,
    }
}

fn raw(m: &M<'_>) -> String {
    let mut h = String::new();
    if let Some(id) = m.id {
        h.push_str(&format!("Message-ID: {id}\r\n"));
    }
    if !m.refs.is_empty() {
        h.push_str(&format!("References: {}\r\n", m.refs));
    }
    if !m.irt.is_empty() {
        h.push_str(&format!("In-Reply-To: {}\r\n", m.irt));
    }
    h.push_str(&format!(
        "Subject: {}\r\nDate: Mon, 1 Jan 2001 10:{:02}:{:02} +0000\r\n\r\nbody\r\n",
        m.subject,
        m.at / 60,
        m.at % 60
    ));
    h
}

/// THREAD REFERENCES over a new mailbox holding `msgs` in this order.
async fn thread(c: &mut LineClient, mailbox: &str, msgs: &[M<'_>]) -> String {
    assert!(ok(&cmd(c, "c", &format!("CREATE {mailbox}")).await));
    for msg in msgs {
        assert!(ok(&append(c, mailbox, &raw(msg)).await));
    }
    assert!(ok(&cmd(c, "s", &format!("SELECT {mailbox}")).await));
    let r = cmd(c, "t", "THREAD REFERENCES UTF-8 ALL").await;
    assert!(ok(&r), "{r:?}");
    r[0].strip_prefix("* THREAD ").unwrap_or("").to_string()
}

async fn session() -> (TestServer, LineClient) {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    let c = login_as(&s, "joe@example.org").await;
    (s, c)
}

/// Which references count: References first, else the first Message ID
/// of In-Reply-To, else none; Message IDs compared after normalizing
/// their quoting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_0_references_and_in_reply_to() {
    let (_s, mut c) = session().await;
    let mut irt = m("<c@x>", "", "Re: topic", 3);
    irt.irt = "<b@x> (Joe's message of yesterday) <a@x>";
    let mut both = m("<d@x>", "<a@x> <c@x>", "Re: topic", 4);
    both.irt = "<b@x>";
    let t = thread(
        &mut c,
        "Refs",
        &[
            m("<a@x>", "", "topic", 1),
            // <"a"@x> is <a@x>.
            m("<b@x>", "<\"a\"@x>", "Re: topic", 2),
            irt,
            both,
        ],
    )
    .await;
    // a - b - c (In-Reply-To's first id) - d (References' last id).
    assert_eq!(t, "(1 2 3 4)");
}

/// Step 1A: no Message-ID or a duplicate one gets a unique id; the first
/// message with an id owns it; a reference to a message not there makes a
/// dummy; an existing parent link is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_1a_links_between_references() {
    let (_s, mut c) = session().await;
    let t = thread(
        &mut c,
        "OneA",
        &[
            m("<dup@x>", "", "one", 1),
            m("<dup@x>", "", "two", 2),
            m("<r1@x>", "<dup@x>", "Re: one", 3),
            m("", "", "four", 4),
            // p - q, then r names z before q: q keeps its parent p.
            m("<p@x>", "", "ess", 5),
            m("<q@x>", "<p@x>", "Re: ess", 6),
            m("<r@x>", "<z@x> <q@x>", "Re: ess", 7),
        ],
    )
    .await;
    assert_eq!(t, "(1 3)(2)(4)(5 6 7)");
}

/// Step 1B: the last reference is the parent, even when an earlier
/// message's references had given the message another parent; no link
/// makes a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_1b_last_reference_is_the_parent() {
    let (_s, mut c) = session().await;
    let t = thread(
        &mut c,
        "OneB",
        &[
            m("<t@x>", "", "why", 1),
            // Makes <w@x> a child of t (1A) and u a child of w (1B).
            m("<u@x>", "<t@x> <w@x>", "Re: why", 2),
            // w itself names v as its parent: the link to t is broken.
            m("<w@x>", "<v@x>", "other", 3),
            // A loop: l1 names l2 and l2 names l1.
            m("<l1@x>", "<l2@x>", "loop", 4),
            m("<l2@x>", "<l1@x>", "Re: loop", 5),
        ],
    )
    .await;
    // t alone; v (a dummy with one child, promoted) gives w - u; l2 is
    // l1's parent (first seen), and l2 naming l1 would be a loop.
    assert_eq!(t, "(1)(3 2)(5 4)");
}

/// Step 3: dummies without children go; a dummy's children take its
/// place, except at the top, where only a single child is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_3_pruning_dummies() {
    let (_s, mut c) = session().await;
    let t = thread(
        &mut c,
        "Prune",
        &[
            m("<a@x>", "", "kay", 1),
            // a - (gone) - 2: the dummy goes, 2 becomes a's child.
            m("<b@x>", "<a@x> <gone@x>", "Re: kay", 2),
            // Two children of a missing message: the dummy stays on top.
            m("<c@x>", "<miss@x>", "em one", 3),
            m("<d@x>", "<miss@x>", "em two", 4),
            // One child of a missing message: promoted to the top.
            m("<e@x>", "<lonely@x>", "solo", 5),
        ],
    )
    .await;
    assert_eq!(t, "(1 2)((3)(4))(5)");
}

/// Steps 4 and 6: siblings by sent date (in UTC; the sequence number
/// breaks ties), at every level; a dummy sorts by its first child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_4_and_6_sorting_by_sent_date() {
    let (_s, mut c) = session().await;
    assert!(ok(&cmd(&mut c, "c", "CREATE Dates").await));
    for (id, refs, subject, date) in [
        ("<r@x>", "", "root", "Mon, 1 Jan 2001 10:00:00 +0000"),
        // Children of r, appended latest first.
        (
            "<c1@x>",
            "<r@x>",
            "Re: root",
            "Mon, 1 Jan 2001 10:05:00 +0000",
        ),
        (
            "<c2@x>",
            "<r@x>",
            "Re: root",
            "Mon, 1 Jan 2001 10:03:00 +0000",
        ),
        // 09:00 at -0200 is 11:00 UTC: after the next two.
        ("<x@x>", "", "xray", "Mon, 1 Jan 2001 09:00:00 -0200"),
        ("<y@x>", "", "yank", "Mon, 1 Jan 2001 10:30:00 +0000"),
        // The same date as y: the sequence number decides.
        ("<z@x>", "", "zulu", "Mon, 1 Jan 2001 10:30:00 +0000"),
        // A dummy whose children are dated 09:30 and 09:50: it sorts by
        // the earlier, before r.
        (
            "<k1@x>",
            "<ghost@x>",
            "kid one",
            "Mon, 1 Jan 2001 09:50:00 +0000",
        ),
        (
            "<k2@x>",
            "<ghost@x>",
            "kid two",
            "Mon, 1 Jan 2001 09:30:00 +0000",
        ),
    ] {
        let msg = format!("Message-ID: {id}\r\nReferences: {refs}\r\nSubject: {subject}\r\nDate: {date}\r\n\r\nx\r\n");
        assert!(ok(&append(&mut c, "Dates", &msg).await));
    }
    assert!(ok(&cmd(&mut c, "s", "SELECT Dates").await));
    let r = cmd(&mut c, "t", "THREAD REFERENCES UTF-8 ALL").await;
    assert_eq!(r[0], "* THREAD ((8)(7))(1 (3)(2))(5)(6)(4)", "{r:?}");
}

/// Step 5: threads whose heads share a base subject are gathered: a
/// reply goes under the original; two originals under a new dummy; a
/// thread headed by a dummy takes the others in; two dummies merge; an
/// empty subject gathers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_5_gathering_by_subject() {
    let (_s, mut c) = session().await;
    let t = thread(
        &mut c,
        "Subj",
        &[
            m("<a@x>", "", "topic", 1),
            m("<b@x>", "", "Re: topic", 2),
            m("<c@x>", "", "same", 3),
            m("<d@x>", "", "same", 4),
            m("<e@x>", "<hub@x>", "Re: hub", 5),
            m("<f@x>", "<hub@x>", "Re: hub", 6),
            m("<g@x>", "", "hub", 7),
            m("<h@x>", "<m1@x>", "Re: pair", 8),
            m("<i@x>", "<m1@x>", "Re: pair", 9),
            m("<j@x>", "<m2@x>", "Re: pair", 10),
            m("<k@x>", "<m2@x>", "Re: pair", 11),
            m("<l@x>", "", "", 12),
            m("<n@x>", "", "", 13),
        ],
    )
    .await;
    assert_eq!(t, "(1 2)((3)(4))((5)(6)(7))((8)(9)(10)(11))(12)(13)");
}
