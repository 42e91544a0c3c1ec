//! SASL mechanisms shared by SMTP and IMAP: PLAIN (RFC 4616) and LOGIN.

use base64::Engine;

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim().as_bytes())
        .ok()
}

pub fn b64_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decodes a PLAIN response `authzid NUL authcid NUL passwd` (RFC 4616 §2).
/// An authorization identity other than the login itself is refused.
pub fn decode_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let authz = parts.next()?;
    let authc = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let authc = String::from_utf8(authc.to_vec()).ok()?;
    let pass = String::from_utf8(pass.to_vec()).ok()?;
    if authc.is_empty() {
        return None;
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc.as_bytes()) {
        return None;
    }
    Some((authc, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        assert_eq!(
            decode_plain(b"\0joe@x.org\0pw"),
            Some(("joe@x.org".into(), "pw".into()))
        );
        assert_eq!(
            decode_plain(b"joe@x.org\0joe@x.org\0pw"),
            Some(("joe@x.org".into(), "pw".into()))
        );
        assert_eq!(decode_plain(b"other\0joe@x.org\0pw"), None);
        assert_eq!(decode_plain(b"\0\0pw"), None);
        assert_eq!(decode_plain(b"only"), None);
    }
}
