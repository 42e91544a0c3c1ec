//! The configuration file: a TOML model with a default for every key.
//!
//! `DEFAULT_TEMPLATE` is the commented `config.toml` written on first start; a
//! unit test checks that it parses to exactly [`Config::default`], so the file
//! a user reads always tells the truth about the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod filters;
mod sieve;
mod spam;
pub use filters::{FilterPort, HookConfig, MilterConfig, OnFailure};
pub use sieve::{DeliveryScripts, GreylistConfig, ManageSieveConfig, SieveConfig, StageScripts};
pub use spam::{
    BayesConfig, DnsblCheck, DnsblZone, FeedConfig, FeedFormat, HashEncoding, HashKind,
    ReputationConfig, SpamConfig,
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub hostname: String,
    pub listeners: Listeners,
    pub tls: Tls,
    pub store: StoreConfig,
    pub blob: BlobConfig,
    pub search: SearchConfig,
    pub smtp: SmtpConfig,
    pub imap: ImapConfig,
    pub pop3: Pop3Config,
    pub auth: AuthConfig,
    pub passwords: PasswordsConfig,
    pub directory: DirectoryConfig,
    pub queue: QueueConfig,
    pub dkim: DkimConfig,
    pub jmap: JmapConfig,
    pub sieve: SieveConfig,
    pub managesieve: ManageSieveConfig,
    pub greylist: GreylistConfig,
    pub spam: SpamConfig,
    pub mail_auth: MailAuthConfig,
    pub mta_sts: MtaStsConfig,
    pub proxy: ProxyConfig,
    pub resolver: ResolverConfig,
    pub shutdown: ShutdownConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Listeners {
    pub smtp: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    pub lmtp: Vec<SocketAddr>,
    /// Unix socket path for LMTP ("" for none).
    pub lmtp_socket: PathBuf,
    pub imap: Vec<SocketAddr>,
    pub imaps: Vec<SocketAddr>,
    pub pop3: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
    /// ManageSieve (RFC 5804), with STARTTLS.
    pub managesieve: Vec<SocketAddr>,
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    /// Plain HTTP that only redirects to https (and will answer ACME
    /// HTTP-01 challenges): port 80 of a production server.
    pub http_redirect: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tls {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// PEM file of extra trust anchors for checked outbound TLS (MTA-STS),
    /// next to the system's roots ("" for none).
    pub extra_ca: PathBuf,
    /// Certificates chosen by the name a client asks for (SNI).
    pub sni: Vec<SniCertificate>,
    pub acme: AcmeConfig,
}

/// `[tls.acme]`: the default certificate ordered and renewed from an ACME
/// server (RFC 8555) with HTTP-01 challenges on the http-redirect or http
/// listener (port 80).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AcmeConfig {
    /// The directory URL ("" = off), e.g.
    /// https://acme-v02.api.letsencrypt.org/directory
    pub directory: String,
    /// Contact URIs for the account (mailto:...).
    pub contact: Vec<String>,
    /// Names on the certificate; [] means `hostname`.
    pub domains: Vec<String>,
    /// PEM trust anchors for the ACME server's own HTTPS ("" = the
    /// system's roots); for private or test ACME servers.
    pub ca_file: PathBuf,
    /// Renew when the certificate has fewer days than this left.
    pub renew_before_days: u64,
    /// "http-01" (port 80) or "tls-alpn-01" (port 443, RFC 8737).
    pub challenge: String,
    /// The operator has read and accepts the CA's terms of service
    /// (RFC 8555 §7.3: never agreed to automatically).
    pub agree_to_terms: bool,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            directory: String::new(),
            contact: Vec::new(),
            domains: Vec::new(),
            ca_file: PathBuf::new(),
            renew_before_days: 30,
            challenge: "http-01".into(),
            agree_to_terms: false,
        }
    }
}

