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

    // 9#1: where rules overlap, the earlier one wins: BODY, BODY[...],
    // BODYSTRUCTURE, RFC822.SIZE, RFC822.HEADER and RFC822 are each
    // read as themselves.
    let r = cmd(
        &mut c,
        "o",
        "FETCH 1 (BODY BODYSTRUCTURE BODY.PEEK[1.MIME] RFC822.SIZE RFC822.HEADER)",
    )
    .await;
    let all = r.join("\r\n");
    for item in [
        "BODY (",
        "BODYSTRUCTURE (",
        "BODY[1.MIME] ",
        "RFC822.SIZE ",
        "RFC822.HEADER ",
    ] {
        assert_eq!(all.matches(item).count(), 1, "{item} in {all}");
    }
    assert_eq!(fetch_item(&r, "BODY").list().len(), 4);

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
    // 6.3.9#1 (3501 6.3.8#1, #2): LIST answers without undue delay: it
    // does no work per name worth noticing (no \Marked computation, no
    // message reading). Not a benchmark: the bound is a hundred times
    // what it takes, to catch work per name, not to measure it.
    let creates: String = (0..300)
        .map(|i| format!("m{i} CREATE many/m{i}\r\n"))
        .collect();
    c.send(&creates).await;
    c.imap_until("m299").await;
    let t = std::time::Instant::now();
    let r = cmd(&mut c, "l", "LIST \"\" \"*\" RETURN (CHILDREN SUBSCRIBED)").await;
    let took = t.elapsed();
    assert!(listed(&r).len() > 300, "{}", r.len());
    assert!(
        took < std::time::Duration::from_secs(10),
        "LIST of 300 names took {took:?}"
    );

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

/// The IMAP capabilities registered with IANA that Petrel might offer
/// (the registry "IMAP Capabilities"; `=` ends a registered prefix).
const REGISTERED_CAPABILITIES: &[&str] = &[
    "ACL",
    "APPENDLIMIT=",
    "AUTH=",
    "BINARY",
    "CATENATE",
    "CHILDREN",
    "COMPRESS=DEFLATE",
    "CONDSTORE",
    "CONTEXT=SEARCH",
    "CONTEXT=SORT",
    "CREATE-SPECIAL-USE",
    "ENABLE",
    "ESEARCH",
    "ESORT",
    "ID",
    "IDLE",
    "IMAP4rev1",
    "IMAP4rev2",
    "LIST-EXTENDED",
    "LIST-MYRIGHTS",
    "LIST-STATUS",
    "LITERAL+",
    "LITERAL-",
    "LOGIN-REFERRALS",
    "LOGINDISABLED",
    "METADATA",
    "METADATA-SERVER",
    "MOVE",
    "MULTIAPPEND",
    "MULTISEARCH",
    "NAMESPACE",
    "NOTIFY",
    "OBJECTID",
    "PARTIAL",
    "PREVIEW",
    "QRESYNC",
    "QUOTA",
    "QUOTA=RES-",
    "QUOTASET",
    "REPLACE",
    "RIGHTS=",
    "SASL-IR",
    "SAVEDATE",
    "SEARCHRES",
    "SORT",
    "SORT=DISPLAY",
    "SPECIAL-USE",
    "STARTTLS",
    "STATUS=SIZE",
    "THREAD=",
    "UIDONLY",
    "UIDPLUS",
    "UNAUTHENTICATE",
    "UNSELECT",
    "URLAUTH",
    "UTF8=ACCEPT",
    "UTF8=ONLY",
    "WITHIN",
];

/// The response codes registered with IANA (registry "IMAP Response
/// Codes").
const REGISTERED_CODES: &[&str] = &[
    "ALERT",
    "ALREADYEXISTS",
    "APPENDUID",
    "AUTHENTICATIONFAILED",
    "AUTHORIZATIONFAILED",
    "BADCHARSET",
    "BADCOMPARATOR",
    "BADEVENT",
    "CANNOT",
    "CAPABILITY",
    "CLIENTBUG",
    "CLOSED",
    "COMPRESSIONACTIVE",
    "CONTACTADMIN",
    "COPYUID",
    "CORRUPTION",
    "EXPIRED",
    "EXPUNGEISSUED",
    "HASCHILDREN",
    "HIGHESTMODSEQ",
    "INPROGRESS",
    "INUSE",
    "LIMIT",
    "MAILBOXID",
    "METADATA",
    "MODIFIED",
    "NOMODSEQ",
    "NONEXISTENT",
    "NOPERM",
    "NOTIFICATIONOVERFLOW",
    "NOTSAVED",
    "OVERQUOTA",
    "PARSE",
    "PERMANENTFLAGS",
    "PRIVACYREQUIRED",
    "READ-ONLY",
    "READ-WRITE",
    "SERVERBUG",
    "TOOBIG",
    "TRYCREATE",
    "UIDNEXT",
    "UIDNOTSTICKY",
    "UIDREQUIRED",
    "UIDVALIDITY",
    "UNAVAILABLE",
    "UNKNOWN-CTE",
    "UNSEEN",
    "USEATTR",
];

