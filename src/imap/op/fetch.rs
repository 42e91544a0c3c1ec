//! FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9).

use crate::imap::proto::args::{parse_fetch_attrs, FetchAttr, Section, SectionText, SeqSet};
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};
use crate::mail::mime::Part;
use crate::mail::{EmailMeta, FlagOp};

use super::mailbox::unavailable;

/// INTERNALDATE form: `17-Jul-1996 02:44:25 +0000`.
pub fn internal_date(ts: i64) -> String {
    let d = mail_parser::DateTime::from_timestamp(ts);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        d.day,
        MONTHS[(d.month as usize).clamp(1, 12) - 1],
        d.year,
        d.hour,
        d.minute,
        d.second
    )
}

/// Bytes of a section of a message (RFC 9051 §6.4.5 BODY[<section>]).
pub fn section_bytes(raw: &[u8], root: &Part, section: &Section) -> Option<Vec<u8>> {
    let slice = |a: u32, b: u32| {
        raw.get(a as usize..(b as usize).min(raw.len()))
            .map(|s| s.to_vec())
    };
    let part = root.find(&section.part)?;
    // HEADER / TEXT / HEADER.FIELDS of a part address its enclosed message.
    let msg = if section.part.is_empty() {
        Some(root)
    } else {
        part.message.as_deref()
    };
    match &section.text {
        SectionText::Full if section.part.is_empty() => Some(raw.to_vec()),
        SectionText::Full => slice(part.body, part.end),
        SectionText::Mime => slice(part.header, part.body),
        SectionText::Header => msg.and_then(|m| slice(m.header, m.body)),
        SectionText::Text => msg.and_then(|m| slice(m.body, m.end)),
        SectionText::HeaderFields { not, fields } => {
            let m = msg?;
            let header = raw.get(m.header as usize..m.body as usize)?;
            Some(filter_header(header, fields, *not))
        }
    }
}