/// `[[tls.sni]]`: a certificate for some names (hosted domains, their
/// mta-sts./autoconfig. names), presented when a client asks for one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SniCertificate {
    pub names: Vec<String>,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreType {
    Rocksdb,
    Sqlite,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct StoreConfig {
    #[serde(rename = "type")]
    pub kind: StoreType,
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BlobConfig {
    pub path: PathBuf,
    pub inline_max: usize,
}

/// The full-text index behind IMAP SEARCH text keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SearchConfig {
    /// Keep the index; without it SEARCH reads every message.
    pub index: bool,
    pub path: PathBuf,
    /// While mail changes faster than this many times a second (a bulk
    /// import, a migration), the indexer waits and the CPU goes to the
    /// mail; 0: never wait.
    pub defer_above: u32,
    /// The longest the indexer waits for bulk arrivals to end, seconds.
    pub max_defer: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmtpConfig {
    pub max_line_length: usize,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_errors: usize,
    pub max_messages_per_connection: usize,
    pub max_received_headers: usize,
    pub timeout_command: u64,
    pub timeout_data: u64,
    pub auth_without_tls: bool,
    /// Open SMTP connections from one address (0: no limit).
    pub max_connections_per_ip: u32,
    /// New SMTP connections from one address per minute (0: no limit).
    pub max_connection_rate_per_ip: u32,
    /// Address blocks the two limits above do not apply to.
    pub limit_exempt: Vec<String>,
    /// "reject" refuses a message with a bare CR or LF (RFC 5321 §2.3.8);
    /// "accept" stores it as sent.
    pub bare_newlines: BareNewlines,
    /// Authenticated senders: every From: header address must be the
    /// user's own (RFC 6409 §8.1).
    pub check_from_header: bool,
    /// Clients in these address blocks must STARTTLS before MAIL
    /// (RFC 3207 §6: TLS required for selected hosts).
    pub require_tls_from: Vec<String>,
    /// Milters every message passes at the end of DATA, in order.
    pub milter: Vec<MilterConfig>,
    /// HTTP hooks every message passes after the milters, in order.
    pub hook: Vec<HookConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BareNewlines {
    Reject,
    Accept,
}

/// `[directory]`: how addresses are looked up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DirectoryConfig {
    /// `joe+lists@example.org` reaches `joe@example.org` when it has no
    /// address of its own (the detail is Sieve's `:detail`); "" for none.
    pub recipient_delimiter: String,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            recipient_delimiter: "+".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImapConfig {
    pub max_line_length: usize,
    pub max_literal_size: usize,
    pub timeout_idle: u64,
    pub auth_without_tls: bool,
    /// Advertise LITERAL+ (non-synchronising literals of any size up to
    /// `max_literal_size`); `false`: LITERAL- (at most 4096 bytes).
    pub literal_plus: bool,
    /// Offer UNAUTHENTICATE (RFC 8437; §8 asks for a way to turn it off).
    pub unauthenticate: bool,
    /// Take APPENDs with 8-bit header fields from clients that did not
    /// enable UTF8=ACCEPT (RFC 6855 §4 says refuse them).
    pub accept_8bit_headers: bool,
    /// Bytes of literals one command may carry before login.
    pub max_literal_size_unauthenticated: usize,
    /// Open IMAP connections from one address (0: no limit).
    pub max_connections_per_ip: u32,
    /// New IMAP connections from one address per minute (0: no limit).
    pub max_connection_rate_per_ip: u32,
    /// Address blocks the two limits above do not apply to.
    pub limit_exempt: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pop3Config {
    /// Bytes per command line (RFC 2449 §4: at least 255).
    pub max_line_length: usize,
    /// Seconds of silence before the session ends (RFC 1939 §3: at least
    /// 600).
    pub timeout_idle: u64,
    pub auth_without_tls: bool,
    /// Open POP3 connections from one address (0: no limit).
    pub max_connections_per_ip: u32,
    /// New POP3 connections from one address per minute (0: no limit).
    pub max_connection_rate_per_ip: u32,
    /// Address blocks the two limits above do not apply to.
    pub limit_exempt: Vec<String>,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            max_line_length: 8192,
            timeout_idle: 600,
            auth_without_tls: false,
            max_connections_per_ip: 20,
            max_connection_rate_per_ip: 600,
            limit_exempt: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthConfig {
    /// Failures from one client network in the window before it is
    /// throttled for accounts it never logged in to (0: off).
    pub max_failures_per_ip: u32,
    /// Failures of one account in the window before attempts from unknown
    /// networks are slowed down (0: off).
    pub max_failures_per_account: u32,
    /// Failures of one account from one network before that pair is
    /// throttled for the window (0: off).
    pub max_failures_per_account_ip: u32,
    pub failure_window: u64,
    /// The longest delay between attempts on an account under attack.
    pub max_delay: u64,
    /// Seconds a network that logged in to an account stays exempt from
    /// the address and account throttles (0: never remembered).
    pub remember_address: u64,
    /// Seconds a verified password is remembered (0: never).
    pub cache_ttl: u64,
}

/// `[passwords]`: what a new password must be (see
/// [`crate::directory::strength`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PasswordsConfig {
    /// The zxcvbn strength (0-4) a new password needs; 0 accepts any.
    pub min_score: u8,
    /// Refuse passwords from the list of well-known ones, when set and at
    /// login.
    pub block_well_known: bool,
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        PasswordsConfig {
            min_score: 3,
            block_well_known: true,
        }
    }
}

/// How a connection to a remote server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// STARTTLS when offered, certificate not checked (RFC 7435).
    Opportunistic,
    /// STARTTLS must succeed, or the attempt fails temporarily.
    Required,
    /// TLS from the first byte (port 465 style).
    Implicit,
    /// Never TLS.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct QueueConfig {
    pub concurrency: usize,
    /// Seconds between attempts; the last value repeats.
    pub retry: Vec<u64>,
    /// Seconds after which the sender gets a delay notice (0: never).
    pub delay_notify: u64,
    /// Seconds after which undelivered recipients are bounced.
    pub expire: u64,
    /// "host:port" of a smarthost for all non-local mail ("" for MX delivery).
    pub relay: String,
    pub relay_tls: TlsMode,
    pub relay_user: String,
    pub relay_secret: String,
    /// TLS for delivery to MX hosts.
    pub tls: TlsMode,
    /// Port of MX hosts (25; tests point it elsewhere).
    pub mx_port: u16,
    /// Apply receivers' MTA-STS policies (RFC 8461) to MX delivery.
    pub mta_sts: bool,
    /// Port of MTA-STS policy hosts (443; tests point it elsewhere).
    pub mta_sts_port: u16,
    /// Per-domain routes: domain → "host:port".
    pub routes: std::collections::BTreeMap<String, String>,
    /// Authenticate MX hosts by DNSSEC-validated TLSA records (RFC 7672).
    pub dane: bool,
    pub connect_timeout: u64,
    pub command_timeout: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DkimConfig {
    /// Sign mail from authenticated senders with the key of the sender's
    /// domain, when one was created (`petrel dkim create`).
    pub sign: bool,
    /// Header fields covered by the signature.
    pub headers: Vec<String>,
    /// ARC-seal mail that groups forward to other domains (RFC 8617), with
    /// the group domain's key.
    pub arc_seal: bool,
    /// Seconds a signature stays valid (its `x=` tag, RFC 6376 §3.5);
    /// 0 leaves `x=` out.
    pub expire_after: u64,
}

/// The MTA-STS policy Petrel serves at /.well-known/mta-sts.txt.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MtaStsConfig {
    /// "off" (not served), "none", "testing" or "enforce".
    pub mode: String,
    /// MX host patterns; empty means `hostname`.
    pub mx: Vec<String>,
    pub max_age: u64,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            mode: "testing".into(),
            mx: vec![],
            max_age: 604800,
        }
    }
}

