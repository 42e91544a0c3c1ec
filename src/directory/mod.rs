//! The internal directory: domains, accounts, aliases, groups and catch-alls,
//! kept in the KV store. Every lookup reads the store, so a change takes
//! effect for the next session or delivery.

pub mod password;
mod principals;
pub mod ratelimit;
pub mod sasl;
pub mod scram;
pub mod strength;
pub mod token;

use serde::{Deserialize, Serialize};

use crate::store::changelog::Op;
use crate::store::{Store, StoreError, Txn};

const DOMAIN: u8 = b'd';
const ACCOUNT: u8 = b'a';
const ADDRESS: u8 = b'n';
const GROUP: u8 = b'g';
const SEQ_KEY: &[u8] = b"c/directory-seq";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    /// Account address that receives mail for unknown local parts.
    #[serde(default)]
    pub catch_all: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: u32,
    /// The login, which is also the primary address.
    pub address: String,
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub secret_hash: String,
    /// SCRAM-SHA-256 secret derived from the same password
    /// ([`scram::ScramSecret::encode`]); absent for accounts whose password
    /// was set before SCRAM existed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scram_sha256: Option<String>,
    /// The password is one of the well-known ones
    /// ([`strength::well_known`]), found when it was set: logins, SCRAM
    /// included, are refused while `passwords.block-well-known` is on.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub password_well_known: bool,
    /// The password was rated when it was set (this version on); older
    /// accounts are rated at their next plaintext login.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub password_rated: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Bytes; 0 means unlimited.
    #[serde(default)]
    pub quota_bytes: u64,
    /// Messages; 0 means unlimited.
    #[serde(default)]
    pub quota_messages: u64,
    pub role: Role,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: u32,
    pub address: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
enum Target {
    Account(u32),
    Group(u32),
}

/// What an address means to this server.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    /// Local accounts that receive it (a group expands to several), and
    /// addresses in other domains a group forwards it to.
    Local {
        accounts: Vec<u32>,
        forward: Vec<String>,
    },
    /// The domain is ours but nobody has this address.
    Unknown,
    /// Not one of our domains.
    Remote,
}

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, DirError>;

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialise")
}

fn parse<T: for<'a> Deserialize<'a>>(v: &[u8]) -> std::result::Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Backend(format!("corrupt record: {e}")))
}

/// Lower-cases the domain and checks the shape `local@domain`.
pub fn normalize_address(addr: &str) -> Result<String> {
    let addr = addr.trim();
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or_else(|| DirError::Invalid(format!("`{addr}` is not an address (local@domain)")))?;
    if local.is_empty()
        || local.len() > 64
        || local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(DirError::Invalid(format!(
            "`{addr}` has an invalid local part"
        )));
    }
    let domain = normalize_domain(domain)?;
    Ok(format!("{}@{domain}", local.to_lowercase()))
}

/// A login: an address, or a bare name (such as `admin`) for accounts that
/// administer the server without a mail domain.
pub fn normalize_login(login: &str) -> Result<String> {
    let login = login.trim();
    if login.contains('@') {
        return normalize_address(login);
    }
    let ok = !login.is_empty()
        && login.len() <= 64
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(login.to_ascii_lowercase())
    } else {
        Err(DirError::Invalid(format!(
            "`{login}` is neither an address nor a valid login name"
        )))
    }
}

pub fn normalize_domain(d: &str) -> Result<String> {
    let d = d.trim().trim_end_matches('.').to_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(d)
    } else {
        Err(DirError::Invalid(format!(
            "`{d}` is not a valid domain name"
        )))
    }
}

/// What the throttle counts an attempt against: the account (whichever
/// of its addresses was typed), or the login as typed when there is none.
fn throttle_key(acct: Option<&Account>, login: &str) -> String {
    match acct {
        Some(a) => a.address.clone(),
        None => login.trim().to_lowercase(),
    }
}

fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[derive(Clone)]
pub struct Directory {
    store: Store,
    verified: std::sync::Arc<password::VerifyCache>,
    /// The login throttle (README: Security).
    pub guard: std::sync::Arc<ratelimit::LoginGuard>,
    /// Accounts disabled or deleted while sessions may hold them.
    pub revoked: std::sync::Arc<Revocations>,
    passwords: crate::config::PasswordsConfig,
    /// Separates a local part from its detail (`joe+lists@`); empty: none.
    delimiter: String,
}

