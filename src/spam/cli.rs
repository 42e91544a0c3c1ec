//! `petrel spam …`: what runs without a server. `evaluate` trains a
//! classifier on folders of messages (one message per file, as Maildir
//! and the SpamAssassin corpus keep them) and measures it on others.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;

use super::bayes::Model;

#[derive(Subcommand)]
pub enum SpamCmd {
    /// Teach the running server's filter: each PATH is a folder of
    /// messages (one per file), a Maildir (its cur/ and new/) or an mbox
    /// file.
    Train {
        /// Spam to learn.
        #[arg(long)]
        spam: Vec<PathBuf>,
        /// Wanted mail (ham) to learn.
        #[arg(long)]
        ham: Vec<PathBuf>,
        /// Learn for this account as well as for the server.
        #[arg(long)]
        account: Option<String>,
    },
    /// Score a message as delivery would; print the rules that fired.
    Classify {
        file: PathBuf,
        /// Use this account's database when it has learnt enough.
        #[arg(long)]
        account: Option<String>,
    },
    /// The filter's settings, every rule with its score, what it learnt.
    Rules,
    /// Every sender's reputation (address, ASN, domain, sender), worst first.
    Reputation,
    /// Train on folders of spam and ham, then classify other folders and
    /// print false positives, false negatives and speed (offline; one
    /// message per file; `*.json` files are skipped).
    Evaluate {
        #[arg(long, required = true)]
        train_spam: Vec<PathBuf>,
        #[arg(long, required = true)]
        train_ham: Vec<PathBuf>,
        #[arg(long, required = true)]
        test_spam: Vec<PathBuf>,
        #[arg(long, required = true)]
        test_ham: Vec<PathBuf>,
        /// Score (0 to 1) from which a message is spam.
        #[arg(long, default_value_t = 0.8)]
        threshold: f64,
        /// Also list every test message the whole filter gets wrong at
        /// the default junk score, with its score and the rules it fired.
        #[arg(long)]
        misses: bool,
    },
}

/// The messages of an mbox file (mboxo and mboxrd: one `>` taken off
/// quoted `From ` lines).
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in data.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            out.extend(cur.take());
            cur = Some(Vec::new());
            continue;
        }
        let Some(m) = cur.as_mut() else { continue };
        let quoted = line.iter().position(|b| *b != b'>').unwrap_or(0);
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            m.extend_from_slice(&line[1..]);
        } else {
            m.extend_from_slice(line);
        }
    }
    out.extend(cur);
    out
}

/// The messages at `path`: a file (an mbox when it starts with `From `,
/// else one message), a Maildir, or a folder of one message per file.
pub fn read_messages(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let err = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    if path.is_file() {
        let data = std::fs::read(path).map_err(err)?;
        return Ok(if data.starts_with(b"From ") {
            split_mbox(&data)
        } else {
            vec![data]
        });
    }
    let maildir: Vec<PathBuf> = ["cur", "new"]
        .iter()
        .map(|d| path.join(d))
        .filter(|p| p.is_dir())
        .collect();
    if maildir.is_empty() {
        messages(&[path.to_path_buf()])
    } else {
        messages(&maildir)
    }
}

fn messages(dirs: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    message_files(dirs)?
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display())))
        .collect()
}

/// The message files of `dirs`, in name order (the corpus's `.json`
/// descriptions left out).
fn message_files(dirs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "json"))
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

/// The rules a message fires offline ([`offline`]): no sender checks.
fn fired_rules(m: &[u8]) -> Vec<&'static str> {
    match mail_parser::MessageParser::default().parse(m) {
        Some(msg) => super::rules::check(&msg, &offline(&msg)),
        None => Vec::new(),
    }
}

/// What the rules know of a message offline: its arrival is the date of
/// its newest Received field (as it was at delivery), so the date rules
/// see an old corpus as they would have then.
fn offline<'a>(msg: &mail_parser::Message<'_>) -> super::rules::Context<'a> {
    let now = msg
        .header_values(mail_parser::HeaderName::Received)
        .next()
        .and_then(|v| v.as_received())
        .and_then(|r| r.date())
        .map_or(0, |d| d.to_timestamp());
    super::rules::Context {
        now,
        ..Default::default()
    }
}

