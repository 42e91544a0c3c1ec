//! Pyzor: a shared count of how many people reported a message's
//! digest as spam, asked over UDP (`[spam.pyzor] servers`, none by
//! default; the public server is public.pyzor.org:24441).
//!
//! The digest is Pyzor's (so that counts are shared with every other
//! Pyzor client): the text of the message's text parts (HTML as its text
//! nodes joined by spaces; other leaf parts as sent), split into lines;
//! in each, strings of 10 or more non-space characters, then anything
//! with an `@` inside, then URL-like `scheme:rest` are removed, then all
//! white space; lines shorter than 8 characters are dropped. A message
//! of 4 such lines or fewer is digested whole, a longer one by 3 lines
//! from 20 % and 3 from 60 % of the way in; SHA-1, in hex.
//!
//! The protocol is version 2.1: a request is header lines ("Op: check",
//! "Op-Digest", "Thread", "PV", "User", "Time", "Sig") and an empty
//! line; the anonymous user's signature is SHA-1 over the SHA-1 of the
//! request and ":TIME:" and SHA-1("anonymous:"). The answer's `Count`
//! and `WL-Count` say how often it was reported and whitelisted.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;
use sha1::{Digest, Sha1};

/// Pyzor's digest of a message, or None when no line counts (nothing to
/// ask about).
pub fn digest(raw: &[u8]) -> Option<String> {
    digest_of(&mail_parser::MessageParser::default().parse(raw)?, raw)
}

