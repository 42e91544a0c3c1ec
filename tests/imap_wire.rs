//! RFC 9051 (and RFC 3501) on the wire, sentence by sentence: the body
//! structure grammar (§7.5.2, §9), LIST names and attributes (§7.3.1),
//! which untagged responses, response codes and capabilities a server may
//! send (§6.5, §7.1, §7.2.2), flow control (§5.3), 8-bit and NUL data
//! (§4.3.1, §6.3.12, §9), static message data (§9) and TLS (§11.1). Each
//! assertion names the sentence id of `../shared/tools/rfc-requirements`
//! it checks; spec/rfc9051.toml and spec/rfc3501.toml claim them.

mod common;

use common::imap::{append, cmd, login_as, ok};
use common::*;

async fn server() -> TestServer {
    let s = TestServer::start_with("[imap]\nauth-without-tls = true\n");
    s.account("joe@example.org");
    s
}

/// An IMAP value as the grammar of RFC 9051 §9 builds it.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Nil,
    Str(String),
    Atom(String),
    List(Vec<V>),
}

impl V {
    fn list(&self) -> &[V] {
        match self {
            V::List(l) => l,
            other => panic!("not a list: {other:?}"),
        }
    }

    fn text(&self) -> String {
        match self {
            V::Str(s) | V::Atom(s) => s.to_ascii_uppercase(),
            other => panic!("not a string: {other:?}"),
        }
    }
}

fn parse_value(s: &[u8], i: &mut usize) -> V {
    while s[*i] == b' ' {
        *i += 1;
    }
    match s[*i] {
        b'(' => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                while s[*i] == b' ' {
                    *i += 1;
                }
                if s[*i] == b')' {
                    *i += 1;
                    return V::List(items);
                }
                items.push(parse_value(s, i));
            }
        }
        b'"' => {
            *i += 1;
            let mut out = Vec::new();
            while s[*i] != b'"' {
                if s[*i] == b'\\' {
                    *i += 1;
                }
                out.push(s[*i]);
                *i += 1;
            }
            *i += 1;
            V::Str(String::from_utf8(out).unwrap())
        }
        b'{' => {
            let close = *i + s[*i..].iter().position(|&b| b == b'}').unwrap();
            let n: usize = std::str::from_utf8(&s[*i + 1..close])
                .unwrap()
                .parse()
                .unwrap();
            let start = close + 3; // "}\r\n"
            *i = start + n;
            V::Str(String::from_utf8(s[start..start + n].to_vec()).unwrap())
        }
        _ => {
            let start = *i;
            while *i < s.len() && !b" ()".contains(&s[*i]) {
                *i += 1;
            }
            let a = String::from_utf8(s[start..*i].to_vec()).unwrap();
            if a == "NIL" {
                V::Nil
            } else {
                V::Atom(a)
            }
        }
    }
}

/// The value that follows `item` in a FETCH response (its lines, with
/// any literal, as `cmd` returns them).
fn fetch_item(lines: &[String], item: &str) -> V {
    let line = &lines.join("\r\n");
    let at = line
        .find(&format!("{item} "))
        .unwrap_or_else(|| panic!("{item} not in {line}"));
    let mut i = at + item.len() + 1;
    parse_value(line.as_bytes(), &mut i)
}

const PARTS: &str = "From: a@example.org\r\nTo: joe@example.org\r\nSubject: parts\r\n\
Date: Mon, 2 Feb 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\nContent-Language: fr\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Disposition: attachment; filename*0=\"long \"; filename*1=\"name.txt\"\r\n\
Content-Language: en, de\r\nContent-Location: http://example.org/loc\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\nhello\r\n\
--b1\r\nContent-Type: application/octet-stream; name*=utf-8''%E2%82%AC.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n\
--b1\r\nContent-Type: message/global\r\n\r\nFrom: b@example.org\r\nSubject: inner\r\n\r\ninner body\r\n\
--b1--\r\n";

