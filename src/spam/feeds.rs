//! Phishing feeds (`[[spam.feed]]`): lists of phishing URLs such as
//! OpenPhish's (one URL per line) or PhishTank's (CSV with a `url`
//! column), downloaded on a schedule into the store (key
//! `spam/f<name>`: when fetched, then the URLs one per line) and held in
//! memory. A message's link that is a listed URL adds the feed's `score`
//! (`PHISH_URL_<NAME>`); one to a host the feed lists, its
//! `domain-score` (`PHISH_HOST_<NAME>`). A feed that cannot be fetched
//! keeps its last list; a new server has none until the first fetch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{FeedConfig, FeedFormat};
use crate::store::{Store, StoreError};

const PREFIX: &[u8] = b"spam/f";
/// The largest feed read (PhishTank's CSV is some megabytes).
const MAX_FEED: usize = 64 * 1024 * 1024;

/// One feed's list.
#[derive(Default)]
pub struct List {
    pub urls: HashSet<String>,
    pub hosts: HashSet<String>,
    /// Unix seconds; 0: never fetched.
    pub fetched: i64,
}

/// `url` as feeds and messages are compared: the scheme and host in
/// lower case, without the fragment or a final `/`.
pub fn normal_url(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    if authority.is_empty() {
        return None;
    }
    let mut out = format!("{scheme}://{}{path}", authority.to_ascii_lowercase());
    while out.ends_with('/') {
        out.pop();
    }
    Some(out)
}

/// The URLs of a feed's text.
pub fn parse(text: &str, format: FeedFormat) -> Vec<String> {
    match format {
        FeedFormat::Lines => text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(normal_url)
            .collect(),
        FeedFormat::Csv => {
            let mut rows = text.lines();
            let Some(head) = rows.next() else {
                return Vec::new();
            };
            let Some(col) = csv_fields(head).iter().position(|f| f.trim() == "url") else {
                return Vec::new();
            };
            rows.filter_map(|r| csv_fields(r).get(col).and_then(|u| normal_url(u)))
                .collect()
        }
    }
}

/// The fields of one CSV line (RFC 4180 quoting; no line breaks inside).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

fn host_of(url: &str) -> Option<String> {
    super::rules::url_host(url).map(|(h, _)| h)
}

fn list_of(urls: Vec<String>, fetched: i64) -> List {
    let hosts = urls.iter().filter_map(|u| host_of(u)).collect();
    List {
        urls: urls.into_iter().collect(),
        hosts,
        fetched,
    }
}

/// A feed's rule ids.
pub fn rule_ids(f: &FeedConfig) -> (String, String) {
    let name = super::dnsbl::rule_name(&f.name);
    (format!("PHISH_URL_{name}"), format!("PHISH_HOST_{name}"))
}

pub struct Feeds {
    store: Store,
    cfg: Vec<FeedConfig>,
    lists: RwLock<HashMap<String, Arc<List>>>,
}

impl Feeds {
    pub fn new(store: Store, cfg: Vec<FeedConfig>) -> Self {
        Feeds {
            store,
            cfg,
            lists: Default::default(),
        }
    }

    pub fn configured(&self) -> &[FeedConfig] {
        &self.cfg
    }

    pub fn list(&self, name: &str) -> Option<Arc<List>> {
        self.lists.read().expect("feeds").get(name).cloned()
    }

    /// The feeds' hits on a message's links: (rule id, score, the URL or
    /// host), one per feed, a listed URL before a listed host.
    pub fn check(&self, links: &[String]) -> Vec<(String, f64, String)> {
        if self.cfg.is_empty() || links.is_empty() {
            return Vec::new();
        }
        let urls: Vec<String> = links.iter().filter_map(|l| normal_url(l)).collect();
        let lists = self.lists.read().expect("feeds");
        let mut out = Vec::new();
        for f in &self.cfg {
            let Some(list) = lists.get(&f.name) else {
                continue;
            };
            let (url_id, host_id) = rule_ids(f);
            if let Some(u) = urls.iter().find(|u| list.urls.contains(*u)) {
                out.push((url_id, f.score, u.clone()));
            } else if let Some(h) = urls
                .iter()
                .filter_map(|u| host_of(u))
                .find(|h| list.hosts.contains(h))
            {
                if f.domain_score != 0.0 {
                    out.push((host_id, f.domain_score, h));
                }
            }
        }
        out
    }

    fn key(name: &str) -> Vec<u8> {
        let mut k = PREFIX.to_vec();
        k.extend_from_slice(name.as_bytes());
        k
    }

    /// Takes the stored copy of a feed into memory.
    async fn load(&self, f: &FeedConfig) -> Result<(), StoreError> {
        let Some(v) = self.store.get(Self::key(&f.name)).await? else {
            return Ok(());
        };
        let Some(fetched) = v.get(..8).and_then(|b| b.try_into().ok()) else {
            return Ok(());
        };
        let fetched = i64::from_be_bytes(fetched);
        let text = String::from_utf8_lossy(&v[8..]);
        let urls: Vec<String> = text.lines().map(str::to_string).collect();
        self.put(&f.name, list_of(urls, fetched));
        Ok(())
    }

