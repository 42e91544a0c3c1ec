//! `[spam]`: the built-in spam filter (src/spam/).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SpamConfig {
    /// Score every message arriving on the MTA port.
    pub enable: bool,
    /// From this score a message goes to the recipient's Junk mailbox.
    pub junk_score: f64,
    /// From this score a message is refused at DATA with 550 5.7.1
    /// (0 never refuses).
    pub reject_score: f64,
    /// Rule scores that replace the built-in ones (`petrel spam rules`
    /// lists them); 0 turns a rule off.
    pub rules: BTreeMap<String, f64>,
    pub bayes: BayesConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BayesConfig {
    pub enable: bool,
    /// Messages of each kind (spam and ham) a database must have learnt
    /// before its opinion counts; an account's own database is used in
    /// place of the server's once it has that many.
    pub min_learns: u32,
    /// Learn from users moving mail into or out of their Junk mailbox
    /// (IMAP COPY/MOVE/STORE $Junk/$NotJunk, JMAP Email/set).
    pub learn_from_users: bool,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            enable: true,
            junk_score: 5.0,
            reject_score: 15.0,
            rules: BTreeMap::new(),
            bayes: BayesConfig::default(),
        }
    }
}

impl Default for BayesConfig {
    fn default() -> Self {
        BayesConfig {
            enable: true,
            min_learns: 200,
            learn_from_users: true,
        }
    }
}
