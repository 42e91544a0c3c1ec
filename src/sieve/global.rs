//! Administrators' (global) scripts: records of the mail store under
//! account 0, which no account ever has (account ids start at 1). They
//! run at the SMTP stages `sieve.stages` names ([`super::smtp`]), and
//! users' scripts may `include :global` them (RFC 6609 §3.2). What
//! `petrel sieve global …` and `/api/sieve/global` do.
//!
//! The server keeps them in memory ([`super::SieveState`]): read at
//! first use, read again after each change made here.

use std::sync::Arc;

use super::scripts::{check_as, valid_name, Result, Script, SieveError};
use super::Trust;
use crate::core::Core;
use crate::mail::records::Kind;

/// The account id the global scripts are kept under.
const OWNER: u32 = 0;

/// Every global script, from memory once read.
pub async fn all(core: &Core) -> Result<Arc<Vec<Script>>> {
    if let Some(v) = core
        .sieve
        .global
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return Ok(v);
    }
    let mut list: Vec<Script> = core
        .mail
        .records::<Script>(OWNER, Kind::SieveScript)
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let list = Arc::new(list);
    *core.sieve.global.write().unwrap_or_else(|e| e.into_inner()) = Some(list.clone());
    Ok(list)
}

/// One global script by name from memory, without reading the store
/// (for a run in progress; `None` also when none were read yet).
pub fn cached(core: &Core, name: &str) -> Option<Script> {
    core.sieve
        .global
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|all| all.iter().find(|s| s.name == name).cloned())
}

/// One global script by name.
pub async fn get(core: &Core, name: &str) -> Result<Script> {
    all(core)
        .await?
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(|| SieveError::NotFound(name.into()))
}

fn forget(core: &Core) {
    *core.sieve.global.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Stores a global script (replacing one of the same name) once it
/// compiles as an administrator's script, or as a user's where it runs
/// at delivery (`sieve.delivery`) and so among a user's.
pub async fn put(core: &Core, name: &str, text: &str) -> Result<()> {
    valid_name(name)?;
    let cfg = &core.config.sieve;
    let at_delivery = cfg.delivery.before == name || cfg.delivery.after == name;
    check_as(
        cfg,
        text,
        if at_delivery {
            Trust::User
        } else {
            Trust::Admin
        },
    )?;
    let script = Script {
        name: name.to_string(),
        text: text.to_string(),
    };
    let mail = &core.mail;
    let existing = mail
        .records::<Script>(OWNER, Kind::SieveScript)
        .await?
        .into_iter()
        .find(|(_, s)| s.name == name);
    match existing {
        Some((id, _)) => {
            mail.put_record(OWNER, Kind::SieveScript, id, &script)
                .await?
        }
        None => {
            mail.create_record(OWNER, Kind::SieveScript, &script)
                .await?;
        }
    }
    forget(core);
    Ok(())
}

/// Deletes a global script; one that `sieve.stages` or `sieve.delivery`
/// names is refused (it would silently stop running).
pub async fn delete(core: &Core, name: &str) -> Result<()> {
    if let Some((at, key)) = core.config.sieve.runs(name) {
        return Err(SieveError::InUse(format!(
            "`{name}` runs at {at} ({key} in config.toml): change that first"
        )));
    }
    let found = core
        .mail
        .records::<Script>(OWNER, Kind::SieveScript)
        .await?
        .into_iter()
        .find(|(_, s)| s.name == name);
    let Some((id, _)) = found else {
        return Err(SieveError::NotFound(name.into()));
    };
    core.mail
        .delete_record(OWNER, Kind::SieveScript, id)
        .await?;
    forget(core);
    Ok(())
}