/// PROXY protocol (v1 and v2) in front of listeners.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProxyConfig {
    /// Listener kinds that require a PROXY header ("smtp", "submission",
    /// "submissions", "lmtp", "imap", "imaps").
    pub listeners: Vec<String>,
    /// Address blocks of the proxies allowed to send one.
    pub trusted_networks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    /// Not checked.
    Off,
    /// Checked and recorded in Authentication-Results.
    Verify,
    /// Checked, and failures refused (SPF "strict") or acted on by policy
    /// (DMARC "enforce": p=reject refused, p=quarantine to Junk).
    Strict,
    Enforce,
}

/// Checks on mail arriving on the MTA port (not on submission or LMTP).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MailAuthConfig {
    pub spf: CheckMode,
    pub dkim: CheckMode,
    pub arc: CheckMode,
    pub dmarc: CheckMode,
    pub iprev: CheckMode,
}

impl Default for MailAuthConfig {
    fn default() -> Self {
        MailAuthConfig {
            spf: CheckMode::Verify,
            dkim: CheckMode::Verify,
            arc: CheckMode::Verify,
            dmarc: CheckMode::Enforce,
            iprev: CheckMode::Verify,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResolverConfig {
    /// "ip:port" of DNS servers; empty reads /etc/resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    /// Seconds per DNS query.
    pub timeout: u64,
    /// Seconds a negative answer without its own TTL is cached.
    pub negative_ttl: u64,
    /// A file of DNSKEY records trusted for DNSSEC validation (DANE);
    /// empty means the root zone's published keys.
    pub trust_anchors: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShutdownConfig {
    pub grace_period: u64,
}

/// `[jmap]`: the JMAP API on the HTTP listeners (RFC 8620, 8621).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct JmapConfig {
    pub enable: bool,
    /// Allow Basic authentication on the plain `http` listener.
    pub auth_without_tls: bool,
    pub max_size_request: usize,
    pub max_calls_in_request: usize,
    pub max_objects_in_get: usize,
    pub max_objects_in_set: usize,
    pub max_concurrent_requests: usize,
    pub max_size_upload: usize,
    pub max_concurrent_upload: usize,
    /// Octets one user's uploads (not yet part of a message) may hold,
    /// apart from the mail quota (RFC 8620 §6); the oldest go to make room.
    pub upload_quota: usize,
    /// Seconds every EmailSubmission waits in the queue before its first
    /// attempt, during which the client can cancel it ("undo send").
    pub submission_delay: u64,
    /// The longest FUTURERELEASE hold (HOLDFOR/HOLDUNTIL, RFC 4865) a
    /// submission may ask for, in seconds (the session's maxDelayedSend);
    /// 0 turns delayed sending off.
    pub max_delayed_send: u64,
    /// Push subscriptions (RFC 8620 §7.2) one account may hold.
    pub max_push_subscriptions: usize,
    /// Allow push URLs that resolve to loopback or private addresses
    /// (off: a client cannot make Petrel call into its own network).
    pub push_allow_private: bool,
    /// A PEM file of extra CAs trusted for push URLs (beside the system's).
    pub push_ca_file: std::path::PathBuf,
    /// Messages whose sort facts (arrival, size, thread) Email/query and
    /// Thread/get keep in memory, over all accounts; 0 keeps none.
    pub facts_cache_messages: usize,
    /// Which directory entries a user finds as JMAP Principals (RFC 9670).
    pub principals: PrincipalScope,
}

/// `jmap.principals`: the accounts and groups a user may look up (itself
/// and the owners of what is shared with it always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalScope {
    /// Those of the user's own domain.
    Domain,
    /// Every one in the directory.
    All,
}

impl Default for JmapConfig {
    fn default() -> Self {
        JmapConfig {
            enable: true,
            auth_without_tls: false,
            max_size_request: 10_000_000,
            max_calls_in_request: 32,
            max_objects_in_get: 500,
            max_objects_in_set: 500,
            max_concurrent_requests: 4,
            max_size_upload: 50_000_000,
            max_concurrent_upload: 4,
            upload_quota: 200_000_000,
            submission_delay: 0,
            max_delayed_send: 30 * 86400,
            max_push_subscriptions: 16,
            push_allow_private: false,
            push_ca_file: std::path::PathBuf::new(),
            facts_cache_messages: 1_000_000,
            principals: PrincipalScope::Domain,
        }
    }
}

/// `[log]`: what the server logs and where (README: Logs and metrics).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogConfig {
    /// A tracing filter: a level (`info`) or per-module directives
    /// (`warn,petrel::smtp=debug`). `PETREL_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
    /// A file to append to; empty means standard error. Reopened on SIGHUP
    /// (after logrotate moved it).
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event: time, level, fields, message.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
            file: PathBuf::new(),
        }
    }
}

