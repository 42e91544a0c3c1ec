//! The spam filter (issue 15), started: a statistical classifier
//! (Robinson's token probabilities combined by Fisher's inverse
//! chi-square, over single words and orthogonal sparse bigrams of the
//! decoded text, header names and values, and link hosts) with no I/O:
//! [`tokens`] reads a message, [`bayes::Model`] learns and scores.
//! `petrel spam evaluate` trains it on folders of messages and measures
//! it on others (`cargo xtask bench spam` on the SpamAssassin public
//! corpus). Not yet wired into delivery, the store or the other checks.

pub mod bayes;
pub mod cli;
pub mod tokens;

pub use tokens::tokens;