/// The untagged responses of RFC 9051 §7 (and of RFC 3501 for
/// IMAP4rev1 sessions: LSUB, SEARCH, RECENT).
const BASE_UNTAGGED: &[&str] = &[
    "OK",
    "NO",
    "BAD",
    "BYE",
    "PREAUTH",
    "CAPABILITY",
    "ENABLED",
    "LIST",
    "NAMESPACE",
    "STATUS",
    "ESEARCH",
    "FLAGS",
    "EXISTS",
    "EXPUNGE",
    "FETCH",
];
const REV1_UNTAGGED: &[&str] = &["LSUB", "SEARCH", "RECENT"];

/// The kind of an untagged response: `* 3 EXISTS` is EXISTS.
fn untagged_kind(l: &str) -> Option<String> {
    let rest = l.strip_prefix("* ")?;
    let mut words = rest.split(' ');
    let first = words.next()?;
    let kind = if first.bytes().all(|b| b.is_ascii_digit()) {
        words.next()?
    } else {
        first
    };
    Some(kind.to_ascii_uppercase())
}

/// Response codes in a line (`[CODE ...]` after OK/NO/BAD/BYE).
fn response_code(l: &str) -> Option<String> {
    let mut words = l.splitn(3, ' ');
    words.next()?;
    let status = words.next()?;
    if !["OK", "NO", "BAD", "BYE", "PREAUTH"].contains(&status) {
        return None;
    }
    let rest = words.next()?.strip_prefix('[')?;
    Some(rest.split([' ', ']']).next()?.to_ascii_uppercase())
}

/// A session of base commands, as `rev2` or IMAP4rev1 client, with
/// another session changing the mailbox meanwhile; all it received.
async fn base_session(s: &TestServer, rev2: bool) -> Vec<String> {
    let mut seen = Vec::new();
    let mut c = common::LineClient::connect(s.addr("imap")).await;
    seen.push(c.line().await);
    seen.extend(cmd(&mut c, "a", "CAPABILITY").await);
    seen.extend(cmd(&mut c, "b", "LOGIN joe@example.org wrong").await);
    seen.extend(cmd(&mut c, "c", "LOGIN joe@example.org pw").await);
    if rev2 {
        seen.extend(cmd(&mut c, "d", "ENABLE IMAP4rev2").await);
    }
    let mut other = login_as(s, "joe@example.org").await;
    for q in [
        "NAMESPACE",
        "CREATE Box",
        "CREATE Box",
        "LIST \"\" *",
        "STATUS Box (MESSAGES UIDNEXT UNSEEN)",
        "SELECT Nowhere",
        "SELECT INBOX",
        "FETCH 1:* (FLAGS UID ENVELOPE BODYSTRUCTURE INTERNALDATE RFC822.SIZE)",
        "STORE 1 +FLAGS (\\Seen $Mine)",
        "SEARCH UNSEEN",
        "SEARCH CHARSET X-UNKNOWN ALL",
        "UID SEARCH ALL",
        "COPY 1 Box",
        "COPY 1 Nowhere",
        "APPEND Nowhere {3+}\r\nx\r\n",
        "FETCH 9 FLAGS",
        "NOOP",
        "STORE 2 +FLAGS (\\Deleted)",
        "EXPUNGE",
        "CLOSE",
        "EXAMINE INBOX",
        "UNSELECT",
        "DELETE Box",
        "XFROB",
    ] {
        // Another session changes the mailbox: new mail and flags.
        append(&mut other, "INBOX", "Subject: more\r\n\r\nx\r\n").await;
        cmd(&mut other, "o", "SELECT INBOX").await;
        cmd(&mut other, "p", "STORE 1 +FLAGS (\\Answered)").await;
        seen.extend(cmd(&mut c, "q", q).await);
    }
    if !rev2 {
        seen.extend(cmd(&mut c, "r", "LSUB \"\" *").await);
    }
    seen.extend(cmd(&mut c, "z", "LOGOUT").await);
    seen
}

