//! Sieve (RFC 5228): each account's filter, run when mail is delivered to
//! it. The `sieve-rs` crate compiles and interprets scripts; this module
//! keeps the scripts (records in the mail store: [`scripts`]), says which
//! extensions a script may use, and turns a run's actions into what the
//! delivery does ([`deliver`]): the mailboxes it files into with which
//! flags, and the redirects it queues.
//!
//! Administrators' scripts ([`global`]) run with more: at the SMTP
//! stages ([`smtp`], where greylisting is one such script) they may
//! reject with a reply of their choosing and keep state in a key-value
//! store with expiry ([`kv`]); users' scripts may `include :global` them.
//!
//! Extensions offered now are those whose actions Petrel carries out;
//! a script that requires another is refused when it is stored. Not
//! offered yet: replace/enclose, virustest (no virus scanner yet), ext-lists,
//! redirect-dsn/deliverby, convert.

pub mod deliver;
pub mod edited;
pub mod global;
pub mod kv;
pub mod notify;
pub mod refusal;
pub mod responder;
pub mod scripts;
pub mod smtp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use sha2::Digest;

use ::sieve::compiler::grammar::{Capability, Comparator};

use crate::config::SieveConfig;

/// The extensions (RFC 5228 `require` names) scripts may use, as
/// ManageSieve's SIEVE capability lists them.
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "envelope",
    "encoded-character",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
    "body",
    "copy",
    "relational",
    "date",
    "index",
    "duplicate",
    "variables",
    "foreverypart",
    "mime",
    "extracttext",
    "environment",
    "subaddress",
    "mailbox",
    "mailboxid",
    "special-use",
    "imap4flags",
    "ihave",
    "include",
    "regex",
    "vacation",
    "vacation-seconds",
    "reject",
    "ereject",
    "enotify",
    "editheader",
    "mboxmetadata",
    "servermetadata",
    "fcc",
    "spamtest",
    "spamtestplus",
];

/// The compiler, with the script size limit.
pub(crate) fn compiler(cfg: &SieveConfig) -> ::sieve::Compiler {
    ::sieve::Compiler::new().with_max_script_size(cfg.max_script_size)
}

/// The interpreter: the extensions above only, and the limits.
pub(crate) fn runtime(cfg: &SieveConfig, hostname: &str) -> ::sieve::Runtime {
    let mut rt = ::sieve::Runtime::new()
        .without_capabilities(Capability::all().iter().cloned())
        .with_cpu_limit(cfg.max_instructions)
        .with_max_redirects(cfg.max_redirects)
        // Redirects and one vacation response.
        .with_max_out_messages(cfg.max_redirects + 1)
        // RFC 5230 §4.1: 7 days when :days is not given.
        .with_default_vacation_expiry(7 * 86400)
        .with_max_nested_includes(cfg.max_include_depth)
        .with_local_hostname(hostname.to_string())
        // RFC 5435: mailto: is the one notification method (RFC 5436).
        .with_valid_notification_uri("mailto")
        // RFC 5293 §6: these may not be deleted (nor added here); Subject
        // may be both.
        .with_protected_header("Received")
        .with_protected_header("Auto-Submitted")
        .with_protected_header("Return-Path")
        // RFC 5183 §4.1: the items known at delivery.
        .with_env_variable("domain", hostname.to_string())
        .with_env_variable("host", hostname.to_string())
        .with_env_variable("location", "MDA")
        .with_env_variable("phase", "during")
        .with_env_variable("name", "Petrel")
        .with_env_variable("version", env!("CARGO_PKG_VERSION"));
    for e in EXTENSIONS {
        rt.set_capability(capability(e));
    }
    rt
}

/// Whose script is compiled or run: a user's has [`EXTENSIONS`]; an
/// administrator's also has `reject`/`ereject` (an SMTP reply at the
/// SMTP stages), `vnd.stalwart.expressions` (`let`, `eval`) with the
/// key-value functions of [`kv`] and `now()`, and `vnd.stalwart.while`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    User,
    Admin,
}

/// The expression functions of administrators' scripts; the first four
/// are answered by the runner ([`smtp`]) with their ids below.
pub(crate) fn admin_functions() -> ::sieve::FunctionMap {
    ::sieve::FunctionMap::new()
        .with_external_function("kv_get", KV_GET, 2)
        .with_external_function("kv_exists", KV_EXISTS, 2)
        .with_external_function("kv_set", KV_SET, 4)
        .with_external_function("kv_delete", KV_DELETE, 2)
        .with_function_no_args("now", |_, _| {
            ::sieve::runtime::Variable::Integer(crate::core::unix_now())
        })
}

pub(crate) const KV_GET: u32 = 0;
pub(crate) const KV_EXISTS: u32 = 1;
pub(crate) const KV_SET: u32 = 2;
pub(crate) const KV_DELETE: u32 = 3;

