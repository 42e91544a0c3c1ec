//! The IMAP session: states (RFC 9051 §3), the read loop, command dispatch
//! and mailbox synchronisation between sessions.

use std::net::SocketAddr;
use std::time::Duration;

use super::proto::args::{SeqSet, STAR};
use super::proto::{tokenize, Event, Parsed, Receiver};
use crate::core::{session_id, SharedCore};
use crate::directory::Account;
use crate::mail::Mailbox;
use crate::net::{Conn, Shutdown};

pub struct Selected {
    /// The account whose mailbox this is (another one's when shared).
    pub owner: u32,
    /// What this user may do in it (RFC 4314).
    pub rights: crate::mail::acl::Rights,
    pub mailbox: Mailbox,
    pub read_only: bool,
    /// Opened with EXAMINE: read-only whatever the rights.
    pub examine: bool,
    /// The mail store's ACL version `rights` were read at.
    pub acl_version: u64,
    /// Keywords announced in FLAGS (RFC 3501 §7.2.6): a FETCH never shows
    /// one the client was not told of first.
    pub keywords: Vec<String>,
    /// UIDs that are \Recent in this session (IMAP4rev1 only).
    pub recent: std::collections::HashSet<u32>,
    /// The session's view: sequence number n is `msgs[n-1]`. Shared with
    /// other sessions while it equals the mailbox's current listing;
    /// copied on write.
    pub msgs: crate::mail::View,
}

impl Selected {
    /// Whether a change with mod-sequence `m` (this session's own, already
    /// applied to `msgs`) is the account's first since the view was last
    /// brought up to date. Mod-sequences count every change of the
    /// account one at a time, so then nothing else happened in between
    /// and the view is the mailbox as it is: the next sync need not read
    /// it again.
    pub(crate) fn is_next_change(&self, m: u64) -> bool {
        m == self.mailbox.highest_modseq.max(1) + 1
    }
}

pub struct Session {
    pub(crate) core: SharedCore,
    pub(crate) conn: Conn,
    pub(crate) rx: Receiver,
    pub(crate) peer: SocketAddr,
    pub(crate) account: Option<Account>,
    pub(crate) selected: Option<Selected>,
    pub(crate) out: Vec<u8>,
    pub(crate) id: String,
    pub(crate) shutdown: Shutdown,
    pub(crate) logout: bool,
    /// CONDSTORE is in use (RFC 7162 §3.1): FETCH responses carry MODSEQ.
    pub(crate) condstore: bool,
    /// SEARCHRES (RFC 5182): UIDs of the last SEARCH RETURN (SAVE), `$`.
    pub(crate) saved: Vec<u32>,
    /// ENABLE IMAP4rev2: RFC 9051 semantics (ESEARCH answers to SEARCH, no
    /// RECENT or UNSEEN in SELECT).
    pub(crate) rev2: bool,
    /// NOTIFY (RFC 5465) settings, the change feed and what was last
    /// reported.
    pub(crate) notify: Option<super::op::notify::NotifySpec>,
    pub(crate) notify_rx: Option<tokio::sync::broadcast::Receiver<u32>>,
    pub(crate) notify_seen: std::collections::HashMap<(u32, u32), super::op::notify::Seen>,
    /// The server annotations last reported (NOTIFY ServerMetadataChange).
    pub(crate) notify_server_meta: Vec<(String, String)>,
    /// The last sync held back expunges (a FETCH, STORE or SEARCH was
    /// being answered): RFC 7162 §3.2 #4.
    pub(crate) expunges_owed: bool,
    /// Mailbox names in UTF-8 (IMAP4rev2 or UTF8=ACCEPT enabled);
    /// otherwise modified UTF-7 (RFC 3501 §5.1.3) both ways.
    pub(crate) utf8_names: bool,
    /// ENABLE UTF8=ACCEPT itself: SEARCH takes no CHARSET (RFC 6855 §3).
    pub(crate) utf8_accept: bool,
    /// ENABLE QRESYNC (RFC 7162 §3.2): VANISHED instead of EXPUNGE.
    pub(crate) qresync: bool,
    /// Moves when an account is disabled or deleted.
    pub(crate) revocations: tokio::sync::watch::Receiver<u64>,
    /// The memory budget's charge for what the receiver holds.
    held: crate::net::budget::Charge,
}

