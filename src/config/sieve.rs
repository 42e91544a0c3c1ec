//! `[sieve]`: users' Sieve filters (RFC 5228) run at delivery.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SieveConfig {
    /// Run each account's active script when mail is delivered to it.
    pub enable: bool,
    /// Octets of one script.
    pub max_script_size: usize,
    /// Scripts one account may keep.
    pub max_scripts: usize,
    /// Instructions one run may execute before it is stopped (and the
    /// message kept in the Inbox).
    pub max_instructions: usize,
    /// Redirects one run may make (RFC 5228 §4.2).
    pub max_redirects: usize,
    /// How deep `include` (RFC 6609) may nest.
    pub max_include_depth: usize,
    /// Seconds `duplicate` (RFC 7352) and `vacation` (RFC 5230, 6131)
    /// remember an id at most; a longer period asked is cut to it.
    pub max_tracking: u64,
    /// The global scripts run at the SMTP stages.
    pub stages: StageScripts,
    /// The global scripts run at delivery, around each user's.
    pub delivery: DeliveryScripts,
}

/// `[sieve.delivery]`: global scripts (`petrel sieve global put`) run at
/// every delivery to an Inbox, before and after the account's own active
/// script, as if it included them (RFC 6609): one run, one implicit keep;
/// empty for none.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryScripts {
    pub before: String,
    pub after: String,
}

impl SieveConfig {
    /// Where the global script `name` runs, and the key that says so:
    /// the first SMTP stage naming it, else delivery before or after.
    pub fn runs(&self, name: &str) -> Option<(&'static str, &'static str)> {
        if let Some(stage) = self.stages.naming(name) {
            return Some((
                stage,
                match stage {
                    "connect" => "sieve.stages.connect",
                    "ehlo" => "sieve.stages.ehlo",
                    "mail" => "sieve.stages.mail",
                    "rcpt" => "sieve.stages.rcpt",
                    _ => "sieve.stages.data",
                },
            ));
        }
        if self.delivery.before == name {
            return Some(("delivery, before users' scripts", "sieve.delivery.before"));
        }
        if self.delivery.after == name {
            return Some(("delivery, after users' scripts", "sieve.delivery.after"));
        }
        None
    }
}

/// `[sieve.stages]`: the name of the global script (`petrel sieve global
/// put`) each SMTP stage runs; empty for none.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageScripts {
    pub connect: String,
    pub ehlo: String,
    pub mail: String,
    pub rcpt: String,
    pub data: String,
}

impl StageScripts {
    /// The stages and their scripts, in the order a session meets them.
    pub fn all(&self) -> [(&'static str, &str); 5] {
        [
            ("connect", &self.connect),
            ("ehlo", &self.ehlo),
            ("mail", &self.mail),
            ("rcpt", &self.rcpt),
            ("data", &self.data),
        ]
    }

    /// The first stage that runs `name`.
    pub fn naming(&self, name: &str) -> Option<&'static str> {
        self.all()
            .into_iter()
            .find(|(_, s)| *s == name)
            .map(|(stage, _)| stage)
    }
}

/// `[greylist]`: the shipped greylisting script at the RCPT stage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct GreylistConfig {
    pub enable: bool,
    /// Seconds after the first attempt before a retry is accepted.
    pub delay: u64,
    /// Seconds a first attempt is remembered, waiting for its retry.
    pub retry_window: u64,
    /// Seconds a triplet that passed is remembered (then it is
    /// greylisted again).
    pub expiry: u64,
    /// Clients never greylisted (CIDR). Authenticated sessions never are.
    pub exempt_networks: Vec<String>,
}

impl Default for GreylistConfig {
    fn default() -> Self {
        GreylistConfig {
            enable: false,
            delay: 300,
            retry_window: 2 * 86400,
            expiry: 35 * 86400,
            exempt_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            enable: true,
            max_script_size: 65536,
            max_scripts: 16,
            max_instructions: 10_000,
            max_redirects: 4,
            max_include_depth: 3,
            max_tracking: 90 * 86400,
            stages: StageScripts::default(),
            delivery: DeliveryScripts::default(),
        }
    }
}

/// `[managesieve]`: the ManageSieve service (RFC 5804).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManageSieveConfig {
    /// Allow AUTHENTICATE without TLS (tests, trusted networks).
    pub auth_without_tls: bool,
    /// Seconds a connection may stay silent.
    pub timeout_idle: u64,
    /// Octets of a command line outside its literals.
    pub max_line_length: usize,
}

impl Default for ManageSieveConfig {
    fn default() -> Self {
        ManageSieveConfig {
            auth_without_tls: false,
            timeout_idle: 1800,
            max_line_length: 8192,
        }
    }
}