/// §7.5.2 and §9: BODYSTRUCTURE's extension data in the defined order and
/// nothing beyond it; BODY without extension data; message/global as a
/// message part; RFC 2231 parameters decoded; origin octets only when a
/// partial FETCH asked for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_structure_follows_the_grammar() {
    let s = server().await;
    let mut c = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut c, "e", "ENABLE IMAP4rev2").await));
    assert!(ok(&append(&mut c, "INBOX", PARTS).await));
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));

    let r = cmd(&mut c, "f", "FETCH 1 BODYSTRUCTURE").await;
    let bs = fetch_item(&r, "BODYSTRUCTURE");
    let top = bs.list();
    // Three parts, then subtype, then body-ext-mpart: param, dsp, lang,
    // loc, in that order (7.5.2#10, #15; 9#8) and nothing more (7.5.2#14,
    // 9#6).
    assert_eq!(top.len(), 3 + 1 + 4, "{bs:?}");
    assert_eq!(top[3].text(), "MIXED");
    assert_eq!(top[4].list()[0].text(), "BOUNDARY");
    assert_eq!(top[5], V::Nil, "no disposition on the multipart");
    let lang = |v: &V| -> Vec<String> {
        match v {
            V::List(l) => l.iter().map(V::text).collect(),
            other => vec![other.text()],
        }
    };
    assert_eq!(lang(&top[6]), ["FR"]);
    assert_eq!(top[7], V::Nil);

    // The text part: body-type-text (type, subtype, params, id, desc,
    // encoding, size, lines) then body-ext-1part: md5, dsp, lang, loc
    // (7.5.2#10, #15; 9#7) and nothing more (7.5.2#14, 9#6).
    let text = top[0].list();
    assert_eq!(text.len(), 8 + 4, "{:?}", top[0]);
    assert_eq!(text[8].text(), "Q2HLY2SGSW50ZWDYAXR5IQ==");
    let dsp = text[9].list();
    assert_eq!(dsp[0].text(), "ATTACHMENT");
    // 7.5.2#12: parameter-value continuations decoded (RFC 2231 §3).
    assert_eq!(dsp[1].list()[0].text(), "FILENAME");
    assert_eq!(dsp[1].list()[1], V::Str("long name.txt".into()));
    assert_eq!(lang(&text[10]), ["EN", "DE"]);
    assert_eq!(text[11], V::Str("http://example.org/loc".into()));

    // 7.5.2#11: a parameter value's character set decoded (RFC 2231 §4).
    let bin = top[1].list();
    assert_eq!(bin[0].text(), "APPLICATION");
    assert_eq!(bin[2].list()[0].text(), "NAME");
    assert_eq!(bin[2].list()[1], V::Str("€.bin".into()));
    // body-type-basic: 7 fields and the 4 of body-ext-1part.
    assert_eq!(bin.len(), 7 + 4, "{:?}", top[1]);

    // 9#9: MESSAGE/GLOBAL is a body-type-msg (envelope, body, lines), not
    // a body-type-basic.
    let msg = top[2].list();
    assert_eq!(
        (msg[0].text(), msg[1].text()),
        ("MESSAGE".into(), "GLOBAL".into())
    );
    let envelope = msg[7].list();
    assert_eq!(envelope.len(), 10, "{:?}", top[2]);
    assert_eq!(envelope[1], V::Str("inner".into()));
    assert_eq!(msg[8].list()[0].text(), "TEXT");
    assert!(matches!(msg[9], V::Atom(_)), "body-fld-lines: {:?}", msg[9]);

    // 9#7, 9#8: the non-extensible BODY carries no extension data.
    let r = cmd(&mut c, "g", "FETCH 1 BODY").await;
    let body = fetch_item(&r, "BODY");
    let top = body.list();
    assert_eq!(top.len(), 4, "{body:?}");
    assert_eq!(top[0].list().len(), 8, "{:?}", top[0]);
    assert_eq!(top[1].list().len(), 7, "{:?}", top[1]);
    assert_eq!(top[2].list().len(), 10, "{:?}", top[2]);

    // 7.5.2#7: "<origin>" only in answer to a partial FETCH.
    let r = cmd(&mut c, "h", "FETCH 1 (BODY.PEEK[] BODY.PEEK[1])").await;
    assert!(r[0].contains("BODY[] {"), "{r:?}");
    assert!(r
        .iter()
        .any(|l| l.contains("BODY[1] {") || l.contains("BODY[1] \"")));
    assert!(!r.iter().any(|l| l.contains("]<")), "{r:?}");
    let r = cmd(&mut c, "i", "FETCH 1 BODY.PEEK[]<5.10>").await;
    assert!(r[0].ends_with("BODY[]<5> {10}"), "{r:?}");
}

