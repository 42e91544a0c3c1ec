//! APPEND (RFC 9051 §6.3.12) through the ingest pipeline, with APPENDUID
//! (RFC 4315).

use crate::imap::proto::args::parse_flags;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::ingest::{Folder, IngestRequest, IngestTarget};
use crate::mail::MailError;

/// Parses an IMAP date-time, `"17-Jul-1996 02:44:25 -0700"` (§9
/// `date-time`), to seconds since the epoch.
pub fn parse_date_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.trim().split_once(' ')?;
    let mut d = date.split('-');
    let day: i64 = d.next()?.trim().parse().ok()?;
    let mon = d.next()?;
    let year: i64 = d.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(mon))? as i64 + 1;
    let mut t = time.split(':');
    let (h, m, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || zone.len() != 5 {
        return None;
    }
    let sign = match &zone[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let zh: i64 = zone[1..3].parse().ok()?;
    let zm: i64 = zone[3..5].parse().ok()?;
    // Days from the civil date (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + m * 60 + sec - sign * (zh * 3600 + zm * 60))
}

/// One message of an APPEND: flags, internal date, content.
struct Piece {
    flags: Vec<String>,
    date: Option<i64>,
    message: Vec<u8>,
}

/// `[flags] [date] literal`, repeated (MULTIAPPEND, RFC 3502); the literal
/// may also come as `UTF8 (literal8)` (RFC 6855 §4).
fn parse_pieces(args: &[Token]) -> Result<Vec<Piece>, Reply> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let mut flags = Vec::new();
        let mut date = None;
        if let Token::List(_) = &args[i] {
            flags = parse_flags(&args[i]).map_err(|e| format!("BAD {e}"))?;
            i += 1;
        }
        if let Some(Token::Quoted(q)) = args.get(i) {
            date = Some(
                std::str::from_utf8(q)
                    .ok()
                    .and_then(parse_date_time)
                    .ok_or("BAD Invalid date-time")?,
            );
            i += 1;
        }
        let message = match (args.get(i), args.get(i + 1)) {
            (Some(Token::Literal(l)), _) => {
                i += 1;
                l.clone()
            }
            (Some(Token::Atom(a)), Some(Token::List(inner))) if a.eq_ignore_ascii_case("UTF8") => {
                let [Token::Literal(l)] = inner.as_slice() else {
                    return Err("BAD UTF8 takes one literal".into());
                };
                i += 2;
                l.clone()
            }
            _ => {
                return Err(
                    "BAD APPEND takes a mailbox, then optional flags and date and a literal message, once or more"
                        .into(),
                )
            }
        };
        if message.is_empty() {
            return Err("NO Empty message".into());
        }
        out.push(Piece {
            flags,
            date,
            message,
        });
    }
    if out.is_empty() {
        return Err("BAD APPEND needs a message literal".into());
    }
    Ok(out)
}

/// Whether the header section of `m` holds a byte above 127.
fn has_8bit_header(m: &[u8]) -> bool {
    let end = m
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| m.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(m.len());
    m[..end].iter().any(|&b| b >= 0x80)
}

impl Session {
    pub(crate) async fn cmd_append(&mut self, args: &[Token]) -> Reply {
        let Some(name) = self.mailbox_arg(args.first()) else {
            return "BAD APPEND needs a mailbox name".into();
        };
        let pieces = match parse_pieces(&args[1..]) {
            Ok(p) => p,
            Err(r) => return r,
        };
        // RFC 6855 §4: 8-bit header fields only from a client that said it
        // takes UTF-8 (ENABLE UTF8=ACCEPT or IMAP4rev2).
        if !self.utf8_names
            && !self.core.config.imap.accept_8bit_headers
            && pieces.iter().any(|p| has_8bit_header(&p.message))
        {
            return "NO [CANNOT] The message has 8-bit header fields: ENABLE UTF8=ACCEPT first (RFC 6855)".into();
        }
        let target = match self.resolve(&name).await {
            Ok(Some(t)) => t,
            Ok(None) => return "NO [TRYCREATE] No such mailbox".into(),
            Err(r) => return r,
        };
        // RFC 4314 §4: APPEND needs `i`.
        if !target.rights.has('i') {
            return "NO [NOPERM] You may not add messages to this mailbox".into();
        }
        // The owner's limits as they are now, not as they were at login.
        let acct = match self.core.directory.account_by_id(target.owner).await {
            Ok(Some(a)) => a,
            Ok(None) => return "NO [UNAVAILABLE] The account is gone".into(),
            Err(e) => return super::mailbox::unavailable(e),
        };
        let mb = target.mailbox;
        let rights = target.rights;
        // RFC 3502 §6.3.11: all or none. Each message is stored durably in
        // turn; if one fails, those before it are removed again (a crash
        // in between can leave them).
        let mut uids = Vec::new();
        let mut validity = 0;
        for p in pieces {
            let target = IngestTarget {
                account: acct.id,
                folder: Folder::Id(mb.id),
                // Flags this user may not set are dropped (RFC 4314 §4).
                flags: p
                    .flags
                    .into_iter()
                    .filter(|f| rights.has(super::acl::flag_right(f)))
                    .collect(),
                quota_bytes: acct.quota_bytes,
                quota_messages: acct.quota_messages,
            };
            let res = self
                .core
                .mail
                .ingest(IngestRequest {
                    raw: p.message,
                    targets: vec![target],
                    received_at: p.date,
                })
                .await;
            match res {
                Ok(out) => {
                    validity = out[0].uidvalidity;
                    uids.push(out[0].uid);
                }
                Err(e) => {
                    if !uids.is_empty() {
                        let _ = self.core.mail.remove_messages(acct.id, mb.id, uids).await;
                    }
                    return match e {
                        MailError::OverQuota => "NO [OVERQUOTA] Quota exceeded".into(),
                        e => super::mailbox::unavailable(e),
                    };
                }
            }
        }
        // RFC 9051 §6.3.12: no APPENDUID for a mailbox the user may add
        // to but not read.
        if !rights.has('r') {
            return "OK APPEND completed".into();
        }
        let set = super::search::compress(&uids);
        format!("OK [APPENDUID {validity} {set}] APPEND completed")
    }
}

#[cfg(test)]
mod tests {
    use super::parse_date_time;

    #[test]
    fn dates() {
        assert_eq!(parse_date_time("01-Jan-1970 00:00:00 +0000"), Some(0));
        assert_eq!(
            parse_date_time("14-Nov-2023 22:13:20 +0000"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_date_time(" 1-Jan-1970 01:00:00 +0100"), Some(0));
        assert_eq!(
            parse_date_time("17-Jul-1996 02:44:25 -0700"),
            Some(837_596_665)
        );
        assert_eq!(parse_date_time("32-Jan-2000 00:00:00 +0000"), None);
        assert_eq!(parse_date_time("garbage"), None);
    }
}
