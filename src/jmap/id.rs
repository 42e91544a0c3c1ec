//! JMAP ids (RFC 8620 §1.2: 1-255 characters of the URL-safe base64
//! alphabet) for the mail store's numeric ids: a letter naming the kind,
//! then the number in decimal. Ids never change and are never reused,
//! like the store's. Mailbox, Email and Thread ids are the ones IMAP
//! shows as MAILBOXID, EMAILID and THREADID (RFC 8474; RFC 8621 §1.6).

fn parse(prefix: char, s: &str) -> Option<u64> {
    let digits = s.strip_prefix(prefix)?;
    if digits.is_empty() || digits.starts_with('0') && digits.len() > 1 {
        return None;
    }
    digits.parse().ok()
}

pub fn account(id: u32) -> String {
    format!("a{id}")
}

pub fn parse_account(s: &str) -> Option<u32> {
    parse('a', s).and_then(|n| u32::try_from(n).ok())
}

pub fn mailbox(id: u32) -> String {
    format!("M{id}")
}

pub fn parse_mailbox(s: &str) -> Option<u32> {
    parse('M', s).and_then(|n| u32::try_from(n).ok())
}

pub fn email(id: u64) -> String {
    format!("E{id}")
}

pub fn parse_email(s: &str) -> Option<u64> {
    parse('E', s)
}

pub fn thread(id: u64) -> String {
    format!("T{id}")
}

pub fn parse_thread(s: &str) -> Option<u64> {
    parse('T', s)
}

pub fn identity(n: u64) -> String {
    format!("I{n}")
}

pub fn parse_identity(s: &str) -> Option<u64> {
    parse('I', s)
}

/// A Principal (RFC 9670 §2): a directory account or group, by its
/// directory id (one sequence for both).
pub fn principal(n: u32) -> String {
    format!("P{n}")
}

pub fn parse_principal(s: &str) -> Option<u32> {
    parse('P', s).and_then(|n| u32::try_from(n).ok())
}

/// A ShareNotification (RFC 9670 §3).
pub fn share_note(n: u64) -> String {
    format!("N{n}")
}

pub fn parse_share_note(s: &str) -> Option<u64> {
    parse('N', s)
}

pub fn submission(n: u64) -> String {
    format!("S{n}")
}

pub fn parse_submission(s: &str) -> Option<u64> {
    parse('S', s)
}

/// A SieveScript (RFC 9661 §2.1): `F` and its record id.
pub fn sieve_script(n: u64) -> String {
    format!("F{n}")
}

pub fn parse_sieve_script(s: &str) -> Option<u64> {
    parse('F', s)
}

/// A Sieve script's content as a blob (RFC 9661 §2.2): `F`, the script's
/// record id, `_` and 16 hex digits of the text's SHA-256, so that a new
/// text is a new blob and an old blob id names nothing once replaced.
pub fn script_blob(n: u64, text: &str) -> String {
    format!("F{n}_{:016x}", script_digest(text))
}

/// The first 8 octets of the SHA-256 of a script's text.
pub fn script_digest(text: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(text.as_bytes());
    u64::from_be_bytes(d[..8].try_into().unwrap_or_default())
}

/// A message's blob: `B` and its Email id, so that a blob id leads only
/// to the asking account's own mail.
pub fn blob(email: u64) -> String {
    format!("B{email}")
}

/// One MIME part of a message (RFC 8621 §4.1.4 blobId): the message's
/// blob id (an Email's or an upload's), `-` and the part's index (its
/// partId).
pub fn part_blob(whole: &str, part: usize) -> String {
    format!("{whole}-{part}")
}

/// An uploaded blob (RFC 8620 §6.1): `U` and the upload's number.
pub fn upload(n: u64) -> String {
    format!("U{n}")
}

/// What a blob id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRef {
    Message(u64),
    Part(u64, usize),
    Upload(u64),
    UploadPart(u64, usize),
    /// A Sieve script's text: record id and digest ([`script_blob`]).
    Script(u64, u64),
}

pub fn parse_blob(s: &str) -> Option<BlobRef> {
    if let Some((n, digest)) = s.strip_prefix('F').and_then(|r| r.split_once('_')) {
        let n = parse('F', &format!("F{n}"))?;
        if digest.len() != 16 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return Some(BlobRef::Script(n, u64::from_str_radix(digest, 16).ok()?));
    }
    let (whole, part) = match s.split_once('-') {
        None => (s, None),
        Some((w, p)) => {
            let p = parse('p', &format!("p{p}"))?;
            (w, Some(usize::try_from(p).ok()?))
        }
    };
    if let Some(n) = parse('U', whole) {
        return Some(match part {
            None => BlobRef::Upload(n),
            Some(p) => BlobRef::UploadPart(n, p),
        });
    }
    let e = parse('B', whole)?;
    Some(match part {
        None => BlobRef::Message(e),
        Some(p) => BlobRef::Part(e, p),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        assert_eq!(parse_mailbox(&mailbox(7)), Some(7));
        assert_eq!(parse_account(&account(0)), Some(0));
        assert_eq!(mailbox(7), "M7");
        assert_eq!(parse_email(&email(9)), Some(9));
        assert_eq!(parse_thread(&thread(3)), Some(3));
        assert_eq!(parse_blob(&blob(4)), Some(BlobRef::Message(4)));
        assert_eq!(
            parse_blob(&part_blob(&blob(4), 2)),
            Some(BlobRef::Part(4, 2))
        );
        assert_eq!(
            parse_blob(&part_blob(&upload(4), 0)),
            Some(BlobRef::UploadPart(4, 0))
        );
        assert_eq!(parse_blob(&upload(3)), Some(BlobRef::Upload(3)));
        let b = script_blob(5, "keep;");
        assert_eq!(
            parse_blob(&b),
            Some(BlobRef::Script(5, script_digest("keep;")))
        );
        assert_ne!(b, script_blob(5, "discard;"));
        assert_eq!(parse_sieve_script(&sieve_script(5)), Some(5));
        for bad in [
            "F5_",
            "F5_12",
            "F05_0123456789abcdef",
            "F5_0123456789abcdeg",
            "F5_0123456789abcdef-1",
        ] {
            assert_eq!(parse_blob(bad), None, "{bad}");
        }
        for bad in ["B4-", "B4-02", "B4-x", "B-1", "B4-1-2", "U", "U01", "U1-"] {
            assert_eq!(parse_blob(bad), None, "{bad}");
        }
        for bad in ["M", "M07", "m7", "M-1", "M4294967296", "a1"] {
            assert_eq!(parse_mailbox(bad), None, "{bad}");
        }
    }
}
