//! The spam filter (issue 15): rules ([`rules`]) and a statistical
//! classifier (Robinson's token probabilities combined by Fisher's
//! inverse chi-square, [`bayes`], over what [`tokens`] reads of a
//! message) add up to a score ([`filter`]); the token databases live in
//! the store ([`db`]), learnt from the CLI/API and from users moving mail
//! into and out of Junk ([`learn`]). The SMTP session asks the filter on
//! the MTA port and acts on its verdict. `petrel spam evaluate` measures
//! the classifier offline (`cargo xtask bench spam`).

pub mod bayes;
pub mod cli;
pub mod db;
pub mod dnsbl;
pub mod feeds;
pub mod filter;
pub mod heuristics;
pub mod learn;
pub mod pyzor;
pub mod reputation;
pub mod rules;
pub mod tokens;

pub use filter::{Filter, Report, Verdict};
pub use tokens::tokens;