/// `[metrics]`: the Prometheus endpoint `/metrics` on the HTTP listeners.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    pub enable: bool,
    /// Address blocks that may scrape without credentials; from anywhere
    /// else `/metrics` asks for an administrator's HTTP Basic credentials.
    pub allowed_networks: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enable: true,
            allowed_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// Memory held for clients' data across all sessions (README: Security).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    /// Bytes of message data all sessions may hold in memory at once
    /// (SMTP messages being received or processed, IMAP literals).
    pub memory_in_flight: usize,
    /// Seconds a message waits for room before a temporary error.
    pub memory_wait: u64,
    /// Bytes of a message kept in memory while it arrives; the rest is
    /// spooled to a temporary file until the message is complete.
    pub spool_above: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            memory_in_flight: 64 * 1024 * 1024,
            memory_wait: 30,
            spool_above: 256 * 1024,
        }
    }
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter()
        .map(|a| a.parse().expect("valid address"))
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            listeners: Listeners::default(),
            tls: Tls::default(),
            store: StoreConfig::default(),
            blob: BlobConfig::default(),
            search: SearchConfig::default(),
            smtp: SmtpConfig::default(),
            imap: ImapConfig::default(),
            pop3: Pop3Config::default(),
            auth: AuthConfig::default(),
            passwords: PasswordsConfig::default(),
            directory: DirectoryConfig::default(),
            queue: QueueConfig::default(),
            dkim: DkimConfig::default(),
            jmap: JmapConfig::default(),
            sieve: SieveConfig::default(),
            managesieve: ManageSieveConfig::default(),
            greylist: GreylistConfig::default(),
            spam: SpamConfig::default(),
            mail_auth: MailAuthConfig::default(),
            mta_sts: MtaStsConfig::default(),
            proxy: ProxyConfig::default(),
            resolver: ResolverConfig::default(),
            shutdown: ShutdownConfig::default(),
            limits: LimitsConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            smtp: addrs(&["127.0.0.1:2525"]),
            submission: addrs(&["127.0.0.1:2587"]),
            submissions: addrs(&["127.0.0.1:2465"]),
            lmtp: vec![],
            lmtp_socket: PathBuf::new(),
            imap: addrs(&["127.0.0.1:2143"]),
            imaps: addrs(&["127.0.0.1:2993"]),
            pop3: addrs(&["127.0.0.1:2110"]),
            pop3s: addrs(&["127.0.0.1:2995"]),
            managesieve: addrs(&["127.0.0.1:4190"]),
            http: addrs(&["127.0.0.1:8080"]),
            https: vec![],
            http_redirect: vec![],
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            certificate: "tls/cert.pem".into(),
            private_key: "tls/key.pem".into(),
            extra_ca: PathBuf::new(),
            sni: Vec::new(),
            acme: AcmeConfig::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreType::Rocksdb,
            path: "store".into(),
        }
    }
}