/// Input a session may hold without charging the memory budget.
const UNCHARGED_INPUT: usize = 64 * 1024;

/// Outcome of a command: the tagged status line (without the tag).
pub type Reply = String;

impl Session {
    pub fn new(core: SharedCore, conn: Conn, peer: SocketAddr, shutdown: Shutdown) -> Self {
        let cfg = &core.config.imap;
        let revocations = core.directory.revoked.watch();
        let mut rx = Receiver::new(cfg.max_line_length, cfg.max_literal_size);
        if !cfg.literal_plus {
            rx = rx.literal_minus();
        }
        // Before login, little (README: Security).
        rx.set_command_literal_limit(cfg.max_literal_size_unauthenticated);
        Session {
            core,
            conn,
            rx,
            peer,
            account: None,
            selected: None,
            out: Vec::with_capacity(4096),
            id: session_id(),
            shutdown,
            logout: false,
            condstore: false,
            saved: Vec::new(),
            rev2: false,
            utf8_names: false,
            utf8_accept: false,
            notify: None,
            notify_rx: None,
            notify_seen: Default::default(),
            notify_server_meta: Vec::new(),
            expunges_owed: false,
            qresync: false,
            revocations,
            held: Default::default(),
        }
    }

    pub(crate) fn untagged(&mut self, line: &str) {
        self.out.extend_from_slice(b"* ");
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// The account owning the selected mailbox; the user's own when none
    /// is selected.
    pub(crate) fn sel_owner(&self) -> u32 {
        match &self.selected {
            Some(s) => s.owner,
            None => self.account.as_ref().map(|a| a.id).unwrap_or(0),
        }
    }

    /// Turns CONDSTORE on (RFC 7162 §3.1). The first enabling command with
    /// a mailbox selected reports its HIGHESTMODSEQ ("MUST cause the
    /// server to return HIGHESTMODSEQ for the mailbox").
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(sel) = &self.selected {
            let l = format!(
                "OK [HIGHESTMODSEQ {}] Highest",
                sel.mailbox.highest_modseq.max(1)
            );
            self.untagged(&l);
        }
    }

    /// Announces the keywords among `flags` that the client has not been
    /// told of, with FLAGS and PERMANENTFLAGS (RFC 3501 §7.2.6, RFC 9051
    /// §7.3.5), before any response that shows them.
    pub(crate) fn announce_keywords(&mut self, new: Vec<String>) {
        let Some(sel) = self.selected.as_mut() else {
            return;
        };
        if new.is_empty() {
            return;
        }
        sel.keywords.extend(new);
        let flags = super::op::mailbox::flags_response(&sel.keywords);
        let perm = super::op::mailbox::permanent_flags(&sel.rights, sel.read_only, &sel.keywords);
        self.untagged(&flags);
        self.untagged(&perm);
    }

    /// Keywords of the selected messages at `positions` not announced yet.
    pub(crate) fn unannounced(&self, positions: &[usize]) -> Vec<String> {
        let Some(sel) = self.selected.as_ref() else {
            return Vec::new();
        };
        super::op::mailbox::new_keywords(
            &sel.keywords,
            positions.iter().flat_map(|&i| sel.msgs[i].flags.iter()),
        )
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.write_out(&mut self.out).await
    }

    pub(crate) fn auth_allowed(&self) -> bool {
        self.conn.stream.is_tls() || self.core.config.imap.auth_without_tls
    }

