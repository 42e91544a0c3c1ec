//! The command line: `serve`, `init`, and administration commands that talk
//! to a running server's management API.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "petrel", version, about = "Petrel mail server")]
pub struct Cli {
    /// Management API of a running server.
    #[arg(long, env = "PETREL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// USER:PASS of an administrator account.
    #[arg(long, env = "PETREL_CREDENTIALS", hide_env_values = true)]
    pub credentials: Option<String>,
    /// PEM certificates to trust for an https:// --url (a private CA, or
    /// the server's self-signed certificate); default: the system's roots.
    #[arg(long, env = "PETREL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (creates the data directory on first start).
    Serve {
        /// The data directory: configuration, store, blobs, index, TLS files.
        #[arg(long, default_value = "petrel-data")]
        data_dir: PathBuf,
        /// Use this configuration file instead of DATA_DIR/config.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a production configuration (standard ports, all interfaces).
    Init {
        /// The server's fully qualified name (MX target, certificate, HELO).
        #[arg(long)]
        hostname: String,
        /// Where to write config.toml and petrel.service.
        #[arg(long, default_value = "petrel-data")]
        data_dir: PathBuf,
    },
    /// Offline administration of a stopped server's data directory.
    Admin {
        #[command(subcommand)]
        action: AdminCmd,
    },
    /// Manage domains.
    Domain {
        #[command(subcommand)]
        action: DomainCmd,
    },
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        action: AccountCmd,
    },
    /// Manage groups (mailing lists that expand to their members).
    Group {
        #[command(subcommand)]
        action: GroupCmd,
    },
    /// Inspect and manage the outbound queue.
    Queue {
        #[command(subcommand)]
        action: QueueCmd,
    },
    /// DKIM signing keys and the DNS records to publish.
    Dkim {
        #[command(subcommand)]
        action: DkimCmd,
    },
    /// The full-text search index.
    Search {
        #[command(subcommand)]
        action: SearchCmd,
    },
    /// Accounts' Sieve filters (RFC 5228), run when mail is delivered.
    Sieve {
        #[command(subcommand)]
        action: SieveCmd,
    },
    /// Version, uptime, listeners, queue and index of the running server.
    Status,
    /// The DNS records a domain needs, and whether they are published.
    Dns {
        #[command(subcommand)]
        action: DnsCmd,
    },
    /// Failed-login lockouts: list and clear them.
    Security {
        #[command(subcommand)]
        action: SecurityCmd,
    },
    /// The spam filter: learn, classify, rules (and evaluate offline).
    Spam {
        #[command(subcommand)]
        action: crate::spam::cli::SpamCmd,
    },
}

#[derive(Subcommand)]
pub enum DnsCmd {
    /// Print every record to publish for DOMAIN (zone-file lines).
    Records { domain: String },
    /// Look up each record through the server's resolver and say OK,
    /// WRONG or MISSING, with the record to publish. Exits 1 when any
    /// is wrong or missing.
    Check { domain: String },
}

#[derive(Subcommand)]
pub enum SecurityCmd {
    /// The login throttles in force: which account or network, how many
    /// failures, until when.
    Lockouts,
    /// Forget the failed logins of an address (IP; its /64 for IPv6) or
    /// of a login name, lifting its lockout.
    Unlock {
        /// An IP address or a login (account address).
        target: String,
    },
}

#[derive(Subcommand)]
pub enum SieveCmd {
    /// The account's scripts; the active one is marked.
    List { address: String },
    /// Store a script from FILE ("-": standard input), replacing one of
    /// the same name; it must compile.
    Put {
        address: String,
        name: String,
        file: String,
        /// Make it the active script too.
        #[arg(long)]
        activate: bool,
    },
    /// Print a script.
    Get { address: String, name: String },
    /// Make a script the one that runs.
    Activate { address: String, name: String },
    /// Run no script for the account.
    Deactivate { address: String },
    /// Delete a script (not the active one).
    Delete { address: String, name: String },
    Rename {
        address: String,
        name: String,
        to: String,
    },
    /// Compile FILE ("-": standard input) and report errors by line.
    Check { file: String },
    /// The administrator's scripts, run at SMTP stages ([sieve.stages]
    /// in config.toml) or included by users' scripts (`include :global`).
    Global {
        #[command(subcommand)]
        action: GlobalSieveCmd,
    },
}

