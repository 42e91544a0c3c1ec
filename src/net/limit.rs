//! Per-client-address connection limits: how many at once, and how many
//! new ones per minute. Holding a [`ConnGuard`] counts as one open
//! connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct PerIp {
    open: u32,
    window_start: Option<Instant>,
    in_window: u32,
}

/// An address block like "127.0.0.0/8" or "::1/128".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an address block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("bad prefix length in `{s}`"))?
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub struct ConnLimiter {
    max_open: u32,
    max_per_minute: u32,
    exempt: Vec<Cidr>,
    ips: Mutex<HashMap<IpAddr, PerIp>>,
}

/// Why a connection is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooManyOpen,
    TooFast,
}

pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut ips = self.limiter.ips.lock().expect("limiter lock");
        if let Some(e) = ips.get_mut(&self.ip) {
            e.open = e.open.saturating_sub(1);
        }
    }
}

impl ConnLimiter {
    /// 0 turns a limit off; addresses in `exempt` are not limited.
    pub fn new(max_open: u32, max_per_minute: u32, exempt: Vec<Cidr>) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max_open,
            max_per_minute,
            exempt,
            ips: Mutex::new(HashMap::new()),
        })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refused> {
        let now = Instant::now();
        let mut ips = self.ips.lock().expect("limiter lock");
        if self.exempt.iter().any(|c| c.contains(ip)) {
            // Counted as open (so the guard is uniform) but never refused.
            ips.entry(ip).or_default().open += 1;
            return Ok(ConnGuard {
                limiter: self.clone(),
                ip,
            });
        }
        if ips.len() > 100_000 {
            ips.retain(|_, e| {
                e.open > 0
                    || e.window_start
                        .is_some_and(|s| now - s < Duration::from_secs(60))
            });
        }
        let e = ips.entry(ip).or_default();
        if self.max_open > 0 && e.open >= self.max_open {
            return Err(Refused::TooManyOpen);
        }
        if self.max_per_minute > 0 {
            match e.window_start {
                Some(s) if now - s < Duration::from_secs(60) => {}
                _ => {
                    e.window_start = Some(now);
                    e.in_window = 0;
                }
            }
            if e.in_window >= self.max_per_minute {
                return Err(Refused::TooFast);
            }
            e.in_window += 1;
        }
        e.open += 1;
        Ok(ConnGuard {
            limiter: self.clone(),
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_rate_limits() {
        let l = ConnLimiter::new(2, 3, vec![]);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = l.admit(ip).unwrap();
        let _b = l.admit(ip).unwrap();
        assert_eq!(l.admit(ip).err(), Some(Refused::TooManyOpen));
        assert!(
            l.admit("192.0.2.8".parse().unwrap()).is_ok(),
            "other addresses unaffected"
        );
        drop(a);
        let _c = l.admit(ip).unwrap();
        drop(_c);
        assert_eq!(
            l.admit(ip).err(),
            Some(Refused::TooFast),
            "fourth in a minute"
        );
        let off = ConnLimiter::new(0, 0, vec![]);
        let guards: Vec<_> = (0..100).map(|_| off.admit(ip).unwrap()).collect();
        assert_eq!(guards.len(), 100);
        let exempt = ConnLimiter::new(1, 1, vec!["192.0.2.0/24".parse().unwrap()]);
        let guards: Vec<_> = (0..10).map(|_| exempt.admit(ip).unwrap()).collect();
        assert_eq!(guards.len(), 10);
    }

    #[test]
    fn cidr_matching() {
        let c: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        let c6: Cidr = "::1/128".parse().unwrap();
        assert!(c6.contains("::1".parse().unwrap()));
        assert!(!c6.contains("::2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }
}