    pub(crate) fn capabilities(&self) -> String {
        // RFC 7889: the largest message APPEND takes (the literal limit).
        let limit = format!("APPENDLIMIT={}", self.core.config.imap.max_literal_size);
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            // RFC 7888 §5: one or the other, never both.
            if self.core.config.imap.literal_plus {
                "LITERAL+"
            } else {
                "LITERAL-"
            },
            "SASL-IR",
            "UNSELECT",
            "IDLE",
            "UIDPLUS",
            "MOVE",
            "NAMESPACE",
            "ACL",
            "RIGHTS=texk",
            "NOTIFY",
            "ID",
            "CHILDREN",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "ENABLE",
            "CONDSTORE",
            "QRESYNC",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "OBJECTID",
            "SAVEDATE",
            "STATUS=SIZE",
            "UNAUTHENTICATE",
            "ESEARCH",
            "SEARCHRES",
            "BINARY",
            "WITHIN",
            "PREVIEW",
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "COMPRESS=DEFLATE",
            "MULTIAPPEND",
            "METADATA",
            "UTF8=ACCEPT",
            "LIST-EXTENDED",
            "LIST-STATUS",
            &limit,
        ];
        // RFC 8437 §8: offered unless `imap.unauthenticate = false`.
        if !self.core.config.imap.unauthenticate {
            caps.retain(|c| *c != "UNAUTHENTICATE");
        }
        if !self.conn.stream.is_tls() && self.core.tls.is_some() && self.account.is_none() {
            caps.push("STARTTLS");
        }
        if self.account.is_none() {
            if self.auth_allowed() {
                caps.push("AUTH=SCRAM-SHA-256");
                caps.push("AUTH=PLAIN");
                caps.push("AUTH=LOGIN");
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.join(" ")
    }

    pub async fn run(mut self) {
        self.serve().await;
        self.conn.close().await;
    }

    async fn serve(&mut self) {
        metrics::counter!("petrel_imap_sessions_total").increment(1);
        let greeting = format!("OK [CAPABILITY {}] Petrel IMAP ready", self.capabilities());
        self.untagged(&greeting);
        if self.flush().await.is_err() {
            return;
        }
        loop {
            let idle = Duration::from_secs(idle_limit(
                self.core.config.imap.timeout_idle,
                self.account.is_some(),
            ));
            while let Some(ev) = self.rx.next_event() {
                let keep = match ev {
                    Event::Command(cmd) => self.command(&cmd).await,
                    Event::Continue => {
                        self.out.extend_from_slice(b"+ Ready for literal data\r\n");
                        true
                    }
                    Event::Reject { tag, response } => {
                        let t = tag.unwrap_or_else(|| "*".into());
                        let line = format!("{t} {response}\r\n");
                        self.out.extend_from_slice(line.as_bytes());
                        true
                    }
                    Event::Fatal(msg) => {
                        self.untagged(&msg);
                        false
                    }
                };
                if self.flush().await.is_err() || !keep || self.logout {
                    return;
                }
            }
            if self.rx.pending() <= UNCHARGED_INPUT {
                self.held = Default::default();
            }
            if self.shutdown.is_shutting_down() {
                self.untagged("BYE Server shutting down");
                let _ = self.flush().await;
                return;
            }
            let me = self.account.as_ref().map(|a| a.id);
            let read = tokio::select! {
                r = tokio::time::timeout(idle, self.conn.fill()) => r,
                _ = self.shutdown.wait() => continue,
                // An account disabled or deleted ends its sessions.
                _ = crate::directory::until_revoked(&self.core.directory, &mut self.revocations, me) => {
                    self.untagged(REVOKED_BYE);
                    let _ = self.flush().await;
                    return;
                }
                // NOTIFY (RFC 5465): events between commands.
                changed = next_changes(&mut self.notify_rx) => {
                    if changed.iter().any(|&a| a == u32::MAX || self.notify_relevant(a)) {
                        self.notify_changes(true).await;
                        if self.flush().await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Err(_) => {
                    self.untagged("BYE Autologout; idle for too long");
                    let _ = self.flush().await;
                    return;
                }
                Ok(Ok(_)) => {
                    let data = self.conn.buffered().to_vec();
                    self.conn.consume(data.len());
                    self.rx.feed(&data);
                    if !self.charge_input().await {
                        self.untagged(
                            "BYE [UNAVAILABLE] The server is short of memory, try again later",
                        );
                        let _ = self.flush().await;
                        return;
                    }
                }
            }
        }
    }

    /// Covers what the receiver holds (a large literal arriving) with the
    /// memory budget, waiting for room up to `limits.memory-wait`; false
    /// when there was none. Nothing is read meanwhile, so the client waits.
    async fn charge_input(&mut self) -> bool {
        let n = self.rx.pending();
        if n <= UNCHARGED_INPUT {
            self.held = Default::default();
            return true;
        }
        let core = self.core.clone();
        core.budget.grow_wait(&mut self.held, n).await
    }

    /// Reads one more line from the client (AUTHENTICATE responses).
    pub(crate) async fn read_client_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(l) = self.rx.take_line() {
                return Some(l);
            }
            if self.rx.pending() > self.core.config.imap.max_line_length {
                return None;
            }
            let idle = Duration::from_secs(idle_limit(
                self.core.config.imap.timeout_idle,
                self.account.is_some(),
            ));
            match tokio::time::timeout(idle, self.conn.fill()).await {
                Ok(Ok(n)) if n > 0 => {
                    let data = self.conn.buffered().to_vec();
                    self.conn.consume(data.len());
                    self.rx.feed(&data);
                }
                _ => return None,
            }
        }
    }

    pub(crate) async fn send_now(&mut self, data: &[u8]) -> bool {
        self.out.extend_from_slice(data);
        self.flush().await.is_ok()
    }

    /// Before a command of a logged-in session: the account must still be
    /// there and enabled, and the rights on a mailbox selected in another
    /// account must still include `r` (RFC 4314 §4). False when the
    /// session ends (a BYE has been written).
    async fn still_allowed(&mut self) -> bool {
        let Some(acct) = self.account.as_ref() else {
            return true;
        };
        if self.core.directory.revoked.is_revoked(acct.id) {
            self.untagged(REVOKED_BYE);
            return false;
        }
        let Some(sel) = self.selected.as_ref() else {
            return true;
        };
        if sel.owner == acct.id || sel.acl_version == self.core.mail.acl_version() {
            return true;
        }
        let version = self.core.mail.acl_version();
        match self.core.mail.mailbox(sel.owner, sel.mailbox.id).await {
            Ok(mb) => self.recheck_rights(mb.as_ref(), version),
            // The store could not say: keep the rights held, the command
            // will meet the same error.
            Err(_) => true,
        }
    }

    /// Takes the rights on the selected shared mailbox from `mb` as it is
    /// now (`None`: it is gone). Losing `r` ends the session with BYE
    /// (RFC 4314 §4); other changes update what commands may do and are
    /// announced with PERMANENTFLAGS. False when the session ends.
    pub(crate) fn recheck_rights(&mut self, mb: Option<&Mailbox>, version: u64) -> bool {
        let me = self.account.as_ref().map(|a| a.id).unwrap_or(0);
        let Some(sel) = self.selected.as_mut() else {
            return true;
        };
        let rights = match mb {
            Some(mb) => mb.rights_of(sel.owner, me),
            None => crate::mail::acl::Rights::none(),
        };
        sel.acl_version = version;
        if !rights.has('r') {
            tracing::info!(session = %self.id, "access to the selected mailbox revoked");
            self.selected = None;
            self.untagged("BYE [NOPERM] Your access to the selected mailbox was revoked");
            self.logout = true;
            return false;
        }
        if rights != sel.rights {
            let read_only = sel.examine || !"swte".chars().any(|c| rights.has(c));
            let was =
                super::op::mailbox::permanent_flags(&sel.rights, sel.read_only, &sel.keywords);
            let now = super::op::mailbox::permanent_flags(&rights, read_only, &sel.keywords);
            sel.rights = rights;
            sel.read_only = read_only;
            if was != now {
                self.untagged(&now);
            }
        }
        true
    }

    /// Runs one command; false closes the connection.
    async fn command(&mut self, cmd: &[u8]) -> bool {
        let p = match tokenize(cmd) {
            Ok(p) => p,
            Err((tag, msg)) => {
                let t = tag.unwrap_or_else(|| "*".into());
                let line = format!("{t} BAD {msg}\r\n");
                self.out.extend_from_slice(line.as_bytes());
                return true;
            }
        };
        let Parsed { tag, name, args } = p;
        if !self.still_allowed().await {
            return false;
        }
        metrics::counter!("petrel_imap_commands_total", "command" => crate::observe::metrics::imap_command(&name)).increment(1);
        let reply = self.dispatch(&tag, &name, args).await;
        match reply {
            Some(r) if r == super::op::auth::SENT => true,
            Some(r) => {
                let line = format!("{tag} {r}\r\n");
                self.out.extend_from_slice(line.as_bytes());
                true
            }
            None => false,
        }
    }

    async fn dispatch(
        &mut self,
        tag: &str,
        name: &str,
        args: Vec<super::proto::Token>,
    ) -> Option<Reply> {
        let authed = self.account.is_some();
        let selected = self.selected.is_some();
        // UID SEARCH, SORT and THREAD may name messages by number:
        // answered without expunges too (RFC 7162 §3.2.10.2 #6).
        let numbered_answer = matches!(name, "FETCH" | "STORE" | "SEARCH" | "SORT" | "THREAD")
            || (name == "UID"
                && args
                    .first()
                    .is_some_and(|t| matches!(t.keyword().as_str(), "SEARCH" | "SORT" | "THREAD")));
        // RFC 9051 §2.2.2: a command that takes no arguments but got some
        // is a syntax error.
        if !args.is_empty()
            && matches!(
                name,
                "NOOP"
                    | "CHECK"
                    | "CAPABILITY"
                    | "LOGOUT"
                    | "CLOSE"
                    | "UNSELECT"
                    | "EXPUNGE"
                    | "IDLE"
                    | "STARTTLS"
                    | "NAMESPACE"
                    | "UNAUTHENTICATE"
            )
        {
            return Some(format!("BAD {name} takes no arguments"));
        }
        let own = self.own_changes(name, &args);
        let mut r = match name {
            "CAPABILITY" => {
                let c = format!("CAPABILITY {}", self.capabilities());
                self.untagged(&c);
                "OK CAPABILITY completed".into()
            }
            "NOOP" | "CHECK" => {
                if name == "CHECK" && !selected {
                    return Some("BAD No mailbox selected".into());
                }
                self.sync(true).await;
                format!("OK {name} completed")
            }
            "LOGOUT" => {
                self.untagged("BYE Logging out");
                self.logout = true;
                "OK LOGOUT completed".into()
            }
            "STARTTLS" => return self.cmd_starttls(tag).await,
            "LOGIN" if !authed => self.cmd_login(&args).await,
            "AUTHENTICATE" if !authed => return self.cmd_authenticate(tag, &args).await,
            "LOGIN" | "AUTHENTICATE" => "BAD Already authenticated".into(),
            "ID" => self.cmd_id(&args),
            _ if !authed => "BAD Command not valid before authentication".into(),
            "CREATE" => self.cmd_create(&args).await,
            "DELETE" => self.cmd_delete(&args).await,
            "RENAME" => self.cmd_rename(&args).await,
            "SUBSCRIBE" => self.cmd_subscribe(&args, true).await,
            "UNSUBSCRIBE" => self.cmd_subscribe(&args, false).await,
            "NAMESPACE" => self.cmd_namespace(),
            "NOTIFY" => self.cmd_notify(&args).await,
            "ENABLE" => self.cmd_enable(&args),
            "COMPRESS" => return self.cmd_compress(tag, &args).await,
            // RFC 8437: back to the not-authenticated state.
            "UNAUTHENTICATE" if !self.core.config.imap.unauthenticate => {
                "BAD UNAUTHENTICATE is turned off (imap.unauthenticate)".into()
            }
            "UNAUTHENTICATE" => {
                self.selected = None;
                self.account = None;
                self.rx.set_command_literal_limit(
                    self.core.config.imap.max_literal_size_unauthenticated,
                );
                self.condstore = false;
                self.rev2 = false;
                self.qresync = false;
                self.utf8_names = false;
                self.utf8_accept = false;
                self.notify = None;
                self.notify_rx = None;
                self.notify_seen.clear();
                "OK Not authenticated any more".into()
            }
            "GETQUOTAROOT" => self.cmd_getquotaroot(&args).await,
            "MYRIGHTS" => self.cmd_myrights(&args).await,
            "GETACL" => self.cmd_getacl(&args).await,
            "LISTRIGHTS" => self.cmd_listrights(&args).await,
            "SETACL" => self.cmd_setacl(&args, false).await,
            "DELETEACL" => self.cmd_setacl(&args, true).await,
            "GETMETADATA" => self.cmd_getmetadata(&args).await,
            "SETMETADATA" => self.cmd_setmetadata(&args).await,
            "GETQUOTA" => self.cmd_getquota(&args).await,
            "SETQUOTA" => self.cmd_setquota(),
            "APPEND" => self.cmd_append(&args).await,
            "IDLE" => return self.cmd_idle().await,
            "SELECT" | "EXAMINE" => self.cmd_select(&args, name == "EXAMINE").await,
            "LIST" | "LSUB" => self.cmd_list(&args, name == "LSUB").await,
            "STATUS" => self.cmd_status(&args).await,
            _ if !selected => match name {
                "FETCH" | "STORE" | "EXPUNGE" | "CLOSE" | "UNSELECT" | "UID" | "SORT"
                | "THREAD" => "BAD No mailbox selected".into(),
                _ => format!("BAD Unknown command {name}"),
            },
            "FETCH" => self.cmd_fetch(&args, false).await,
            "STORE" => self.cmd_store(&args, false).await,
            "COPY" => self.cmd_copy(&args, false, false).await,
            "MOVE" => self.cmd_copy(&args, false, true).await,
            "SEARCH" => self.cmd_search(tag, &args, false).await,
            "SORT" => self.cmd_sort(tag, &args, false).await,
            "THREAD" => self.cmd_thread(&args, false).await,
            "EXPUNGE" => self.cmd_expunge(None).await,
            "CLOSE" | "UNSELECT" => self.cmd_close(name == "CLOSE").await,
            "UID" => self.cmd_uid(tag, args).await,
            _ => format!("BAD Unknown command {name}"),
        };
        // Report other sessions' changes before the tagged reply where
        // RFC 9051 §7.5.1 allows: no EXPUNGE while answering FETCH, STORE
        // or SEARCH by sequence number (nor SORT and THREAD, whose answers
        // are sequence numbers too); their UID forms may carry them.
        if self.selected.is_some()
            && !numbered_answer
            && !matches!(name, "NOOP" | "CHECK" | "SELECT" | "EXAMINE")
        {
            self.sync(true).await;
        } else if self.selected.is_some() && numbered_answer {
            self.sync(false).await;
            // RFC 7162 §3.2 #4: FETCH responses may have carried
            // mod-sequences above expunges not yet reported; the
            // HIGHESTMODSEQ of the last complete view keeps the client
            // from skipping them.
            if self.expunges_owed
                && self.condstore
                && r.starts_with("OK ")
                && !r.starts_with("OK [")
            {
                if let Some(sel) = &self.selected {
                    r = format!(
                        "OK [HIGHESTMODSEQ {}] {}",
                        sel.mailbox.highest_modseq.max(1),
                        &r[3..]
                    );
                }
            }
        }
        if let (Some((names, server)), true) = (own, r.starts_with("OK")) {
            self.notify_absorb(&names, server).await;
        }
        Some(r)
    }

    async fn cmd_uid(&mut self, tag: &str, mut args: Vec<super::proto::Token>) -> Reply {
        if args.is_empty() {
            return "BAD UID needs a command".into();
        }
        let sub = args
            .remove(0)
            .as_string()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match sub.as_str() {
            "FETCH" => self.cmd_fetch(&args, true).await,
            "STORE" => self.cmd_store(&args, true).await,
            "COPY" => self.cmd_copy(&args, true, false).await,
            "MOVE" => self.cmd_copy(&args, true, true).await,
            "SEARCH" => self.cmd_search(tag, &args, true).await,
            "SORT" => self.cmd_sort(tag, &args, true).await,
            "THREAD" => self.cmd_thread(&args, true).await,
            "EXPUNGE" => {
                let Some(mut set) = args
                    .first()
                    .and_then(|t| t.as_string())
                    .and_then(|s| super::proto::args::SeqSet::parse(&s))
                else {
                    return "BAD UID EXPUNGE needs a UID set".into();
                };
                if set.is_saved() {
                    set = super::proto::args::SeqSet::of(&self.saved);
                }
                self.cmd_expunge(Some(set)).await
            }
            _ => format!("BAD Unknown UID command {sub}"),
        }
    }

    /// Positions in the selected view of the messages a sequence set (or,
    /// with `uid_mode`, a UID set) names; `*` is the last message. A
    /// sequence number past the end is a BAD (RFC 9051 §6.4.5).
    pub(crate) fn resolve_set(&self, set: &SeqSet, uid_mode: bool) -> Result<Vec<usize>, Reply> {
        let Some(sel) = self.selected.as_ref() else {
            return Err("BAD No mailbox selected".into());
        };
        if set.is_saved() {
            // `$` names messages, whichever numbering the command uses.
            return Ok(sel
                .msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| self.saved.contains(&m.uid))
                .map(|(i, _)| i)
                .collect());
        }
        let largest = if uid_mode {
            sel.msgs.last().map(|m| m.uid).unwrap_or(0)
        } else {
            sel.msgs.len() as u32
        };
        if !uid_mode && set.0.iter().any(|&(_, b)| b != STAR && b > largest as u64) {
            return Err("BAD Message sequence number out of range".into());
        }
        Ok(sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                let n = if uid_mode { m.uid } else { *i as u32 + 1 };
                set.contains(n, largest)
            })
            .map(|(i, _)| i)
            .collect())
    }

    /// Brings the selected mailbox view up to date, reporting what other
    /// sessions and deliveries changed. Expunges are reported only when
    /// `allow_expunge`.
    pub(crate) async fn sync(&mut self, allow_expunge: bool) {
        self.expunges_owed = false;
        if self.account.is_none() {
            return;
        }
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        let acct = sel.owner;
        let mbox_id = sel.mailbox.id;
        let version = self.core.mail.acl_version();
        let mb = match self.core.mail.mailbox(acct, mbox_id).await {
            Ok(mb) => mb,
            Err(_) => return,
        };
        let me = self.account.as_ref().map(|a| a.id);
        if Some(acct) != me
            && sel.acl_version != version
            && !self.recheck_rights(mb.as_ref(), version)
        {
            return;
        }
        let Some(mb) = mb else {
            return;
        };
        let Some(sel) = self.selected.as_ref() else {
            return;
        };
        if mb.highest_modseq == sel.mailbox.highest_modseq && mb.uidnext == sel.mailbox.uidnext {
            return;
        }
        let Ok(current) = self.core.mail.view(acct, &mb).await else {
            return;
        };
        let mut lines = Vec::new();
        let mut vanished = Vec::new();
        let sel = self.selected.as_mut().expect("checked above");
        let mut complete = true;
        // Merge walk over two UID-ordered lists.
        let mut kept = Vec::with_capacity(current.len());
        let mut ci = 0;
        let mut seq = 0usize;
        for old in std::sync::Arc::unwrap_or_clone(std::mem::take(&mut sel.msgs)) {
            while ci < current.len() && current[ci].uid < old.uid {
                ci += 1; // appended below the top: cannot happen (UIDs ascend)
            }
            if ci < current.len() && current[ci].uid == old.uid {
                let cur = current[ci].clone();
                ci += 1;
                seq += 1;
                if cur.modseq != old.modseq {
                    if cur.flags != old.flags {
                        // RFC 7162 §3.1.4.1, §3.2.4: with CONDSTORE, with
                        // UID and MODSEQ; RFC 5465 §5.1: with NOTIFY, UID.
                        let modseq = if self.condstore {
                            format!(" MODSEQ ({})", cur.modseq)
                        } else {
                            String::new()
                        };
                        // RFC 9051 §7.5.2: IMAP4rev2 too.
                        let uid = if self.condstore || self.notify.is_some() || self.rev2 {
                            format!("UID {} ", cur.uid)
                        } else {
                            String::new()
                        };
                        lines.push(format!(
                            "{seq} FETCH ({uid}FLAGS ({}){modseq})",
                            flag_list(&cur.flags, sel.recent.contains(&cur.uid))
                        ));
                    }
                    kept.push(cur);
                } else {
                    kept.push(old);
                }
            } else if allow_expunge {
                if self.qresync {
                    vanished.push(old.uid);
                } else {
                    lines.push(format!("{} EXPUNGE", seq + 1));
                }
            } else {
                seq += 1;
                complete = false;
                kept.push(old);
            }
        }
        let before = kept.len();
        let last_uid = kept.last().map(|m| m.uid).unwrap_or(0);
        kept.extend(current.iter().filter(|c| c.uid > last_uid).cloned());
        if kept.len() != before {
            lines.push(format!("{} EXISTS", kept.len()));
            // New messages are this session's \Recent ones if no other
            // session took them first (RFC 3501 §2.3.2, §7.3.2).
            if !self.rev2 {
                let new = kept[before..].iter().map(|m| m.uid);
                if sel.examine {
                    let from = self.core.mail.recent_from(acct, mbox_id, mb.uidnext);
                    sel.recent.extend(new.filter(|&u| u >= from));
                } else {
                    let claimed = self.core.mail.claim_recent(acct, mbox_id, mb.uidnext);
                    sel.recent.extend(new.filter(|u| claimed.contains(u)));
                }
                let n = kept.iter().filter(|m| sel.recent.contains(&m.uid)).count();
                lines.push(format!("{n} RECENT"));
            }
        }
        // In step with the mailbox: hold the shared listing, not a copy.
        sel.msgs = if complete {
            current
        } else {
            std::sync::Arc::new(kept)
        };
        if complete {
            sel.mailbox = mb;
        } else {
            // Expunges still owed: keep the old modseq so the next sync
            // looks again.
            sel.mailbox.uidnext = mb.uidnext;
        }
        // Keywords new to the client come first (RFC 3501 §7.2.6).
        let new = super::op::mailbox::new_keywords(
            &sel.keywords,
            sel.msgs.iter().flat_map(|m| m.flags.iter()),
        );
        self.announce_keywords(new);
        // One VANISHED for all of them, before the FETCHes, whose numbers
        // already count without the vanished messages.
        if !vanished.is_empty() {
            let l = format!("VANISHED {}", super::op::search::compress(&vanished));
            self.untagged(&l);
        }
        for l in lines {
            self.untagged(&l);
        }
        self.expunges_owed = !complete;
    }
}