impl Default for BlobConfig {
    fn default() -> Self {
        BlobConfig {
            path: "blobs".into(),
            inline_max: 65536,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            index: true,
            path: "fts".into(),
            defer_above: 100,
            max_defer: 120,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            max_line_length: 4096,
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            max_messages_per_connection: 1000,
            max_received_headers: 50,
            timeout_command: 300,
            timeout_data: 600,
            auth_without_tls: false,
            max_connections_per_ip: 20,
            max_connection_rate_per_ip: 600,
            limit_exempt: vec!["127.0.0.0/8".into(), "::1/128".into()],
            bare_newlines: BareNewlines::Reject,
            check_from_header: true,
            require_tls_from: Vec::new(),
            milter: Vec::new(),
            hook: Vec::new(),
        }
    }
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            max_line_length: 65536,
            max_literal_size: 50 * 1024 * 1024,
            timeout_idle: 1800,
            auth_without_tls: false,
            literal_plus: true,
            unauthenticate: true,
            accept_8bit_headers: false,
            max_literal_size_unauthenticated: 8192,
            max_connections_per_ip: 100,
            max_connection_rate_per_ip: 600,
            limit_exempt: Vec::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_failures_per_ip: 20,
            max_failures_per_account: 10,
            max_failures_per_account_ip: 5,
            failure_window: 300,
            max_delay: 60,
            remember_address: 2_592_000,
            cache_ttl: 300,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: 16,
            retry: vec![60, 300, 900, 1800, 3600, 7200, 14400],
            delay_notify: 14400,
            expire: 5 * 86400,
            relay: String::new(),
            relay_tls: TlsMode::Opportunistic,
            relay_user: String::new(),
            relay_secret: String::new(),
            tls: TlsMode::Opportunistic,
            mx_port: 25,
            mta_sts: true,
            mta_sts_port: 443,
            routes: Default::default(),
            dane: true,
            connect_timeout: 30,
            command_timeout: 300,
        }
    }
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig {
            sign: true,
            headers: [
                "From",
                "To",
                "Cc",
                "Subject",
                "Date",
                "Message-ID",
                "Reply-To",
                "In-Reply-To",
                "References",
                "MIME-Version",
                "Content-Type",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            arc_seal: true,
            expire_after: 7 * 86400,
        }
    }
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            nameservers: vec![],
            timeout: 5,
            negative_ttl: 30,
            trust_anchors: String::new(),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_period: 30 }
    }
}

/// The commented default configuration written to a new data directory.
pub const DEFAULT_TEMPLATE: &str = include_str!("default.toml");

