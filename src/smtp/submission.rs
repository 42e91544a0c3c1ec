//! What the submission service (RFC 6409) checks of a message beyond what
//! any SMTP server does: envelope and header domains fully qualified
//! (§4.2), address syntax in header fields (§5.1), the author being the
//! user (§8.1, `smtp.check-from-header`), a valid Message-ID (§8.3).

use crate::directory::Account;

/// Why an envelope address is refused on submission, if it is: a
/// domain that is not fully qualified (RFC 6409 §4.2; a single label is
/// refused, not expanded, §4.2 #3). Address literals are qualified.
pub(super) fn envelope_problem(addr: &str) -> Option<String> {
    if addr.is_empty() || addr.eq_ignore_ascii_case("postmaster") {
        return None;
    }
    match addr.rsplit_once('@') {
        None => Some(format!(
            "553 5.1.3 <{addr}> has no domain: give the full address (user@example.org)"
        )),
        Some((_, d)) if !d.starts_with('[') && !d.trim_end_matches('.').contains('.') => {
            Some(format!(
                "553 5.1.2 The domain of <{addr}> is not fully qualified: give the full domain (example.org, not example)"
            ))
        }
        _ => None,
    }
}

/// The address header fields RFC 6409 §4.2 and §5.1 speak of.
const ADDRESS_FIELDS: &[&str] = &["From", "Sender", "Reply-To", "To", "Cc", "Bcc"];

/// Why the header section is refused, if it is: an address that is no
/// address, or whose domain is not fully qualified. Groups and their
/// empty lists (`undisclosed-recipients:;`) are fine.
pub(super) fn header_problem(body: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse_headers(body)?;
    for field in ADDRESS_FIELDS {
        let Some(list) = msg.header(*field).and_then(|h| h.as_address()) else {
            continue;
        };
        for a in list.iter() {
            let Some(address) = a.address() else {
                let shown = a.name().unwrap_or("");
                return Some(format!(
                    "554 5.6.0 The {field}: header holds `{shown}`, which is not an address: write it as name <user@example.org>"
                ));
            };
            if !address.contains('@') {
                return Some(format!(
                    "554 5.6.0 The {field}: header address <{address}> has no domain: write the full address"
                ));
            }
            if let Some(why) = envelope_problem(address) {
                let why = why.split_once(' ').map_or(why.as_str(), |(_, w)| w);
                let why = why.split_once(' ').map_or(why, |(_, w)| w);
                return Some(format!("554 5.6.0 In the {field}: header: {why}"));
            }
        }
    }
    None
}

/// The first `From:` address that is neither the account's address nor
/// one of its aliases (RFC 6409 §8.1).
pub(super) fn foreign_author(body: &[u8], acct: &Account) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse_headers(body)?;
    let from = msg.from()?;
    let foreign = from
        .iter()
        .filter_map(|a| a.address())
        .find(|a| {
            !std::iter::once(&acct.address)
                .chain(acct.aliases.iter())
                .any(|own| own.eq_ignore_ascii_case(a))
        })
        .map(str::to_string);
    foreign
}

/// A msg-id as RFC 5322 §3.6.4 writes it: `<left@right>`, no spaces.
fn valid_message_id(v: &str) -> bool {
    let v = v.trim();
    let Some(inner) = v.strip_prefix('<').and_then(|x| x.strip_suffix('>')) else {
        return false;
    };
    match inner.split_once('@') {
        Some((l, r)) => {
            !l.is_empty()
                && !r.is_empty()
                && !r.contains('@')
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        }
        None => false,
    }
}

/// Removes a Message-ID field whose value is not a valid msg-id (RFC 6409
/// §8.3: such a field is replaced; the caller adds a new one when there is
/// none). Returns the message unchanged otherwise.
pub(super) fn drop_invalid_message_id(msg: Vec<u8>) -> Vec<u8> {
    let end = super::session::header_end(&msg);
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < end {
        let next = msg[pos..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| pos + i + 1);
        lines.push(pos..next);
        pos = next;
    }
    // The field: its first line and its continuation lines.
    let Some(first) = lines.iter().position(|r| {
        let l = &msg[r.clone()];
        l.len() > 11 && l[..11].eq_ignore_ascii_case(b"message-id:")
    }) else {
        return msg;
    };
    let last = lines[first + 1..]
        .iter()
        .take_while(|r| matches!(msg[r.start], b' ' | b'\t'))
        .count()
        + first;
    let range = lines[first].start..lines[last].end;
    let value = String::from_utf8_lossy(&msg[lines[first].start + 11..range.end]).into_owned();
    if valid_message_id(&value.replace(['\r', '\n'], "")) {
        return msg;
    }
    let mut out = msg[..range.start].to_vec();
    out.extend_from_slice(&msg[range.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_domains_must_be_qualified() {
        assert!(envelope_problem("joe@example.org").is_none());
        assert!(envelope_problem("joe@[192.0.2.1]").is_none());
        assert!(envelope_problem("").is_none(), "the null path is allowed");
        assert!(envelope_problem("Postmaster").is_none());
        assert!(envelope_problem("joe@sales")
            .unwrap()
            .starts_with("553 5.1.2"));
        assert!(envelope_problem("admin").unwrap().starts_with("553 5.1.3"));
    }

    #[test]
    fn header_addresses_are_checked() {
        let ok = b"From: Joe <joe@example.org>\r\nTo: undisclosed-recipients:;\r\nCc: a@b.example, \"C\" <c@d.example>\r\n\r\n";
        assert_eq!(header_problem(ok), None);
        let single = b"From: joe@example.org\r\nTo: bob@sales\r\n\r\n";
        assert!(header_problem(single).unwrap().contains("To: header"));
        let bare = b"From: joe@example.org\r\nCc: bob\r\n\r\n";
        assert!(header_problem(bare).unwrap().starts_with("554 5.6.0"));
    }

    #[test]
    fn invalid_message_ids_are_dropped() {
        let bad = b"Subject: x\r\nMessage-ID: not an id\r\n  continued\r\nTo: a@b.example\r\n\r\nbody\r\n".to_vec();
        assert_eq!(
            drop_invalid_message_id(bad),
            b"Subject: x\r\nTo: a@b.example\r\n\r\nbody\r\n".to_vec()
        );
        let good = b"Message-ID: <1.2@example.org>\r\n\r\nx".to_vec();
        assert_eq!(drop_invalid_message_id(good.clone()), good);
        assert!(!valid_message_id("<a@b@c>"));
        assert!(!valid_message_id("a@b"));
        assert!(valid_message_id(" <x.y@host.example> "));
    }
}