#[derive(Subcommand)]
pub enum GlobalSieveCmd {
    /// Every global script, with the stage that runs it.
    List,
    /// Store a script from FILE ("-": standard input), replacing one of
    /// the same name; it must compile as an administrator's script.
    Put { name: String, file: String },
    /// Print a script.
    Get { name: String },
    /// Delete a script no stage runs.
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum SearchCmd {
    /// Whether the index is on and how many changes wait for it.
    Status,
}

#[derive(Subcommand)]
pub enum QueueCmd {
    /// Messages waiting for delivery.
    List,
    /// One message with the state of each recipient.
    Show { id: u64 },
    /// Try again now.
    Retry { id: u64 },
    /// Remove without delivering or bouncing.
    Cancel { id: u64 },
}

#[derive(Subcommand)]
pub enum DkimCmd {
    /// Generate a key for DOMAIN and print the DNS records to publish.
    Create {
        domain: String,
        /// rsa (2048 bits) or ed25519
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        #[arg(long)]
        selector: Option<String>,
        /// Replace an existing key.
        #[arg(long)]
        replace: bool,
    },
    /// Print the DNS records of DOMAIN's key.
    Show { domain: String },
    /// Stop signing for DOMAIN.
    Delete { domain: String },
}

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Host a domain: mail for its addresses is accepted here.
    Create { name: String },
    /// Stop hosting a domain (its accounts must be gone first).
    Delete { name: String },
    /// The hosted domains and their catch-all addresses.
    List,
    /// Send mail for unknown addresses of DOMAIN to ADDRESS (omit to turn off).
    CatchAll {
        name: String,
        address: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Give the `admin` account a new password (or create it), with the
    /// server stopped: the way back in when the first password is lost.
    ResetPassword {
        #[arg(long, default_value = "petrel-data")]
        data_dir: PathBuf,
        /// The configuration file, if not DATA_DIR/config.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Read the new password from standard input (else one is made
        /// and printed).
        #[arg(long)]
        secret_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum AccountCmd {
    /// Create a mail account (or, with --admin, an administrator).
    Create {
        address: String,
        /// The password (it shows in the shell's history and `ps`:
        /// prefer --secret-stdin).
        #[arg(long, required_unless_present = "secret_stdin")]
        secret: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "secret")]
        secret_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Quota in bytes (0 = unlimited).
        #[arg(long)]
        quota: Option<u64>,
        /// Quota in messages (0 = unlimited).
        #[arg(long)]
        quota_messages: Option<u64>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Delete an account and all of its mail.
    Delete { address: String },
    /// One account as JSON: quota, usage, aliases, role.
    Show { address: String },
    /// Every account: address, role, state, name, aliases.
    List,
    /// Change password, name, quota, role, or enable/disable.
    Update {
        address: String,
        /// A new password (prefer --secret-stdin).
        #[arg(long)]
        secret: Option<String>,
        /// Read the new password from the first line of standard input.
        #[arg(long, conflicts_with = "secret")]
        secret_stdin: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        quota: Option<u64>,
        /// Quota in messages (0 = unlimited).
        #[arg(long)]
        quota_messages: Option<u64>,
        /// admin or user.
        #[arg(long, value_parser = ["admin", "user"])]
        role: Option<String>,
        /// Refuse logins and end the account's open sessions (mail is
        /// still accepted and kept).
        #[arg(long, conflicts_with = "enabled")]
        disabled: bool,
        /// Allow logins again.
        #[arg(long)]
        enabled: bool,
    },
    /// Deliver mail for ALIAS to the account too.
    AddAlias { address: String, alias: String },
    /// Remove an alias of the account.
    RemoveAlias { address: String, alias: String },
    /// API tokens (JMAP `Authorization: Bearer`) of the account.
    Token {
        #[command(subcommand)]
        action: TokenCmd,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Make a token; it is printed once and cannot be shown again.
    Create {
        address: String,
        /// What the token is for (a device, a script).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// The account's tokens (ids, names, creation times).
    List { address: String },
    /// Revoke a token: requests with it fail at once.
    Revoke { address: String, id: String },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Create a group address; mail to it goes to every member.
    Create {
        address: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete a group (its members' accounts stay).
    Delete { address: String },
    /// Add an address (local or not) to a group.
    AddMember { group: String, address: String },
    /// Remove an address from a group.
    RemoveMember { group: String, address: String },
    /// Every group with its members.
    List,
}

pub(crate) struct Api {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

/// The password given with --secret, or the first line of standard input
/// with --secret-stdin (without its line end).
fn secret_from(given: Option<&str>, stdin: bool) -> anyhow::Result<String> {
    if !stdin {
        return given
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("give the password with --secret or --secret-stdin"));
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        anyhow::bail!("--secret-stdin: standard input held no password (one line expected)");
    }
    Ok(secret)
}

pub(crate) fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    pub(crate) fn new(
        url: &str,
        credentials: Option<&str>,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Api> {
        let creds = credentials.ok_or_else(|| {
            anyhow::anyhow!(
                "no credentials: pass --credentials admin:PASSWORD or set PETREL_CREDENTIALS"
            )
        })?;
        if !creds.contains(':') {
            anyhow::bail!("credentials must be USER:PASSWORD");
        }
        let parsed = url.parse::<ureq::http::Uri>().ok();
        match parsed.as_ref().and_then(|u| u.scheme_str()) {
            Some("http" | "https") if parsed.as_ref().is_some_and(|u| u.host().is_some()) => {}
            _ => anyhow::bail!(
                "`{url}` is not the address of the management API: give --url http://HOST:PORT (the server's `http` listener, http://127.0.0.1:8080 by default) or https://HOST:PORT (its `https` listener)"
            ),
        }
        // https: the server's certificate is checked against the system's
        // roots, or only against --ca-file when given.
        use ureq::tls::{RootCerts, TlsConfig};
        let roots = match ca_file {
            None => RootCerts::PlatformVerifier,
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
                let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    anyhow::bail!("--ca-file {}: no PEM certificate in it", path.display());
                }
                RootCerts::Specific(std::sync::Arc::new(certs))
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Ok(Api {
            base: url.trim_end_matches('/').to_string(),
            auth: format!(
                "Basic {}",
                crate::directory::sasl::b64_encode(creds.as_bytes())
            ),
            agent,
        })
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .send_json(b),
            ("PATCH", Some(b)) => self
                .agent
                .patch(&url)
                .header("Authorization", &self.auth)
                .send_json(b),
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("Authorization", &self.auth)
                .send_json(b),
            _ => anyhow::bail!("internal: bad request method"),
        };
        let mut res = res.map_err(|e| {
            let base = &self.base;
            match e {
                ureq::Error::Io(ref io)
                    if io.to_string().contains("corrupt message") =>
                {
                    anyhow::anyhow!(
                        "{base} does not speak TLS: https:// needs the server's `https` listener (http:// is for the `http` one)"
                    )
                }
                ureq::Error::Io(ref io) if io.get_ref().is_some() => anyhow::anyhow!(
                    "cannot talk to {base}: {io}; for a self-signed or private certificate pass --ca-file with its CA (or the server's tls/cert.pem)"
                ),
                ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                    anyhow::anyhow!(
                        "nothing answers at {base}: is the server running, and is --url its `http` (or `https`) listener? (petrel serve prints `listening http ...`)"
                    )
                }
                ureq::Error::Timeout(_) => anyhow::anyhow!("{base} did not answer in time"),
                ureq::Error::Protocol(_) | ureq::Error::Http(_) | ureq::Error::TlsRequired => {
                    anyhow::anyhow!(
                        "{base} does not answer in HTTP: --url must name the server's `http` listener, not its SMTP, IMAP or POP3 port"
                    )
                }
                ureq::Error::Rustls(e) => anyhow::anyhow!(
                    "TLS with {base} failed: {e}; for a self-signed or private certificate pass --ca-file with its CA (or the server's tls/cert.pem)"
                ),
                e => anyhow::anyhow!("cannot talk to the Petrel server at {base}: {e}"),
            }
        })?;
        let status = res.status();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            Ok(value)
        } else {
            let msg = value
                .get("error")
                .and_then(|e| e.as_str())
                .map(String::from)
                .unwrap_or_else(|| value.to_string());
            anyhow::bail!("{msg} (HTTP {})", status.as_u16())
        }
    }
}

fn print_accounts(v: &Value) {
    println!("ADDRESS\tROLE\tSTATE\tNAME\tALIASES");
    for a in v.as_array().into_iter().flatten() {
        let aliases = a["aliases"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}\t{aliases}",
            a["address"].as_str().unwrap_or(""),
            a["role"].as_str().unwrap_or(""),
            if a["enabled"].as_bool() == Some(false) {
                "DISABLED"
            } else {
                "enabled"
            },
            a["name"].as_str().unwrap_or(""),
        );
    }
}

fn print_records(v: &Value) {
    println!(
        "DKIM key for {} (selector {}, {}). Publish these DNS records:\n",
        v["domain"].as_str().unwrap_or(""),
        v["selector"].as_str().unwrap_or(""),
        v["algorithm"].as_str().unwrap_or("")
    );
    for r in v["records"].as_array().into_iter().flatten() {
        print_record(r);
    }
}

/// One record as a commented zone-file line.
fn print_record(r: &Value) {
    println!("; {}", r["purpose"].as_str().unwrap_or(""));
    let kind = r["type"].as_str().unwrap_or("");
    println!(
        "{}\tIN\t{kind}\t{}\n",
        r["name"].as_str().unwrap_or(""),
        zone_rdata(kind, r["value"].as_str().unwrap_or(""))
    );
}

/// `petrel dns check` output; returns how many are wrong or missing.
fn print_check(v: &Value) -> usize {
    let mut problems = 0;
    for f in v["findings"].as_array().into_iter().flatten() {
        let status = f["status"].as_str().unwrap_or("?");
        if matches!(status, "wrong" | "missing") {
            problems += 1;
        }
        println!(
            "{:<8}{:<16}{}",
            status.to_uppercase(),
            f["check"].as_str().unwrap_or(""),
            f["name"].as_str().unwrap_or("")
        );
        if let Some(found) = f["found"].as_str().filter(|s| !s.is_empty()) {
            println!("        found: {found}");
        }
        if let Some(d) = f["detail"].as_str().filter(|s| !s.is_empty()) {
            println!("        {d}");
        }
        for r in f["publish"].as_array().into_iter().flatten() {
            let kind = r["type"].as_str().unwrap_or("");
            println!(
                "        publish: {}\tIN\t{kind}\t{}",
                r["name"].as_str().unwrap_or(""),
                zone_rdata(kind, r["value"].as_str().unwrap_or(""))
            );
        }
    }
    problems
}

/// A record's data as a zone file writes it: TXT as quoted strings of at
/// most 255 bytes each (RFC 1035 §3.3.14; a long DKIM key is split, RFC
/// 6376 §3.6.2.2), other types as they are.
fn zone_rdata(kind: &str, value: &str) -> String {
    if kind != "TXT" {
        return value.to_string();
    }
    let mut parts = Vec::new();
    let mut rest = value;
    while !rest.is_empty() || parts.is_empty() {
        let mut end = rest.len().min(255);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        parts.push(format!(
            "\"{}\"",
            chunk.replace('\\', "\\\\").replace('"', "\\\"")
        ));
        rest = tail;
    }
    parts.join(" ")
}

fn print_status(v: &Value) {
    let secs = v["uptime"].as_u64().unwrap_or(0);
    println!(
        "Petrel {} on {}, up {}d {}h {}m {}s, store {}",
        v["version"].as_str().unwrap_or("?"),
        v["hostname"].as_str().unwrap_or("?"),
        secs / 86400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        v["store"].as_str().unwrap_or("?"),
    );
    println!("Listeners:");
    for l in v["listeners"].as_array().into_iter().flatten() {
        println!(
            "  {:<12} {}",
            l["protocol"].as_str().unwrap_or(""),
            l["address"].as_str().unwrap_or("")
        );
    }
    let q = &v["queue"];
    print!("Queue: {} message(s)", q["messages"]);
    if let Some(age) = q["oldest_age"].as_i64() {
        print!(", oldest {age} s");
    }
    match q["worker_idle"].as_i64() {
        Some(s) if s <= 90 => println!(", worker running"),
        Some(s) => println!(", WORKER STALLED ({s} s without a round)"),
        None => println!(", worker not started"),
    }
    match v["index"]["waiting"].as_u64() {
        Some(n) if v["index"]["enabled"] == true => {
            println!("Search index: on, {n} change(s) waiting")
        }
        _ => println!("Search index: off"),
    }
    println!("Lockouts: {}", v["lockouts"]);
    println!(
        "Metrics: {}",
        if v["metrics"] == true {
            "/metrics on the http listeners"
        } else {
            "off"
        }
    );
}

fn print_queue_entry(e: &Value) {
    let pending = e["recipients"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|r| r["status"]["state"] == "pending")
                .count()
        })
        .unwrap_or(0);
    println!(
        "{}\t{}\tfrom <{}>\t{} bytes\t{} pending\tattempts {}\tnext {}",
        e["id"],
        crate::core::rfc5322_date(e["created"].as_i64().unwrap_or(0)),
        e["from"].as_str().unwrap_or(""),
        e["size"],
        pending,
        e["attempts"],
        crate::core::rfc5322_date(e["next_attempt"].as_i64().unwrap_or(0)),
    );
}

