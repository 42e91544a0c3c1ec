//! Petrel: a mail server in one binary. See README.md for the architecture.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod core;
pub mod directory;
pub mod dkim;
pub mod http;
pub mod imap;
pub mod mail;
pub mod net;
pub mod queue;
pub mod server;
pub mod smtp;
pub mod store;

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
                        }
                    }
                }
                Event::Fatal(_) => break,
                _ => {}
            }
        }
    }

    /// Message analysis at ingest (MIME tree, ENVELOPE, BODYSTRUCTURE).
    pub fn message(data: &[u8]) {
        let m = crate::mail::mime::analyze(data);
        for p in 1..4 {
            let _ = m.root.find(&[p, 1]);
        }
    }
}
