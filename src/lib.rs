//! Petrel: a mail server in one binary. See README.md for the architecture.
#![forbid(unsafe_code)]

pub mod acme;
pub mod cli;
pub mod config;
pub mod core;
pub mod directory;
pub mod dkim;
pub mod dns;
pub mod filters;
pub mod http;
pub mod imap;
pub mod init;
pub mod jmap;
pub mod mail;
pub mod managesieve;
pub mod net;
pub mod observe;
pub mod pop3;
pub mod queue;
pub mod server;
pub mod sieve;
pub mod smtp;
pub mod spam;
pub mod spf;
pub mod store;
pub mod vacation;

/// Entry points for the fuzz targets and the seed-corpus replay tests: each
/// feeds untrusted bytes to one parser and must never panic.
pub mod fuzz_entry {
    /// SMTP command line parser.
    pub fn smtp_command(data: &[u8]) {
        let _ = crate::smtp::proto::parse_command(data);
    }

    /// SMTP DATA receiver, fed in two chunks split at the first byte's value.
    pub fn smtp_data(data: &[u8]) {
        let mut r = crate::smtp::data::DataReceiver::new(4096);
        let split = data
            .first()
            .map(|&b| b as usize % (data.len() + 1))
            .unwrap_or(0);
        if r.feed(&data[..split]) == crate::smtp::data::DataOutcome::More {
            let _ = r.feed(&data[split..]);
        }
    }

    /// IMAP receiver and tokenizer, with the typed argument parsers.
    pub fn imap_command(data: &[u8]) {
        use crate::imap::proto::{args, tokenize, Event, Receiver, Token};
        let mut r = Receiver::new(1024, 1024);
        r.feed(data);
        while let Some(ev) = r.next_event() {
            match ev {
                Event::Command(c) => {
                    if let Ok(p) = tokenize(&c) {
                        for a in &p.args {
                            let _ = args::parse_fetch_attrs(a);
                            let _ = args::parse_flags(a);
                            if let Token::Atom(s) = a {
                                let _ = args::SeqSet::parse(s);
                            }
                            // Mailbox names from rev1 clients.
                            if let Some(s) = a.as_string() {
                                if let Some(d) = crate::imap::proto::utf7::decode(&s) {
                                    assert_eq!(
                                        crate::imap::proto::utf7::decode(
                                            &crate::imap::proto::utf7::encode(&d)
                                        )
                                        .as_deref(),
                                        Some(d.as_str())
                                    );
                                }
                            }
                        }
                        // The argument parsers of SEARCH and NOTIFY.
                        let _ = crate::imap::op::search::parse_search(&p.args);
                        let _ = crate::imap::op::notify::parse(&p.args);
                    }
                }
                Event::Fatal(_) => break,
                _ => {}
            }
        }
    }

    /// Replies of remote SMTP servers as the outbound client reads them.
    pub fn smtp_reply(data: &[u8]) {
        let mut rest = data;
        while let Ok(Some((reply, used))) = crate::smtp::proto::parse_reply(rest, 4096) {
            assert!(used > 0 && used <= rest.len());
            let _ = (reply.text(), reply.has_keyword("DSN"));
            rest = &rest[used..];
        }
    }

    /// BDAT chunks: the first bytes give chunk sizes, the rest is data.
    pub fn smtp_bdat(data: &[u8]) {
        let mut r = crate::smtp::data::ChunkReceiver::new(512);
        let (sizes, mut body) = data.split_at(data.len().min(4));
        for &n in sizes {
            r.start_chunk(n as u64 * 3);
            let used = r.feed(body);
            assert!(used <= body.len());
            body = &body[used..];
        }
        let _ = r.too_big();
        let msg = r.into_message();
        assert!(msg.len() <= 512);
        let _ = crate::smtp::data::has_bare_newline(&msg);
    }