/// Keeps (or with `not`, drops) the named header fields, folded lines
/// included, and ends with the blank line.
fn filter_header(header: &[u8], fields: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if keep {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let name = String::from_utf8_lossy(name);
        let listed = fields.iter().any(|f| f.eq_ignore_ascii_case(name.trim()));
        keep = listed != not;
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn section_name(s: &Section) -> String {
    let mut parts: Vec<String> = s.part.iter().map(|n| n.to_string()).collect();
    let text = match &s.text {
        SectionText::Full => None,
        SectionText::Header => Some("HEADER".to_string()),
        SectionText::Text => Some("TEXT".into()),
        SectionText::Mime => Some("MIME".into()),
        SectionText::HeaderFields { not, fields } => Some(format!(
            "HEADER.FIELDS{} ({})",
            if *not { ".NOT" } else { "" },
            fields
                .iter()
                .map(|f| f.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(" ")
        )),
    };
    parts.extend(text);
    parts.join(".")
}

fn dotted(part: &[u32]) -> String {
    part.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// A Content-Transfer-Encoding Petrel cannot undo, or data that does not
/// decode (RFC 3516 UNKNOWN-CTE).
#[derive(Debug)]
pub struct UnknownCte;

/// The content of a part with its Content-Transfer-Encoding undone
/// (RFC 3516): `Ok(None)` for no such part, `Err` for an encoding we do
/// not know. The empty part number is the whole message, as it is.
pub fn binary_part(raw: &[u8], root: &Part, part: &[u32]) -> Result<Option<Vec<u8>>, UnknownCte> {
    if part.is_empty() {
        return Ok(Some(raw.to_vec()));
    }
    let Some(p) = root.find(part) else {
        return Ok(None);
    };
    let body = raw
        .get(p.body as usize..(p.end as usize).min(raw.len()))
        .unwrap_or_default();
    if p.multipart || p.message.is_some() {
        return Ok(Some(body.to_vec()));
    }
    let header = raw
        .get(p.header as usize..p.body as usize)
        .unwrap_or_default();
    let cte = header_value(header, "content-transfer-encoding")
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let data = match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => body.to_vec(),
        "base64" => mail_parser::decoders::base64::base64_decode(body).ok_or(UnknownCte)?,
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                .ok_or(UnknownCte)?
        }
        _ => return Err(UnknownCte),
    };
    // RFC 3516 §6: text goes out with CRLF line ends, however it was
    // encoded (a base64 text part may hold bare LFs).
    let text = header_value(header, "content-type")
        .is_none_or(|t| t.trim_start().to_ascii_lowercase().starts_with("text/"));
    Ok(Some(if text { crlf(data) } else { data }))
}

/// `data` with every bare LF made CRLF.
fn crlf(data: Vec<u8>) -> Vec<u8> {
    let bare = data
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' && (i == 0 || data[i - 1] != b'\r'))
        .count();
    if bare == 0 {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + bare);
    for (i, &c) in data.iter().enumerate() {
        if c == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

/// The unfolded value of a header field, from a header section.
fn header_value(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut value: Option<String> = None;
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = value.as_mut() {
                v.push_str(line);
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim().eq_ignore_ascii_case(name) {
                value = Some(v.to_string());
            }
        }
    }
    value
}

fn literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

impl Session {
    /// A message's metadata (when `meta`) and content (when `raw` too);
    /// `None` metadata for a message expunged meanwhile.
    pub(crate) async fn load_message(
        &self,
        acct: u32,
        email: u64,
        meta: bool,
        raw: bool,
    ) -> Result<(Option<EmailMeta>, Option<Vec<u8>>), Reply> {
        if !meta {
            return Ok((None, None));
        }
        let m = self
            .core
            .mail
            .email_meta(acct, email)
            .await
            .map_err(unavailable)?;
        let content = match (&m, raw) {
            (Some(m), true) => {
                let c = self
                    .core
                    .mail
                    .email_raw_live(acct, email, m)
                    .await
                    .map_err(unavailable)?;
                if c.is_none() {
                    // Expunged meanwhile: as if the metadata had gone too.
                    return Ok((None, None));
                }
                c
            }
            _ => None,
        };
        Ok((m, content))
    }

    pub(crate) async fn cmd_fetch(&mut self, args: &[Token], uid_mode: bool) -> Reply {
        let (Some(set), Some(attrs)) = (args.first().and_then(|t| t.as_string()), args.get(1))
        else {
            return "BAD FETCH needs a sequence set and attributes".into();
        };
        let Some(set) = SeqSet::parse(&set) else {
            return "BAD Invalid sequence set".into();
        };
        let mut attrs = match parse_fetch_attrs(attrs) {
            Ok(a) => a,
            Err(e) => return format!("BAD {e}"),
        };
        // RFC 8970 §8: who asks for previews is logged, to trace abuse.
        if attrs.contains(&FetchAttr::Preview) {
            let login = self.account.as_ref().map(|a| a.address.as_str());
            tracing::info!(session = %self.id, login, "FETCH PREVIEW");
        }
        // RFC 7162 §3.1.4.1: (CHANGEDSINCE n) keeps the messages changed
        // after n and adds MODSEQ.
        let mut changed_since = None;
        let mut vanished = false;
        match args.get(2) {
            None => {}
            Some(Token::List(m)) => {
                let mut i = 0;
                while i < m.len() {
                    match m[i].keyword().as_str() {
                        "CHANGEDSINCE" => {
                            match m
                                .get(i + 1)
                                .and_then(|t| t.as_string())
                                .map(|n| n.parse::<u64>())
                            {
                                Some(Ok(n)) => changed_since = Some(n),
                                _ => return "BAD CHANGEDSINCE needs a mod-sequence".into(),
                            }
                            i += 1;
                        }
                        // RFC 7162 §3.2.6: UID FETCH only, with
                        // CHANGEDSINCE, after ENABLE QRESYNC.
                        "VANISHED" if uid_mode && self.qresync => vanished = true,
                        _ => return "BAD Unknown FETCH modifier".into(),
                    }
                    i += 1;
                }
                if vanished && changed_since.is_none() {
                    return "BAD VANISHED needs CHANGEDSINCE".into();
                }
            }
            Some(_) => return "BAD Unknown FETCH modifier".into(),
        }
        if args.len() > 3 {
            return "BAD Too many FETCH arguments".into();
        }
        if changed_since.is_some() && !attrs.contains(&FetchAttr::ModSeq) {
            attrs.push(FetchAttr::ModSeq);
        }
        if attrs.contains(&FetchAttr::ModSeq) {
            self.enable_condstore();
        }
        if uid_mode && !attrs.contains(&FetchAttr::Uid) {
            attrs.insert(0, FetchAttr::Uid);
        }
        let acct = self.sel_owner();
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        let read_only = sel.read_only;
        let mbox = sel.mailbox.id;
        if vanished {
            // Expunged messages of the UID set come first (§3.2.6).
            let max = sel.mailbox.uidnext.saturating_sub(1);
            let gone = super::mailbox::vanished_in(&set, &sel.msgs, max);
            if !gone.is_empty() {
                let l = format!("VANISHED (EARLIER) {}", super::search::compress(&gone));
                self.untagged(&l);
            }
        }
        let sel = self
            .selected
            .as_ref()
            .expect("selected state checked by dispatch");
        let picked: Vec<usize> = match self.resolve_set(&set, uid_mode) {
            Ok(p) => p
                .into_iter()
                .filter(|&i| changed_since.is_none_or(|n| sel.msgs[i].modseq > n))
                .collect(),
            Err(r) => return r,
        };

        // Reading a body without PEEK sets \Seen (RFC 9051 §6.4.5), for
        // users with the `s` right (RFC 4314 §4).
        let sets_seen = !read_only
            && sel.rights.has('s')
            && attrs.iter().any(|a| {
                matches!(
                    a,
                    FetchAttr::Rfc822
                        | FetchAttr::Rfc822Text
                        | FetchAttr::Section { peek: false, .. }
                        | FetchAttr::Binary { peek: false, .. }
                )
            });
        if sets_seen {
            let unseen: Vec<u32> = picked
                .iter()
                .map(|&i| &sel.msgs[i])
                .filter(|m| !m.flags.iter().any(|f| f == "\\Seen"))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                match self
                    .core
                    .mail
                    .store_flags(acct, mbox, unseen, FlagOp::Add, vec!["\\Seen".into()], None)
                    .await
                {
                    Ok((changed, _)) => {
                        let sel = self.selected.as_mut().expect("selected");
                        for (uid, flags, modseq) in changed {
                            if let Some(m) = std::sync::Arc::make_mut(&mut sel.msgs)
                                .iter_mut()
                                .find(|m| m.uid == uid)
                            {
                                m.flags = flags;
                                m.modseq = modseq;
                            }
                        }
                    }
                    Err(e) => return unavailable(e),
                }
            }
            if !attrs.contains(&FetchAttr::Flags) {
                attrs.push(FetchAttr::Flags);
            }
            // RFC 7162 §3.2.4: a FETCH that sets \Seen carries UID (and
            // MODSEQ, below) under CONDSTORE.
            if self.condstore && !attrs.contains(&FetchAttr::Uid) {
                attrs.insert(0, FetchAttr::Uid);
            }
        }

        if attrs.contains(&FetchAttr::Flags) {
            let new = self.unannounced(&picked);
            self.announce_keywords(new);
        }
        // With CONDSTORE on, flags travel with their mod-sequence.
        if self.condstore
            && attrs.contains(&FetchAttr::Flags)
            && !attrs.contains(&FetchAttr::ModSeq)
        {
            attrs.push(FetchAttr::ModSeq);
        }
        let needs_meta = attrs.iter().any(|a| {
            !matches!(
                a,
                FetchAttr::Flags | FetchAttr::Uid | FetchAttr::ModSeq | FetchAttr::EmailId
            )
        });
        let needs_raw = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Rfc822
                    | FetchAttr::Rfc822Header
                    | FetchAttr::Rfc822Text
                    | FetchAttr::Section { .. }
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize { .. }
                    | FetchAttr::Preview
            )
        });
        // Many messages: their metadata in one read.
        let mut metas = if needs_meta && picked.len() > 32 {
            let sel = self.selected.as_ref().expect("selected");
            let emails: Vec<u64> = picked.iter().map(|&i| sel.msgs[i].email).collect();
            match self.core.mail.email_metas(acct, &emails).await {
                Ok(m) => Some(m),
                Err(e) => return unavailable(e),
            }
        } else {
            None
        };
        for i in picked {
            let m = self.selected.as_ref().expect("selected").msgs[i].clone();
            let loaded = match metas.as_mut() {
                Some(all) => {
                    let meta = all.remove(&m.email);
                    match (&meta, needs_raw) {
                        (Some(x), true) => {
                            match self.core.mail.email_raw_live(acct, m.email, x).await {
                                Ok(Some(raw)) => Ok((meta, Some(raw))),
                                Ok(None) => Ok((None, None)),
                                Err(e) => Err(unavailable(e)),
                            }
                        }
                        _ => Ok((meta, None)),
                    }
                }
                None => {
                    self.load_message(acct, m.email, needs_meta, needs_raw)
                        .await
                }
            };
            let (meta, raw) = match loaded {
                Ok(x) => x,
                Err(r) => return r,
            };
            // RFC 3516 §4.2: an encoding we cannot undo fails the FETCH.
            if let (Some(meta), Some(raw)) = (&meta, &raw) {
                for a in &attrs {
                    if let FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part } = a {
                        if binary_part(raw, &meta.meta.root, part).is_err() {
                            return "NO [UNKNOWN-CTE] Cannot decode the part's transfer encoding"
                                .into();
                        }
                    }
                }
            }
            if needs_meta && meta.is_none() {
                // Expunged by another session and not yet reported.
                continue;
            }
            let mut out = format!("* {} FETCH (", i + 1).into_bytes();
            let recent = self
                .selected
                .as_ref()
                .is_some_and(|s| s.recent.contains(&m.uid));
            for (n, a) in attrs.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                render(&mut out, a, &m, recent, meta.as_ref(), raw.as_deref());
            }
            out.extend_from_slice(b")\r\n");
            self.out.extend_from_slice(&out);
            // Long answers go out as they are made (64 KiB at a time), so
            // a client hears from the server while a big listing is still
            // being read, and memory stays flat.
            if self.out.len() > 64 << 10 {
                let data = std::mem::take(&mut self.out);
                if self.conn.write(&data).await.is_err() {
                    return "NO Connection error".into();
                }
            }
        }
        if uid_mode {
            "OK UID FETCH completed".into()
        } else {
            "OK FETCH completed".into()
        }
    }
}

