//! Failed-login limits per client IP and per account, in a fixed window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct AuthLimiter {
    per_ip: u32,
    per_account: u32,
    window: Duration,
    ips: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    accounts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl AuthLimiter {
    pub fn new(per_ip: u32, per_account: u32, window: Duration) -> Self {
        AuthLimiter {
            per_ip,
            per_account,
            window,
            ips: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// True when this IP or this login has failed too often recently.
    pub fn is_blocked(&self, ip: IpAddr, login: &str) -> bool {
        let now = Instant::now();
        let check = |entry: Option<&(Instant, u32)>, max: u32| {
            entry.is_some_and(|(start, n)| now.duration_since(*start) < self.window && *n >= max)
        };
        let ip_blocked = check(self.ips.lock().expect("limiter lock").get(&ip), self.per_ip);
        let login = login.to_lowercase();
        ip_blocked
            || check(
                self.accounts.lock().expect("limiter lock").get(&login),
                self.per_account,
            )
    }

    pub fn record_failure(&self, ip: IpAddr, login: &str) {
        let now = Instant::now();
        let bump = |e: &mut (Instant, u32)| {
            if now.duration_since(e.0) >= self.window {
                *e = (now, 0);
            }
            e.1 += 1;
        };
        {
            let mut ips = self.ips.lock().expect("limiter lock");
            if ips.len() > 100_000 {
                ips.retain(|_, e| now.duration_since(e.0) < self.window);
            }
            bump(ips.entry(ip).or_insert((now, 0)));
        }
        let mut accts = self.accounts.lock().expect("limiter lock");
        if accts.len() > 100_000 {
            accts.retain(|_, e| now.duration_since(e.0) < self.window);
        }
        bump(accts.entry(login.to_lowercase()).or_insert((now, 0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_per_ip_and_account() {
        let l = AuthLimiter::new(3, 2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!l.is_blocked(ip, "a@x"));
        l.record_failure(ip, "a@x");
        l.record_failure(ip, "a@x");
        // The account is at its limit from any address.
        assert!(l.is_blocked(other, "a@x"));
        assert!(!l.is_blocked(other, "b@x"));
        l.record_failure(ip, "b@x");
        // The IP is at its limit for any account.
        assert!(l.is_blocked(ip, "c@x"));
    }

    #[test]
    fn window_expires() {
        let l = AuthLimiter::new(1, 1, Duration::from_millis(20));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        l.record_failure(ip, "a@x");
        assert!(l.is_blocked(ip, "a@x"));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!l.is_blocked(ip, "a@x"));
    }
}