/// §6.5 (RFC 3501 §6.5.1), §7.1, §7.2.2 (RFC 3501 §7.2.1): a client that
/// asks for nothing beyond the base protocol gets only its responses;
/// every response code and capability is a registered one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_specified_responses_codes_and_capabilities() {
    let s = server().await;
    for rev2 in [false, true] {
        let seen = base_session(&s, rev2).await;
        let allowed: Vec<&str> = if rev2 {
            BASE_UNTAGGED.to_vec()
        } else {
            [BASE_UNTAGGED, REV1_UNTAGGED].concat()
        };
        let kinds: std::collections::BTreeSet<String> =
            seen.iter().filter_map(|l| untagged_kind(l)).collect();
        for k in &kinds {
            // 6.5#2 (3501 6.5.1#3): no untagged response the client did
            // not ask for.
            assert!(
                allowed.contains(&k.as_str()),
                "rev2={rev2}: * {k} in {seen:#?}"
            );
        }
        // The session did meet the responses it was meant to.
        for k in [
            "EXISTS",
            "EXPUNGE",
            "FETCH",
            "FLAGS",
            "LIST",
            "STATUS",
            "NAMESPACE",
        ] {
            assert!(kinds.contains(k), "rev2={rev2}: no {k}");
        }
        assert_eq!(kinds.contains("ESEARCH"), rev2);
        assert_eq!(kinds.contains("RECENT"), !rev2);
        // No extension data in the FETCH responses of a base client:
        // no MODSEQ (CONDSTORE was never enabled). The HIGHESTMODSEQ
        // code of SELECT is due anyway (RFC 7162 §3.1.2.1).
        let modseq: Vec<&String> = seen
            .iter()
            .filter(|l| l.contains("FETCH") && l.contains("MODSEQ"))
            .collect();
        assert!(modseq.is_empty(), "rev2={rev2}: {modseq:?}");
        // 7.1#2 (3501): response codes are registered ones; 6.5.1#1:
        // the experimental-looking command is simply BAD.
        let codes: std::collections::BTreeSet<String> =
            seen.iter().filter_map(|l| response_code(l)).collect();
        for code in &codes {
            assert!(
                REGISTERED_CODES.contains(&code.as_str()),
                "[{code}] in {seen:#?}"
            );
        }
        for code in [
            "AUTHENTICATIONFAILED",
            "ALREADYEXISTS",
            "NONEXISTENT",
            "BADCHARSET",
            "TRYCREATE",
            "UIDVALIDITY",
        ] {
            assert!(codes.contains(code), "no [{code}]: {codes:?}");
        }
        let bad = seen
            .iter()
            .find(|l| l.starts_with("q BAD") || l.starts_with("q NO"));
        assert!(bad.is_some());
        assert!(seen
            .iter()
            .any(|l| l.starts_with("q BAD") && !l.contains("[")));
        // 7.2.2#7, 3501 7.2.1#5, #6, 7.5#10: every capability offered,
        // before and after login, is registered (or begins with X).
        let cap_lines: Vec<&String> = seen
            .iter()
            .filter(|l| l.starts_with("* CAPABILITY ") || l.contains("[CAPABILITY "))
            .collect();
        assert!(cap_lines.len() >= 2, "{seen:?}");
        for l in cap_lines {
            let list = l
                .split("CAPABILITY ")
                .nth(1)
                .unwrap()
                .split(']')
                .next()
                .unwrap();
            for cap in list.split(' ') {
                let known = REGISTERED_CAPABILITIES.iter().any(|r| {
                    if r.ends_with('=') || r.ends_with('-') {
                        cap.to_ascii_uppercase()
                            .starts_with(&r.to_ascii_uppercase())
                    } else {
                        cap.eq_ignore_ascii_case(r)
                    }
                });
                assert!(known || cap.starts_with('X'), "{cap} in {l}");
            }
        }
    }
}