/// One LIST response: attributes, delimiter, name, extended items.
struct Listed {
    attrs: Vec<String>,
    delim: V,
    name: String,
    ext: Option<V>,
}

fn listed(r: &[String]) -> Vec<Listed> {
    r.iter()
        .filter_map(|l| l.strip_prefix("* LIST "))
        .map(|rest| {
            let b = rest.as_bytes();
            let mut i = 0;
            let attrs = parse_value(b, &mut i).list().iter().map(V::text).collect();
            let delim = parse_value(b, &mut i);
            let name = match parse_value(b, &mut i) {
                V::Str(s) | V::Atom(s) => s,
                other => panic!("name {other:?}"),
            };
            let ext = (i < b.len()).then(|| parse_value(b, &mut i));
            Listed {
                attrs,
                delim,
                name,
                ext,
            }
        })
        .collect()
}

/// §7.3.1 (RFC 3501 §7.2.2) and §6.3.9.2: what a LIST response promises
/// about each name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_names_keep_their_promises() {
    let s = server().await;
    s.account("ann@example.org");
    let mut ann = login_as(&s, "ann@example.org").await;
    for (name, rights) in [("Secret", "l"), ("Open", "lr")] {
        assert!(ok(&cmd(&mut ann, "c", &format!("CREATE {name}")).await));
        append(&mut ann, name, "Subject: s\r\n\r\nx\r\n").await;
        let r = cmd(
            &mut ann,
            "a",
            &format!("SETACL {name} joe@example.org {rights}"),
        )
        .await;
        assert!(ok(&r), "{r:?}");
    }
    let mut c = login_as(&s, "joe@example.org").await;
    for name in ["a/b/c", "x", "Noted"] {
        assert!(ok(&cmd(&mut c, "c", &format!("CREATE {name}")).await));
    }
    assert!(ok(&cmd(&mut c, "u", "SUBSCRIBE a/b/c").await));
    let r = cmd(
        &mut c,
        "l",
        "LIST \"\" \"*\" RETURN (CHILDREN SUBSCRIBED STATUS (MESSAGES))",
    )
    .await;
    assert!(ok(&r), "{r:?}");
    let all = listed(&r);
    assert!(all.len() >= 8, "{r:?}");
    for e in &all {
        let marks = ["\\MARKED", "\\UNMARKED", "\\NOSELECT"]
            .iter()
            .filter(|a| e.attrs.contains(&a.to_string()))
            .count();
        // 7.3.1#4: at most one of \Marked, \Unmarked, \Noselect.
        assert!(marks <= 1, "{}: {:?}", e.name, e.attrs);
        // 7.3.1#3 (RFC 3501 7.2.2#1): Petrel does not track whether a
        // mailbox is "interesting", so it sends neither.
        assert!(
            !e.attrs.iter().any(|a| a.ends_with("MARKED")),
            "{}: {:?}",
            e.name,
            e.attrs
        );
        // 7.3.1#5 (3501 7.2.2#2): one separator everywhere.
        assert_eq!(e.delim, V::Str("/".into()), "{}", e.name);
    }
    // 6.3.9.2#4: a listed mailbox that cannot be selected ("l" without
    // "r") gets \Noselect and no STATUS.
    let secret = all
        .iter()
        .find(|e| e.name.ends_with("ann@example.org/Secret"))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        secret.attrs.contains(&"\\NOSELECT".into()),
        "{:?}",
        secret.attrs
    );
    let secret_name = secret.name.clone();
    assert!(
        !r.iter()
            .any(|l| l.starts_with("* STATUS ") && l.contains(&secret_name)),
        "{r:?}"
    );
    let open = all
        .iter()
        .find(|e| e.name.ends_with("ann@example.org/Open"))
        .unwrap();
    assert!(!open.attrs.contains(&"\\NOSELECT".into()));
    assert!(
        r.iter()
            .any(|l| l.starts_with("* STATUS ") && l.contains("/Open") && l.contains("MESSAGES 1")),
        "{r:?}"
    );
    let names: Vec<(String, bool)> = all
        .iter()
        .map(|e| {
            let selectable = !e.attrs.contains(&"\\NOSELECT".into())
                && !e.attrs.contains(&"\\NONEXISTENT".into());
            (e.name.clone(), selectable)
        })
        .collect();
    for (name, selectable) in &names {
        // 7.3.1#7 (3501 7.2.2#4): unless \Noselect or \NonExistent, the
        // name works in SELECT and EXAMINE.
        if *selectable {
            for verb in ["SELECT", "EXAMINE"] {
                let r = cmd(&mut c, "s", &format!("{verb} \"{name}\"")).await;
                assert!(ok(&r), "{verb} {name}: {r:?}");
            }
        }
        // 7.3.1#6 (3501 7.2.2#3): the name is a valid reference: its
        // children are listed under it, and only they.
        for verb in ["LIST", "LSUB"] {
            let r = cmd(&mut c, "r", &format!("{verb} \"{name}/\" \"*\"")).await;
            assert!(ok(&r), "{verb} {name}: {r:?}");
            for l in r
                .iter()
                .filter(|l| l.starts_with("* LIST") || l.starts_with("* LSUB"))
            {
                assert!(l.contains(&format!("\"{name}/")), "{verb} {name}: {l}");
            }
        }
    }
    let r = cmd(&mut c, "r", "LIST \"a/\" \"*\"").await;
    assert_eq!(
        listed(&r)
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["a/b", "a/b/c"],
        "{r:?}"
    );
    // 7.3.1#8: extended data items carry registered tags only (CHILDINFO
    // of RFC 5258, OLDNAME of RFC 9051).
    let r = cmd(&mut c, "x", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\"").await;
    let with_ext: Vec<Listed> = listed(&r).into_iter().filter(|e| e.ext.is_some()).collect();
    assert!(!with_ext.is_empty(), "{r:?}");
    for e in with_ext {
        let items = e.ext.unwrap();
        for pair in items.list().chunks(2) {
            let tag = pair[0].text();
            assert!(tag == "CHILDINFO" || tag == "OLDNAME", "{}: {tag}", e.name);
        }
    }
}