/// Runs an administration command; returns the process exit code.
pub fn run_admin(cli: &Cli) -> anyhow::Result<()> {
    let api = Api::new(&cli.url, cli.credentials.as_deref(), cli.ca_file.as_deref())?;
    match &cli.command {
        Command::Domain { action } => match action {
            DomainCmd::Create { name } => {
                let d = api.call("POST", "/api/domains", Some(json!({ "name": name })))?;
                println!("Created domain {}", d["name"].as_str().unwrap_or(name));
            }
            DomainCmd::Delete { name } => {
                api.call("DELETE", &format!("/api/domains/{}", enc(name)), None)?;
                println!("Deleted domain {name}");
            }
            DomainCmd::List => {
                for d in api
                    .call("GET", "/api/domains", None)?
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    match d["catch_all"].as_str() {
                        Some(c) => println!("{}\tcatch-all: {c}", d["name"].as_str().unwrap_or("")),
                        None => println!("{}", d["name"].as_str().unwrap_or("")),
                    }
                }
            }
            DomainCmd::CatchAll { name, address } => {
                api.call(
                    "PATCH",
                    &format!("/api/domains/{}", enc(name)),
                    Some(json!({ "catch_all": address })),
                )?;
                match address {
                    Some(a) => println!("Mail for unknown addresses of {name} now goes to {a}"),
                    None => println!("Catch-all for {name} turned off"),
                }
            }
        },
        Command::Account { action } => match action {
            AccountCmd::Create {
                address,
                secret,
                secret_stdin,
                name,
                aliases,
                quota,
                quota_messages,
                admin,
            } => {
                let secret = secret_from(secret.as_deref(), *secret_stdin)?;
                let body = json!({
                    "address": address,
                    "secret": secret,
                    "name": name.clone().unwrap_or_default(),
                    "aliases": aliases,
                    "quota_bytes": quota.unwrap_or(0),
                    "quota_messages": quota_messages.unwrap_or(0),
                    "role": if *admin { "admin" } else { "user" },
                });
                let a = api.call("POST", "/api/accounts", Some(body))?;
                println!(
                    "Created account {}",
                    a["address"].as_str().unwrap_or(address)
                );
            }
            AccountCmd::Delete { address } => {
                api.call("DELETE", &format!("/api/accounts/{}", enc(address)), None)?;
                println!("Deleted account {address} and its mail");
            }
            AccountCmd::Show { address } => {
                let a = api.call("GET", &format!("/api/accounts/{}", enc(address)), None)?;
                println!("{}", serde_json::to_string_pretty(&a)?);
            }
            AccountCmd::List => print_accounts(&api.call("GET", "/api/accounts", None)?),
            AccountCmd::Update {
                address,
                secret,
                secret_stdin,
                name,
                quota,
                quota_messages,
                role,
                disabled,
                enabled,
            } => {
                let enabled = match (disabled, enabled) {
                    (true, _) => Some(false),
                    (_, true) => Some(true),
                    _ => None,
                };
                let secret = match (secret, secret_stdin) {
                    (None, false) => None,
                    (s, stdin) => Some(secret_from(s.as_deref(), *stdin)?),
                };
                let body = json!({ "secret": secret, "name": name, "quota_bytes": quota, "quota_messages": quota_messages, "role": role, "enabled": enabled });
                api.call(
                    "PATCH",
                    &format!("/api/accounts/{}", enc(address)),
                    Some(body),
                )?;
                println!("Updated account {address}");
            }
            AccountCmd::AddAlias { address, alias } => {
                api.call(
                    "POST",
                    &format!("/api/accounts/{}/aliases", enc(address)),
                    Some(json!({ "address": alias })),
                )?;
                println!("{alias} now delivers to {address}");
            }
            AccountCmd::RemoveAlias { address, alias } => {
                api.call(
                    "DELETE",
                    &format!("/api/accounts/{}/aliases/{}", enc(address), enc(alias)),
                    None,
                )?;
                println!("Removed alias {alias} of {address}");
            }
            AccountCmd::Token { action } => match action {
                TokenCmd::Create { address, name } => {
                    let v = api.call(
                        "POST",
                        &format!("/api/accounts/{}/tokens", enc(address)),
                        Some(json!({ "name": name })),
                    )?;
                    println!("{}", v["token"].as_str().unwrap_or_default());
                    eprintln!(
                        "Token {} for {address}: keep it now, it is not shown again (revoke: petrel account token revoke {address} {})",
                        v["id"].as_str().unwrap_or_default(),
                        v["id"].as_str().unwrap_or_default()
                    );
                }
                TokenCmd::List { address } => {
                    let v = api.call(
                        "GET",
                        &format!("/api/accounts/{}/tokens", enc(address)),
                        None,
                    )?;
                    for t in v.as_array().into_iter().flatten() {
                        println!(
                            "{}\t{}\t{}",
                            t["id"].as_str().unwrap_or_default(),
                            crate::core::rfc5322_date(t["created"].as_i64().unwrap_or(0)),
                            t["name"].as_str().unwrap_or_default()
                        );
                    }
                }
                TokenCmd::Revoke { address, id } => {
                    api.call(
                        "DELETE",
                        &format!("/api/accounts/{}/tokens/{}", enc(address), enc(id)),
                        None,
                    )?;
                    println!("Revoked token {id} of {address}");
                }
            },
        },
        Command::Group { action } => match action {
            GroupCmd::Create { address, name } => {
                api.call(
                    "POST",
                    "/api/groups",
                    Some(json!({ "address": address, "name": name.clone().unwrap_or_default() })),
                )?;
                println!("Created group {address}");
            }
            GroupCmd::Delete { address } => {
                api.call("DELETE", &format!("/api/groups/{}", enc(address)), None)?;
                println!("Deleted group {address}");
            }
            GroupCmd::AddMember { group, address } => {
                api.call(
                    "POST",
                    &format!("/api/groups/{}/members", enc(group)),
                    Some(json!({ "address": address })),
                )?;
                println!("Added {address} to {group}");
            }
            GroupCmd::RemoveMember { group, address } => {
                api.call(
                    "DELETE",
                    &format!("/api/groups/{}/members/{}", enc(group), enc(address)),
                    None,
                )?;
                println!("Removed {address} from {group}");
            }
            GroupCmd::List => {
                for g in api
                    .call("GET", "/api/groups", None)?
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let members = g["members"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    println!(
                        "{}\tmembers: {members}",
                        g["address"].as_str().unwrap_or("")
                    );
                }
            }
        },
        Command::Queue { action } => match action {
            QueueCmd::List => {
                let list = api.call("GET", "/api/queue", None)?;
                let entries = list.as_array().cloned().unwrap_or_default();
                if entries.is_empty() {
                    println!("The queue is empty.");
                }
                for e in &entries {
                    print_queue_entry(e);
                }
            }
            QueueCmd::Show { id } => {
                let e = api.call("GET", &format!("/api/queue/{id}"), None)?;
                print_queue_entry(&e);
                for r in e["recipients"].as_array().into_iter().flatten() {
                    let st = &r["status"];
                    let detail = st["reply"]
                        .as_str()
                        .or(r["last_error"].as_str())
                        .unwrap_or("");
                    println!(
                        "  <{}>\t{}\t{}",
                        r["address"].as_str().unwrap_or(""),
                        st["state"].as_str().unwrap_or(""),
                        detail
                    );
                }
            }
            QueueCmd::Retry { id } => {
                api.call("POST", &format!("/api/queue/{id}/retry"), Some(json!({})))?;
                println!("Message {id} will be retried now");
            }
            QueueCmd::Cancel { id } => {
                api.call("DELETE", &format!("/api/queue/{id}"), None)?;
                println!("Message {id} removed from the queue");
            }
        },
        Command::Status => print_status(&api.call("GET", "/api/status", None)?),
        Command::Dns {
            action: DnsCmd::Records { domain },
        } => {
            let v = api.call("GET", &format!("/api/dns/records/{}", enc(domain)), None)?;
            for r in v["records"].as_array().into_iter().flatten() {
                print_record(r);
            }
        }
        Command::Dns {
            action: DnsCmd::Check { domain },
        } => {
            let v = api.call("GET", &format!("/api/dns/check/{}", enc(domain)), None)?;
            let problems = print_check(&v);
            if problems > 0 {
                anyhow::bail!("{problems} record(s) of {domain} wrong or missing: publish the records shown above");
            }
        }
        Command::Security {
            action: SecurityCmd::Lockouts,
        } => {
            let list = api.call("GET", "/api/security/lockouts", None)?;
            let rows = list.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                println!("No lockouts in force.");
            }
            for (i, l) in rows.iter().enumerate() {
                if i == 0 {
                    println!("KIND\tLOGIN\tNETWORK\tFAILURES\tUNTIL");
                }
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    l["kind"].as_str().unwrap_or(""),
                    l["login"].as_str().unwrap_or("-"),
                    l["network"].as_str().unwrap_or("-"),
                    l["failures"],
                    crate::core::rfc5322_date(l["until"].as_i64().unwrap_or(0)),
                );
            }
        }
        Command::Security {
            action: SecurityCmd::Unlock { target },
        } => {
            let r = api.call(
                "POST",
                "/api/security/unlock",
                Some(json!({ "target": target })),
            )?;
            match r["cleared"].as_u64().unwrap_or(0) {
                0 => println!("Nothing was counted against {target}: no lockout to lift."),
                n => println!(
                    "Lifted the lockout of {target} ({n} record(s) of failed logins cleared)."
                ),
            }
        }
        Command::Sieve { action } => sieve_cmd(&api, action)?,
        Command::Search {
            action: SearchCmd::Status,
        } => {
            let st = api.call("GET", "/api/search", None)?;
            println!(
                "index: {}\nwaiting: {}",
                if st["index"].as_bool() == Some(true) {
                    "on"
                } else {
                    "off"
                },
                st["waiting"].as_u64().unwrap_or(0)
            );
        }
        Command::Dkim { action } => {
            match action {
                DkimCmd::Create {
                    domain,
                    algorithm,
                    selector,
                    replace,
                } => {
                    let v = api.call(
                    "POST",
                    &format!("/api/dkim/{}", enc(domain)),
                    Some(json!({ "algorithm": algorithm, "selector": selector, "replace": replace })),
                )?;
                    print_records(&v);
                }
                DkimCmd::Show { domain } => {
                    print_records(&api.call("GET", &format!("/api/dkim/{}", enc(domain)), None)?)
                }
                DkimCmd::Delete { domain } => {
                    api.call("DELETE", &format!("/api/dkim/{}", enc(domain)), None)?;
                    println!("Mail from {domain} is no longer signed");
                }
            }
        }
        Command::Serve { .. }
        | Command::Init { .. }
        | Command::Admin { .. }
        | Command::Spam { .. } => {
            unreachable!("handled by main")
        }
    }
    Ok(())
}

