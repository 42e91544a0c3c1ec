//! Binary parts stored in base64.
//!
//! A message may arrive with parts in the "binary" transfer encoding (an
//! IMAP APPEND with a literal8, RFC 3516 §4.4; SMTP BODY=BINARYMIME, RFC
//! 3030). IMAP4rev1 clients cannot take NUL bytes or lines of any length,
//! and RFC 3516 §6 requires BODYSTRUCTURE to describe, and FETCH BODY to
//! return, such a message as if its binary parts were in an encoding
//! those clients read. Petrel re-encodes them in base64 when it stores
//! the message; §4.4 allows this as long as nothing is lost, and FETCH
//! BINARY gives the original bytes back.
//!
//! A NUL byte in a part labelled otherwise (7bit, 8bit or no encoding, as
//! broken senders deliver over SMTP) would reach IMAP clients in a
//! literal, where RFC 9051 §9 forbids it: such a part is re-encoded in
//! base64 too. In a base64 part NUL bytes are dropped (no base64 has
//! them; lenient decoders skip them), in a quoted-printable one they
//! become `=00`, which decodes to the same NUL.

use super::mime::Part;

/// The message with every leaf part in the binary transfer encoding (or
/// holding NUL bytes) re-encoded, or `None` if it has none.
pub fn encode_binary_parts(raw: &[u8], root: &Part) -> Option<Vec<u8>> {
    let mut edits = Vec::new();
    collect(raw, root, &mut edits, 0);
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.field.0);
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 2);
    let mut at = 0;
    for e in edits {
        out.extend_from_slice(&raw[at..e.field.0]);
        out.extend_from_slice(e.field_text);
        out.extend_from_slice(&raw[e.field.1..e.body.0]);
        out.extend_from_slice(&e.new_body);
        at = e.body.1;
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

const BASE64_FIELD: &[u8] = b"Content-Transfer-Encoding: base64\r\n";

/// One part to rewrite: the header bytes `field` replaced by `field_text`
/// (an empty range inserts it), and its body replaced by `new_body`.
struct Edit {
    field: (usize, usize),
    field_text: &'static [u8],
    body: (usize, usize),
    new_body: Vec<u8>,
}

fn collect(raw: &[u8], p: &Part, out: &mut Vec<Edit>, depth: usize) {
    if depth > 32 {
        return;
    }
    if let Some(m) = &p.message {
        collect(raw, m, out, depth + 1);
        return;
    }
    if p.multipart {
        for c in &p.children {
            collect(raw, c, out, depth + 1);
        }
        return;
    }
    let (h, b, e) = (p.header as usize, p.body as usize, p.end as usize);
    if h > b || b > e || e > raw.len() {
        return;
    }
    let body = &raw[b..e];
    let cte = cte_field(&raw[h..b]);
    let value = cte.as_ref().map(|c| c.1.to_ascii_lowercase());
    let base64 = |field: (usize, usize)| Edit {
        field,
        field_text: BASE64_FIELD,
        body: (b, e),
        new_body: base64_lines(body),
    };
    match (cte, value.as_deref()) {
        (Some((f, _)), Some("binary")) => out.push(base64((h + f.0, h + f.1))),
        _ if !body.contains(&0) => {}
        (_, Some("base64")) => out.push(Edit {
            field: (b, b),
            field_text: b"",
            body: (b, e),
            new_body: body.iter().copied().filter(|&c| c != 0).collect(),
        }),
        (_, Some("quoted-printable")) => out.push(Edit {
            field: (b, b),
            field_text: b"",
            body: (b, e),
            new_body: body.iter().fold(Vec::new(), |mut v, &c| {
                if c == 0 {
                    v.extend_from_slice(b"=00");
                } else {
                    v.push(c);
                }
                v
            }),
        }),
        (Some((f, _)), _) => out.push(base64((h + f.0, h + f.1))),
        (None, _) => {
            // No field: add one at the end of the header, before the
            // empty line.
            let at = if raw[h..b].ends_with(b"\r\n\r\n") {
                b - 2
            } else if raw[h..b].ends_with(b"\n\n") {
                b - 1
            } else {
                return; // a header without an empty line: no body to fix
            };
            out.push(base64((at, at)));
        }
    }
}

/// The Content-Transfer-Encoding field of a header block: its byte range
/// (to the end of its last line) and its trimmed value.
fn cte_field(header: &[u8]) -> Option<((usize, usize), String)> {
    let mut at = 0;
    while at < header.len() {
        let line_end = next_line(header, at);
        let line = &header[at..line_end];
        let name = b"content-transfer-encoding:";
        if line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
            let mut end = line_end;
            while end < header.len() && matches!(header[end], b' ' | b'\t') {
                end = next_line(header, end);
            }
            let value = String::from_utf8_lossy(&header[at + name.len()..end])
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            return Some(((at, end), value));
        }
        at = line_end;
    }
    None
}

