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
