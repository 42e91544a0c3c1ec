//! The login throttle: what decides, before a password is looked at,
//! whether an attempt is checked at all.
//!
//! The decision never depends on the password being tried, so a throttled
//! attempt gets the same answer whether the password is right or wrong
//! (no oracle), and it costs no argon2id run. The policy:
//!
//! 1. An (account, client network) pair with `max-failures-per-account-ip`
//!    failures in the window is throttled for the rest of the window.
//! 2. A client network with `max-failures-per-ip` failures in the window
//!    is throttled for every account, except those it has logged in to
//!    before (below).
//! 3. An account with `max-failures-per-account` failures in the window,
//!    counted over all networks, is not locked: further attempts from
//!    networks it never logged in from are admitted one at a time, each
//!    after a delay that doubles with every further failure (2, 4, 8 … s,
//!    at most `max-delay`).
//! 4. A network that logged in to an account successfully is remembered
//!    for `remember-address` seconds (as an HMAC of account and network
//!    under a key made at start, in memory) and is exempt from 2 and 3:
//!    guessing from elsewhere cannot lock the real user out.
//!
//! A client network is the address itself for IPv4 and the /64 for IPv6
//! (one host usually holds a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::AuthConfig;

/// Whether an attempt may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Refused without looking at the password: a temporary answer.
    Throttled,
}

#[derive(Clone, Copy)]
struct Count {
    first: Instant,
    last: Instant,
    n: u32,
}

/// A throttle in force (`petrel security lockouts`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lockout {
    /// "account+network", "network" or "account" (policy 1, 2, 3 above).
    pub kind: &'static str,
    pub login: Option<String>,
    pub network: Option<IpAddr>,
    pub failures: u32,
    /// Unix time it lifts, unless more failures come.
    pub until: i64,
}

/// Entries kept per table at most; past it expired ones are dropped, and
/// if that is not enough, the oldest half.
const TABLE_MAX: usize = 100_000;

pub struct LoginGuard {
    per_ip: u32,
    per_account: u32,
    per_pair: u32,
    window: Duration,
    max_delay: Duration,
    remember: Duration,
    key: [u8; 32],
    ips: Mutex<HashMap<IpAddr, Count>>,
    accounts: Mutex<HashMap<String, Count>>,
    /// (login in lower case, network).
    pairs: Mutex<HashMap<(String, IpAddr), Count>>,
    known: Mutex<HashMap<[u8; 32], Instant>>,
}

/// The network a client address stands for.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

