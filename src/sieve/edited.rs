//! A message whose header a script changed (editheader, RFC 5293), made
//! fit to store and send. sieve-rs writes an added field's value as it
//! was given; Petrel then
//! - puts the Return-Path final delivery wrote first again (a script's
//!   `addheader` inserts above it, and it may not be deleted),
//! - writes an added value that is not ASCII, or makes a line longer
//!   than 998 octets, as RFC 2047 encoded words (§4: "encode the field
//!   using folding white space and the encodings described in [MIME3]"),
//! - keeps the original body octets where only the header changed
//!   (sieve-rs ends the body with one CRLF more).

/// `changed` (the message as the script left it) made fit, given the
/// `original` the script ran on.
pub fn finish(changed: &[u8], original: &[u8]) -> Vec<u8> {
    let (head, body) = split(changed);
    let (orig_head, orig_body) = split(original);
    let return_path = super::deliver::return_path_line(original);
    let mut out = Vec::with_capacity(changed.len() + 64);
    if let Some(rp) = return_path {
        out.extend_from_slice(rp);
        out.extend_from_slice(b"\r\n");
    }
    for field in fields(head) {
        if return_path.is_some_and(|rp| field.strip_suffix(b"\r\n") == Some(rp)) {
            continue;
        }
        let added = !contains(orig_head, field);
        let long = field.split(|&b| b == b'\n').any(|l| l.len() > 1000);
        match (added && (!field.is_ascii() || long), field_parts(field)) {
            (true, Some((name, value))) => {
                out.extend_from_slice(name);
                out.extend_from_slice(b": ");
                let v = String::from_utf8_lossy(value);
                out.extend_from_slice(super::deliver::encoded_words(v.trim()).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            _ => out.extend_from_slice(field),
        }
    }
    out.extend_from_slice(b"\r\n");
    let same_body = body
        .strip_prefix(orig_body)
        .is_some_and(|rest| rest.iter().all(|b| matches!(b, b'\r' | b'\n')));
    out.extend_from_slice(if same_body { orig_body } else { body });
    out
}

/// The header section (each field with its CRLF) and the body.
fn split(m: &[u8]) -> (&[u8], &[u8]) {
    match m.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => (&m[..p + 2], &m[p + 4..]),
        None => (m, &[]),
    }
}

/// The fields of a header section, each with its continuation lines
/// and final CRLF.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let end = head[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(head.len(), |p| i + p + 2);
        let next_folds = matches!(head.get(end), Some(b' ' | b'\t'));
        if !next_folds {
            out.push(&head[start..end]);
            start = end;
        }
        i = end;
    }
    out
}

/// A field's name and value (the value without its CRLF).
fn field_parts(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = field.iter().position(|&b| b == b':')?;
    let value = field[colon + 1..]
        .strip_suffix(b"\r\n")
        .unwrap_or(&field[colon + 1..]);
    Some((&field[..colon], value))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_first_values_encoded_body_kept() {
        let original =
            b"Return-Path: <a@b.test>\r\nSubject: x\r\nX-Raw: caf\xc3\xa9\r\n\r\nbody\r\n";
        let changed = "X-New: café\r\nX-Long: ".to_string()
            + &"a".repeat(1100)
            + "\r\nX-Ok: plain\r\nReturn-Path: <a@b.test>\r\nSubject: x\r\nX-Raw: café\r\n\r\nbody\r\n\r\n";
        let out = String::from_utf8(finish(changed.as_bytes(), original)).unwrap();
        assert!(
            out.starts_with("Return-Path: <a@b.test>\r\nX-New: =?utf-8?B?Y2Fmw6k=?=\r\n"),
            "{out}"
        );
        assert!(out.contains("X-Ok: plain\r\n"), "{out}");
        assert!(
            out.contains("X-Raw: café\r\n"),
            "an original field stays: {out}"
        );
        assert_eq!(out.matches("Return-Path").count(), 1);
        assert!(out.lines().all(|l| l.len() <= 998), "{out}");
        assert!(out.ends_with("\r\n\r\nbody\r\n"), "{out:?}");
        // A body the script changed (a MIME part's header) stays changed.
        let out = finish(b"S: x\r\n\r\nother\r\n", b"S: x\r\n\r\nbody\r\n");
        assert_eq!(out, b"S: x\r\n\r\nother\r\n");
    }
}
