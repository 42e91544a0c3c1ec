//! `[[smtp.milter]]` and `[[smtp.hook]]`: the external filters
//! (src/filters/) a message passes at the end of DATA.

use serde::Deserialize;

/// The listeners whose mail a filter sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterPort {
    /// Port 25: mail from other servers.
    Mta,
    /// Ports 587/465: mail from logged-in users.
    Submission,
}

/// What a message meets when its filter fails (cannot be reached, does
/// not answer in time, answers nonsense).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// 451 4.7.1: the sender tries again later.
    Tempfail,
    /// The message goes on as if the filter had passed it.
    Accept,
}

/// One milter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MilterConfig {
    /// For logs and metrics (default: the address).
    #[serde(default)]
    pub name: String,
    /// `host:port`, or `unix:/path/to/socket`.
    pub address: String,
    #[serde(default = "mta_only")]
    pub ports: Vec<FilterPort>,
    /// Seconds to wait for each answer.
    #[serde(default = "thirty")]
    pub timeout: u64,
    #[serde(default = "five")]
    pub connect_timeout: u64,
    #[serde(default = "tempfail")]
    pub on_failure: OnFailure,
    /// A field the milter adds to mark spam (`"X-Spam: Yes"` for
    /// rspamd, `"X-Spam-Flag: YES"` for spamass-milter): a message it
    /// marks so is filed in Junk. Empty: none.
    #[serde(default)]
    pub junk_header: String,
}

/// One HTTP hook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HookConfig {
    /// For logs and metrics (default: the URL).
    #[serde(default)]
    pub name: String,
    /// `http://` or `https://` (verified against the system's and
    /// `tls.extra-ca`'s authorities).
    pub url: String,
    #[serde(default = "mta_only")]
    pub ports: Vec<FilterPort>,
    /// Seconds for the whole exchange.
    #[serde(default = "thirty")]
    pub timeout: u64,
    #[serde(default = "tempfail")]
    pub on_failure: OnFailure,
}

fn mta_only() -> Vec<FilterPort> {
    vec![FilterPort::Mta]
}

fn thirty() -> u64 {
    30
}

fn five() -> u64 {
    5
}

fn tempfail() -> OnFailure {
    OnFailure::Tempfail
}

/// The configuration's problem with the filters, with the key it is at.
pub fn check(milters: &[MilterConfig], hooks: &[HookConfig]) -> Result<(), (&'static str, String)> {
    for m in milters {
        let unix = m.address.strip_prefix("unix:");
        let ok = match unix {
            Some(p) => p.starts_with('/'),
            None => m
                .address
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
        };
        if !ok {
            return Err((
                "smtp.milter",
                format!(
                    "address `{}` is neither host:port nor unix:/absolute/path",
                    m.address
                ),
            ));
        }
        if !m.junk_header.is_empty() && !m.junk_header.contains(':') {
            return Err((
                "smtp.milter",
                format!("junk-header `{}` is not \"Name: value\"", m.junk_header),
            ));
        }
        if m.timeout == 0 || m.connect_timeout == 0 {
            return Err((
                "smtp.milter",
                "timeout and connect-timeout must be greater than zero".into(),
            ));
        }
    }
    for h in hooks {
        let uri: Result<hyper::Uri, _> = h.url.parse();
        let ok = uri
            .is_ok_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if !ok {
            return Err((
                "smtp.hook",
                format!("url `{}` is not an http:// or https:// URL", h.url),
            ));
        }
        if h.timeout == 0 {
            return Err(("smtp.hook", "timeout must be greater than zero".into()));
        }
    }
    Ok(())
}
