//! Petrel's own judgement of DKIM results where RFC 6376 (and RFC 8301,
//! which updates it) asks more than the verifier in mail-auth checks. A
//! signature mail-auth passed is reported `permerror`/`neutral` when
//! - it uses rsa-sha1 (RFC 8301 §3.1: not verified any more);
//! - its `h=` lacks From (RFC 6376 §6.1.1);
//! - it names a tag twice (§3.2: the whole tag-list is invalid);
//! - its key record restricts hashes (`h=`) or services (`s=`) so that it
//!   does not apply, or does not begin with `v=` when it has one (§3.6.1,
//!   §6.1.2).
//!
//! A signature whose key is flagged `t=y` (testing) is reported as it
//! verified, but left out of every decision (§3.6.1: such mail counts as
//! unsigned).

use mail_auth::common::crypto::Algorithm;
use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticatedMessage, DkimOutput, DkimResult, Error, MessageAuthenticator};

pub(super) struct Judged<'x> {
    /// Every signature's result, for the Authentication-Results header.
    pub reported: Vec<DkimOutput<'x>>,
    /// The results DMARC may rely on.
    pub decisive: Vec<DkimOutput<'x>>,
}

pub(super) async fn judge<'x>(
    auth: &MessageAuthenticator,
    msg: &'x AuthenticatedMessage<'x>,
    outputs: Vec<DkimOutput<'x>>,
) -> Judged<'x> {
    let mut judged = Judged {
        reported: Vec::with_capacity(outputs.len()),
        decisive: Vec::with_capacity(outputs.len()),
    };
    for o in outputs {
        let header = match (o.result(), o.signature()) {
            (DkimResult::Pass, Some(sig)) => msg.dkim_headers.iter().find(|h| h.header.b == sig.b),
            _ => None,
        };
        let Some(header) = header else {
            judged.decisive.push(o.clone());
            judged.reported.push(o);
            continue;
        };
        let sig = &header.header;
        let refused = if sig.a == Algorithm::RsaSha1 {
            Some(DkimOutput::neutral(Error::Dkim(
                DkimError::UnsupportedAlgorithm,
            )))
        } else if !sig.h.iter().any(|h| h.eq_ignore_ascii_case("from")) {
            Some(DkimOutput::perm_err(Error::MissingParameters))
        } else if repeats_a_tag(header.value) {
            Some(DkimOutput::perm_err(Error::Dkim(
                DkimError::UnsupportedVersion,
            )))
        } else {
            None
        };
        if let Some(r) = refused {
            let r = r.with_signature(sig);
            judged.decisive.push(r.clone());
            judged.reported.push(r);
            continue;
        }
        let key = key_tags(auth, &sig.s, &sig.d).await;
        let tag = |name: &str| {
            key.iter().find(|(k, _)| k == name).map(|(_, v)| {
                v.split(':')
                    .map(|x| x.trim().to_string())
                    .collect::<Vec<_>>()
            })
        };
        let hash_ok = tag("h").is_none_or(|hashes| hashes.iter().any(|h| h == "sha256"));
        let service_ok = tag("s").is_none_or(|s| s.iter().any(|x| x == "email" || x == "*"));
        let testing = tag("t").is_some_and(|flags| flags.iter().any(|f| f == "y"));
        // §3.6.1: v=, when present, must be the record's first tag.
        let version_ok = key
            .iter()
            .position(|(k, _)| k == "v")
            .is_none_or(|i| i == 0);
        if !version_ok {
            let r = DkimOutput::perm_err(Error::Dkim(DkimError::UnsupportedVersion))
                .with_signature(sig);
            judged.decisive.push(r.clone());
            judged.reported.push(r);
        } else if !hash_ok {
            let r = DkimOutput::perm_err(Error::Crypto(
                mail_auth::common::crypto::CryptoError::IncompatibleAlgorithms,
            ))
            .with_signature(sig);
            judged.decisive.push(r.clone());
            judged.reported.push(r);
        } else if !service_ok {
            let r = DkimOutput::perm_err(Error::Dkim(DkimError::UnsupportedKeyType))
                .with_signature(sig);
            judged.decisive.push(r.clone());
            judged.reported.push(r);
        } else {
            if !testing {
                judged.decisive.push(o.clone());
            }
            judged.reported.push(o);
        }
    }
    judged
}

/// Whether a DKIM-Signature value names some tag twice (RFC 6376 §3.2;
/// tag names are case-sensitive, so `D=` and `d=` are two tags).
fn repeats_a_tag(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    let mut seen = std::collections::HashSet::new();
    text.split(';')
        .filter_map(|spec| spec.split_once('='))
        .map(|(name, _)| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .any(|name| !seen.insert(name))
}

/// The tags of the key record `s._domainkey.d` (the resolver caches the
/// lookup mail-auth just made); empty when it cannot be read.
async fn key_tags(auth: &MessageAuthenticator, s: &str, d: &str) -> Vec<(String, String)> {
    use mail_auth::hickory_resolver::proto::rr::RData;
    let Ok(lookup) = auth.0.txt_lookup(format!("{s}._domainkey.{d}.")).await else {
        return Vec::new();
    };
    let Some(record) = lookup.answers().iter().find_map(|r| match &r.data {
        RData::TXT(txt) => Some(
            txt.txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect::<Vec<u8>>(),
        ),
        _ => None,
    }) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&record)
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::repeats_a_tag;

    #[test]
    fn repeated_tags_are_found() {
        assert!(repeats_a_tag(b"v=1; a=rsa-sha256; d=a.test; d=b.test; b=x"));
        assert!(repeats_a_tag(b"v=1; d=a.test;\r\n\td=b.test"));
        assert!(!repeats_a_tag(b"v=1; D=a.test; d=b.test"));
        assert!(!repeats_a_tag(
            b"v=1; a=rsa-sha256; d=a.test; s=s1; h=from:to; b=abc="
        ));
    }
}