    fn put(&self, name: &str, list: List) {
        metrics::gauge!("petrel_spam_feed_urls", "feed" => name.to_string())
            .set(list.urls.len() as f64);
        self.lists
            .write()
            .expect("feeds")
            .insert(name.to_string(), Arc::new(list));
    }

    /// Downloads a feed, stores it, and takes it into memory; how many
    /// URLs it holds.
    pub async fn fetch(
        &self,
        f: &FeedConfig,
        now: i64,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<usize, String> {
        let get = crate::net::http_client::get(tls, &f.url, MAX_FEED);
        let body = tokio::time::timeout(Duration::from_secs(f.timeout), get)
            .await
            .map_err(|_| format!("no answer within {} s", f.timeout))??;
        let text = String::from_utf8_lossy(&body);
        let urls = parse(&text, f.format);
        if urls.is_empty() {
            // An empty answer is more likely a broken feed than no phishing.
            return Err("the feed holds no URL; the last list stays".into());
        }
        let mut value = now.to_be_bytes().to_vec();
        value.extend_from_slice(urls.join("\n").as_bytes());
        let key = Self::key(&f.name);
        self.store
            .transact(move |txn| {
                txn.put(key, value);
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;
        let n = urls.len();
        self.put(&f.name, list_of(urls, now));
        Ok(n)
    }
}

/// Loads every feed from the store, then fetches each when it is due,
/// until shutdown.
pub fn spawn(
    filter: Arc<super::Filter>,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut shutdown: crate::net::Shutdown,
) {
    if filter.feeds.configured().is_empty() {
        return;
    }
    tokio::spawn(async move {
        let feeds = &filter.feeds;
        for f in feeds.configured() {
            if let Err(e) = feeds.load(f).await {
                tracing::warn!(feed = %f.name, "phishing feed not loaded from the store: {e}");
            }
        }
        // When each feed is due next.
        let mut due: Vec<i64> = feeds
            .configured()
            .iter()
            .map(|f| {
                let fetched = feeds.list(&f.name).map_or(0, |l| l.fetched);
                fetched + f.refresh as i64
            })
            .collect();
        loop {
            let now = crate::core::unix_now();
            for (i, f) in feeds.configured().iter().enumerate() {
                if due[i] > now {
                    continue;
                }
                match feeds.fetch(f, now, tls.clone()).await {
                    Ok(n) => {
                        tracing::info!(feed = %f.name, urls = n, "phishing feed fetched");
                        metrics::counter!("petrel_spam_feed_fetches_total", "feed" => f.name.clone(), "result" => "ok").increment(1);
                        due[i] = now + f.refresh as i64;
                    }
                    Err(e) => {
                        tracing::warn!(feed = %f.name, url = %f.url, "phishing feed not fetched, trying again in 5 minutes: {e}");
                        metrics::counter!("petrel_spam_feed_fetches_total", "feed" => f.name.clone(), "result" => "error").increment(1);
                        due[i] = now + (f.refresh as i64).min(300);
                    }
                }
            }
            let next = due.iter().min().copied().unwrap_or(now + 300);
            let wait = Duration::from_secs((next - crate::core::unix_now()).clamp(1, 3600) as u64);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_compared_normalised() {
        assert_eq!(
            normal_url(" HTTPS://Login.Bank.EXAMPLE/Path?A=1#frag").as_deref(),
            Some("https://login.bank.example/Path?A=1")
        );
        assert_eq!(
            normal_url("http://x.example/").as_deref(),
            Some("http://x.example")
        );
        assert_eq!(normal_url("ftp://x.example/"), None);
        assert_eq!(normal_url("http:///path"), None);
        assert_eq!(normal_url("not a url"), None);
    }

    #[test]
    fn feed_formats() {
        let lines = parse(
            "# comment\nhttp://a.example/x\n\nhttps://b.example/\n",
            FeedFormat::Lines,
        );
        assert_eq!(lines, ["http://a.example/x", "https://b.example"]);
        let csv = parse(
            "phish_id,url,phish_detail_url,target\n1,\"http://c.example/a,b\",http://detail,Bank\n2,https://d.example/,x,\"y \"\"z\"\"\"\n",
            FeedFormat::Csv,
        );
        assert_eq!(csv, ["http://c.example/a,b", "https://d.example"]);
        assert!(parse("id,link\n1,http://e.example\n", FeedFormat::Csv).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn any_feed_text_parses(text in "\\PC{0,200}") {
            for u in parse(&text, FeedFormat::Lines).into_iter().chain(parse(&text, FeedFormat::Csv)) {
                proptest::prop_assert!(u.starts_with("http://") || u.starts_with("https://"));
                proptest::prop_assert_eq!(normal_url(&u), Some(u.clone()));
            }
        }
    }
}
