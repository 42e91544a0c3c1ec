//! Administrators' scripts at the SMTP stages: when a client connects,
//! at EHLO, MAIL, each RCPT and once the data is in, the global script
//! `sieve.stages.STAGE` names runs (and at RCPT first the shipped
//! greylisting script when `greylist.enable` is on). A script decides
//! with `reject` or `ereject`: a reason that starts with an SMTP code
//! ("451 4.7.1 …") is the reply as it is, any other reason is refused
//! with 550 5.7.1; `discard` at RCPT or DATA accepts and drops. The
//! other actions mean nothing before delivery and are ignored.
//!
//! A run reads facts about the session from environment variables
//! (RFC 5183 `environment`, and `env.NAME` in expressions):
//! `remote-ip`/`remote_ip`, `remote_net` (the client's /24, or /64 for
//! IPv6), `helo`, `login` (empty unless authenticated), `listener`,
//! `tls` (1 or 0), `stage`, and the `greylist_delay`,
//! `greylist_retry_window` and `greylist_expiry` settings; at DATA,
//! after the spam filter, `spam_score` (its score, "" when it did not
//! score) and RFC 5235 spamtest/spamtestplus, so that such a script
//! extends the filter (or, with `spam.enable = false` and its own
//! tests, replaces it). The
//! envelope is `envelope.from` and `envelope.to` (at RCPT the recipient
//! being asked for, at DATA every recipient). State across sessions
//! lives in [`super::kv`].
//!
//! A script that fails (a compile error, the instruction budget) is
//! logged and the stage goes on as if it had accepted: a broken policy
//! must not refuse mail.

use std::net::IpAddr;

use ::sieve::runtime::Variable;
use ::sieve::{Event, Input};

use super::kv::{self, Write};
use super::{Trust, KV_DELETE, KV_EXISTS, KV_GET, KV_SET};
use crate::core::{unix_now, Core};

/// The greylisting script `greylist.enable` runs at RCPT.
pub const GREYLIST: &str = include_str!("../../examples/greylist.sieve");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Ehlo,
    Mail,
    Rcpt,
    Data,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Ehlo => "ehlo",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
        }
    }
}

/// What the session knows when a stage's scripts run.
pub struct Facts<'a> {
    pub remote_ip: IpAddr,
    pub helo: &'a str,
    /// The authenticated user's address.
    pub login: Option<&'a str>,
    pub listener: &'static str,
    pub tls: bool,
    pub from: Option<&'a str>,
    /// At RCPT the one asked for; at DATA all of them.
    pub rcpts: Vec<&'a str>,
    /// The message, at DATA.
    pub message: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    /// The whole SMTP reply line ("451 4.7.1 …").
    Reject(String),
    /// Accepted and dropped (RCPT, DATA).
    Discard,
}

/// Whether anything runs at `stage`: lets the session skip building
/// [`Facts`] when nothing is configured.
pub fn active(core: &Core, stage: Stage) -> bool {
    (stage == Stage::Rcpt && core.config.greylist.enable) || !script_for(core, stage).is_empty()
}

fn script_for(core: &Core, stage: Stage) -> &str {
    let s = &core.config.sieve.stages;
    match stage {
        Stage::Connect => &s.connect,
        Stage::Ehlo => &s.ehlo,
        Stage::Mail => &s.mail,
        Stage::Rcpt => &s.rcpt,
        Stage::Data => &s.data,
    }
}

/// Whether the greylisting script skips this client: authenticated
/// sessions and `greylist.exempt-networks`.
fn greylist_exempt(core: &Core, facts: &Facts<'_>) -> bool {
    facts.login.is_some()
        || core.config.greylist.exempt_networks.iter().any(|c| {
            c.parse::<crate::net::limit::Cidr>()
                .is_ok_and(|c| c.contains(facts.remote_ip))
        })
}

/// Runs the scripts of `stage`: the first refusal wins.
pub async fn run(core: &Core, stage: Stage, facts: &Facts<'_>) -> Verdict {
    if stage == Stage::Rcpt && core.config.greylist.enable && !greylist_exempt(core, facts) {
        let v = run_one(core, stage, facts, "greylist", GREYLIST).await;
        let result = if matches!(v, Verdict::Reject(_)) {
            tracing::info!(
                client = %facts.remote_ip,
                from = facts.from.unwrap_or(""),
                to = facts.rcpts.first().copied().unwrap_or(""),
                "greylisted: first attempt deferred"
            );
            "deferred"
        } else {
            "passed"
        };
        metrics::counter!("petrel_greylist_checks_total", "result" => result).increment(1);
        if v != Verdict::Accept {
            return v;
        }
    }
    let name = script_for(core, stage);
    if name.is_empty() {
        return Verdict::Accept;
    }
    let script = match super::global::get(core, name).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(stage = stage.name(), script = name, "Sieve stage script not run, mail accepted: {e}; store it with `petrel sieve global put {name} FILE`");
            metrics::counter!("petrel_sieve_stage_runs_total", "stage" => stage.name(), "result" => "error").increment(1);
            return Verdict::Accept;
        }
    };
    run_one(core, stage, facts, name, &script.text).await
}