/// A script file, or standard input for "-".
fn read_script(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))
}

fn sieve_cmd(api: &Api, action: &SieveCmd) -> anyhow::Result<()> {
    let at = |address: &str, rest: &str| format!("/api/accounts/{}/sieve{rest}", enc(address));
    match action {
        SieveCmd::List { address } => {
            for s in api
                .call("GET", &at(address, ""), None)?
                .as_array()
                .into_iter()
                .flatten()
            {
                let mark = if s["active"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                };
                println!("{mark} {}", s["name"].as_str().unwrap_or_default());
            }
        }
        SieveCmd::Put {
            address,
            name,
            file,
            activate,
        } => {
            let text = read_script(file)?;
            api.call(
                "PUT",
                &at(address, &format!("/{}", enc(name))),
                Some(json!({ "text": text, "activate": activate })),
            )?;
            println!(
                "Stored {name} for {address}{}",
                if *activate { " (active)" } else { "" }
            );
        }
        SieveCmd::Get { address, name } => {
            let v = api.call("GET", &at(address, &format!("/{}", enc(name))), None)?;
            print!("{}", v["text"].as_str().unwrap_or_default());
        }
        SieveCmd::Activate { address, name } => {
            api.call(
                "PUT",
                &format!("/api/accounts/{}/sieve-active", enc(address)),
                Some(json!({ "name": name })),
            )?;
            println!("{name} is the active script of {address}");
        }
        SieveCmd::Deactivate { address } => {
            api.call(
                "PUT",
                &format!("/api/accounts/{}/sieve-active", enc(address)),
                Some(json!({ "name": null })),
            )?;
            println!("No script runs for {address}");
        }
        SieveCmd::Delete { address, name } => {
            api.call("DELETE", &at(address, &format!("/{}", enc(name))), None)?;
            println!("Deleted {name} of {address}");
        }
        SieveCmd::Rename { address, name, to } => {
            api.call(
                "POST",
                &at(address, &format!("/{}/rename", enc(name))),
                Some(json!({ "to": to })),
            )?;
            println!("Renamed {name} to {to}");
        }
        SieveCmd::Global { action } => global_sieve_cmd(api, action)?,
        SieveCmd::Check { file } => {
            api.call(
                "POST",
                "/api/sieve/check",
                Some(json!({ "text": read_script(file)? })),
            )?;
            println!("OK");
        }
    }
    Ok(())
}

