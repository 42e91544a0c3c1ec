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
    /// DNS blocklists (`[[spam.dnsbl]]`), none by default.
    pub dnsbl: Vec<DnsblZone>,
    /// Spam trap addresses (`*@domain` for a whole domain): accepted,
    /// never delivered, learnt as spam; other recipients of the same
    /// message get SPAM_TRAP.
    pub traps: Vec<String>,
    /// Messages larger than this (octets) are not scored.
    pub max_size: usize,
    /// Seconds all of a message's blocklist lookups may take together;
    /// those unanswered by then count as not listed.
    pub dnsbl_timeout: u64,
    pub reputation: ReputationConfig,
    /// Phishing feeds (`[[spam.feed]]`), none by default.
    pub feed: Vec<FeedConfig>,
    pub pyzor: PyzorConfig,
}

/// `[spam.pyzor]`: the Pyzor servers asked about each message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PyzorConfig {
    /// `host:port` (the public server: "public.pyzor.org:24441"); none
    /// by default.
    pub servers: Vec<String>,
    /// Reports from which a digest counts (PYZOR).
    pub count_min: u64,
    /// Report spam: mail to spam traps and mail users move into Junk.
    pub report: bool,
}

impl Default for PyzorConfig {
    fn default() -> Self {
        PyzorConfig {
            servers: Vec::new(),
            count_min: 5,
            report: true,
        }
    }
}

/// How a feed lists its URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    /// One URL per line (OpenPhish); `#` starts a comment line.
    Lines,
    /// CSV whose first line names a `url` column (PhishTank).
    Csv,
}

/// One `[[spam.feed]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FeedConfig {
    /// Names the rules (PHISH_URL_<NAME>, PHISH_HOST_<NAME>) and the copy
    /// in the store.
    pub name: String,
    pub url: String,
    #[serde(default = "lines")]
    pub format: FeedFormat,
    /// Seconds between downloads.
    #[serde(default = "six_hours")]
    pub refresh: u64,
    /// Seconds a download may take.
    #[serde(default = "one_minute")]
    pub timeout: u64,
    /// A link that is a listed URL.
    #[serde(default = "phish_score")]
    pub score: f64,
    /// A link to a host with a listed URL (0: not counted).
    #[serde(default = "phish_host_score")]
    pub domain_score: f64,
}

fn lines() -> FeedFormat {
    FeedFormat::Lines
}

fn six_hours() -> u64 {
    6 * 3600
}

fn one_minute() -> u64 {
    60
}

fn phish_score() -> f64 {
    6.0
}

fn phish_host_score() -> f64 {
    2.0
}

/// `[spam.reputation]`: what earlier mail from the same senders adds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReputationConfig {
    pub enable: bool,
    /// Seconds after which a sender's earlier mail counts half.
    pub half_life: u64,
    /// Messages (faded) a sender needs before its reputation counts.
    pub min_messages: u32,
    /// The reputation's score: the mean score of the sender's mail times this.
    pub weight: f64,
    /// Its most, up or down.
    pub max_score: f64,
    /// TXT zone mapping IPv4 addresses to ASNs (origin.asn.cymru.com's
    /// convention); empty: no ASN reputation.
    pub asn_zone: String,
    pub asn_zone6: String,
    /// Client address blocks neither rated nor counted (local clients).
    pub exempt: Vec<String>,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            enable: true,
            half_life: 7 * 86_400,
            min_messages: 5,
            weight: 0.5,
            max_score: 3.0,
            asn_zone: String::new(),
            asn_zone6: String::new(),
            exempt: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }
}

/// What a blocklist zone is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsblCheck {
    /// The client's address (reversed octets or nibbles under the zone).
    Ip,
    /// The envelope sender's and From's domains and the hosts of links.
    Domain,
    /// Hashes of the email addresses in the envelope sender, From,
    /// Reply-To and the text (lower case).
    Email,
    /// Hashes of each attachment's decoded content.
    Attachment,
}

/// The hash a hash blocklist is asked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashKind {
    Sha1,
    Sha256,
}

/// How a hash is written in the query name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashEncoding {
    Hex,
    /// Lower-case base32 without padding.
    Base32,
}

/// One `[[spam.dnsbl]]` zone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnsblZone {
    pub zone: String,
    #[serde(default = "ip_check")]
    pub check: DnsblCheck,
    /// Score of a listing (any answer in 127.0.0.0/8 but the zone's
    /// error codes in 127.255.255.0/24), unless `answers` maps them.
    #[serde(default = "listed_score")]
    pub score: f64,
    /// Answer address → score; when given, other answers count nothing.
    #[serde(default)]
    pub answers: BTreeMap<String, f64>,
    /// The rule id in X-Spam-Result (default: RBL_, DBL_ or HBL_ and
    /// the zone).
    #[serde(default)]
    pub id: String,
    /// For `check = "email"` and `"attachment"`.
    #[serde(default = "sha1")]
    pub hash: HashKind,
    #[serde(default = "hex")]
    pub encoding: HashEncoding,
}

fn sha1() -> HashKind {
    HashKind::Sha1
}

fn hex() -> HashEncoding {
    HashEncoding::Hex
}

fn ip_check() -> DnsblCheck {
    DnsblCheck::Ip
}

fn listed_score() -> f64 {
    3.0
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
    /// Learn from the filter's own confident verdicts into the server's
    /// database: spam from `auto-learn-spam`, ham up to `auto-learn-ham`,
    /// scored without the classifier and reputation.
    pub auto_learn: bool,
    pub auto_learn_spam: f64,
    pub auto_learn_ham: f64,
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            enable: true,
            junk_score: 5.0,
            reject_score: 15.0,
            rules: BTreeMap::new(),
            bayes: BayesConfig::default(),
            dnsbl: Vec::new(),
            dnsbl_timeout: 3,
            max_size: 2 * 1024 * 1024,
            traps: Vec::new(),
            reputation: ReputationConfig::default(),
            feed: Vec::new(),
            pyzor: PyzorConfig::default(),
        }
    }
}

impl Default for BayesConfig {
    fn default() -> Self {
        BayesConfig {
            enable: true,
            min_learns: 200,
            learn_from_users: true,
            auto_learn: true,
            auto_learn_spam: 12.0,
            auto_learn_ham: 0.1,
        }
    }
}