/// §5.3: a client that stops reading a large answer blocks neither the
/// server nor other sessions, and gets every byte once it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_blocks_nobody() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server().await;
    let mut c = login_as(&s, "joe@example.org").await;
    let body = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    let m = format!("Subject: big\r\n\r\n{body}\r\n");
    for _ in 0..4 {
        assert!(ok(&append(&mut c, "INBOX", &m).await));
    }
    // A reader with a small receive window that sends FETCH and then
    // does not read.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut slow = sock.connect(s.addr("imap")).await.unwrap();
    slow.write_all(b"a LOGIN joe@example.org pw\r\nb SELECT INBOX\r\nc FETCH 1:* BODY.PEEK[]\r\n")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // 5.3#1, #2: meanwhile the server answers others at once.
    for k in 0..3 {
        let mut other = login_as(&s, "joe@example.org").await;
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            cmd(&mut other, "n", "SELECT INBOX"),
        )
        .await
        .unwrap_or_else(|_| panic!("session {k} waited on the slow reader"));
        assert!(r.iter().any(|l| l == "* 4 EXISTS"), "{r:?}");
        assert!(ok(&cmd(&mut other, "f", "FETCH 4 RFC822.SIZE").await));
    }
    // And the slow reader gets the whole answer.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !got.ends_with(b"c OK FETCH completed\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), slow.read(&mut buf))
            .await
            .expect("the rest of the answer")
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    let bodies = got
        .windows(body.len().min(1024))
        .filter(|w| *w == &body.as_bytes()[..1024])
        .count();
    assert!(got.len() > 4 * body.len(), "{}", got.len());
    assert!(bodies >= 4);
}

