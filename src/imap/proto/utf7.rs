//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3), for IMAP4rev1
//! clients; sessions that enabled IMAP4rev2 or UTF8=ACCEPT use UTF-8.
//!
//! Printable ASCII stands for itself except `&`, written `&-`; any other
//! run of characters is `&`, its UTF-16 code units in base64 with `,`
//! for `/` and no padding, then `-`.

use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

fn engine() -> GeneralPurpose {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .expect("64 distinct printable characters");
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

fn printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// A UTF-8 name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if printable(c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A modified UTF-7 name in UTF-8, or `None` if it is not valid modified
/// UTF-7 (an unterminated or badly encoded shift, printable ASCII encoded,
/// a lone surrogate). Non-ASCII UTF-8 passes through: clients that send
/// it mean it.
pub fn decode(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-')?;
        let b64 = &after[..end];
        if b64.is_empty() {
            out.push('&');
        } else {
            let bytes = engine().decode(b64).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            let text = String::from_utf16(&units).ok()?;
            // §5.1.3: printable ASCII is never encoded; a shift that
            // does so is not the canonical form.
            if text.chars().any(printable) {
                return None;
            }
            out.push_str(&text);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_examples() {
        // RFC 3501 §5.1.3's example, and the usual suspects.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode("A&-B").as_deref(), Some("A&B"));
        assert_eq!(encode("😀"), "&2D3eAA-");
        assert_eq!(decode("&2D3eAA-").as_deref(), Some("😀"));
    }

    #[test]
    fn invalid_forms() {
        assert_eq!(decode("&Jjo!"), None, "unterminated");
        assert_eq!(decode("&AGE-"), None, "printable ASCII encoded");
        assert_eq!(decode("&2D0-"), None, "lone surrogate");
        assert_eq!(decode("&A-"), None, "bad base64 length");
        assert_eq!(decode("Grüße").as_deref(), Some("Grüße"));
    }

    proptest! {
        #[test]
        fn round_trip(s in "\\PC{0,30}") {
            let e = encode(&s);
            prop_assert!(e.chars().all(printable), "{}", e);
            prop_assert_eq!(decode(&e), Some(s));
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,40}") {
            let _ = decode(&s);
        }
    }
}