/// As the filter reads a message at delivery (parsed once, read once):
/// the rules that fire offline ([`fired_rules`]) and the classifier's
/// tokens.
fn delivered(m: &[u8]) -> (Vec<&'static str>, Vec<u64>) {
    let Some(msg) = mail_parser::MessageParser::default().parse(m) else {
        return (Vec::new(), super::tokens(m));
    };
    let ctx = offline(&msg);
    let read = super::rules::Reading::of(&msg);
    let fired = super::rules::check_read(&msg, &read, &ctx);
    let tokens = super::tokens::tokens_read(&msg, &read, &super::rules::content_only(&fired));
    (fired, tokens)
}

/// Each rule's share of messages it fired on, in the training spam and
/// ham and the test spam and ham (how its score can be judged).
fn rule_hits(sets: &[&Vec<Vec<u8>>; 4]) {
    let mut counts: std::collections::BTreeMap<&str, [usize; 4]> = Default::default();
    for (i, set) in sets.iter().enumerate() {
        for m in set.iter() {
            for id in fired_rules(m) {
                counts.entry(id).or_default()[i] += 1;
            }
        }
    }
    println!("rule hits (% of messages): train spam, train ham, test spam, test ham");
    for (id, c) in counts {
        let pct = |i: usize| 100.0 * c[i] as f64 / sets[i].len().max(1) as f64;
        println!(
            "  {id:<26} {:>6.2} {:>6.2} {:>6.2} {:>6.2}",
            pct(0),
            pct(1),
            pct(2),
            pct(3)
        );
    }
}

