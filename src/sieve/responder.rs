//! The JMAP VacationResponse (RFC 8621 §8) answered by Sieve: while the
//! account's settings are on, [`crate::vacation::script`] turns them into
//! a vacation action (RFC 5230) run on each message delivered to the
//! Inbox that the account's own scripts sent no response for. It shares
//! their memory of whom was answered (`SieveDuplicate` records, under a
//! handle of its own) and Petrel's RFC 3834 rules.

use super::deliver::{self, Outgoing};
use crate::core::{unix_now, Core};
use crate::directory::Account;
use crate::mail::records::Kind;
use crate::vacation::{Vacation, SINGLETON};

/// The response due for `raw` (envelope `from`, sent to `to`) under the
/// account's JMAP settings, if any.
pub(super) async fn respond(
    core: &Core,
    acct: &Account,
    raw: &[u8],
    from: &str,
    to: &str,
) -> Result<Option<Outgoing>, String> {
    let now = unix_now();
    let settings = core
        .mail
        .record::<Vacation>(acct.id, Kind::Vacation, SINGLETON)
        .await
        .map_err(|e| format!("the vacation settings are unreadable: {e}"))?;
    let Some(v) = settings.filter(|v| v.active(now)) else {
        return Ok(None);
    };
    if let Err(why) = crate::vacation::should_reply(raw, acct) {
        tracing::debug!(account = %acct.address, "no vacation response: {why}");
        return Ok(None);
    }
    let cfg = &core.config.sieve;
    let text = crate::vacation::script(&v, acct);
    let compiled = super::compile_cached(cfg, &text, super::Trust::User)?;
    let seen = deliver::read_seen(core, acct.id).await?;
    let run = {
        let rt = super::runtime(cfg, &core.config.hostname);
        let ctx = rt
            .filter(raw)
            .with_user_address(acct.address.as_str())
            .with_user_full_name(&acct.name)
            .with_envelope(::sieve::Envelope::From, from)
            .with_envelope(::sieve::Envelope::To, deliver::envelope_to(to, acct));
        let known = deliver::Known {
            all: &[],
            globals: &[],
            boxes: &[],
            seen: &seen,
            now,
            no_response: None,
        };
        deliver::interpret(ctx, "petrel:vacation", compiled, &known, cfg)?
    };
    deliver::remember(core, acct.id, run.seen()).await?;
    Ok(run.vacation().map(|(to, m)| deliver::response(to, m)))
}