/// A configuration error, located in its file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration error in {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.into(),
            line: None,
            key: None,
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            ConfigError {
                file: path.into(),
                line,
                key,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate().map_err(|(key, message)| ConfigError {
            file: path.into(),
            line: find_key_line(text, key),
            key: Some(key.to_string()),
            message,
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(("hostname", "must be a host name without spaces".into()));
        }
        let positive = [
            ("smtp.max-line-length", self.smtp.max_line_length),
            ("smtp.max-message-size", self.smtp.max_message_size),
            ("smtp.max-recipients", self.smtp.max_recipients),
            ("smtp.max-errors", self.smtp.max_errors),
            ("imap.max-line-length", self.imap.max_line_length),
            ("sieve.max-script-size", self.sieve.max_script_size),
            ("sieve.max-instructions", self.sieve.max_instructions),
            (
                "managesieve.max-line-length",
                self.managesieve.max_line_length,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err((key, "must be greater than zero".into()));
            }
        }
        if let Some(id) = self
            .spam
            .rules
            .keys()
            .find(|id| crate::spam::rules::find(id).is_none())
        {
            return Err((
                "spam.rules",
                format!("`{id}` is not a spam rule: `petrel spam rules` lists them"),
            ));
        }
        for z in &self.spam.dnsbl {
            if z.zone.trim_end_matches('.').is_empty() {
                return Err(("spam.dnsbl", "a zone needs its `zone` name".into()));
            }
            if let Some(a) = z
                .answers
                .keys()
                .find(|a| a.parse::<std::net::Ipv4Addr>().is_err())
            {
                return Err((
                    "spam.dnsbl",
                    format!("answer `{a}` of zone {} is not an IPv4 address", z.zone),
                ));
            }
        }
        filters::check(&self.smtp.milter, &self.smtp.hook)?;
        for (i, f) in self.spam.feed.iter().enumerate() {
            let named = !f.name.is_empty()
                && f.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !named || self.spam.feed[..i].iter().any(|g| g.name == f.name) {
                return Err((
                    "spam.feed",
                    format!(
                        "feed name `{}` must be letters, digits, - or _, and unique",
                        f.name
                    ),
                ));
            }
            if !(f.url.starts_with("http://") || f.url.starts_with("https://")) {
                return Err((
                    "spam.feed",
                    format!(
                        "feed `{}`: url `{}` is not http:// or https://",
                        f.name, f.url
                    ),
                ));
            }
            if f.refresh < 60 || f.timeout == 0 {
                return Err((
                    "spam.feed",
                    format!(
                        "feed `{}`: refresh must be at least 60 seconds and timeout more than 0",
                        f.name
                    ),
                ));
            }
        }
        let b = &self.spam.bayes;
        if b.auto_learn_ham.is_nan()
            || b.auto_learn_spam.is_nan()
            || b.auto_learn_ham >= b.auto_learn_spam
        {
            return Err((
                "spam.bayes.auto-learn-ham",
                "must be lower than spam.bayes.auto-learn-spam".into(),
            ));
        }
        let r = &self.spam.reputation;
        if r.half_life == 0 {
            return Err((
                "spam.reputation.half-life",
                "must be greater than zero".into(),
            ));
        }
        if !r.weight.is_finite() || !r.max_score.is_finite() || r.max_score < 0.0 {
            return Err((
                "spam.reputation.max-score",
                "weight must be a number and max-score zero or more".into(),
            ));
        }
        if let Some(b) = r
            .exempt
            .iter()
            .find(|b| b.parse::<crate::net::limit::Cidr>().is_err())
        {
            return Err((
                "spam.reputation.exempt",
                format!("`{b}` is not an address block like 192.0.2.0/24"),
            ));
        }
        if self.spam.dnsbl_timeout == 0 {
            return Err(("spam.dnsbl-timeout", "must be greater than zero".into()));
        }
        if self.spam.junk_score.is_nan() || self.spam.junk_score <= 0.0 {
            return Err(("spam.junk-score", "must be greater than zero".into()));
        }
        if self.spam.reject_score != 0.0 && self.spam.reject_score < self.spam.junk_score {
            return Err((
                "spam.reject-score",
                "must be 0 (never refuse) or at least spam.junk-score".into(),
            ));
        }
        // RFC 5804 §1.2: an inactivity timeout is 30 minutes or more.
        if self.managesieve.timeout_idle < 1800 {
            return Err((
                "managesieve.timeout-idle",
                "must be at least 1800 seconds (RFC 5804 §1.2)".into(),
            ));
        }
        // RFC 6131 §2: a site's longest vacation period is a day or more.
        if self.sieve.max_tracking < 86400 {
            return Err((
                "sieve.max-tracking",
                "must be at least 86400 seconds (RFC 6131 §2)".into(),
            ));
        }
        if self.passwords.min_score > 4 {
            return Err((
                "passwords.min-score",
                "must be 0 to 4 (zxcvbn's scale)".into(),
            ));
        }
        if !["off", "none", "testing", "enforce"].contains(&self.mta_sts.mode.as_str()) {
            return Err((
                "mta-sts.mode",
                "must be off, none, testing or enforce".into(),
            ));
        }
        // RFC 8461 §3.2: policy mx patterns are A-labels.
        if let Some(m) = self.mta_sts.mx.iter().find(|m| !m.is_ascii()) {
            return Err((
                "mta-sts.mx",
                format!("`{m}` is not ASCII: write internationalised names as A-labels (xn--…)"),
            ));
        }
        if self.mta_sts.max_age > 31_557_600 {
            return Err((
                "mta-sts.max-age",
                "must be at most 31557600 seconds (RFC 8461)".into(),
            ));
        }
        for l in &self.proxy.listeners {
            if !["smtp", "submission", "submissions", "lmtp", "imap", "imaps"].contains(&l.as_str())
            {
                return Err((
                    "proxy.listeners",
                    format!("`{l}` is not a listener that takes PROXY headers"),
                ));
            }
        }
        let d = &self.directory.recipient_delimiter;
        if d.len() > 4
            || d.chars()
                .any(|c| c == '@' || c.is_whitespace() || c.is_control())
        {
            return Err((
                "directory.recipient-delimiter",
                "at most 4 characters, without `@` or spaces (\"+\" is usual, \"\" for none)"
                    .into(),
            ));
        }
        for c in &self.greylist.exempt_networks {
            if let Err(e) = c.parse::<crate::net::limit::Cidr>() {
                return Err(("greylist.exempt-networks", e));
            }
        }
        if self.greylist.delay >= self.greylist.retry_window {
            return Err((
                "greylist.retry-window",
                "must be longer than greylist.delay, or no retry could pass".into(),
            ));
        }
        for c in &self.proxy.trusted_networks {
            if let Err(e) = c.parse::<crate::net::limit::Cidr>() {
                return Err(("proxy.trusted-networks", e));
            }
        }
        if !self.proxy.listeners.is_empty() && self.proxy.trusted_networks.is_empty() {
            return Err((
                "proxy.trusted-networks",
                "list the proxies' addresses when proxy.listeners is set".into(),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err((
                "log.level",
                format!("not a level or filter ({e}): use error, warn, info, debug or trace"),
            ));
        }
        if !["http-01", "tls-alpn-01"].contains(&self.tls.acme.challenge.as_str()) {
            return Err((
                "tls.acme.challenge",
                "must be http-01 or tls-alpn-01".into(),
            ));
        }
        let acme = &self.tls.acme;
        if !acme.directory.is_empty() && !acme.directory.starts_with("https://") {
            return Err((
                "tls.acme.directory",
                "must be an https:// URL (RFC 8555 §6.1)".into(),
            ));
        }
        // RFC 8555 §7.3: mailto URLs with one address and no header fields.
        if let Some(c) = acme.contact.iter().find(|c| {
            let Some(addr) = c.strip_prefix("mailto:") else {
                return true;
            };
            addr.contains(['?', ',']) || addr.matches('@').count() != 1
        }) {
            return Err((
                "tls.acme.contact",
                format!("`{c}`: write each contact as mailto:someone@example.org (one address, no ?fields)"),
            ));
        }
        for c in &self.metrics.allowed_networks {
            if let Err(e) = c.parse::<crate::net::limit::Cidr>() {
                return Err(("metrics.allowed-networks", e));
            }
        }
        for c in &self.smtp.limit_exempt {
            if let Err(e) = c.parse::<crate::net::limit::Cidr>() {
                return Err(("smtp.limit-exempt", e));
            }
        }
        for c in &self.smtp.require_tls_from {
            if let Err(e) = c.parse::<crate::net::limit::Cidr>() {
                return Err(("smtp.require-tls-from", e));
            }
        }
        let j = &self.jmap;
        for (key, v) in [
            ("jmap.max-size-request", j.max_size_request),
            ("jmap.max-calls-in-request", j.max_calls_in_request),
            ("jmap.max-objects-in-get", j.max_objects_in_get),
            ("jmap.max-objects-in-set", j.max_objects_in_set),
            ("jmap.max-concurrent-requests", j.max_concurrent_requests),
            ("jmap.max-size-upload", j.max_size_upload),
            ("jmap.max-concurrent-upload", j.max_concurrent_upload),
            ("jmap.max-push-subscriptions", j.max_push_subscriptions),
        ] {
            if v == 0 {
                return Err((key, "must be greater than zero".into()));
            }
        }
        // RFC 8620 §6: room for at least the largest single upload.
        if j.upload_quota < j.max_size_upload {
            return Err((
                "jmap.upload-quota",
                format!(
                    "must be at least jmap.max-size-upload ({})",
                    j.max_size_upload
                ),
            ));
        }
        if self.queue.concurrency == 0 {
            return Err(("queue.concurrency", "must be greater than zero".into()));
        }
        if self.queue.retry.is_empty() || self.queue.retry.contains(&0) {
            return Err((
                "queue.retry",
                "must list at least one interval, each above zero seconds".into(),
            ));
        }
        if !self.queue.relay.is_empty() && !self.queue.relay.contains(':') {
            return Err(("queue.relay", "must be \"host:port\"".into()));
        }
        if self.queue.tls == TlsMode::Implicit {
            return Err((
                "queue.tls",
                "MX hosts take STARTTLS, not implicit TLS; use relay-tls for a smarthost".into(),
            ));
        }
        let m = &self.mail_auth;
        for (key, mode, allowed) in [
            (
                "mail-auth.spf",
                m.spf,
                &[CheckMode::Off, CheckMode::Verify, CheckMode::Strict][..],
            ),
            (
                "mail-auth.dkim",
                m.dkim,
                &[CheckMode::Off, CheckMode::Verify][..],
            ),
            (
                "mail-auth.arc",
                m.arc,
                &[CheckMode::Off, CheckMode::Verify][..],
            ),
            (
                "mail-auth.dmarc",
                m.dmarc,
                &[CheckMode::Off, CheckMode::Verify, CheckMode::Enforce][..],
            ),
            (
                "mail-auth.iprev",
                m.iprev,
                &[CheckMode::Off, CheckMode::Verify][..],
            ),
        ] {
            if !allowed.contains(&mode) {
                let names: Vec<String> = allowed
                    .iter()
                    .map(|a| format!("{a:?}").to_lowercase())
                    .collect();
                return Err((key, format!("must be one of: {}", names.join(", "))));
            }
        }
        if self
            .dkim
            .headers
            .iter()
            .all(|h| !h.eq_ignore_ascii_case("From"))
        {
            return Err(("dkim.headers", "must include From (RFC 6376 §5.4)".into()));
        }
        if self.smtp.max_line_length < 512 {
            return Err((
                "smtp.max-line-length",
                "must be at least 512 (RFC 5321 §4.5.3.1.4)".into(),
            ));
        }
        Ok(())
    }

    /// Resolves a path from the config relative to the data directory.
    pub fn resolve(data_dir: &Path, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            data_dir.join(p)
        }
    }
}

/// Line number (1-based) and the key written on the line holding byte `pos`.
fn locate(text: &str, pos: usize) -> (Option<usize>, Option<String>) {
    let pos = pos.min(text.len());
    let line_no = text[..pos].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty());
    (Some(line_no), key)
}