/// §9 msg-att-static, RFC 3501 §2.3.3, §6.4.4, §6.4.4.1, §6.4.7 and
/// RFC 3501 §6.4.8: what stays, what a delivered message's date is, what
/// SEARCH compares, what a saved result follows, what a failed COPY
/// leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_data_search_and_failed_copy() {
    let s = server().await;
    s.account("ann@example.org");
    // 3501 2.3.3#1: a message delivered by SMTP is dated by its
    // delivery, not by its Date header.
    let before = std::time::SystemTime::now();
    let r = smtp_send(
        s.addr("smtp"),
        "a@example.net",
        &["joe@example.org"],
        "Date: Mon, 1 Jan 2001 00:00:00 +0000\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nYSB6ZWJyYSBpbiB0aGUgdGV4dA==\r\n",
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let mut c = login_as(&s, "joe@example.org").await;
    let qp = "Subject: qp\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nan ele=\r\nphant here=3D\r\n";
    for m in [
        qp,
        "Subject: third\r\n\r\nplain\r\n",
        "Subject: fourth\r\n\r\nplain\r\n",
    ] {
        assert!(ok(&append(&mut c, "INBOX", m).await));
    }
    assert!(ok(&cmd(&mut c, "s", "SELECT INBOX").await));
    let r = cmd(&mut c, "d", "FETCH 1 INTERNALDATE").await;
    let date = r[0].split('"').nth(1).unwrap().to_string();
    let parsed = mail_parser::DateTime::parse_rfc822(&date.replacen('-', " ", 2))
        .unwrap_or_else(|| panic!("{date}"));
    let since = before
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (parsed.to_timestamp() - since).abs() < 120,
        "{date}: not the delivery time"
    );

    // 6.4.4#9 (3501 6.4.4#2): encoded words and transfer encodings are
    // decoded before comparing.
    for (q, want) in [
        ("SEARCH CHARSET UTF-8 SUBJECT {5+}\r\ncafé", "* SEARCH 1"),
        ("SEARCH BODY zebra", "* SEARCH 1"),
        ("SEARCH BODY elephant", "* SEARCH 2"),
        ("SEARCH TEXT \"here=\"", "* SEARCH 2"),
        ("SEARCH BODY YSB6ZWJy", "* SEARCH"),
    ] {
        let r = cmd(&mut c, "q", q).await;
        assert_eq!(r[0], want, "{q}: {r:?}");
    }

    // 9#16 (3501 7.5#15): the static items never change, whatever
    // happens to flags, in this session or another.
    let items = "FETCH 1:4 (ENVELOPE INTERNALDATE RFC822.SIZE BODY BODYSTRUCTURE BODY.PEEK[1] BINARY.SIZE[1] UID)";
    let first = cmd(&mut c, "f", items).await;
    assert!(ok(
        &cmd(&mut c, "g", "STORE 1:4 +FLAGS (\\Flagged $Label)").await
    ));
    let mut other = login_as(&s, "joe@example.org").await;
    assert!(ok(&cmd(&mut other, "e", "EXAMINE INBOX").await));
    assert_eq!(first, cmd(&mut other, "f", items).await);

    // 6.4.4.1#2: a saved result follows expunges (RFC 5182 §2.1).
    assert!(ok(&cmd(&mut c, "h", "SEARCH RETURN (SAVE) 3:4").await));
    let uids_before = cmd(&mut c, "i", "FETCH $ (UID)").await;
    assert!(ok(&cmd(&mut c, "j", "STORE 1 +FLAGS (\\Deleted)").await));
    assert!(ok(&cmd(&mut c, "k", "EXPUNGE").await));
    let uids_after = cmd(&mut c, "l", "FETCH $ (UID)").await;
    let uid_of = |r: &[String]| -> Vec<String> {
        r.iter()
            .filter(|l| l.starts_with("* ") && l.contains("FETCH"))
            .map(|l| {
                l.split("UID ")
                    .nth(1)
                    .unwrap()
                    .trim_end_matches(')')
                    .to_string()
            })
            .collect()
    };
    assert_eq!(uid_of(&uids_before), uid_of(&uids_after));
    assert!(uids_after[0].starts_with("* 2 FETCH"), "{uids_after:?}");

    // 3501 6.4.8#1: responses to UID commands carry UID unasked.
    let r = cmd(&mut c, "m", "UID STORE 1:* +FLAGS (\\Seen)").await;
    let fetches: Vec<&String> = r.iter().filter(|l| l.contains(" FETCH ")).collect();
    assert_eq!(fetches.len(), 3, "{r:?}");
    assert!(fetches.iter().all(|l| l.contains("UID ")), "{r:?}");

    // 6.4.7#5 (3501 6.4.7#5): a COPY that fails half-way leaves the
    // destination as it was. Ann's quota holds one of these messages, and
    // her mailbox takes Joe's copies (RFC 4314 `i`).
    let mut ann = login_as(&s, "ann@example.org").await;
    assert!(ok(&cmd(&mut ann, "c", "CREATE Drop").await));
    assert!(ok(
        &cmd(&mut ann, "a", "SETACL Drop joe@example.org lri").await
    ));
    // Messages 2 and 3 are 25 and 26 bytes: the first fits in 40, the
    // second does not.
    let r = cmd(&mut c, "o", "FETCH 2:3 RFC822.SIZE").await;
    assert!(
        r[0].ends_with("RFC822.SIZE 25)") && r[1].ends_with("RFC822.SIZE 26)"),
        "{r:?}"
    );
    s.cli_ok(&["account", "update", "ann@example.org", "--quota", "40"]);
    let r = cmd(&mut c, "n", "COPY 2:3 \"Shared/ann@example.org/Drop\"").await;
    assert!(r.last().unwrap().starts_with("n NO [OVERQUOTA]"), "{r:?}");
    let r = cmd(&mut ann, "t", "STATUS Drop (MESSAGES)").await;
    assert!(r[0].ends_with("(MESSAGES 0)"), "{r:?}");
}