/// [`digest`] of a message parsed already from `raw`.
pub fn digest_of(msg: &mail_parser::Message<'_>, raw: &[u8]) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in msg.parts.iter() {
        let payload = match &part.body {
            mail_parser::PartType::Text(t) => t.to_string(),
            mail_parser::PartType::Html(h) => html_text(h),
            mail_parser::PartType::Multipart(_) => continue,
            // A nested message is walked as its own parts.
            mail_parser::PartType::Message(_) => continue,
            // Other parts count as sent (base64 lines are long strings,
            // so they drop out).
            _ => String::from_utf8_lossy(
                raw.get(part.offset_body as usize..part.offset_end as usize)
                    .unwrap_or_default(),
            )
            .into_owned(),
        };
        for line in split_lines(&payload) {
            let norm = normalize(line);
            if norm.chars().count() >= 8 {
                lines.push(norm);
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut h = Sha1::new();
    if lines.len() <= 4 {
        for l in &lines {
            h.update(l.as_bytes());
        }
    } else {
        for (offset, length) in [(20usize, 3usize), (60, 3)] {
            for i in 0..length {
                if let Some(l) = lines.get(offset * lines.len() / 100 + i) {
                    h.update(l.as_bytes());
                }
            }
        }
    }
    Some(hex::encode(h.finalize()))
}

/// Lines as Python's `str.splitlines` cuts them.
fn split_lines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let brk = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if brk {
            out.push(&s[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r' {
                if let Some((j, '\n')) = chars.peek().copied() {
                    chars.next();
                    next = j + 1;
                }
            }
            start = next;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn patterns() -> &'static [Regex; 4] {
    static P: OnceLock<[Regex; 4]> = OnceLock::new();
    P.get_or_init(|| {
        [
            Regex::new(r"\S{10,}").expect("regex"),
            Regex::new(r"\S+@\S+").expect("regex"),
            Regex::new(r"(?i)[a-z]+:\S+").expect("regex"),
            Regex::new(r"\s").expect("regex"),
        ]
    })
}

/// One line as Pyzor counts it.
fn normalize(line: &str) -> String {
    let [long, email, url, ws] = patterns();
    let s = line.replace('\0', "");
    let s = long.replace_all(&s, "");
    let s = email.replace_all(&s, "");
    let s = url.replace_all(&s, "");
    ws.replace_all(&s, "").trim().to_string()
}

/// The text nodes of HTML outside script and style, each trimmed,
/// joined by spaces.
fn html_text(html: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut rest = html;
    let mut skipping: Option<&str> = None;
    while !rest.is_empty() {
        let (text, after) = match rest.find('<') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if skipping.is_none() {
            let t = decode_entities(text);
            let t = t.trim();
            if !t.is_empty() {
                out.push(t.to_string());
            }
        }
        if after.is_empty() {
            break;
        }
        // An unclosed tag runs to the end (cut at a byte before the end,
        // it could split a character: found by fuzzing).
        let close = after.find('>');
        let end = close.map_or(after.len(), |e| e + 1);
        let tag = after[1..close.unwrap_or(after.len())]
            .trim()
            .to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match (tag.starts_with('/'), name.as_str()) {
            (false, "script") => skipping = Some("script"),
            (false, "style") => skipping = Some("style"),
            (true, n) if skipping == Some(n) => skipping = None,
            _ => {}
        }
        rest = &after[end..];
    }
    out.join(" ")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A request to a Pyzor server: `op` is "check" or "report".
pub fn request(op: &str, digest: &str, thread: u16, time: i64) -> String {
    let spec = if op == "report" {
        "Op-Spec: 20,3,60,3\n"
    } else {
        ""
    };
    let unsigned = format!(
        "Op: {op}\nOp-Digest: {digest}\n{spec}Thread: {thread}\nPV: 2.1\nUser: anonymous\nTime: {time}"
    );
    let key = hex::encode(Sha1::digest(b"anonymous:"));
    let mut sig = Sha1::new();
    sig.update(Sha1::digest(unsigned.as_bytes()));
    sig.update(format!(":{time}:{key}").as_bytes());
    format!("{unsigned}\nSig: {}\n\n", hex::encode(sig.finalize()))
}

/// What a server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub code: u32,
    pub thread: Option<u16>,
    pub count: u64,
    pub wl_count: u64,
}

pub fn parse_answer(packet: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(packet);
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    Some(Answer {
        code: field("Code")?.parse().ok()?,
        thread: field("Thread").and_then(|t| t.parse().ok()),
        count: field("Count").and_then(|c| c.parse().ok()).unwrap_or(0),
        wl_count: field("WL-Count").and_then(|c| c.parse().ok()).unwrap_or(0),
    })
}

/// Whether an answer is a hit: reported `min` times or more, and not
/// whitelisted by 10 or more people making up over a fifth of the
/// reports (SpamAssassin's reading).
pub fn is_hit(a: &Answer, min: u64) -> bool {
    let whitelisted = a.wl_count >= 10 && a.wl_count as f64 > 0.2 * a.count as f64;
    a.code == 200 && a.count >= min && !whitelisted
}

/// Sends `op` for `digest` to `server` and reads its answer within `timeout`.
pub async fn ask(
    server: &str,
    op: &str,
    digest: &str,
    timeout: Duration,
) -> Result<Answer, String> {
    let work = async {
        let addr: SocketAddr = tokio::net::lookup_host(server)
            .await
            .map_err(|e| format!("{server}: {e}"))?
            .next()
            .ok_or_else(|| format!("{server} has no address"))?;
        let local: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let sock = tokio::net::UdpSocket::bind(local)
            .await
            .map_err(|e| e.to_string())?;
        sock.connect(addr).await.map_err(|e| e.to_string())?;
        // Thread ids from 1024 up; below are the servers' error replies.
        let thread = 1024 + (rand_u16() % (u16::MAX - 1024));
        let req = request(op, digest, thread, crate::core::unix_now());
        sock.send(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
            let Some(a) = parse_answer(&buf[..n]) else {
                return Err("the server's answer could not be read".into());
            };
            // Another request's late answer: wait on for ours.
            if a.thread.is_some_and(|t| t >= 1024 && t != thread) {
                continue;
            }
            return Ok(a);
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{server} did not answer in time"))?
}

fn rand_u16() -> u16 {
    rand::random::<u16>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_normalised_as_pyzor_does() {
        assert_eq!(
            normalize("Visit http://example.com/x now, mail bob@example.org today!"),
            "Visitnow,mailtoday!"
        );
        // Long strings first, so a long URL leaves no scheme behind.
        assert_eq!(normalize("a verylongidentifier12 b"), "ab");
        assert_eq!(normalize("ab1c:xyz"), "ab1");
        assert_eq!(
            split_lines("a\r\nb\rc\nd\u{2028}e"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(split_lines("a\n\nb\n"), ["a", "", "b"]);
    }

    #[test]
    fn digests() {
        // Checked against `pyzor digest` 1.1.2 (tests/spam.rs compares
        // more through a real pyzord).
        let m = b"Subject: hi\n\nThis is a test message body line one\nand another line of spam content here\n";
        assert_eq!(
            digest(m).as_deref(),
            Some("96970d8ed85b18bf9b826d8c7b6b29b3f5dd9d79")
        );
        assert_eq!(digest(b"Subject: hi\n\nshort\n"), None);
        assert_eq!(
            html_text(
                "<p>Hello <b>there</b></p><script>var x=1;</script><style>p{}</style> &amp; bye"
            ),
            "Hello there & bye"
        );
    }

    #[test]
    fn requests_and_answers() {
        let r = request("report", "abc", 2048, 1_700_000_000);
        assert!(r.starts_with(
            "Op: report\nOp-Digest: abc\nOp-Spec: 20,3,60,3\nThread: 2048\nPV: 2.1\nUser: anonymous\nTime: 1700000000\nSig: "
        ));
        assert!(r.ends_with("\n\n"));
        let a =
            parse_answer(b"Code: 200\nDiag: OK\nPV: 2.1\nThread: 2048\nCount: 7\nWL-Count: 0\n\n")
                .unwrap();
        assert_eq!(a.count, 7);
        assert_eq!(a.thread, Some(2048));
        assert!(is_hit(&a, 5));
        assert!(!is_hit(&a, 8));
        let wl = Answer {
            wl_count: 20,
            count: 50,
            ..a
        };
        assert!(!is_hit(&wl, 5));
        assert_eq!(parse_answer(b"garbage"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_answer_reads_or_not(packet in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_answer(&packet);
        }

        #[test]
        fn any_message_digests_or_not(text in "\\PC{0,300}") {
            if let Some(d) = digest(text.as_bytes()) {
                proptest::prop_assert_eq!(d.len(), 40);
            }
        }
    }
}