fn render(
    out: &mut Vec<u8>,
    a: &FetchAttr,
    m: &crate::mail::UidEntry,
    recent: bool,
    meta: Option<&EmailMeta>,
    raw: Option<&[u8]>,
) {
    let push = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
    match a {
        FetchAttr::Uid => push(out, &format!("UID {}", m.uid)),
        FetchAttr::ModSeq => push(out, &format!("MODSEQ ({})", m.modseq.max(1))),
        // RFC 8474: object ids, stable for the life of the object.
        FetchAttr::EmailId => push(out, &format!("EMAILID (E{})", m.email)),
        FetchAttr::ThreadId => match meta {
            Some(meta) => push(out, &format!("THREADID (T{})", meta.thread)),
            None => push(out, "THREADID NIL"),
        },
        FetchAttr::Flags => push(
            out,
            &format!(
                "FLAGS ({})",
                crate::imap::session::flag_list(&m.flags, recent)
            ),
        ),
        // RFC 8514 §4.1; entries older than save dates carry the internal
        // date.
        FetchAttr::SaveDate => match m.saved.or(meta.map(|x| x.received_at)) {
            Some(t) => push(out, &format!("SAVEDATE \"{}\"", internal_date(t))),
            None => push(out, "SAVEDATE NIL"),
        },
        FetchAttr::InternalDate => push(
            out,
            &format!(
                "INTERNALDATE \"{}\"",
                internal_date(meta.map(|m| m.received_at).unwrap_or(0))
            ),
        ),
        FetchAttr::Rfc822Size => push(
            out,
            &format!("RFC822.SIZE {}", meta.map(|m| m.size).unwrap_or(0)),
        ),
        FetchAttr::Envelope => push(
            out,
            &format!(
                "ENVELOPE {}",
                meta.map(|m| m.meta.envelope.as_str()).unwrap_or("NIL")
            ),
        ),
        FetchAttr::Body => push(
            out,
            &format!(
                "BODY {}",
                meta.map(|m| m.meta.body.as_str()).unwrap_or("NIL")
            ),
        ),
        FetchAttr::BodyStructure => push(
            out,
            &format!(
                "BODYSTRUCTURE {}",
                meta.map(|m| m.meta.bodystructure.as_str()).unwrap_or("NIL")
            ),
        ),
        FetchAttr::Rfc822 | FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
            let (name, text) = match a {
                FetchAttr::Rfc822 => ("RFC822", SectionText::Full),
                FetchAttr::Rfc822Header => ("RFC822.HEADER", SectionText::Header),
                _ => ("RFC822.TEXT", SectionText::Text),
            };
            push(out, name);
            out.push(b' ');
            let data = match (meta, raw) {
                (Some(meta), Some(raw)) => {
                    section_bytes(raw, &meta.meta.root, &Section { part: vec![], text })
                }
                _ => None,
            };
            literal(out, &data.unwrap_or_default());
        }
        FetchAttr::Binary { part, partial, .. } => {
            push(out, &format!("BINARY[{}]", dotted(part)));
            let data = match (meta, raw) {
                (Some(meta), Some(raw)) => binary_part(raw, &meta.meta.root, part).ok().flatten(),
                _ => None,
            };
            match data {
                None => push(out, " NIL"),
                Some(d) => {
                    let d = match partial {
                        Some((o, l)) => {
                            push(out, &format!("<{o}>"));
                            let start = (*o as usize).min(d.len());
                            let end = start.saturating_add(*l as usize).min(d.len());
                            d[start..end].to_vec()
                        }
                        None => d,
                    };
                    out.push(b' ');
                    // literal8 (RFC 3516 §4.3) when the data holds NUL.
                    if d.contains(&0) {
                        out.push(b'~');
                    }
                    literal(out, &d);
                }
            }
        }
        // RFC 8970: at most 200 characters of the first text part, white
        // space folded; "" when there is none (§3.2: never NIL unless
        // LAZY).
        FetchAttr::Preview => {
            let preview = raw.and_then(|r| {
                let msg = mail_parser::MessageParser::default().parse(r)?;
                let text = msg.body_preview(200)?;
                let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
                Some(folded.chars().take(200).collect::<String>())
            });
            match preview {
                Some(p) => push(out, &format!("PREVIEW {}", crate::mail::mime::istring(&p))),
                None => push(out, "PREVIEW \"\""),
            }
        }
        FetchAttr::BinarySize { part } => {
            let n = match (meta, raw) {
                (Some(meta), Some(raw)) => binary_part(raw, &meta.meta.root, part)
                    .ok()
                    .flatten()
                    .map(|d| d.len()),
                _ => None,
            };
            match n {
                Some(n) => push(out, &format!("BINARY.SIZE[{}] {n}", dotted(part))),
                None => push(out, &format!("BINARY.SIZE[{}] NIL", dotted(part))),
            }
        }
        FetchAttr::Section {
            section, partial, ..
        } => {
            push(out, &format!("BODY[{}]", section_name(section)));
            let data = match (meta, raw) {
                (Some(meta), Some(raw)) => section_bytes(raw, &meta.meta.root, section),
                _ => None,
            };
            match (data, partial) {
                (None, _) => push(out, " NIL"),
                (Some(d), None) => {
                    out.push(b' ');
                    literal(out, &d);
                }
                (Some(d), Some((o, l))) => {
                    push(out, &format!("<{o}> "));
                    let start = (*o as usize).min(d.len());
                    let end = start.saturating_add(*l as usize).min(d.len());
                    literal(out, &d[start..end]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::mime::analyze;

    #[test]
    fn dates() {
        assert_eq!(internal_date(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(internal_date(1_700_000_000), "14-Nov-2023 22:13:20 +0000");
    }

    #[test]
    fn header_fields() {
        let raw = b"From: a@b\r\nSubject: long\r\n  folded\r\nTo: c@d\r\n\r\nbody\r\n";
        let m = analyze(raw);
        let s = Section {
            part: vec![],
            text: SectionText::HeaderFields {
                not: false,
                fields: vec!["subject".into()],
            },
        };
        assert_eq!(
            section_bytes(raw, &m.root, &s).unwrap(),
            b"Subject: long\r\n  folded\r\n\r\n"
        );
        let s = Section {
            part: vec![],
            text: SectionText::HeaderFields {
                not: true,
                fields: vec!["subject".into()],
            },
        };
        assert_eq!(
            section_bytes(raw, &m.root, &s).unwrap(),
            b"From: a@b\r\nTo: c@d\r\n\r\n"
        );
        let s = Section {
            part: vec![],
            text: SectionText::Text,
        };
        assert_eq!(section_bytes(raw, &m.root, &s).unwrap(), b"body\r\n");
        let s = Section {
            part: vec![],
            text: SectionText::Header,
        };
        assert!(section_bytes(raw, &m.root, &s)
            .unwrap()
            .ends_with(b"To: c@d\r\n\r\n"));
    }
}
