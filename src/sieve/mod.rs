//! Sieve (RFC 5228): each account's filter, run when mail is delivered to
//! it. The `sieve-rs` crate compiles and interprets scripts; this module
//! keeps the scripts (records in the mail store: [`scripts`]), says which
//! extensions a script may use, and turns a run's actions into what the
//! delivery does ([`deliver`]): the mailboxes it files into with which
//! flags, and the redirects it queues.
//!
//! Extensions offered now are those whose actions Petrel carries out;
//! a script that requires another is refused when it is stored. Not
//! offered yet: reject/ereject, enotify, editheader,
//! replace/enclose, fcc, spamtest/virustest, ext-lists, mboxmetadata,
//! servermetadata, redirect-dsn/deliverby, convert.

pub mod deliver;
pub mod scripts;

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
        .with_env_variable("name", "Petrel")
        .with_env_variable("version", env!("CARGO_PKG_VERSION"));
    for e in EXTENSIONS {
        rt.set_capability(capability(e));
    }
    rt
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