fn names(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| {
            Path::new(d).file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// The API takes up to this much of a message (the classifier reads
/// less of its text).
const MAX_SENT: usize = 1024 * 1024;

fn encoded(m: &[u8]) -> String {
    crate::directory::sasl::b64_encode(&m[..m.len().min(MAX_SENT)])
}

fn api(cli: &crate::cli::Cli) -> anyhow::Result<crate::cli::Api> {
    crate::cli::Api::new(&cli.url, cli.credentials.as_deref(), cli.ca_file.as_deref())
}

pub fn run(cli: &crate::cli::Cli, cmd: &SpamCmd) -> anyhow::Result<()> {
    match cmd {
        SpamCmd::Train { spam, ham, account } => {
            anyhow::ensure!(
                !spam.is_empty() || !ham.is_empty(),
                "nothing to learn: give --spam PATH and/or --ham PATH"
            );
            let api = api(cli)?;
            let mut last = serde_json::Value::Null;
            for (paths, is_spam) in [(spam, true), (ham, false)] {
                for p in paths {
                    let msgs = read_messages(p)?;
                    let bar = indicatif::ProgressBar::new(msgs.len() as u64);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{prefix} {bar:40} {pos}/{len} {per_sec} ETA {eta}",
                        )
                        .expect("template"),
                    );
                    bar.set_prefix(format!(
                        "{} ({})",
                        p.display(),
                        if is_spam { "spam" } else { "ham" }
                    ));
                    let mut learnt = 0;
                    for m in &msgs {
                        last = api.call(
                            "POST",
                            "/api/spam/learn",
                            Some(serde_json::json!({
                                "message": encoded(m),
                                "spam": is_spam,
                                "account": account,
                            })),
                        )?;
                        learnt += 1;
                        bar.inc(1);
                    }
                    bar.finish_and_clear();
                    println!(
                        "{}: learnt {learnt} messages as {}",
                        p.display(),
                        if is_spam { "spam" } else { "ham" }
                    );
                }
            }
            println!(
                "The {} database has learnt {} spam and {} ham messages.",
                if account.is_some() {
                    "account's"
                } else {
                    "server's"
                },
                last["spam_learnt"],
                last["ham_learnt"]
            );
            Ok(())
        }
        SpamCmd::Classify { file, account } => {
            let raw =
                std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let r = api(cli)?.call(
                "POST",
                "/api/spam/classify",
                Some(serde_json::json!({ "message": encoded(&raw), "account": account })),
            )?;
            println!(
                "score {} (junk from {}): {}",
                r["score"],
                r["required"],
                r["verdict"].as_str().unwrap_or("")
            );
            match r["bayes"].as_f64() {
                Some(p) => println!(
                    "classifier: spam probability {:.3} ({} database)",
                    p,
                    r["bayes_database"].as_str().unwrap_or("")
                ),
                None => println!("classifier: not used (no database has learnt enough yet)"),
            }
            for h in r["rules"].as_array().into_iter().flatten() {
                println!(
                    "{:>7.2}  {:<22} {}",
                    h["score"].as_f64().unwrap_or(0.0),
                    h["id"].as_str().unwrap_or(""),
                    h["description"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        SpamCmd::Reputation => {
            let r = api(cli)?.call("GET", "/api/spam/reputation", None)?;
            println!(
                "reputation {}; counts from {} messages",
                if r["enable"] == true { "on" } else { "off" },
                r["min_messages"]
            );
            println!(
                "{:>8}  {:>10}  {:>6}  sender",
                "messages", "mean score", "adds"
            );
            for s in r["senders"].as_array().into_iter().flatten() {
                println!(
                    "{:>8.2}  {:>10.2}  {:>6.2}  {}",
                    s["messages"].as_f64().unwrap_or(0.0),
                    s["mean_score"].as_f64().unwrap_or(0.0),
                    s["adds"].as_f64().unwrap_or(0.0),
                    s["sender"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        SpamCmd::Rules => {
            let r = api(cli)?.call("GET", "/api/spam", None)?;
            println!(
                "filter {}; junk from {}, refused from {} (0: never)",
                if r["enable"] == true { "on" } else { "off" },
                r["junk_score"],
                r["reject_score"]
            );
            let b = &r["bayes"];
            println!(
                "classifier {}: learnt {} spam and {} ham (counts from {} of each); learning from users {}",
                if b["enable"] == true { "on" } else { "off" },
                b["spam_learnt"],
                b["ham_learnt"],
                b["min_learns"],
                if b["learn_from_users"] == true { "on" } else { "off" }
            );
            for f in r["feeds"].as_array().into_iter().flatten() {
                let fetched = f["fetched"].as_i64().unwrap_or(0);
                let when = if fetched == 0 {
                    "not fetched yet".to_string()
                } else {
                    format!("fetched {} s ago", crate::core::unix_now() - fetched)
                };
                println!(
                    "phishing feed {}: {} URLs on {} hosts, {when} ({})",
                    f["name"].as_str().unwrap_or(""),
                    f["urls"],
                    f["hosts"],
                    f["url"].as_str().unwrap_or("")
                );
            }
            for rule in r["rules"].as_array().into_iter().flatten() {
                let (score, default) = (
                    rule["score"].as_f64().unwrap_or(0.0),
                    rule["default"].as_f64().unwrap_or(0.0),
                );
                let note = if score == default {
                    String::new()
                } else {
                    format!(" (built in: {default})")
                };
                println!(
                    "{:>7.2}  {:<22} {}{note}",
                    score,
                    rule["id"].as_str().unwrap_or(""),
                    rule["description"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        SpamCmd::Evaluate {
            train_spam,
            train_ham,
            test_spam,
            test_ham,
            threshold,
            misses,
        } => {
            // As delivery and learning see them: X-Spam-* fields removed.
            let read = |dirs: &[PathBuf]| -> anyhow::Result<Vec<Vec<u8>>> {
                Ok(messages(dirs)?
                    .iter()
                    .map(|m| super::filter::strip_headers(m).into_owned())
                    .collect())
            };
            let (ts, th) = (read(train_spam)?, read(train_ham)?);
            let (es, eh) = (read(test_spam)?, read(test_ham)?);
            let mut model = Model::default();
            let t0 = Instant::now();
            for m in &ts {
                model.train(&super::tokens(m), true);
            }
            for m in &th {
                model.train(&super::tokens(m), false);
            }
            let train_secs = t0.elapsed().as_secs_f64();
            println!(
                "trained: {} spam ({}), {} ham ({}), {} tokens, {:.0} msg/s",
                ts.len(),
                names(train_spam),
                th.len(),
                names(train_ham),
                model.tokens.len(),
                (ts.len() + th.len()) as f64 / train_secs
            );
            let t0 = Instant::now();
            let score = |m: &Vec<u8>| model.score(&super::tokens(m)).probability;
            let spam_scores: Vec<f64> = es.iter().map(score).collect();
            let ham_scores: Vec<f64> = eh.iter().map(score).collect();
            let secs = t0.elapsed().as_secs_f64();
            // The whole filter as delivery runs it (built-in scores, no
            // sender checks or dates: the corpus is old), timed apart.
            let t1 = Instant::now();
            let cfg = crate::config::SpamConfig::default();
            let filter_score = |m: &Vec<u8>| {
                let (mut fired, tokens) = delivered(m);
                let p = model.score(&tokens).probability;
                fired.extend(super::rules::bayes_band(p));
                super::filter::add_up(&cfg, fired, Vec::new()).0
            };
            let spam_full: Vec<f64> = es.iter().map(filter_score).collect();
            let ham_full: Vec<f64> = eh.iter().map(filter_score).collect();
            let full_secs = t1.elapsed().as_secs_f64();
            let bytes: usize = es.iter().chain(&eh).map(Vec::len).sum();
            let fn_ = spam_scores.iter().filter(|s| **s < *threshold).count();
            let fp = ham_scores.iter().filter(|s| **s >= *threshold).count();
            let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
            println!(
                "tested: {} spam ({}), {} ham ({}), threshold {threshold}",
                es.len(),
                names(test_spam),
                eh.len(),
                names(test_ham)
            );
            println!(
                "false positives: {fp} of {} ham ({:.2} %)",
                eh.len(),
                pct(fp, eh.len())
            );
            println!(
                "false negatives: {fn_} of {} spam ({:.2} %)",
                es.len(),
                pct(fn_, es.len())
            );
            let unsure = spam_scores
                .iter()
                .chain(&ham_scores)
                .filter(|s| (0.2..*threshold).contains(*s))
                .count();
            println!("unsure (0.2 to the threshold): {unsure}");
            for t in [0.5, 0.6, 0.7, 0.8, 0.9, 0.95] {
                let fp = ham_scores.iter().filter(|s| **s >= t).count();
                let fn_ = spam_scores.iter().filter(|s| **s < t).count();
                println!(
                    "  at {t:.2}: false positives {:.2} %, false negatives {:.2} %",
                    pct(fp, eh.len()),
                    pct(fn_, es.len())
                );
            }
            println!(
                "classification: {:.0} msg/s on one core ({:.1} KB average)",
                (es.len() + eh.len()) as f64 / secs,
                bytes as f64 / (es.len() + eh.len()).max(1) as f64 / 1024.0
            );
            println!(
                "the whole filter (classifier bands + rules, built-in scores, junk from 5.0):"
            );
            for t in [3.0, 4.0, 5.0, 6.0, 8.0] {
                let fp = ham_full.iter().filter(|s| **s >= t).count();
                let fn_ = spam_full.iter().filter(|s| **s < t).count();
                println!(
                    "  from {t:.1}: false positives {fp} ({:.2} %), false negatives {fn_} ({:.2} %)",
                    pct(fp, eh.len()),
                    pct(fn_, es.len())
                );
            }
            println!(
                "whole filter: {:.0} msg/s on one core",
                (es.len() + eh.len()) as f64 / full_secs
            );
            rule_hits(&[&ts, &th, &es, &eh]);
            if *misses {
                // The messages read above, in the order of their files.
                let wrong = |files: Vec<PathBuf>, set: &[Vec<u8>], scores: &[f64], spam: bool| {
                    for ((f, m), score) in files.iter().zip(set).zip(scores) {
                        if (*score >= cfg.junk_score) != spam {
                            let (fired, tokens) = delivered(m);
                            let p = model.score(&tokens).probability;
                            let kind = if spam {
                                "missed spam"
                            } else {
                                "false positive"
                            };
                            println!(
                                "{kind} {score:6.2} (classifier {p:.2}) {}: {}",
                                f.display(),
                                fired.join(" ")
                            );
                        }
                    }
                };
                wrong(message_files(test_spam)?, &es, &spam_full, true);
                wrong(message_files(test_ham)?, &eh, &ham_full, false);
            }
            Ok(())
        }
    }
}