impl LoginGuard {
    pub fn new(cfg: &AuthConfig) -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        LoginGuard {
            per_ip: cfg.max_failures_per_ip,
            per_account: cfg.max_failures_per_account,
            per_pair: cfg.max_failures_per_account_ip,
            window: Duration::from_secs(cfg.failure_window),
            max_delay: Duration::from_secs(cfg.max_delay),
            remember: Duration::from_secs(cfg.remember_address),
            key,
            ips: Default::default(),
            accounts: Default::default(),
            pairs: Default::default(),
            known: Default::default(),
        }
    }

    /// The keyed hash of (login, network): what the remembered addresses
    /// hold instead of addresses.
    fn pair_key(&self, ip: IpAddr, login: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(login.to_lowercase().as_bytes());
        mac.update(&[0]);
        mac.update(network(ip).to_string().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn live(&self, c: Option<&Count>, now: Instant) -> Option<Count> {
        c.copied()
            .filter(|c| now.duration_since(c.last) < self.window)
    }

    /// True when this network logged in to this account successfully
    /// within `remember-address`.
    pub fn is_known(&self, ip: IpAddr, login: &str) -> bool {
        if self.remember.is_zero() {
            return false;
        }
        let k = self.pair_key(ip, login);
        let now = Instant::now();
        self.known
            .lock()
            .expect("guard lock")
            .get(&k)
            .is_some_and(|at| now.duration_since(*at) < self.remember)
    }

    /// Decides whether an attempt to log in to `login` from `ip` is
    /// checked. Call before the password is verified; the answer does not
    /// depend on it.
    pub fn gate(&self, ip: IpAddr, login: &str) -> Gate {
        let now = Instant::now();
        let pair = (login.to_lowercase(), network(ip));
        if self.per_pair > 0 {
            let pairs = self.pairs.lock().expect("guard lock");
            if self
                .live(pairs.get(&pair), now)
                .is_some_and(|c| c.n >= self.per_pair)
            {
                return Gate::Throttled;
            }
        }
        if self.is_known(ip, login) {
            return Gate::Open;
        }
        if self.per_ip > 0 {
            let ips = self.ips.lock().expect("guard lock");
            if self
                .live(ips.get(&network(ip)), now)
                .is_some_and(|c| c.n >= self.per_ip)
            {
                return Gate::Throttled;
            }
        }
        if self.per_account > 0 {
            let accounts = self.accounts.lock().expect("guard lock");
            if let Some(c) = self.live(accounts.get(&login.to_lowercase()), now) {
                if c.n >= self.per_account && now < c.last + self.delay(c.n) {
                    return Gate::Throttled;
                }
            }
        }
        Gate::Open
    }

    /// How long after the last failure the account admits another attempt
    /// from an unknown network, with `n` failures counted.
    fn delay(&self, n: u32) -> Duration {
        let steps = n.saturating_sub(self.per_account).min(20);
        Duration::from_secs(2u64 << steps).min(self.max_delay)
    }

    /// Records a failed attempt (a wrong password, an unknown login or a
    /// disabled account).
    pub fn failed(&self, ip: IpAddr, login: &str) {
        let now = Instant::now();
        let lower = login.to_lowercase();
        let net = network(ip);
        let pair = bump(
            &mut self.pairs.lock().expect("guard lock"),
            (lower.clone(), net),
            now,
            self.window,
        );
        let by_ip = bump(
            &mut self.ips.lock().expect("guard lock"),
            net,
            now,
            self.window,
        );
        let by_account = bump(
            &mut self.accounts.lock().expect("guard lock"),
            lower,
            now,
            self.window,
        );
        metrics::counter!("petrel_logins_total", "result" => "failed").increment(1);
        tracing::info!(%ip, login = ?login, "login failed");
        // The moment each throttle starts is logged once.
        let secs = self.window.as_secs();
        if self.per_pair > 0 && pair == self.per_pair {
            tracing::warn!(%ip, login = ?login, failures = pair, "lockout: {login} from {net} refused for {secs} s; clear it with `petrel security unlock {net}`");
        }
        if self.per_ip > 0 && by_ip == self.per_ip {
            tracing::warn!(%ip, failures = by_ip, "lockout: every login from {net} refused for {secs} s except to accounts it used before; clear it with `petrel security unlock {net}`");
        }
        if self.per_account > 0 && by_account == self.per_account {
            tracing::warn!(login = ?login, failures = by_account, "lockout: logins to {login} from unknown networks slowed down; clear it with `petrel security unlock {login}`");
        }
    }

    /// The throttles in force now, for `petrel security lockouts`.
    pub fn lockouts(&self) -> Vec<Lockout> {
        let now = Instant::now();
        let unix = crate::core::unix_now();
        let at = |t: Instant| unix + t.saturating_duration_since(now).as_secs() as i64;
        let mut out = Vec::new();
        if self.per_pair > 0 {
            for ((login, net), c) in self.pairs.lock().expect("guard lock").iter() {
                if let Some(c) = self.live(Some(c), now).filter(|c| c.n >= self.per_pair) {
                    out.push(Lockout {
                        kind: "account+network",
                        login: Some(login.clone()),
                        network: Some(*net),
                        failures: c.n,
                        until: at(c.last + self.window),
                    });
                }
            }
        }
        if self.per_ip > 0 {
            for (net, c) in self.ips.lock().expect("guard lock").iter() {
                if let Some(c) = self.live(Some(c), now).filter(|c| c.n >= self.per_ip) {
                    out.push(Lockout {
                        kind: "network",
                        login: None,
                        network: Some(*net),
                        failures: c.n,
                        until: at(c.last + self.window),
                    });
                }
            }
        }
        if self.per_account > 0 {
            for (login, c) in self.accounts.lock().expect("guard lock").iter() {
                if let Some(c) = self.live(Some(c), now).filter(|c| c.n >= self.per_account) {
                    out.push(Lockout {
                        kind: "account",
                        login: Some(login.clone()),
                        network: None,
                        failures: c.n,
                        until: at(c.last + self.delay(c.n)),
                    });
                }
            }
        }
        out.sort_by(|a, b| (a.kind, &a.login, a.network).cmp(&(b.kind, &b.login, b.network)));
        out
    }

    /// Forgets the failures counted against `target`: an IP address (its
    /// network) or a login. Returns how many records were cleared.
    pub fn unlock(&self, target: &str) -> usize {
        let mut cleared = 0;
        if let Ok(ip) = target.parse::<IpAddr>() {
            let net = network(ip);
            cleared += self.ips.lock().expect("guard lock").remove(&net).is_some() as usize;
            let mut pairs = self.pairs.lock().expect("guard lock");
            let before = pairs.len();
            pairs.retain(|(_, n), _| *n != net);
            cleared += before - pairs.len();
        } else {
            let login = target.to_lowercase();
            cleared += self
                .accounts
                .lock()
                .expect("guard lock")
                .remove(&login)
                .is_some() as usize;
            let mut pairs = self.pairs.lock().expect("guard lock");
            let before = pairs.len();
            pairs.retain(|(l, _), _| *l != login);
            cleared += before - pairs.len();
        }
        if cleared > 0 {
            tracing::info!(target, cleared, "lockout cleared by an administrator");
        }
        cleared
    }

    /// Records a successful login: the network is remembered for the
    /// account and its pair count starts again.
    pub fn succeeded(&self, ip: IpAddr, login: &str) {
        metrics::counter!("petrel_logins_total", "result" => "ok").increment(1);
        self.pairs
            .lock()
            .expect("guard lock")
            .remove(&(login.to_lowercase(), network(ip)));
        let k = self.pair_key(ip, login);
        if self.remember.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut known = self.known.lock().expect("guard lock");
        if known.len() >= TABLE_MAX {
            let keep = self.remember;
            known.retain(|_, at| now.duration_since(*at) < keep);
            if known.len() >= TABLE_MAX {
                let mut ages: Vec<Instant> = known.values().copied().collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                known.retain(|_, at| *at >= cut);
            }
        }
        known.insert(k, now);
    }
}

/// Counts a failure; returns the count now in the window.
fn bump<K: std::hash::Hash + Eq>(
    table: &mut HashMap<K, Count>,
    key: K,
    now: Instant,
    window: Duration,
) -> u32 {
    if table.len() >= TABLE_MAX {
        table.retain(|_, c| now.duration_since(c.last) < window);
        if table.len() >= TABLE_MAX {
            let mut firsts: Vec<Instant> = table.values().map(|c| c.first).collect();
            firsts.sort();
            let cut = firsts[firsts.len() / 2];
            table.retain(|_, c| c.first >= cut);
        }
    }
    let c = table.entry(key).or_insert(Count {
        first: now,
        last: now,
        n: 0,
    });
    if now.duration_since(c.last) >= window {
        *c = Count {
            first: now,
            last: now,
            n: 0,
        };
    }
    c.n += 1;
    c.last = now;
    c.n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(per_ip: u32, per_account: u32, per_pair: u32) -> LoginGuard {
        LoginGuard::new(&AuthConfig {
            max_failures_per_ip: per_ip,
            max_failures_per_account: per_account,
            max_failures_per_account_ip: per_pair,
            failure_window: 60,
            max_delay: 60,
            remember_address: 3600,
            cache_ttl: 0,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_pair_is_throttled_after_its_limit() {
        let g = guard(100, 100, 3);
        for _ in 0..3 {
            assert_eq!(g.gate(ip("192.0.2.1"), "a@x"), Gate::Open);
            g.failed(ip("192.0.2.1"), "a@x");
        }
        assert_eq!(g.gate(ip("192.0.2.1"), "A@x"), Gate::Throttled);
        // Another account from the same address, the same account from
        // elsewhere: not affected.
        assert_eq!(g.gate(ip("192.0.2.1"), "b@x"), Gate::Open);
        assert_eq!(g.gate(ip("192.0.2.2"), "a@x"), Gate::Open);
    }

    #[test]
    fn an_address_is_throttled_except_for_accounts_it_logged_in_to() {
        let g = guard(3, 100, 100);
        g.succeeded(ip("192.0.2.1"), "mine@x");
        for n in 0..3 {
            g.failed(ip("192.0.2.1"), &format!("u{n}@x"));
        }
        assert_eq!(g.gate(ip("192.0.2.1"), "other@x"), Gate::Throttled);
        assert_eq!(g.gate(ip("192.0.2.1"), "mine@x"), Gate::Open);
        assert_eq!(g.gate(ip("192.0.2.9"), "other@x"), Gate::Open);
    }

    #[test]
    fn an_account_under_attack_slows_unknown_addresses_only() {
        let g = guard(1000, 3, 1000);
        g.succeeded(ip("2001:db8::1"), "v@x");
        for n in 0..3 {
            g.failed(ip(&format!("198.51.100.{n}")), "v@x");
        }
        // From a new address: wait first.
        assert_eq!(g.gate(ip("203.0.113.7"), "v@x"), Gate::Throttled);
        // The victim's own network (the same /64) goes on.
        assert_eq!(g.gate(ip("2001:db8::2"), "v@x"), Gate::Open);
        assert_eq!(g.delay(3), Duration::from_secs(2));
        assert_eq!(g.delay(4), Duration::from_secs(4));
        assert_eq!(g.delay(40), Duration::from_secs(60));
    }

    #[test]
    fn ipv4_mapped_and_v6_networks() {
        assert_eq!(network(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(network(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn the_window_expires() {
        let mut g = guard(1, 1, 1);
        g.window = Duration::from_millis(20);
        g.failed(ip("192.0.2.1"), "a@x");
        assert_eq!(g.gate(ip("192.0.2.1"), "a@x"), Gate::Throttled);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(g.gate(ip("192.0.2.1"), "a@x"), Gate::Open);
    }

    #[test]
    fn a_success_clears_the_pair() {
        let g = guard(100, 100, 2);
        g.failed(ip("192.0.2.1"), "a@x");
        g.succeeded(ip("192.0.2.1"), "a@x");
        g.failed(ip("192.0.2.1"), "a@x");
        assert_eq!(g.gate(ip("192.0.2.1"), "a@x"), Gate::Open);
    }
}
