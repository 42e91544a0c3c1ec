//! Pigeonhole's `.svtest` tests (Dovecot's Sieve test suite, fetched by
//! `cargo xtask setup`) that exercise run-time actions — fileinto,
//! redirect, vacation, imap4flags, editheader, reject, notify — run end
//! to end through a real Petrel: the message goes in over SMTP, the
//! account's script is the test's, what was stored is read over IMAP and
//! what was sent is caught by an SMTP sink (see `common/svtest.rs`).
//!
//! Each file's outcome is pinned: the tests that pass, and the ones that
//! fail because Petrel chose differently from Pigeonhole where the RFCs
//! leave the choice (each with why). Tests that need what only
//! Pigeonhole's testsuite has (its settings, its result list, its
//! error list) do not run; `--nocapture` prints each with the reason.

mod common;

use common::svtest::{self, Outcome};

struct Expect {
    file: &'static str,
    pass: &'static [&'static str],
    /// Pigeonhole's test, and why Petrel differs.
    differ: &'static [(&'static str, &'static str)],
}

async fn check(group: &[Expect]) {
    for e in group {
        let got = svtest::run_file(e.file).await;
        for (name, o) in &got {
            println!("{} :: {name} :: {o:?}", e.file);
        }
        let pass: Vec<&str> = got
            .iter()
            .filter(|(_, o)| *o == Outcome::Pass)
            .map(|(n, _)| n.as_str())
            .collect();
        let fail: Vec<(&str, &str)> = got
            .iter()
            .filter_map(|(n, o)| match o {
                Outcome::Fail(m) => Some((n.as_str(), m.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(pass, e.pass, "{}: the tests that pass", e.file);
        let names: Vec<&str> = fail.iter().map(|f| f.0).collect();
        let want: Vec<&str> = e.differ.iter().map(|d| d.0).collect();
        assert_eq!(names, want, "{}: the tests that differ: {fail:?}", e.file);
    }
}

const REDIRECT_HEADER: &str = "Pigeonhole marks a redirect with its own X-Sieve-Redirected-From; Petrel adds a Received field `with Sieve redirect for <…>`";

#[tokio::test]
async fn editheader() {
    check(&[
        Expect {
            file: "extensions/editheader/addheader.svtest",
            pass: &[
                "Addheader - first",
                "Addheader - first (two)",
                "Addheader - last",
                "Addheader - last (two)",
                "Addheader - framed",
                "Addheader - folded",
                "Addheader - implicit keep",
            ],
            differ: &[],
        },
        Expect {
            file: "extensions/editheader/deleteheader.svtest",
            pass: &[
                "Deleteheader - nonexistent",
                "Deleteheader - nonexistent (match)",
                "Deleteheader - one",
                "Deleteheader - two (first)",
                "Deleteheader - two (last)",
                "Deleteheader - :index",
                "Deleteheader - :index :last",
                "Deleteheader - implicit keep",
                "Deleteheader - :matches",
                "Deleteheader - folded",
                "Deleteheader - folded (match)",
            ],
            differ: &[],
        },
        Expect {
            file: "extensions/editheader/alternating.svtest",
            pass: &[
                "Alternating - add; delete",
                "Alternating - delete; add",
                "Alternating - add :last; delete any",
            ],
            differ: &[],
        },
        Expect {
            file: "extensions/editheader/utf8.svtest",
            pass: &["UTF8 - add; get", "UTF8 - existing; delete other; get"],
            differ: &[],
        },
    ])
    .await;
}

#[tokio::test]
async fn vacation() {
    check(&[
        Expect {
            file: "extensions/vacation/execute.svtest",
            pass: &["Action", "No :handle specified"],
            differ: &[],
        },
        Expect {
            file: "extensions/vacation/smtp.svtest",
            pass: &[
                "Basic",
                "Null Sender",
                "Envelope.to == To",
                "Bad recipient address (from message)",
                "Bad recipient address (from envelope)",
            ],
            differ: &[(
                "Envelope.to != To",
                "the response's From is the script owner's address (RFC 5230 §5.4 SHOULD); Pigeonhole uses the :addresses entry the message named",
            )],
        },
        Expect {
            file: "extensions/vacation/reply.svtest",
            pass: &[
                "No reply to own address",
                "No reply to alternative address",
                "No reply to mailing list",
                "No reply to bulk mail",
                "No reply to auto-submitted mail",
                "No reply to Microsoft X-Auto-Response-Suppress - All",
                "No reply to Microsoft X-Auto-Response-Suppress - OOF",
                "No reply to Microsoft X-Auto-Response-Suppress - DR,OOF,RN",
                "No reply to system address",
            ],
            differ: &[],
        },
        Expect {
            file: "extensions/vacation/message.svtest",
            pass: &["Subject", "Subject - explicit"],
            differ: &[],
        },
    ])
    .await;
}

#[tokio::test]
async fn fileinto_redirect_and_flags() {
    check(&[
        Expect {
            file: "execute/actions.svtest",
            pass: &["Fileinto", "Redirect"],
            differ: &[],
        },
        Expect {
            file: "execute/smtp.svtest",
            pass: &[],
            differ: &[("Redirect", REDIRECT_HEADER), ("Redirect from <>", REDIRECT_HEADER)],
        },
        Expect {
            file: "execute/address-normalize.svtest",
            pass: &["Mail address normalization - redirect"],
            differ: &[],
        },
        Expect {
            file: "extensions/imap4flags/execute.svtest",
            pass: &[],
            differ: &[(
                "Flags Side Effect",
                "the script files into `Inbox.Nonsense`: with Petrel's `/` separator that is a mailbox of its own, not INBOX's child `INBOX.Nonsense` as under Pigeonhole's `.`",
            )],
        },
        Expect {
            file: "extensions/imap4flags/flagstore.svtest",
            pass: &["Flag changes between stores"],
            differ: &[],
        },
        Expect {
            file: "extensions/special-use/execute.svtest",
            pass: &[":specialuse", ":specialuse variable"],
            differ: &[],
        },
        Expect {
            file: "multiscript/basic.svtest",
            pass: &["Append"],
            differ: &[],
        },
    ])
    .await;
}

#[tokio::test]
async fn reject_and_notify() {
    check(&[
        Expect {
            file: "extensions/reject/execute.svtest",
            pass: &["Execute"],
            differ: &[],
        },
        Expect {
            file: "extensions/reject/smtp.svtest",
            pass: &["Null Sender"],
            differ: &[(
                "Basic",
                "Petrel refuses the message at DATA (550) instead of mailing a rejection (RFC 5429 §2.1 prefers the protocol-level refusal)",
            )],
        },
        Expect {
            file: "extensions/enotify/execute.svtest",
            pass: &["RFC Example 1", "RFC Example 2", "RFC Example 6", "Duplicate recipients"],
            differ: &[],
        },
        Expect {
            file: "extensions/enotify/mailto.svtest",
            pass: &[
                "Multiple recipients",
                "Duplicate recipients",
                "Notifying on automated messages",
                "Envelope <>",
            ],
            differ: &[
                ("Simple", "Pigeonhole adds an X-Sieve field of its own"),
                (
                    "Envelope",
                    "the envelope sender is the user (RFC 5436 §2.7 allows it or the notification system's address; Pigeonhole uses postmaster)",
                ),
                (
                    "Envelope :from",
                    "Petrel sends from the user even when :from names an address the user does not own; Pigeonhole from :from",
                ),
            ],
        },
    ])
    .await;
}

#[test]
fn the_reader_takes_svtest_files_apart() {
    let src = "require \"x\";\ntest_set \"message\" text:\nFrom: a\n..dot\n.\n;\ntest \"t\" {\n  if not header :is \"subject\" \"a\\\"b\" { test_fail \"m\"; }\n  fileinto \"F\";\n}\n";
    let cmds = svtest::parse(src).unwrap();
    assert_eq!(cmds.len(), 3);
    assert_eq!(cmds[1].strings(), vec!["message", "From: a\r\n.dot\r\n"]);
    let body = cmds[2].block.as_ref().unwrap();
    let (cond, msg) = body[0].check(src).unwrap();
    assert_eq!(cond, "not header :is \"subject\" \"a\\\"b\"");
    assert_eq!(msg, "m");
    assert_eq!(&src[body[1].start..body[1].end], "fileinto \"F\";");
    assert_eq!(svtest::lex("5K").unwrap()[0].tok, svtest::Tok::Num(5120));
    assert!(svtest::parse("if true {").is_err());
}