    /// SASL responses: base64 decoding, PLAIN, and a SCRAM exchange whose
    /// two client messages are split at the first NUL.
    pub fn sasl(data: &[u8]) {
        use crate::directory::sasl::{decode_plain, decode_response, Response};
        use crate::directory::scram::{ScramSecret, ScramServer};
        if let Response::Data(d) = decode_response(data) {
            let _ = decode_plain(&d);
        }
        let _ = decode_plain(data);
        let (first, last) = match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &b""[..]),
        };
        if let Ok((mut srv, _user)) = ScramServer::client_first(first) {
            static SECRET: std::sync::OnceLock<ScramSecret> = std::sync::OnceLock::new();
            let secret = SECRET.get_or_init(|| ScramSecret::derive_with("pw", b"salt", 1));
            let _ = srv.server_first(Some(secret.clone()));
            let _ = srv.client_final(last);
        }
        let _ = ScramSecret::decode(&String::from_utf8_lossy(data));
    }

    /// SPF records and explanation strings as DNS hands them over, and
    /// the expansion of whatever parses, with hostile macro inputs.
    pub fn spf_record(data: &[u8]) {
        use crate::spf::macros::{expand, to_query_name, Vars};
        use crate::spf::record::{macro_string, parse, Context, Part};
        let vars = Vars {
            local: "a.b-c+d%{l}",
            sender_domain: "x..y.",
            domain: "example.org",
            ip: std::net::IpAddr::from([0u16, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]),
            helo: "[192.0.2.1]",
            validated: None,
            receiver: "mx.test",
            now: 0,
        };
        let mut specs = Vec::new();
        if let Ok(r) = parse(data) {
            specs.extend(r.redirect);
            specs.extend(r.exp);
        }
        if let Ok(text) = std::str::from_utf8(data) {
            specs.extend(macro_string(text, Context::Explanation).ok());
        }
        for ms in &specs {
            for p in &ms.0 {
                if let Part::Macro { keep: Some(n), .. } = p {
                    assert!(*n > 0);
                }
            }
            let name = to_query_name(&expand(ms, &vars));
            assert!(name.len() <= 253 || !name.contains('.'));
        }
    }

    /// POP3 command lines, and the multi-line encoder on the same bytes.
    pub fn pop3_command(data: &[u8]) {
        let _ = crate::pop3::proto::parse(data);
        let top = data.first().map(|&b| (b % 4) as u32);
        let out = crate::pop3::proto::multiline(data, top);
        assert!(out.ends_with(b".\r\n"));
    }

    /// ManageSieve command lines and literals (RFC 5804 §4), and a
    /// SASL response read the same way.
    pub fn managesieve_command(data: &[u8]) {
        use crate::managesieve::proto::{parse, Parse};
        let mut rest = data;
        while let Parse::Done(_, n) | Parse::Bad(_, n) = parse(rest, 256, 1024) {
            assert!(n > 0 && n <= rest.len());
            rest = &rest[n..];
        }
    }

    /// Outlook Autodiscover request bodies (untrusted XML over HTTP).
    /// JMAP request parsing and result references (RFC 8620 §3.3, §3.7):
    /// the parsed calls are resolved against a response that echoes the
    /// first call's arguments.
    pub fn jmap_request(data: &[u8]) {
        use crate::jmap::request::{parse, pointer, resolve_references, Limits};
        let limits = Limits {
            max_size_request: 100_000,
            max_calls_in_request: 64,
            max_objects_in_get: 500,
            max_concurrent_requests: 4,
        };
        if let Ok(req) = parse(data, &limits) {
            let mut responses = Vec::new();
            for call in req.calls {
                let echo = serde_json::Value::Object(call.args.clone());
                let _ = pointer(&echo, &call.call_id);
                let _ = resolve_references(call.args, &responses);
                responses.push((call.name, echo, call.call_id));
            }
        }
    }

    /// What Email/get and Email/parse make of a message (RFC 8621
    /// §4.1): every header of the top level in every parsed form, with
    /// `:all`, the header list, each part's properties, the body values
    /// (truncated), hasAttachment and part contents.
    pub fn jmap_email(data: &[u8]) {
        use crate::jmap::methods::email_body as b;
        const FORMS: [&str; 7] = [
            "Raw",
            "Text",
            "Addresses",
            "GroupedAddresses",
            "MessageIds",
            "Date",
            "URLs",
        ];
        let Some(msg) = mail_parser::MessageParser::default().parse(data) else {
            return;
        };
        let headers = msg.root_part().headers();
        for h in headers.iter().take(20) {
            for form in FORMS {
                for all in ["", ":all"] {
                    let p = format!("header:{}:as{form}{all}", h.name());
                    if let Ok(Some(hp)) = b::parse_header_prop(&p) {
                        let _ = b::header_prop(data, headers, &hp);
                    }
                }
            }
        }
        let _ = b::header_list(data, headers);
        let props: Vec<String> = b::BODY_PROPERTIES.iter().map(|p| p.to_string()).collect();
        for i in 0..msg.parts.len().min(40) {
            let _ = b::body_part(&msg, i, &props, "B1");
            let _ = b::part_contents(data, i);
        }
        let mut args = serde_json::Map::new();
        args.insert("fetchAllBodyValues".into(), true.into());
        args.insert("maxBodyValueBytes".into(), 17.into());
        if let Ok(opts) = b::ValueOptions::parse(&args) {
            let _ = b::body_values(&msg, opts);
        }
        let _ = b::has_attachment(&msg);
    }

    pub fn autodiscover(data: &[u8]) {
        if let Some(a) = crate::http::autodiscover_request(data) {
            assert!(a.contains('@'));
        }
    }

    /// What external filters send back: milter packets decoded one after
    /// another and their header changes made to the input as a message
    /// (whose fields are also read as a milter is sent them), and the
    /// input as an HTTP hook's answer.
    pub fn milter_reply(data: &[u8]) {
        use crate::filters::milter::proto::{decode, Reply};
        use crate::filters::{apply, header_pairs, Changes, HeaderChange};
        let mut changes = Changes::default();
        let mut rest = data;
        while let Ok(Some((reply, n))) = decode(rest, 1 << 16) {
            assert!(n >= 5 && n <= rest.len());
            rest = &rest[n..];
            match reply {
                Reply::AddHeader { name, value } => {
                    changes.headers.push(HeaderChange::Add { name, value })
                }
                Reply::InsertHeader { index, name, value } => {
                    changes.headers.push(HeaderChange::Insert {
                        index: index as usize,
                        name,
                        value,
                    })
                }
                Reply::ChangeHeader { index, name, value } => {
                    changes.headers.push(HeaderChange::Change {
                        index: index as usize,
                        name,
                        value,
                    })
                }
                Reply::ReplaceBody(b) => changes.body = Some(b),
                _ => {}
            }
        }
        let out = apply(data, &changes);
        // Whatever the names and values held, no field carries a blank
        // line into the message: the body is the one sent or asked for.
        let start = crate::filters::body_start;
        if changes.body.is_none() && data.windows(4).any(|w| w == b"\r\n\r\n") {
            assert_eq!(&out[start(&out)..], &data[start(data)..]);
        }
        let _ = header_pairs(&out);
        let _ = crate::filters::http::read_answer(data);
    }

    /// Message analysis at ingest (MIME tree, ENVELOPE, BODYSTRUCTURE).
    /// The spam filter's reading of a message: the classifier's tokens
    /// (link hosts, HTML tags) scored by an empty and a trained model,
    /// the rules, the domains asked of blocklists, its header stripping.
    pub fn spam_tokens(data: &[u8]) {
        let t = crate::spam::tokens(data);
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        let mut m = crate::spam::bayes::Model::default();
        let s = m.score(&t).probability;
        assert!((0.0..=1.0).contains(&s));
        m.train(&t, true);
        m.train(&t[..t.len() / 2], false);
        let s = m.score(&t).probability;
        assert!((0.0..=1.0).contains(&s));
        // The rules, the blocklists' domains and the header stripping
        // over the same bytes (as a message and as a results field).
        let text = String::from_utf8_lossy(data);
        if let Some(msg) = mail_parser::MessageParser::default().parse(data) {
            let ctx = crate::spam::rules::Context {
                auth_results: &text,
                now: 1_700_000_000,
                ..Default::default()
            };
            for id in crate::spam::rules::check(&msg, &ctx) {
                assert!(crate::spam::rules::find(id).is_some(), "{id}");
            }
            let read = crate::spam::rules::Reading::of(&msg);
            let hosts = crate::spam::rules::message_hosts(&msg, &read);
            for d in crate::spam::dnsbl::domains(hosts.iter().map(String::as_str)) {
                assert!(d.contains('.') && !d.ends_with('.'), "{d}");
            }
            // Hash lists' addresses: each one address, lower case.
            for e in crate::spam::dnsbl::emails(std::iter::empty(), &read.text) {
                assert_eq!(e.matches('@').count(), 1, "{e}");
                assert_eq!(e, e.to_lowercase());
            }
            // What the classifier learns of a message away from its
            // session equals what it scores at delivery.
            let at_delivery = crate::spam::rules::content_only(&crate::spam::rules::check_read(
                &msg, &read, &ctx,
            ));
            assert_eq!(
                crate::spam::tokens::tokens_of(&msg),
                crate::spam::tokens::tokens_read(&msg, &read, &at_delivery)
            );
        }
        let _ = crate::spam::rules::auth_results(&text);
        if let Some((host, _)) = crate::spam::rules::url_host(&text) {
            assert!(!host.contains(['/', '?', '#']), "{host}");
        }
        assert!(crate::spam::filter::strip_headers(data).len() <= data.len());
        // Pyzor's digest of the bytes as a message, and as a server's answer.
        if let Some(d) = crate::spam::pyzor::digest(data) {
            assert_eq!(d.len(), 40);
        }
        let _ = crate::spam::pyzor::parse_answer(data);
    }

    pub fn message(data: &[u8]) {
        let _ = crate::smtp::session::count_received(data);
        let _ = crate::smtp::session::has_header(data, "date");
        let stripped = crate::smtp::session::strip_own_auth_results(data.to_vec(), "mx.test");
        assert!(stripped.len() <= data.len());
        // RFC 5256 base subjects of whatever a Subject holds.
        let (base, _) = crate::imap::op::sort::base_subject_5256(&String::from_utf8_lossy(data));
        assert!(base.len() <= String::from_utf8_lossy(data).len());
        let _ = mail_auth::AuthenticatedMessage::parse(data);
        let m = crate::mail::mime::analyze(data);
        for p in 1..4 {
            let _ = m.root.find(&[p, 1]);
        }
    }
}
