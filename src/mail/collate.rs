//! String comparison shared by IMAP SORT/THREAD and JMAP Email/query:
//! the "i;unicode-casemap" collation (RFC 5051) and the base subject of
//! RFC 5256 §2.1.

/// The key SORT and THREAD compare strings by: "i;unicode-casemap" (RFC
/// 5256 §1, §7; RFC 5051 §2): each character's simple titlecase mapping,
/// then its decomposition (canonical and compatibility), the pieces
/// titlecased again. Hangul syllables are left whole, as UnicodeData's
/// decomposition field does not list them.
pub fn casemap(s: &str) -> String {
    use unicode_normalization::char::decompose_compatible;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let t = titlecase(c);
        if ('\u{AC00}'..='\u{D7A3}').contains(&t) {
            out.push(t);
        } else {
            decompose_compatible(t, |d| out.push(titlecase(d)));
        }
    }
    out
}

/// The simple (one-character) titlecase mapping of `c`: its uppercase
/// where that is one character, except for the characters whose titlecase
/// differs from their uppercase (the Latin digraphs and the Greek letters
/// with ypogegrammeni).
fn titlecase(c: char) -> char {
    match c {
        '\u{01C4}'..='\u{01C6}' => '\u{01C5}',
        '\u{01C7}'..='\u{01C9}' => '\u{01C8}',
        '\u{01CA}'..='\u{01CC}' => '\u{01CB}',
        '\u{01F1}'..='\u{01F3}' => '\u{01F2}',
        '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => {
            char::from_u32(c as u32 + 8).unwrap_or(c)
        }
        '\u{1FB3}' => '\u{1FBC}',
        '\u{1FC3}' => '\u{1FCC}',
        '\u{1FF3}' => '\u{1FFC}',
        _ => {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// The base subject of RFC 5256 §2.1, and whether extracting it removed
/// a reply or forward marker ("Re:", "Fw:", "Fwd:", "(fwd)", "[fwd: ...]",
/// which THREAD takes as the message being a reply, §2.1 and §3). The
/// subject comes decoded (RFC 2047 words are UTF-8 already); the result
/// is compared after case mapping.
pub fn base_subject_5256(subject: &str) -> (String, bool) {
    // (1) Tabs and folding to spaces, runs of spaces to one.
    let mut s: String = subject
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut reply = false;
    loop {
        // (2) Trailers: "(fwd)" and white space, repeatedly.
        loop {
            let t = s.trim_end();
            let lower = t.to_ascii_lowercase();
            if lower.ends_with("(fwd)") {
                s = t[..t.len() - 5].to_string();
                reply = true;
            } else if t.len() != s.len() {
                s = t.to_string();
            } else {
                break;
            }
        }
        // (3)-(5) Leaders and blobs, until nothing more goes.
        loop {
            let before = s.len();
            if let Some(rest) = strip_leader(&s) {
                s = rest.to_string();
                reply = true;
            }
            let t = s.trim_start();
            if t.len() != s.len() {
                s = t.to_string();
            }
            // (4) A leading blob, if something is left after it.
            if let Some(rest) = strip_blob(&s) {
                if !rest.trim().is_empty() {
                    s = rest.to_string();
                }
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: ...]" around the whole: unwrap and start again.
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        break;
    }
    (s, reply)
}

/// subj-blob = "[" *BLOBCHAR "]" *WSP: the rest after one, if `s` starts
/// with one.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    if rest.as_bytes()[end] != b']' {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

/// subj-leader = (*subj-blob subj-refwd) / WSP, where subj-refwd = ("re" /
/// ("fw" ["d"])) *WSP [subj-blob] ":". The rest after one, if `s` starts
/// with one.
fn strip_leader(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    let lower = rest.to_ascii_lowercase();
    let n = if lower.starts_with("fwd") {
        3
    } else if lower.starts_with("fw") || lower.starts_with("re") {
        2
    } else {
        return None;
    };
    let mut after = rest[n..].trim_start();
    if let Some(r) = strip_blob(after) {
        after = r;
    }
    after.strip_prefix(':')
}
