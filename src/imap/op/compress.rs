//! COMPRESS=DEFLATE (RFC 4978): after the tagged OK, both directions are
//! raw DEFLATE with a sync flush at the end of every write.

use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

use super::auth::SENT;

impl Session {
    pub(crate) async fn cmd_compress(&mut self, tag: &str, args: &[Token]) -> Option<Reply> {
        match args {
            [t] if t.keyword() == "DEFLATE" => {}
            _ => return Some("BAD COMPRESS takes one mechanism: DEFLATE".into()),
        }
        if self.conn.is_compressed() {
            return Some("NO [COMPRESSIONACTIVE] DEFLATE is already active".into());
        }
        let line = format!("{tag} OK DEFLATE active\r\n");
        if !self.send_now(line.as_bytes()).await {
            return None;
        }
        // The client waits for the OK before compressing (§3); anything it
        // sent after COMPRESS before that is not a command.
        self.rx.clear();
        self.conn.start_deflate();
        Some(SENT.into())
    }
}