/// Offset just past the line starting at `at` (its LF included).
fn next_line(b: &[u8], at: usize) -> usize {
    b[at..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |i| at + i + 1)
}

/// Base64 in lines of 76 characters (RFC 2045 §6.8), CRLF between them.
fn base64_lines(data: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(text.len() + text.len() / 38);
    for (i, chunk) in text.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::mime::analyze;

    fn decoded_parts(raw: &[u8]) -> Vec<Vec<u8>> {
        let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
        msg.parts
            .iter()
            .filter(|p| !matches!(p.body, mail_parser::PartType::Multipart(_)))
            .map(|p| p.contents().to_vec())
            .collect()
    }

    #[test]
    fn binary_parts_become_base64_without_loss() {
        let blob: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let mut raw = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\ncontent-transfer-encoding:\r\n  BINARY\r\nX-After: kept\r\n\r\n".to_vec();
        raw.extend_from_slice(&blob);
        raw.extend_from_slice(b"\r\n--b--\r\n");
        let out = encode_binary_parts(&raw, &analyze(&raw).root).expect("one binary part");
        assert!(!out.contains(&0));
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\nX-After: kept\r\n\r\n"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.len() <= 76), "{text}");
        let parts = decoded_parts(&out);
        assert_eq!(parts[1], blob);
        assert_eq!(parts[0], b"hello");
        // Nothing to do for a message without binary parts.
        assert!(encode_binary_parts(&out, &analyze(&out).root).is_none());
    }

    #[test]
    fn a_binary_message_body_is_encoded_whole() {
        let raw = b"Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\r\nend\r\n";
        let out = encode_binary_parts(raw, &analyze(raw).root).unwrap();
        assert_eq!(
            out,
            b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\nAAENCmVuZA0K".to_vec()
        );
    }

    #[test]
    fn nul_bytes_leave_every_part_without_changing_its_content() {
        let raw: &[u8] = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\na\x00b\r\n--b\r\nContent-Type: text/plain\r\n\r\nc\x00d\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\x00bG8=\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ne\x00f\r\n--b\r\nContent-Type: text/plain\r\n\r\nclean\r\n--b--\r\n";
        let out = encode_binary_parts(raw, &analyze(raw).root).expect("four parts to fix");
        assert!(!out.contains(&0), "{}", String::from_utf8_lossy(&out));
        let (before, after) = (decoded_parts(raw), decoded_parts(&out));
        for k in [0, 1, 3, 4] {
            assert_eq!(after[k], before[k], "part {k}");
        }
        // Base64 without the NUL: what lenient decoders read before.
        assert_eq!(after[2], b"hello");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("Content-Transfer-Encoding: base64").count(), 3);
        assert!(text.contains("e=00f") && text.contains("aGVsbG8=") && text.contains("clean"));
        // A message without NUL or binary parts is left alone.
        let clean = b"Subject: x\r\n\r\nhello\r\n";
        assert!(encode_binary_parts(clean, &analyze(clean).root).is_none());
    }
}
