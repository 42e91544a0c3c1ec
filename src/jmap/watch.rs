//! What one push channel follows (RFC 8620 §7.1): the user's own account
//! and every account sharing mailboxes with it (§1.6.2), each with the
//! state pushed last. The event source (§7.3) and the WebSocket (RFC 8887)
//! push a StateChange naming every account that changed; their event id /
//! pushState is the state of all of them, so a reconnecting client gets
//! what it missed in each.
//!
//! The state string is the own account's state, then `;account:state`
//! per shared account (`57;2:30`); a user with no shares sees the plain
//! number it always did.

use serde_json::{json, Map, Value};

use super::id;
use crate::core::Core;
use crate::mail::MailError;

/// The types a StateChange can name for a mail account.
pub(super) const TYPES: &[&str] = &["Email", "Mailbox", "Thread", "EmailDelivery"];

pub(super) struct Watch {
    user: u32,
    /// (account, state reached); the user's own account first.
    states: Vec<(u32, u64)>,
    types: Vec<String>,
}

impl Watch {
    /// Starts at the current states, or at those of `resume` (a state
    /// string the client had) where it names a followed account and no
    /// future state.
    pub async fn start(
        core: &Core,
        user: u32,
        types: Vec<String>,
        resume: Option<&str>,
    ) -> Result<Watch, MailError> {
        let own = core.mail.account_usage(user).await?.state;
        let mut w = Watch {
            user,
            states: vec![(user, own)],
            types,
        };
        w.refresh(core).await?;
        if let Some(r) = resume {
            w.resume(r);
        }
        Ok(w)
    }

    /// Whether a change notification for `acct` concerns this channel.
    pub fn follows(&self, acct: u32) -> bool {
        self.states.iter().any(|(a, _)| *a == acct)
    }

    /// Whether a notification for `acct` may mean that the accounts
    /// shared with the user changed (a grant to it moves its account).
    pub fn is_user(&self, acct: u32) -> bool {
        acct == self.user || acct == crate::mail::acl::ANYONE
    }

    /// Re-reads which accounts share mailboxes with the user: a new one
    /// starts at its current state, a revoked one is dropped.
    pub async fn refresh(&mut self, core: &Core) -> Result<(), MailError> {
        let shares = core.mail.shared_with(self.user).await?;
        let owners = super::methods::shared_owners(&shares);
        let user = self.user;
        self.states
            .retain(|(a, _)| *a == user || owners.contains(a));
        for o in owners {
            if !self.follows(o) {
                let st = core.mail.account_usage(o).await?.state;
                self.states.push((o, st));
            }
        }
        Ok(())
    }

    /// The state string of every followed account (module docs).
    pub fn state(&self) -> String {
        let mut out = String::new();
        for (i, (a, s)) in self.states.iter().enumerate() {
            if i == 0 {
                out.push_str(&s.to_string());
            } else {
                out.push_str(&format!(";{a}:{s}"));
            }
        }
        out
    }

    /// Moves back to the states of a string the client had; parts that
    /// do not parse, name no followed account or a future state are
    /// ignored (those accounts push from now on).
    fn resume(&mut self, text: &str) {
        let mut parts = text.split(';');
        let own = parts.next().and_then(|s| s.parse::<u64>().ok());
        let mut given: Vec<(u32, u64)> = own.map(|s| (self.user, s)).into_iter().collect();
        for p in parts {
            if let Some((a, s)) = p.split_once(':') {
                if let (Ok(a), Ok(s)) = (a.parse(), s.parse()) {
                    given.push((a, s));
                }
            }
        }
        for (a, s) in given {
            if let Some(slot) = self.states.iter_mut().find(|(x, _)| *x == a) {
                if s <= slot.1 {
                    slot.1 = s;
                }
            }
        }
    }

    /// The StateChange (§7.1) for what changed since the states reached,
    /// if it concerns a followed type; moves the states on.
    pub async fn change(&mut self, core: &Core) -> Option<Value> {
        let mut changed = Map::new();
        for (acct, last) in self.states.iter_mut() {
            if let Some(m) = account_changes(core, *acct, last, &self.types).await {
                changed.insert(id::account(*acct), Value::Object(m));
            }
        }
        (!changed.is_empty()).then(|| json!({"@type": "StateChange", "changed": changed}))
    }
}

/// What changed in account `acct` since `*last` among `types` (type name
/// → the new state), moving `*last` on; `None` when nothing followed
/// changed. The push subscriptions use it too.
pub(super) async fn account_changes(
    core: &Core,
    acct: u32,
    last: &mut u64,
    types: &[String],
) -> Option<Map<String, Value>> {
    let mail = &core.mail;
    let current = mail.account_usage(acct).await.ok()?.state;
    if current <= *last {
        return None;
    }
    let records = mail.changes_since(acct, *last, 100_000).await.ok()?;
    let mut emails = false;
    let mut mailboxes = false;
    let mut threads = false;
    let mut delivery = None;
    for (state, c) in &records {
        if *state > current {
            break;
        }
        let any_email = !(c.created.is_empty() && c.updated.is_empty() && c.destroyed.is_empty());
        emails |= any_email;
        mailboxes |= any_email || !c.mailboxes.is_empty();
        threads |= !(c.created.is_empty() && c.destroyed.is_empty());
        if !c.created.is_empty() {
            delivery = Some(*state);
        }
    }
    *last = current;
    let state = current.to_string();
    let mut changed = Map::new();
    for (t, yes) in [
        ("Email", emails),
        ("Mailbox", mailboxes),
        ("Thread", threads),
    ] {
        if yes && types.iter().any(|x| x == t) {
            changed.insert(t.into(), json!(state));
        }
    }
    if let Some(d) = delivery.filter(|_| types.iter().any(|x| x == "EmailDelivery")) {
        changed.insert("EmailDelivery".into(), json!(d.to_string()));
    }
    (!changed.is_empty()).then_some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(states: Vec<(u32, u64)>) -> Watch {
        Watch {
            user: states[0].0,
            states,
            types: vec![],
        }
    }

    #[test]
    fn state_strings_round_trip() {
        let mut w = watch(vec![(1, 57), (2, 30), (5, 4)]);
        assert_eq!(w.state(), "57;2:30;5:4");
        assert_eq!(
            watch(vec![(1, 9)]).state(),
            "9",
            "no shares: the plain number"
        );
        // Older states are taken; future ones, unknown accounts and junk
        // are not.
        w.resume("50;2:31;7:1;x:y;5:2");
        assert_eq!(w.state(), "50;2:30;5:2");
        w.resume("nonsense");
        assert_eq!(w.state(), "50;2:30;5:2");
        assert!(w.follows(5) && !w.follows(7));
    }
}