async fn run_one(core: &Core, stage: Stage, facts: &Facts<'_>, name: &str, text: &str) -> Verdict {
    let outcome = match super::compile_cached(&core.config.sieve, text, Trust::Admin) {
        Ok(compiled) => interpret(core, stage, facts, name, compiled),
        Err(e) => Err(format!("does not compile: {e}")),
    };
    let result = match outcome {
        Ok((verdict, writes)) => match kv::apply(&core.store, writes).await {
            Ok(()) => Ok(verdict),
            Err(e) => Err(format!("its key-value writes failed: {e}")),
        },
        Err(e) => Err(e),
    };
    let (verdict, label) = match result {
        Ok(v) => {
            let label = match v {
                Verdict::Accept => "accept",
                Verdict::Reject(_) => "reject",
                Verdict::Discard => "discard",
            };
            (v, label)
        }
        Err(e) => {
            tracing::warn!(
                stage = stage.name(),
                script = name,
                "Sieve stage script failed, mail accepted: {e}"
            );
            (Verdict::Accept, "error")
        }
    };
    metrics::counter!("petrel_sieve_stage_runs_total", "stage" => stage.name(), "result" => label)
        .increment(1);
    verdict
}

/// The client's network for greylisting: its /24 (IPv4) or /64 (IPv6),
/// as senders' pools retry from neighbouring addresses.
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// One run to its end: the verdict and the key-value writes to make.
fn interpret(
    core: &Core,
    stage: Stage,
    facts: &Facts<'_>,
    name: &str,
    compiled: std::sync::Arc<::sieve::Sieve>,
) -> Result<(Verdict, Vec<Write>), String> {
    let cfg = &core.config;
    let rt = super::runtime_for(&cfg.sieve, &cfg.hostname, Trust::Admin);
    let mut ctx = rt.filter(facts.message);
    let ip = facts.remote_ip.to_string();
    let g = &cfg.greylist;
    for (k, v) in [
        ("remote-ip", Variable::from(ip.clone())),
        ("remote_ip", Variable::from(ip)),
        ("remote_net", Variable::from(network(facts.remote_ip))),
        ("helo", Variable::from(facts.helo.to_string())),
        (
            "login",
            Variable::from(facts.login.unwrap_or("").to_string()),
        ),
        ("listener", Variable::from(facts.listener.to_string())),
        ("tls", Variable::Integer(facts.tls as i64)),
        ("stage", Variable::from(stage.name().to_string())),
        ("location", Variable::from("MTA".to_string())),
        ("phase", Variable::from("during".to_string())),
        ("greylist_delay", Variable::Integer(g.delay as i64)),
        (
            "greylist_retry_window",
            Variable::Integer(g.retry_window as i64),
        ),
        ("greylist_expiry", Variable::Integer(g.expiry as i64)),
    ] {
        ctx.set_env_variable(k, v);
    }
    if stage == Stage::Data {
        // The spam filter has scored the message by now (its X-Spam
        // fields): spamtest/spamtestplus and env `spam_score` read it.
        let status = super::deliver::spam_status(facts.message, cfg.spam.junk_score);
        ctx.set_spam_status(status);
        let score = crate::spam::filter::score_field(facts.message).unwrap_or_default();
        ctx.set_env_variable("spam_score", Variable::from(score));
    }
    if let Some(from) = facts.from {
        ctx.set_envelope(::sieve::Envelope::From, from);
    }
    for to in &facts.rcpts {
        ctx.set_envelope(::sieve::Envelope::To, *to);
    }
    let now = unix_now();
    let mut writes: Vec<Write> = Vec::new();
    let mut verdict = Verdict::Accept;
    let mut input = Input::script(name.to_string(), compiled);
    while let Some(event) = ctx.run(input) {
        let event = event.map_err(|e| format!("{e:?}"))?;
        input = match event {
            Event::IncludeScript { name, optional } => {
                let found = match &name {
                    ::sieve::Script::Global(n) => super::global::cached(core, n),
                    ::sieve::Script::Personal(_) => None,
                };
                match found {
                    Some(s) => Input::script(
                        name,
                        super::compile_cached(&cfg.sieve, &s.text, Trust::Admin)
                            .map_err(|e| format!("included `{}` does not compile: {e}", s.name))?,
                    ),
                    None if optional => Input::False,
                    None => return Err(format!("included script {name:?} does not exist (only :global ones can be at SMTP stages)")),
                }
            }
            Event::Function { id, arguments } => {
                Input::FncResult(function(core, id, arguments, now, &mut writes)?)
            }
            Event::Reject { reason, .. } => {
                if verdict == Verdict::Accept {
                    verdict = Verdict::Reject(reply_of(&reason));
                }
                Input::True
            }
            Event::Discard => {
                if verdict == Verdict::Accept && matches!(stage, Stage::Rcpt | Stage::Data) {
                    verdict = Verdict::Discard;
                }
                Input::True
            }
            Event::MailboxExists { .. }
            | Event::ListContains { .. }
            | Event::DuplicateId { .. } => Input::False,
            // Delivery actions: nothing to do before delivery.
            _ => Input::True,
        };
    }
    Ok((verdict, writes))
}