/// Line of `section.key` (or a top-level key) in the text, if written there.
fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = match dotted.rsplit_once('.') {
        Some((s, k)) => (Some(s), k),
        None => (None, dotted),
    };
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = Some(t.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            continue;
        }
        if let Some((k, _)) = t.split_once('=') {
            if k.trim() == key && current.as_deref() == section {
                return Some(i + 1);
            }
        }
    }
    // A table or array of tables (`[[spam.feed]]`): its first header.
    text.lines()
        .position(|l| {
            let t = l.trim();
            t.starts_with('[') && t.trim_matches(|c| c == '[' || c == ']').trim() == dotted
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spam_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        for (text, line, key, says) in [
            (
                "[spam]\nrules = { NO_SUCH = 1.0 }\n",
                2,
                "spam.rules",
                "`NO_SUCH` is not a spam rule",
            ),
            (
                "[spam]\njunk-score = 0\n",
                2,
                "spam.junk-score",
                "greater than zero",
            ),
            (
                "[spam]\njunk-score = 5.0\nreject-score = 4.0\n",
                3,
                "spam.reject-score",
                "at least spam.junk-score",
            ),
            (
                "[[spam.feed]]\nname = \"open phish\"\nurl = \"https://openphish.com/feed.txt\"\n",
                1,
                "spam.feed",
                "must be letters, digits",
            ),
            (
                "[[spam.feed]]\nname = \"x\"\nurl = \"file:///etc/passwd\"\n",
                1,
                "spam.feed",
                "is not http:// or https://",
            ),
            (
                "[spam.reputation]\nhalf-life = 0\n",
                2,
                "spam.reputation.half-life",
                "greater than zero",
            ),
            (
                "[spam.reputation]\nexempt = [\"10.0.0.0/33\"]\n",
                2,
                "spam.reputation.exempt",
                "is not an address block",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = Config::load(&p).unwrap_err();
            assert_eq!(e.line, Some(line), "{e}");
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        // External filters: where they are and how long they may take.
        for (text, says) in [
            (
                "[[smtp.milter]]\naddress = \"nowhere\"\n",
                "neither host:port nor unix:/absolute/path",
            ),
            (
                "[[smtp.milter]]\naddress = \"unix:relative.sock\"\n",
                "neither host:port",
            ),
            (
                "[[smtp.milter]]\naddress = \"127.0.0.1:11332\"\ntimeout = 0\n",
                "greater than zero",
            ),
            (
                "[[smtp.milter]]\naddress = \"127.0.0.1:11332\"\njunk-header = \"X-Spam\"\n",
                "is not \"Name: value\"",
            ),
            (
                "[[smtp.hook]]\nurl = \"ftp://example.org/\"\n",
                "not an http:// or https:// URL",
            ),
            (
                "[[smtp.hook]]\nurl = \"http://h/\"\ntimeout = 0\n",
                "greater than zero",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = Config::load(&p).unwrap_err();
            assert!(e.message.contains(says), "{text}: {e}");
            assert!(e.key.as_deref().unwrap_or("").starts_with("smtp."), "{e}");
        }
        std::fs::write(
            &p,
            "[[smtp.milter]]\naddress = \"unix:/run/m.sock\"\non-failure = \"accept\"\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.smtp.milter[0].on_failure, OnFailure::Accept);
        assert_eq!(c.smtp.milter[0].ports, [FilterPort::Mta]);
        assert_eq!(c.smtp.milter[0].timeout, 30);
        std::fs::write(&p, "[spam]\nrules = { BAYES_99 = 4.0, HTML_ONLY = 0 }\n").unwrap();
        assert_eq!(Config::load(&p).unwrap().spam.rules["BAYES_99"], 4.0);
    }

    #[test]
    fn template_matches_defaults() {
        let parsed = Config::parse(DEFAULT_TEMPLATE, Path::new("default.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn rfc_minimum_timeouts_and_periods_are_enforced() {
        let e = Config::parse("[managesieve]\ntimeout-idle = 60\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("managesieve.timeout-idle"), "{e}");
        assert!(Config::parse("[managesieve]\ntimeout-idle = 1800\n", Path::new("c.toml")).is_ok());
        let e = Config::parse("[sieve]\nmax-tracking = 3600\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sieve.max-tracking"), "{e}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(
            Config::parse("", Path::new("x")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_is_located() {
        let e = Config::parse(
            "hostname = \"a\"\n[smtp]\nmax-bogus = 3\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("max-bogus"));
        assert!(e.to_string().contains("c.toml"), "{e}");
    }

    #[test]
    fn wrong_type_is_located() {
        let e =
            Config::parse("[smtp]\nmax-recipients = \"many\"\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.key.as_deref(), Some("max-recipients"));
    }

    #[test]
    fn validation_error_names_key_and_line() {
        let e =
            Config::parse("[smtp]\n\nmax-line-length = 100\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("smtp.max-line-length"));
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn upload_quota_holds_the_largest_upload() {
        let e = Config::parse(
            "[jmap]\nmax-size-upload = 1000\nupload-quota = 999\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("jmap.upload-quota"));
        assert!(e.to_string().contains("at least"), "{e}");
        Config::parse(
            "[jmap]\nmax-size-upload = 1000\nupload-quota = 1000\n",
            Path::new("c.toml"),
        )
        .unwrap();
    }

    #[test]
    fn bad_listener_address() {
        let e =
            Config::parse("[listeners]\nsmtp = [\"nowhere\"]\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn mta_sts_mx_must_be_a_labels() {
        let e = Config::parse(
            "[mta-sts]\nmx = [\"mx.bücher.example\"]\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("mta-sts.mx"));
        Config::parse(
            "[mta-sts]\nmx = [\"mx.xn--bcher-kva.example\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
    }

    #[test]
    fn acme_contacts_and_directory_are_checked() {
        let bad = |extra: &str| {
            Config::parse(&format!("[tls.acme]\n{extra}\n"), Path::new("c.toml"))
                .unwrap_err()
                .key
        };
        for c in [
            "postmaster@example.org",
            "mailto:a@example.org?subject=x",
            "mailto:a@example.org,b@example.org",
            "mailto:nobody",
        ] {
            assert_eq!(
                bad(&format!("contact = [\"{c}\"]")).as_deref(),
                Some("tls.acme.contact"),
                "{c}"
            );
        }
        assert_eq!(
            bad("directory = \"http://ca.example/dir\"").as_deref(),
            Some("tls.acme.directory")
        );
        Config::parse("[tls.acme]\ncontact = [\"mailto:postmaster@example.org\"]\ndirectory = \"https://ca.example/dir\"\n", Path::new("c.toml")).unwrap();
    }
}
