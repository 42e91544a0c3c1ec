//! `petrel spam …`: what runs without a server. `evaluate` trains a
//! classifier on folders of messages (one message per file, as Maildir
//! and the SpamAssassin corpus keep them) and measures it on others.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;

use super::bayes::Model;

#[derive(Subcommand)]
pub enum SpamCmd {
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
    },
}

fn messages(dirs: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "json"))
            .collect();
        files.sort();
        for f in files {
            out.push(std::fs::read(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?);
        }
    }
    Ok(out)
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

pub fn run(cmd: &SpamCmd) -> anyhow::Result<()> {
    match cmd {
        SpamCmd::Evaluate {
            train_spam,
            train_ham,
            test_spam,
            test_ham,
            threshold,
        } => {
            let (ts, th) = (messages(train_spam)?, messages(train_ham)?);
            let (es, eh) = (messages(test_spam)?, messages(test_ham)?);
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
            Ok(())
        }
    }
}