/// The key-value functions, answered from the store and this run's own
/// writes.
fn function(
    core: &Core,
    id: u32,
    args: Vec<Variable>,
    now: i64,
    writes: &mut Vec<Write>,
) -> Result<Variable, String> {
    let arg = |i: usize| {
        args.get(i)
            .map(|v| v.to_string().into_owned())
            .unwrap_or_default()
    };
    let (ns, key) = (arg(0), arg(1));
    // This run's own writes come first, the latest winning.
    let pending = writes.iter().rev().find_map(|w| match w {
        Write::Set {
            ns: n,
            key: k,
            value,
            ..
        } if *n == ns && *k == key => Some(Some(value.clone())),
        Write::Delete { ns: n, key: k } if *n == ns && *k == key => Some(None),
        _ => None,
    });
    let read = |writes_first: Option<Option<String>>| -> Result<Option<String>, String> {
        match writes_first {
            Some(v) => Ok(v),
            None => kv::get(&core.store, &ns, &key, now).map_err(|e| e.to_string()),
        }
    };
    Ok(match id {
        KV_GET => match read(pending)? {
            Some(v) => match v.parse::<i64>() {
                Ok(n) => Variable::Integer(n),
                Err(_) => Variable::from(v),
            },
            None => Variable::from(String::new()),
        },
        KV_EXISTS => Variable::Integer(read(pending)?.is_some() as i64),
        KV_SET => {
            let ttl = args.get(3).map(|v| v.to_integer()).unwrap_or(0).max(1);
            writes.push(Write::Set {
                value: arg(2),
                ns,
                key,
                expires: now.saturating_add(ttl),
            });
            Variable::Integer(1)
        }
        KV_DELETE => {
            writes.push(Write::Delete { ns, key });
            Variable::Integer(1)
        }
        other => return Err(format!("unknown function #{other}")),
    })
}

/// The SMTP reply a `reject` reason makes: a reason that starts with a
/// 4xx or 5xx code is kept (with a class-matching enhanced code added
/// when it has none, RFC 3463); any other is a 550 5.7.1 with the reason
/// as its text. One line, printable ASCII.
pub fn reply_of(reason: &str) -> String {
    let line: String = reason
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(400)
        .collect();
    let line = line.trim();
    let b = line.as_bytes();
    let coded = b.len() >= 3
        && matches!(b[0], b'4' | b'5')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && (b.len() == 3 || b[3] == b' ');
    if !coded {
        let text = if line.is_empty() {
            "Refused by policy"
        } else {
            line
        };
        return format!("550 5.7.1 {text}");
    }
    let (code, rest) = line.split_at(3);
    let rest = rest.trim_start();
    let enhanced = rest.split(' ').next().is_some_and(|w| {
        let p: Vec<&str> = w.split('.').collect();
        p.len() == 3
            && p[0] == &code[..1]
            && p[1..]
                .iter()
                .all(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit()))
    });
    let text = if rest.is_empty() {
        "Refused by policy"
    } else {
        rest
    };
    if enhanced {
        format!("{code} {text}")
    } else {
        format!("{code} {}.7.1 {text}", &code[..1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_become_replies() {
        assert_eq!(reply_of("451 4.7.1 Greylisted"), "451 4.7.1 Greylisted");
        assert_eq!(reply_of("451 Try later"), "451 4.7.1 Try later");
        assert_eq!(reply_of("Go away"), "550 5.7.1 Go away");
        assert_eq!(reply_of(""), "550 5.7.1 Refused by policy");
        assert_eq!(reply_of("554"), "554 5.7.1 Refused by policy");
        // A class that does not match the code is not an enhanced code.
        assert_eq!(reply_of("451 5.7.1 x"), "451 4.7.1 5.7.1 x");
        // Not a code: 250 would accept, 4500 is four digits.
        assert_eq!(reply_of("250 ok"), "550 5.7.1 250 ok");
        assert_eq!(reply_of("4500 x"), "550 5.7.1 4500 x");
        assert_eq!(reply_of("550 5.7.1 one\r\n550 two"), "550 5.7.1 one");
        assert_eq!(reply_of("550 5.7.1 caf\u{e9}\x07"), "550 5.7.1 caf");
    }

    #[test]
    fn networks_of_clients() {
        assert_eq!(network("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            network("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn the_greylist_script_compiles_as_an_administrators() {
        let cfg = crate::config::SieveConfig::default();
        super::super::scripts::check_as(&cfg, GREYLIST, Trust::Admin).unwrap();
        // and is refused as a user's: it needs what users are not given.
        assert!(super::super::scripts::check(&cfg, GREYLIST).is_err());
    }
}