/// §6.3.12 (RFC 3501 §6.3.11), §4.3.1 and §9: 8-bit data is kept as
/// sent; NUL is never sent outside BINARY's literal8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_kept_and_nul_never_sent() {
    use tokio::io::AsyncReadExt;
    let s = server().await;
    let mut c = login_as(&s, "joe@example.org").await;
    // 6.3.12#2, 3501 6.3.11#2: 8-bit APPEND data is preserved byte for
    // byte (so no conversion is needed).
    let latin1: &[u8] = b"Subject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9 cr\xe8me\r\n";
    let mut wire = format!("a APPEND INBOX {{{}+}}\r\n", latin1.len()).into_bytes();
    wire.extend_from_slice(latin1);
    wire.extend_from_slice(b"\r\n");
    c.send_bytes(&wire).await;
    assert!(ok(&c.imap_until("a").await));
    // A part holding NUL, appended in a literal8 (RFC 3516 §4.2).
    let binary: &[u8] = b"Subject: nul\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\x00zz\r\n";
    let mut wire = format!("b APPEND INBOX ~{{{}+}}\r\n", binary.len()).into_bytes();
    wire.extend_from_slice(binary);
    wire.extend_from_slice(b"\r\n");
    c.send_bytes(&wire).await;
    let r = c.imap_until("b").await;
    assert!(ok(&r), "{r:?}");
    // 9#4 (3501 7.5#4): a NUL in a plain literal breaks CHAR8 and is
    // refused; the session goes on.
    let mut wire = b"n APPEND INBOX {12+}\r\nSubject: \x00\r\n\r\n".to_vec();
    wire.extend_from_slice(b"\r\n");
    c.send_bytes(&wire).await;
    let r = c.imap_until("n").await;
    assert!(!ok(&r), "{r:?}");
    // A NUL delivered over SMTP in a part that claims no encoding.
    let r = smtp_send(
        s.addr("smtp"),
        "a@example.net",
        &["joe@example.org"],
        "Subject: smtp nul\r\n\r\nx\0y\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "t", "STATUS INBOX (MESSAGES)").await;
    assert!(r[0].ends_with("(MESSAGES 3)"), "{r:?}");

    // Read the raw answers: everything but BINARY's literal8 is free of
    // NUL (9#4, 4.3.1), and the 8-bit bytes come back unchanged.
    c.send("f FETCH 1:3 (BODY.PEEK[] BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[TEXT])\r\n")
        .await;
    let mut raw = Vec::new();
    while !raw.ends_with(b"f OK FETCH completed\r\n") {
        let mut buf = [0u8; 4096];
        let n = c.r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    assert!(!raw.contains(&0), "{}", String::from_utf8_lossy(&raw));
    assert!(
        raw.windows(latin1.len()).any(|w| w == latin1),
        "8-bit body changed"
    );
    // 4.3.1#1: the 8-bit text goes with its charset, named in the
    // structure.
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("(\"charset\" \"iso-8859-1\")"), "{text}");
    // BINARY returns the NUL bytes, in a literal8.
    c.send("g FETCH 2 BINARY.PEEK[1]\r\n").await;
    let mut raw = Vec::new();
    while !raw.ends_with(b"g OK FETCH completed\r\n") {
        let mut buf = [0u8; 4096];
        let n = c.r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    assert!(
        raw.windows(4).any(|w| w == b"~{8}"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(raw.windows(6).any(|w| w == b"\x00\x01\x02\x00zz"));
    let r = cmd(&mut c, "h", "FETCH 3 BINARY.PEEK[1]").await;
    assert!(r[0].ends_with("BINARY[1] ~{7}"), "{r:?}");
    assert_eq!(r[1], "x\0y", "{r:?}");
}