/// The compiler for `trust`.
pub(crate) fn compiler_for(cfg: &SieveConfig, trust: Trust) -> ::sieve::Compiler {
    match trust {
        Trust::User => compiler(cfg),
        Trust::Admin => compiler(cfg).register_functions(&mut admin_functions()),
    }
}

/// The interpreter for `trust`.
pub(crate) fn runtime_for(cfg: &SieveConfig, hostname: &str, trust: Trust) -> ::sieve::Runtime {
    let rt = runtime(cfg, hostname);
    match trust {
        Trust::User => rt,
        Trust::Admin => rt
            .with_capability(Capability::Reject)
            .with_capability(Capability::Ereject)
            .with_capability(Capability::Expressions)
            .with_capability(Capability::While)
            .with_functions(&mut admin_functions()),
    }
}

/// A script compiled, from a cache keyed by its text and trust
/// (compiling is most of what a run costs; scripts change seldom).
pub(crate) fn compile_cached(
    cfg: &SieveConfig,
    text: &str,
    trust: Trust,
) -> Result<Arc<::sieve::Sieve>, String> {
    type Cache = Mutex<HashMap<([u8; 32], Trust), Arc<::sieve::Sieve>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (sha2::Sha256::digest(text.as_bytes()).into(), trust);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(s.clone());
    }
    let s = Arc::new(
        compiler_for(cfg, trust)
            .compile(text.as_bytes())
            .map_err(|e| e.to_string())?,
    );
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: past 10,000 scripts it starts again.
    if c.len() >= 10_000 {
        c.clear();
    }
    c.insert(key, s.clone());
    Ok(s)
}

/// What the server keeps in memory for Sieve: the administrators'
/// scripts, read once and again after each change made through the API,
/// and each account's scripts with its active one compiled, good while
/// the account's script and active-mark states have not moved.
#[derive(Default)]
pub struct SieveState {
    global: RwLock<Option<Arc<Vec<scripts::Script>>>>,
    accounts: Mutex<AccountCache>,
}

/// Per account: the states read, and what they gave.
type AccountCache = HashMap<u32, ((u64, u64), Option<Arc<AccountScripts>>)>;

/// An account's scripts as a delivery needs them.
pub(crate) struct AccountScripts {
    pub all: Vec<(u64, scripts::Script)>,
    /// The active script's name, and its compiled form or why not.
    pub name: String,
    pub compiled: Result<Arc<::sieve::Sieve>, String>,
}

/// The account's scripts when one is active: two point reads (the
/// states) while nothing changed, the scripts read and compiled again
/// when something did.
pub(crate) async fn account_scripts(
    core: &crate::core::Core,
    acct: u32,
) -> scripts::Result<Option<Arc<AccountScripts>>> {
    use crate::mail::records::Kind;
    let mail = &core.mail;
    let active_state = mail.record_state(acct, Kind::SieveActive).await?;
    if active_state == 0 {
        return Ok(None); // never activated one
    }
    let states = (
        active_state,
        mail.record_state(acct, Kind::SieveScript).await?,
    );
    fn lock(s: &SieveState) -> std::sync::MutexGuard<'_, AccountCache> {
        s.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }
    if let Some((at, cached)) = lock(&core.sieve).get(&acct) {
        if *at == states {
            return Ok(cached.clone());
        }
    }
    let (all, active) = scripts::list(mail, acct).await?;
    let fresh = active
        .and_then(|a| all.iter().find(|(n, _)| *n == a))
        .map(|(_, s)| {
            (
                s.name.clone(),
                compile_cached(&core.config.sieve, &s.text, Trust::User),
            )
        })
        .map(|(name, compiled)| {
            Arc::new(AccountScripts {
                all,
                name,
                compiled,
            })
        });
    let mut map = lock(&core.sieve);
    // Bounded: past 100,000 accounts it starts again.
    if map.len() >= 100_000 {
        map.clear();
    }
    map.insert(acct, (states, fresh.clone()));
    Ok(fresh)
}

fn capability(name: &str) -> Capability {
    match name.strip_prefix("comparator-") {
        Some("i;octet") => Capability::Comparator(Comparator::Octet),
        Some("i;ascii-casemap") => Capability::Comparator(Comparator::AsciiCaseMap),
        Some("i;ascii-numeric") => Capability::Comparator(Comparator::AsciiNumeric),
        _ => Capability::parse(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_is_one_sieve_rs_knows() {
        for e in EXTENSIONS {
            assert!(
                !matches!(capability(e), Capability::Other(_)),
                "{e} is not a known extension"
            );
            assert_eq!(capability(e).to_string(), *e);
        }
    }
}