/// The outcome of a password check.
#[derive(Debug)]
pub enum Login {
    Ok(Account),
    /// A wrong password, an unknown login or a disabled account: one
    /// answer for all three.
    Failed,
    /// Refused by the throttle before the password was looked at.
    Throttled,
    /// The password is right but well-known (RFC 9051 §11.7): the
    /// account is blocked until it gets a new one.
    Blocked(Account),
}

/// Accounts that were disabled or deleted, so that sessions logged in to
/// them end (within a second: sessions wait on [`Revocations::watch`]).
pub struct Revocations {
    ids: std::sync::Mutex<std::collections::HashSet<u32>>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Revocations {
    fn new() -> Self {
        Revocations {
            ids: Default::default(),
            generation: tokio::sync::watch::channel(0).0,
        }
    }

    fn set(&self, id: u32, revoked: bool) {
        let changed = {
            let mut ids = self.ids.lock().expect("revocations lock");
            if revoked {
                ids.insert(id)
            } else {
                ids.remove(&id)
            }
        };
        if changed {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// True when the account may no longer be used.
    pub fn is_revoked(&self, id: u32) -> bool {
        self.ids.lock().expect("revocations lock").contains(&id)
    }

    /// Changes whenever an account is revoked (or enabled again).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// Resolves when the logged-in account `me` is revoked; never otherwise
/// (nor without one). Sessions wait on it beside their reads.
pub async fn until_revoked(
    dir: &Directory,
    watch: &mut tokio::sync::watch::Receiver<u64>,
    me: Option<u32>,
) {
    let Some(id) = me else {
        return std::future::pending().await;
    };
    loop {
        if dir.revoked.is_revoked(id) {
            return;
        }
        if watch.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct NewAccount {
    pub address: String,
    pub secret: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub quota_bytes: u64,
    #[serde(default)]
    pub quota_messages: u64,
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AccountPatch {
    pub secret: Option<String>,
    pub name: Option<String>,
    pub quota_bytes: Option<u64>,
    pub quota_messages: Option<u64>,
    pub role: Option<Role>,
    pub enabled: Option<bool>,
    #[serde(default)]
    pub add_aliases: Vec<String>,
    #[serde(default)]
    pub remove_aliases: Vec<String>,
}

fn next_id(txn: &mut Txn<'_>) -> std::result::Result<u32, StoreError> {
    let cur = txn
        .get(SEQ_KEY)?
        .and_then(|v| v.try_into().ok().map(u32::from_be_bytes))
        .unwrap_or(0);
    let next = cur + 1;
    txn.put(SEQ_KEY.to_vec(), next.to_be_bytes().to_vec());
    Ok(next)
}

/// Inside a transaction: fails unless `addr` is free and its domain is ours.
fn claim_address(txn: &mut Txn<'_>, addr: &str, target: Target) -> Result<()> {
    if addr.contains('@') && txn.get(&key(DOMAIN, domain_of(addr).as_bytes()))?.is_none() {
        return Err(DirError::Invalid(format!(
            "the domain of `{addr}` is not a local domain: create it first"
        )));
    }
    let k = key(ADDRESS, addr.as_bytes());
    if txn.get(&k)?.is_some() {
        return Err(DirError::Conflict(format!(
            "the address `{addr}` is already in use"
        )));
    }
    txn.put(k, json(&target));
    Ok(())
}

/// Runs a directory transaction, keeping directory errors apart from store ones.
async fn dir_txn<R: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&mut Txn<'_>) -> Result<R> + Send + 'static,
) -> Result<R> {
    let (etx, erx) = std::sync::mpsc::channel();
    let r = store
        .transact(move |txn| {
            f(txn).map_err(|e| {
                let msg = e.to_string();
                let _ = etx.send(e);
                StoreError::Aborted(msg)
            })
        })
        .await;
    match r {
        Ok(v) => Ok(v),
        Err(StoreError::Aborted(m)) => Err(erx.try_recv().unwrap_or(DirError::Invalid(m))),
        Err(e) => Err(e.into()),
    }
}

impl Directory {
    /// `verify_cache_ttl`: seconds a verified password is remembered
    /// (`auth.cache-ttl`; 0 = every login runs argon2id).
    pub fn new(
        store: Store,
        auth: &crate::config::AuthConfig,
        passwords: &crate::config::PasswordsConfig,
    ) -> Self {
        Directory {
            store,
            verified: std::sync::Arc::new(password::VerifyCache::new(auth.cache_ttl)),
            guard: std::sync::Arc::new(ratelimit::LoginGuard::new(auth)),
            revoked: std::sync::Arc::new(Revocations::new()),
            passwords: passwords.clone(),
            delimiter: String::new(),
        }
    }

    /// Mail to `local` + `delimiter` + anything `@domain` that has no
    /// address of its own goes to `local@domain` (RFC 5233's
    /// subaddresses); `""` turns this off.
    pub fn with_recipient_delimiter(mut self, delimiter: &str) -> Self {
        self.delimiter = delimiter.to_string();
        self
    }

    /// The address without its detail (`joe+lists@d` → `joe@d`), when it
    /// has one.
    fn without_detail(&self, address: &str) -> Option<String> {
        if self.delimiter.is_empty() {
            return None;
        }
        let (local, domain) = address.rsplit_once('@')?;
        let (base, _) = local.split_once(self.delimiter.as_str())?;
        (!base.is_empty()).then(|| format!("{base}@{domain}"))
    }

    /// Whether a login that proved `secret` (None: a mechanism that never
    /// shows it, SCRAM) to `a` is refused because the password is a
    /// well-known one: as rated when it was set, or, for a password set
    /// before passwords were rated, rated now.
    pub async fn well_known_blocked(&self, a: &Account, secret: Option<&str>) -> bool {
        if !self.passwords.block_well_known {
            return false;
        }
        if a.password_well_known {
            return true;
        }
        match secret {
            Some(s) if !a.password_rated => {
                let lax = crate::config::PasswordsConfig {
                    min_score: 0,
                    block_well_known: false,
                };
                matches!(
                    strength::rate_isolated(s, &a.address, "", &lax).await,
                    Ok(true)
                )
            }
            _ => false,
        }
    }

    // ---- domains ----

    pub async fn create_domain(&self, name: &str) -> Result<Domain> {
        let name = normalize_domain(name)?;
        let d = Domain {
            name: name.clone(),
            catch_all: None,
        };
        let rec = d.clone();
        dir_txn(&self.store, move |txn| {
            let k = key(DOMAIN, name.as_bytes());
            if txn.get(&k)?.is_some() {
                return Err(DirError::Conflict(format!(
                    "the domain `{name}` exists already"
                )));
            }
            txn.put(k, json(&rec));
            Ok(())
        })
        .await?;
        Ok(d)
    }

    pub async fn set_catch_all(&self, domain: &str, target: Option<String>) -> Result<Domain> {
        let name = normalize_domain(domain)?;
        let target = target.map(|t| normalize_address(&t)).transpose()?;
        dir_txn(&self.store, move |txn| {
            let k = key(DOMAIN, name.as_bytes());
            let mut d: Domain = match txn.get(&k)? {
                Some(v) => parse(&v)?,
                None => return Err(DirError::NotFound(format!("no domain `{name}`"))),
            };
            d.catch_all = target;
            txn.put(k, json(&d));
            Ok(d)
        })
        .await
    }

    pub async fn delete_domain(&self, name: &str) -> Result<()> {
        let name = normalize_domain(name)?;
        let in_use = self
            .store
            .scan_prefix(key(ADDRESS, b""))
            .await?
            .into_iter()
            .any(|(k, _)| domain_of(&String::from_utf8_lossy(&k[1..])) == name);
        if in_use {
            return Err(DirError::Conflict(format!(
                "the domain `{name}` still has accounts, aliases or groups: delete them first"
            )));
        }
        dir_txn(&self.store, move |txn| {
            let k = key(DOMAIN, name.as_bytes());
            if txn.get(&k)?.is_none() {
                return Err(DirError::NotFound(format!("no domain `{name}`")));
            }
            txn.delete(k);
            Ok(())
        })
        .await
    }

    pub async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.store
            .scan_prefix(vec![DOMAIN])
            .await?
            .iter()
            .map(|(_, v)| parse(v).map_err(Into::into))
            .collect()
    }

    pub async fn get_domain(&self, name: &str) -> Result<Option<Domain>> {
        let Ok(name) = normalize_domain(name) else {
            return Ok(None);
        };
        match self.store.get(key(DOMAIN, name.as_bytes())).await? {
            Some(v) => Ok(Some(parse(&v)?)),
            None => Ok(None),
        }
    }

    // ---- accounts ----

    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let address = normalize_login(&new.address)?;
        // A bare login name (`admin`) has no mailbox: administrators only.
        if !address.contains('@') && new.role != Some(Role::Admin) {
            return Err(DirError::Invalid(format!(
                "`{address}` is not an address (local@domain): a mail account needs one; only an administrator (--admin) may have a bare login name"
            )));
        }
        let aliases = new
            .aliases
            .iter()
            .map(|a| normalize_address(a))
            .collect::<Result<Vec<_>>>()?;
        if new.secret.is_empty() {
            return Err(DirError::Invalid("a password (secret) is required".into()));
        }
        let well_known = strength::rate_isolated(&new.secret, &address, &new.name, &self.passwords)
            .await
            .map_err(DirError::Invalid)?;
        let (secret_hash, scram) = password::hash_with_scram(&new.secret).await?;
        let mut acct = Account {
            id: 0,
            address,
            name: new.name,
            secret_hash,
            scram_sha256: Some(scram),
            password_well_known: well_known,
            password_rated: true,
            aliases,
            quota_bytes: new.quota_bytes,
            quota_messages: new.quota_messages,
            role: new.role.unwrap_or(Role::User),
            enabled: true,
        };
        let a = acct.clone();
        acct.id = dir_txn(&self.store, move |txn| {
            let mut a = a;
            a.id = next_id(txn)?;
            claim_address(txn, &a.address, Target::Account(a.id))?;
            for alias in &a.aliases {
                claim_address(txn, alias, Target::Account(a.id))?;
            }
            txn.put(key(ACCOUNT, &a.id.to_be_bytes()), json(&a));
            principals::log(txn, a.id, Op::Created)?;
            Ok(a.id)
        })
        .await?;
        Ok(acct)
    }

    pub async fn update_account(&self, address: &str, patch: AccountPatch) -> Result<Account> {
        let address = normalize_login(address)?;
        let new_hash = match &patch.secret {
            Some(s) if s.is_empty() => {
                return Err(DirError::Invalid("the password must not be empty".into()))
            }
            Some(s) => {
                let name = patch.name.clone().unwrap_or_default();
                let well_known = strength::rate_isolated(s, &address, &name, &self.passwords)
                    .await
                    .map_err(DirError::Invalid)?;
                let (h, scram) = password::hash_with_scram(s).await?;
                Some((h, scram, well_known))
            }
            None => None,
        };
        let add = patch
            .add_aliases
            .iter()
            .map(|a| normalize_address(a))
            .collect::<Result<Vec<_>>>()?;
        let remove = patch
            .remove_aliases
            .iter()
            .map(|a| normalize_address(a))
            .collect::<Result<Vec<_>>>()?;
        dir_txn(&self.store, move |txn| {
            let mut a = account_in_txn(txn, &address)?;
            if let Some((h, scram, well_known)) = new_hash {
                a.secret_hash = h;
                a.scram_sha256 = Some(scram);
                a.password_well_known = well_known;
                a.password_rated = true;
            }
            if let Some(n) = patch.name {
                a.name = n;
            }
            if let Some(q) = patch.quota_bytes {
                a.quota_bytes = q;
            }
            if let Some(q) = patch.quota_messages {
                a.quota_messages = q;
            }
            if let Some(r) = patch.role {
                a.role = r;
            }
            if let Some(e) = patch.enabled {
                a.enabled = e;
            }
            for alias in remove {
                if !a.aliases.contains(&alias) {
                    return Err(DirError::NotFound(format!(
                        "`{alias}` is not an alias of `{}`",
                        a.address
                    )));
                }
                a.aliases.retain(|x| x != &alias);
                txn.delete(key(ADDRESS, alias.as_bytes()));
            }
            for alias in add {
                claim_address(txn, &alias, Target::Account(a.id))?;
                a.aliases.push(alias);
            }
            txn.put(key(ACCOUNT, &a.id.to_be_bytes()), json(&a));
            principals::log(txn, a.id, Op::Updated)?;
            Ok(a)
        })
        .await
        .inspect(|a| self.revoked.set(a.id, !a.enabled))
    }

    /// Removes the account and its addresses; returns its id so the caller
    /// can remove its mail.
    pub async fn delete_account(&self, address: &str) -> Result<Account> {
        let address = normalize_login(address)?;
        dir_txn(&self.store, move |txn| {
            let a = account_in_txn(txn, &address)?;
            txn.delete(key(ADDRESS, a.address.as_bytes()));
            for alias in &a.aliases {
                txn.delete(key(ADDRESS, alias.as_bytes()));
            }
            txn.delete(key(ACCOUNT, &a.id.to_be_bytes()));
            Directory::delete_tokens_in(txn, a.id)?;
            principals::log(txn, a.id, Op::Destroyed)?;
            Ok(a)
        })
        .await
        .inspect(|a| self.revoked.set(a.id, true))
    }

    pub async fn get_account(&self, address: &str) -> Result<Option<Account>> {
        let Ok(address) = normalize_login(address) else {
            return Ok(None);
        };
        match self.store.get(key(ADDRESS, address.as_bytes())).await? {
            Some(v) => match parse::<Target>(&v)? {
                Target::Account(id) => self.account_by_id(id).await,
                Target::Group(_) => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub async fn account_by_id(&self, id: u32) -> Result<Option<Account>> {
        match self.store.get(key(ACCOUNT, &id.to_be_bytes())).await? {
            Some(v) => Ok(Some(parse(&v)?)),
            None => Ok(None),
        }
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.store
            .scan_prefix(vec![ACCOUNT])
            .await?
            .iter()
            .map(|(_, v)| parse(v).map_err(Into::into))
            .collect()
    }

    /// Checks a login from `ip` under the throttle. The throttle decides
    /// before the password is looked at; an unknown login and a disabled
    /// account cost a real argon2id run (on a dummy hash) and get the
    /// answer a wrong password gets, so neither answer nor timing tells
    /// them apart.
    pub async fn login(&self, ip: std::net::IpAddr, login: &str, secret: &str) -> Result<Login> {
        let acct = self.get_account(login).await?;
        let key = throttle_key(acct.as_ref(), login);
        if self.guard.gate(ip, &key) == ratelimit::Gate::Throttled {
            tracing::info!(%ip, login = ?key, "login throttled");
            metrics::counter!("petrel_logins_total", "result" => "throttled").increment(1);
            return Ok(Login::Throttled);
        }
        let ok = match &acct {
            Some(a) if a.enabled => self.verified.verify(&a.secret_hash, secret).await,
            _ => {
                password::verify_dummy(secret).await;
                false
            }
        };
        self.record_login(ip, &key, ok);
        Ok(match acct {
            Some(a) if ok && self.well_known_blocked(&a, Some(secret)).await => {
                tracing::warn!(
                    %ip,
                    login = %a.address,
                    "login refused: the password is a well-known one; set a new one with `petrel account update {} --secret ...` (passwords.block-well-known)",
                    a.address
                );
                Login::Blocked(a)
            }
            Some(a) if ok => Login::Ok(a),
            _ => Login::Failed,
        })
    }

    /// The throttle's verdict for a mechanism that checks the password
    /// itself (SCRAM), with the key [`Directory::record_login`] takes.
    pub fn login_gate(
        &self,
        ip: std::net::IpAddr,
        acct: Option<&Account>,
        login: &str,
    ) -> (ratelimit::Gate, String) {
        let key = throttle_key(acct, login);
        (self.guard.gate(ip, &key), key)
    }

    pub fn record_login(&self, ip: std::net::IpAddr, key: &str, ok: bool) {
        if ok {
            self.guard.succeeded(ip, key);
        } else {
            self.guard.failed(ip, key);
        }
    }

    // ---- groups ----

    pub async fn create_group(&self, address: &str, name: &str) -> Result<Group> {
        let address = normalize_address(address)?;
        let name = name.to_string();
        dir_txn(&self.store, move |txn| {
            let id = next_id(txn)?;
            claim_address(txn, &address, Target::Group(id))?;
            let g = Group {
                id,
                address,
                name,
                members: Vec::new(),
            };
            txn.put(key(GROUP, &id.to_be_bytes()), json(&g));
            principals::log(txn, id, Op::Created)?;
            Ok(g)
        })
        .await
    }

    pub async fn add_member(&self, group: &str, member: &str) -> Result<Group> {
        let group = normalize_address(group)?;
        let member = normalize_address(member)?;
        dir_txn(&self.store, move |txn| {
            let mut g = group_in_txn(txn, &group)?;
            if g.members.contains(&member) {
                return Err(DirError::Conflict(format!(
                    "`{member}` is already a member"
                )));
            }
            g.members.push(member);
            txn.put(key(GROUP, &g.id.to_be_bytes()), json(&g));
            principals::log(txn, g.id, Op::Updated)?;
            Ok(g)
        })
        .await
    }

    pub async fn remove_member(&self, group: &str, member: &str) -> Result<Group> {
        let group = normalize_address(group)?;
        let member = normalize_address(member)?;
        dir_txn(&self.store, move |txn| {
            let mut g = group_in_txn(txn, &group)?;
            if !g.members.contains(&member) {
                return Err(DirError::NotFound(format!("`{member}` is not a member")));
            }
            g.members.retain(|m| m != &member);
            txn.put(key(GROUP, &g.id.to_be_bytes()), json(&g));
            principals::log(txn, g.id, Op::Updated)?;
            Ok(g)
        })
        .await
    }

    pub async fn delete_group(&self, address: &str) -> Result<()> {
        let address = normalize_address(address)?;
        dir_txn(&self.store, move |txn| {
            let g = group_in_txn(txn, &address)?;
            txn.delete(key(ADDRESS, g.address.as_bytes()));
            txn.delete(key(GROUP, &g.id.to_be_bytes()));
            principals::log(txn, g.id, Op::Destroyed)?;
            Ok(())
        })
        .await
    }

    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        self.store
            .scan_prefix(vec![GROUP])
            .await?
            .iter()
            .map(|(_, v)| parse(v).map_err(Into::into))
            .collect()
    }

    // ---- delivery ----

    pub async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        Ok(self.get_domain(domain).await?.is_some())
    }

    /// Resolves a recipient address: accounts, aliases, groups (expanded,
    /// nested groups included, loops ignored; members in other domains are
    /// forwarded to) and the domain's catch-all.
    pub async fn resolve(&self, address: &str) -> Result<Recipient> {
        let Ok(address) = normalize_address(address) else {
            return Ok(Recipient::Unknown);
        };
        let Some(domain) = self.get_domain(domain_of(&address)).await? else {
            return Ok(Recipient::Remote);
        };
        let mut ids = Vec::new();
        let mut forward = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let base = self.without_detail(&address);
        let mut queue = vec![address.clone()];
        while let Some(addr) = queue.pop() {
            if !seen.insert(addr.clone()) || seen.len() > 1000 {
                continue;
            }
            match self.store.get(key(ADDRESS, addr.as_bytes())).await? {
                Some(v) => match parse::<Target>(&v)? {
                    Target::Account(id) => {
                        if let Some(a) = self.account_by_id(id).await? {
                            if a.enabled && !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                    }
                    Target::Group(gid) => {
                        if let Some(v) = self.store.get(key(GROUP, &gid.to_be_bytes())).await? {
                            let g: Group = parse(&v)?;
                            queue.extend(g.members);
                        }
                    }
                },
                // No such address: the one without its detail, then the
                // domain's catch-all.
                None if addr == address && base.is_some() => {
                    queue.extend(base.clone());
                }
                None if addr == address || Some(&addr) == base.as_ref() => {
                    if let Some(ca) = &domain.catch_all {
                        queue.push(ca.clone());
                    }
                }
                None => {
                    // A group member outside our domains.
                    if !self.is_local_domain(domain_of(&addr)).await? {
                        forward.push(addr);
                    }
                }
            }
        }
        if ids.is_empty() && forward.is_empty() {
            Ok(Recipient::Unknown)
        } else {
            forward.sort();
            Ok(Recipient::Local {
                accounts: ids,
                forward,
            })
        }
    }
}

fn account_in_txn(txn: &mut Txn<'_>, address: &str) -> Result<Account> {
    match txn.get(&key(ADDRESS, address.as_bytes()))? {
        Some(v) => match parse::<Target>(&v)? {
            Target::Account(id) => match txn.get(&key(ACCOUNT, &id.to_be_bytes()))? {
                Some(v) => Ok(parse(&v)?),
                None => Err(DirError::NotFound(format!("no account `{address}`"))),
            },
            Target::Group(_) => Err(DirError::NotFound(format!(
                "`{address}` is a group, not an account"
            ))),
        },
        None => Err(DirError::NotFound(format!("no account `{address}`"))),
    }
}

fn group_in_txn(txn: &mut Txn<'_>, address: &str) -> Result<Group> {
    match txn.get(&key(ADDRESS, address.as_bytes()))? {
        Some(v) => match parse::<Target>(&v)? {
            Target::Group(id) => match txn.get(&key(GROUP, &id.to_be_bytes()))? {
                Some(v) => Ok(parse(&v)?),
                None => Err(DirError::NotFound(format!("no group `{address}`"))),
            },
            Target::Account(_) => Err(DirError::NotFound(format!(
                "`{address}` is an account, not a group"
            ))),
        },
        None => Err(DirError::NotFound(format!("no group `{address}`"))),
    }
}
