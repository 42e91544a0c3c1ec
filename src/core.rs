//! The shared state every session works with.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::directory::ratelimit::AuthLimiter;
use crate::directory::Directory;
use crate::mail::MailStore;
use crate::store::Store;

pub struct Core {
    pub config: Config,
    pub store: Store,
    pub mail: MailStore,
    pub directory: Directory,
    pub limiter: AuthLimiter,
    pub tls: Option<TlsAcceptor>,
}

pub type SharedCore = Arc<Core>;

impl Core {
    pub fn new(config: Config, store: Store, mail: MailStore, tls: Option<TlsAcceptor>) -> Self {
        let limiter = AuthLimiter::new(
            config.auth.max_failures_per_ip,
            config.auth.max_failures_per_account,
            Duration::from_secs(config.auth.failure_window),
        );
        Core {
            directory: Directory::new(store.clone()),
            config,
            store,
            mail,
            limiter,
            tls,
        }
    }
}

/// RFC 5322 date of a Unix time, in UTC.
pub fn rfc5322_date(ts: i64) -> String {
    mail_parser::DateTime::from_timestamp(ts).to_rfc822()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A short random id for log lines and Received headers.
pub fn session_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