/// Seconds of silence before autologout: `imap.timeout-idle`, but never
/// less than 30 minutes once logged in (RFC 9051 §5.4).
pub(crate) fn idle_limit(configured: u64, authenticated: bool) -> u64 {
    if authenticated {
        configured.max(1800)
    } else {
        configured
    }
}

/// A message's flags as FETCH shows them, `\Recent` included when it is
/// recent in this session.
pub(crate) fn flag_list(flags: &[String], recent: bool) -> String {
    let mut l = flags.join(" ");
    if recent {
        if !l.is_empty() {
            l.push(' ');
        }
        l.push_str("\\Recent");
    }
    l
}

pub(crate) const REVOKED_BYE: &str = "BYE This account was disabled or removed";

/// The account ids of the next batch of change notifications (u32::MAX
/// when some were missed); never resolves without a feed.
async fn next_changes(rx: &mut Option<tokio::sync::broadcast::Receiver<u32>>) -> Vec<u32> {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let Some(rx) = rx.as_mut() else {
        return std::future::pending().await;
    };
    let mut out = match rx.recv().await {
        Ok(a) => vec![a],
        Err(RecvError::Lagged(_)) => vec![u32::MAX],
        Err(RecvError::Closed) => return std::future::pending().await,
    };
    loop {
        match rx.try_recv() {
            Ok(a) => out.push(a),
            Err(TryRecvError::Lagged(_)) => out.push(u32::MAX),
            Err(_) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn autologout_after_login_is_at_least_thirty_minutes() {
        use super::idle_limit;
        assert_eq!(idle_limit(1, false), 1);
        assert_eq!(idle_limit(1, true), 1800);
        assert_eq!(idle_limit(3600, true), 3600);
    }
}