fn global_sieve_cmd(api: &Api, action: &GlobalSieveCmd) -> anyhow::Result<()> {
    let at = |name: &str| format!("/api/sieve/global/{}", enc(name));
    match action {
        GlobalSieveCmd::List => {
            for s in api
                .call("GET", "/api/sieve/global", None)?
                .as_array()
                .into_iter()
                .flatten()
            {
                let stage = s["stage"].as_str().map(|st| format!("  (runs at {st})"));
                println!(
                    "{}{}",
                    s["name"].as_str().unwrap_or_default(),
                    stage.unwrap_or_default()
                );
            }
        }
        GlobalSieveCmd::Put { name, file } => {
            let v = api.call(
                "PUT",
                &at(name),
                Some(json!({ "text": read_script(file)? })),
            )?;
            match v["stage"].as_str() {
                Some(st) => println!("Stored global script {name} (runs at {st})"),
                None => println!(
                    "Stored global script {name} (nothing runs it: name it in [sieve.stages] to run it at SMTP time, or in [sieve.delivery] before or after users' scripts)"
                ),
            }
        }
        GlobalSieveCmd::Get { name } => {
            print!(
                "{}",
                api.call("GET", &at(name), None)?["text"]
                    .as_str()
                    .unwrap_or_default()
            );
        }
        GlobalSieveCmd::Delete { name } => {
            api.call("DELETE", &at(name), None)?;
            println!("Deleted global script {name}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn txt_records_are_split_into_strings_of_255_bytes() {
        let key = format!("v=DKIM1; k=rsa; p={}", "A".repeat(400));
        let line = super::zone_rdata("TXT", &key);
        let parts: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert_eq!(parts.len(), 2, "{line}");
        assert!(parts.iter().all(|p| p.len() <= 255));
        assert_eq!(parts.concat(), key);
        assert_eq!(super::zone_rdata("TXT", "a\"b"), "\"a\\\"b\"");
        assert_eq!(
            super::zone_rdata("MX", "10 mx.example.org."),
            "10 mx.example.org."
        );
    }
}