/// What `openssl s_client` reports of a connection to `addr` with `args`:
/// (handshake done, its stderr summary, the IMAP lines it read).
fn s_client(addr: std::net::SocketAddr, args: &[&str]) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-brief",
            "-ign_eof",
            "-connect",
            &addr.to_string(),
        ])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    // Sent once the handshake is done; the server then closes.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"z LOGOUT\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    (err.contains("CONNECTION ESTABLISHED"), err, lines)
}

/// §11.1 (RFC 3501 §11.1): TLS 1.2 with TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
/// (and the AES-256 one), TLS 1.3 by preference, nothing older; STARTTLS
/// whose negotiation fails is not taken for a secured session. Checked
/// with OpenSSL's client against an RSA certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_versions_and_cipher_suites() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=mx.test",
            "-addext",
            "subjectAltName=DNS:mx.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let s = TestServer::start_with(&format!(
        "[tls]\ncertificate = \"{}\"\nprivate-key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let imaps = s.addr("imaps");
    // 11.1#2, #4: TLS 1.2 with the mandatory suite.
    let (done, err, lines) = s_client(
        imaps,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    );
    assert!(done, "{err}");
    assert!(err.contains("Protocol version: TLSv1.2"), "{err}");
    assert!(
        err.contains("Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256"),
        "{err}"
    );
    assert!(lines.contains("* OK") && lines.contains("* BYE"), "{lines}");
    // 11.1#5: the ECDHE AES-256 suite of RFC 7525 (rustls has no DHE).
    let (done, err, _) = s_client(
        imaps,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    );
    assert!(done && err.contains("ECDHE-RSA-AES256-GCM-SHA384"), "{err}");
    // 11.1#3: TLS 1.3, and chosen when the client offers it.
    let (done, err, _) = s_client(imaps, &[]);
    assert!(done && err.contains("Protocol version: TLSv1.3"), "{err}");
    // 11.1#1 (RFC 8314 §4.1): nothing older than TLS 1.2, even if the
    // client offers it.
    let (done, err, _) = s_client(imaps, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert!(!done, "{err}");
    // STARTTLS on the cleartext port, the same.
    let (done, err, lines) = s_client(s.addr("imap"), &["-starttls", "imap", "-tls1_2"]);
    assert!(done && err.contains("TLSv1.2"), "{err}");
    assert!(lines.contains("* BYE"), "{lines}");

    // 11.1#7: when the negotiation after STARTTLS fails (here the client
    // goes on in cleartext), the server does not take what follows as a
    // command of a secured session.
    let mut c = LineClient::connect(s.addr("imap")).await;
    c.line().await;
    let r = cmd(&mut c, "a", "STARTTLS").await;
    assert!(ok(&r), "{r:?}");
    c.send("b CAPABILITY\r\nc LOGIN joe@example.org pw\r\n")
        .await;
    let mut rest = Vec::new();
    while let Some(l) = c.line_opt().await {
        rest.push(l);
    }
    assert!(
        !rest
            .iter()
            .any(|l| l.starts_with("b ") || l.starts_with("c ")),
        "{rest:?}"
    );
}
