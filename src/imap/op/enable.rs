//! ENABLE (RFC 5161): the client turns on extensions that change how the
//! server talks to it. Petrel knows CONDSTORE (RFC 7162 §3.1) and
//! IMAP4rev2 (RFC 9051 §6.3.1); other names are ignored, as §3.1 says.

use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

impl Session {
    pub(crate) fn cmd_enable(&mut self, args: &[Token]) -> Reply {
        if args.is_empty() {
            return "BAD ENABLE needs capability names".into();
        }
        // RFC 9051 §6.3.1: ENABLED lists what this command enabled, not
        // what an earlier one did.
        let (had_condstore, had_qresync, had_utf8, had_rev2) =
            (self.condstore, self.qresync, self.utf8_names, self.rev2);
        let mut enabled = Vec::new();
        for a in args {
            let Some(name) = a.as_string() else {
                return "BAD ENABLE takes capability names".into();
            };
            if name.eq_ignore_ascii_case("CONDSTORE")
                && !had_condstore
                && !enabled.contains(&"CONDSTORE")
            {
                self.enable_condstore();
                enabled.push("CONDSTORE");
            }
            // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
            if name.eq_ignore_ascii_case("QRESYNC") && !had_qresync && !enabled.contains(&"QRESYNC")
            {
                self.qresync = true;
                self.enable_condstore();
                enabled.push("QRESYNC");
            }
            // RFC 6855 §3: from now on mailbox names are UTF-8, not
            // modified UTF-7; APPEND takes the UTF8 (literal8) form either
            // way.
            if name.eq_ignore_ascii_case("UTF8=ACCEPT") {
                self.utf8_accept = true;
            }
            if name.eq_ignore_ascii_case("UTF8=ACCEPT")
                && !had_utf8
                && !enabled.contains(&"UTF8=ACCEPT")
            {
                self.utf8_names = true;
                enabled.push("UTF8=ACCEPT");
            }
            if name.eq_ignore_ascii_case("IMAP4rev2")
                && !had_rev2
                && !enabled.contains(&"IMAP4rev2")
            {
                self.rev2 = true;
                // RFC 9051 §5.1: names are UTF-8.
                self.utf8_names = true;
                enabled.push("IMAP4rev2");
            }
        }
        let line = if enabled.is_empty() {
            "ENABLED".to_string()
        } else {
            format!("ENABLED {}", enabled.join(" "))
        };
        self.untagged(&line);
        "OK ENABLE completed".into()
    }
}
