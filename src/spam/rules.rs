//! The filter's rules: each looks at one property of a message (a header,
//! the body, its links, its MIME structure, or the sender checks' results)
//! and, when it fires, adds its score. Scores are the built-in ones below
//! unless `spam.rules` replaces them; `petrel spam rules` lists them.
//! No I/O: a rule sees the parsed message and the Authentication-Results
//! the SMTP session wrote.

use mail_parser::{Address, Message, MimeHeaders, PartType};

/// One rule: an id for headers and configuration, a score, what it means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub id: &'static str,
    pub score: f64,
    pub description: &'static str,
}

pub(super) const fn rule(id: &'static str, score: f64, description: &'static str) -> Rule {
    Rule {
        id,
        score,
        description,
    }
}

/// Every rule with its built-in score. The BAYES_ bands are the
/// classifier's probability (src/spam/bayes.rs), one of them fires.
pub const RULES: &[Rule] = &[
    rule("BAYES_00", -2.5, "classifier: spam probability below 1 %"),
    rule("BAYES_05", -1.0, "classifier: spam probability 1 to 5 %"),
    rule("BAYES_50", 1.5, "classifier: spam probability 40 to 60 %"),
    rule("BAYES_60", 3.0, "classifier: spam probability 60 to 80 %"),
    rule("BAYES_80", 4.5, "classifier: spam probability 80 to 95 %"),
    rule("BAYES_95", 5.5, "classifier: spam probability 95 to 99 %"),
    rule("BAYES_99", 6.0, "classifier: spam probability 99 % or more"),
    rule("MISSING_DATE", 1.0, "no Date header field"),
    rule("MISSING_MID", 0.5, "no Message-ID header field"),
    rule(
        "MISSING_FROM",
        2.0,
        "no From header field or no address in it",
    ),
    rule("MISSING_SUBJECT", 0.5, "no Subject header field"),
    rule("MISSING_TO", 0.3, "no To or Cc header field"),
    rule("DATE_IN_FUTURE", 1.5, "Date more than 12 hours ahead"),
    rule("DATE_IN_PAST", 1.0, "Date more than 30 days before arrival"),
    rule("SUBJ_ALL_CAPS", 1.0, "Subject written in capitals"),
    rule(
        "PYZOR",
        2.0,
        "Pyzor: others reported this message's digest as spam (spam.pyzor)",
    ),
    rule("SUBJ_EXCLAIM", 0.5, "Subject with '!!' or more"),
    rule(
        "FROM_NAME_SPOOF",
        2.0,
        "display name shows another domain's address than From",
    ),
    rule(
        "REPLYTO_OTHER_DOMAIN",
        0.3,
        "Reply-To in another domain than From",
    ),
    rule("MID_NO_DOMAIN", 0.5, "Message-ID without a domain"),
    rule("HTML_ONLY", 0.7, "HTML without a plain-text alternative"),
    rule(
        "HTML_SHORT_IMAGE",
        1.2,
        "HTML with images and under 200 characters of text",
    ),
    rule(
        "HTML_HIDDEN_TEXT",
        1.0,
        "HTML hides text (display:none, zero size, white on white)",
    ),
    rule(
        "BODY_CAPS",
        1.0,
        "more than half the body's letters are capitals",
    ),
    rule("EXE_ATTACHMENT", 3.0, "an executable or script attachment"),
    rule("URL_IP_LITERAL", 1.5, "a link to a numeric IP address"),
    rule(
        "URL_CREDENTIALS",
        2.0,
        "a link with a user name in it (user@host)",
    ),
    rule("URL_SHORTENER", 0.5, "a link through a URL shortener"),
    rule(
        "URL_DEEP_SUBDOMAINS",
        0.5,
        "a link host with five or more labels",
    ),
    rule(
        "LINK_TEXT_MISMATCH",
        2.0,
        "link text shows one domain, the link goes to another",
    ),
    rule("SPF_FAIL", 2.0, "SPF fail for the envelope sender"),
    rule("SPF_SOFTFAIL", 1.0, "SPF softfail for the envelope sender"),
    rule("DKIM_FAIL", 1.0, "a DKIM signature that does not verify"),
    rule(
        "DMARC_FAIL",
        2.5,
        "DMARC fail (the domain's policy is applied before)",
    ),
    rule("DMARC_PASS", -0.3, "DMARC pass"),
    rule(
        "SPAM_TRAP",
        10.0,
        "the same message was sent to a spam trap",
    ),
    rule(
        "FROM_LOCAL_UNAUTH",
        2.0,
        "From is a domain hosted here, but no check passed for it",
    ),
    rule(
        "FROM_BRAND_SPOOF",
        2.5,
        "display name of a well-known brand, From another domain",
    ),
    rule(
        "MIXED_SCRIPT_DOMAIN",
        3.0,
        "a domain mixes Latin with Cyrillic or Greek letters (look-alike)",
    ),
];

/// The built-in rule `id`.
pub fn find(id: &str) -> Option<&'static Rule> {
    all().find(|r| r.id == id)
}

/// Every rule: those here and the heuristics of [`super::heuristics`].
pub fn all() -> impl Iterator<Item = &'static Rule> {
    RULES.iter().chain(super::heuristics::RULES)
}

/// The Bayes band rule of a probability, if one.
pub fn bayes_band(p: f64) -> Option<&'static str> {
    Some(match p {
        p if p < 0.01 => "BAYES_00",
        p if p < 0.05 => "BAYES_05",
        p if (0.4..0.6).contains(&p) => "BAYES_50",
        p if (0.6..0.8).contains(&p) => "BAYES_60",
        p if (0.8..0.95).contains(&p) => "BAYES_80",
        p if (0.95..0.99).contains(&p) => "BAYES_95",
        p if p >= 0.99 => "BAYES_99",
        _ => return None,
    })
}

/// What the rules see besides the message.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// The Authentication-Results field the session made ("" if none).
    pub auth_results: &'a str,
    /// Arrival time (Unix seconds; 0 skips the date rules).
    pub now: i64,
    /// The SMTP client's address and envelope sender, when the message
    /// arrived over SMTP (for the blocklists).
    pub client_ip: Option<std::net::IpAddr>,
    pub mail_from: &'a str,
    /// The same message went to a spam trap too.
    pub trapped: bool,
    /// The From domain is one hosted here (the session asks the
    /// directory).
    pub from_local: bool,
}

/// A message's text read once for the rules, the classifier and the
/// blocklists: its HTML bodies, its text (HTML turned into text) and the
/// hosts of its links.
pub struct Reading {
    pub html: String,
    /// `html` in ASCII lower case, for the searches that ignore case.
    pub html_lower: String,
    pub text: String,
    pub link_hosts: Vec<String>,
    pub(super) links: Vec<Link>,
}

impl Reading {
    pub fn of(msg: &Message<'_>) -> Reading {
        let (html, text) = html_and_text(msg);
        let html_lower = html.to_ascii_lowercase();
        let links = find_links(&html, &html_lower, &text);
        Reading {
            link_hosts: links.iter().map(|l| l.host.clone()).collect(),
            links,
            html,
            html_lower,
            text,
        }
    }
}

/// The rules that need more than the message (its arrival time, the
/// session's checks, its other recipients): a message learnt later, away
/// from its session, cannot fire them.
const CONTEXT_RULES: &[&str] = &[
    "DATE_IN_FUTURE",
    "DATE_IN_PAST",
    "SPF_FAIL",
    "SPF_SOFTFAIL",
    "DKIM_FAIL",
    "DMARC_FAIL",
    "DMARC_PASS",
    "SPAM_TRAP",
    "FROM_LOCAL_UNAUTH",
];

/// Of the rules that fired, those on the message's content alone: what
/// [`check_read`] fires with [`Context::default`], as the classifier
/// learns them.
pub fn content_only<'a>(fired: &[&'a str]) -> Vec<&'a str> {
    fired
        .iter()
        .filter(|id| !CONTEXT_RULES.contains(id))
        .copied()
        .collect()
}

/// The ids of the rules that fire (Bayes bands aside).
pub fn check(msg: &Message<'_>, ctx: &Context<'_>) -> Vec<&'static str> {
    check_read(msg, &Reading::of(msg), ctx)
}

/// [`check`] of a message read already.
pub fn check_read(msg: &Message<'_>, read: &Reading, ctx: &Context<'_>) -> Vec<&'static str> {
    let mut hits = Vec::new();
    headers(msg, ctx, &mut hits);
    body(msg, read, &mut hits);
    super::heuristics::check(msg, read, &mut hits);
    auth(ctx.auth_results, &mut hits);
    phishing(msg, ctx, read, &mut hits);
    if ctx.trapped {
        hits.push("SPAM_TRAP");
    }
    hits
}

fn first_address<'a>(a: Option<&'a Address<'a>>) -> Option<&'a str> {
    a.and_then(|a| a.first()).and_then(|a| a.address())
}

fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// Same organisation, roughly: equal last two labels.
fn same_site(a: &str, b: &str) -> bool {
    let tail = |d: &str| {
        let labels: Vec<&str> = d.rsplitn(3, '.').collect();
        labels
            .iter()
            .take(2)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    };
    tail(a) == tail(b)
}

fn headers(msg: &Message<'_>, ctx: &Context<'_>, hits: &mut Vec<&'static str>) {
    match msg.date() {
        // A Date that does not parse is DATE_MALFORMED (heuristics).
        None if msg.header_raw("Date").is_none() => hits.push("MISSING_DATE"),
        None => {}
        Some(d) => {
            let t = d.to_timestamp();
            if ctx.now > 0 {
                if t > ctx.now + 12 * 3600 {
                    hits.push("DATE_IN_FUTURE");
                } else if t < ctx.now - 30 * 86400 {
                    hits.push("DATE_IN_PAST");
                }
            }
        }
    }
    match msg.message_id() {
        None => hits.push("MISSING_MID"),
        Some(id) if !id.contains('@') => hits.push("MID_NO_DOMAIN"),
        _ => {}
    }
    let from = first_address(msg.from());
    if from.is_none() {
        hits.push("MISSING_FROM");
    }
    if msg.to().is_none() && msg.cc().is_none() {
        hits.push("MISSING_TO");
    }
    match msg.subject() {
        None => hits.push("MISSING_SUBJECT"),
        Some(s) => {
            let letters: Vec<char> = s.chars().filter(|c| c.is_alphabetic()).collect();
            if letters.len() >= 10 && letters.iter().all(|c| c.is_uppercase()) {
                hits.push("SUBJ_ALL_CAPS");
            }
            if s.contains("!!") {
                hits.push("SUBJ_EXCLAIM");
            }
        }
    }
    let from_domain = from.and_then(domain_of);
    if let (Some(fd), Some(name)) = (
        &from_domain,
        msg.from().and_then(|a| a.first()).and_then(|a| a.name()),
    ) {
        let shown = name
            .split(|c: char| c.is_whitespace() || "<>()\"'".contains(c))
            .filter(|w| w.contains('@'))
            .find_map(domain_of);
        if shown.is_some_and(|d| d.contains('.') && !same_site(&d, fd)) {
            hits.push("FROM_NAME_SPOOF");
        }
    }
    if let (Some(fd), Some(rd)) = (
        &from_domain,
        first_address(msg.reply_to()).and_then(domain_of),
    ) {
        if !same_site(fd, &rd) {
            hits.push("REPLYTO_OTHER_DOMAIN");
        }
    }
}

/// File name endings of programs and scripts a click runs.
const EXECUTABLE: &[&str] = &[
    "exe", "scr", "pif", "com", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
    "jar", "msi", "cpl", "lnk", "ps1", "iso", "img",
];

/// Hosts that only redirect elsewhere.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
];

fn body(msg: &Message<'_>, read: &Reading, hits: &mut Vec<&'static str>) {
    let mut has_text = false;
    let mut has_html = false;
    let mut has_image = false;
    for part in &msg.parts {
        match &part.body {
            PartType::Text(_) => has_text = true,
            PartType::Html(_) => has_html = true,
            PartType::InlineBinary(_) | PartType::Binary(_)
                if part
                    .content_type()
                    .is_some_and(|c| c.ctype().eq_ignore_ascii_case("image")) =>
            {
                has_image = true;
            }
            _ => {}
        }
        if let Some(name) = part.attachment_name() {
            let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            if ext.is_some_and(|e| EXECUTABLE.contains(&e.as_str())) {
                push_once(hits, "EXE_ATTACHMENT");
            }
        }
    }
    if has_html && !has_text {
        hits.push("HTML_ONLY");
    }
    let text = &read.text;
    if has_html {
        let lower = &read.html_lower;
        has_image |= lower.contains("<img");
        let visible = text.chars().filter(|c| !c.is_whitespace()).count();
        if has_image && visible < 200 {
            hits.push("HTML_SHORT_IMAGE");
        }
        let mut squeezed = String::with_capacity(lower.len());
        lower
            .split(char::is_whitespace)
            .for_each(|piece| squeezed.push_str(piece));
        if [
            "display:none",
            "font-size:0px",
            "font-size:0;",
            "font-size:1px",
            "visibility:hidden",
        ]
        .iter()
        .any(|p| squeezed.contains(p))
            || (squeezed.contains("color=\"#ffffff\"") && !squeezed.contains("bgcolor=\"#000"))
        {
            hits.push("HTML_HIDDEN_TEXT");
        }
    }
    let (upper, letters) = text
        .chars()
        .filter(|c| c.is_alphabetic())
        .fold((0usize, 0usize), |(u, n), c| {
            (u + usize::from(c.is_uppercase()), n + 1)
        });
    if letters >= 200 && upper * 2 > letters {
        hits.push("BODY_CAPS");
    }
    links(&read.links, hits);
}

/// The message's HTML bodies and its text (HTML turned into text), each
/// up to about 512 KB.
pub fn html_and_text(msg: &Message<'_>) -> (String, String) {
    let mut html = String::new();
    for i in 0..msg.html_body_count() {
        if let Some(h) = msg.body_html(i) {
            html.push_str(&h);
        }
        if html.len() > 512 * 1024 {
            break;
        }
    }
    let mut text = String::new();
    for i in 0..msg.text_body_count().max(msg.html_body_count()) {
        if let Some(t) = msg.body_text(i) {
            text.push_str(&t);
            text.push('\n');
        }
        if text.len() > 512 * 1024 {
            break;
        }
    }
    (html, text)
}

impl Reading {
    /// The URLs of the message's links, as written.
    pub fn link_urls(&self) -> Vec<String> {
        self.links.iter().map(|l| l.url.clone()).collect()
    }
}

/// The hosts a message names: its From domain and its links' hosts.
pub fn message_hosts(msg: &Message<'_>, read: &Reading) -> Vec<String> {
    let mut out: Vec<String> = first_address(msg.from())
        .and_then(domain_of)
        .into_iter()
        .collect();
    out.extend(read.link_hosts.iter().cloned());
    out
}

fn push_once(hits: &mut Vec<&'static str>, id: &'static str) {
    if !hits.contains(&id) {
        hits.push(id);
    }
}

/// A link found in the text or HTML: its host and what the reader sees.
#[derive(Debug, PartialEq)]
pub struct Link {
    /// The URL as written.
    pub url: String,
    pub host: String,
    pub credentials: bool,
    /// The anchor's text (HTML links only).
    pub text: Option<String>,
}

/// Links of `http://` and `https://` URLs: in `href` attributes with their
/// anchor text, and bare in the text.
pub fn find_links(html: &str, lower: &str, text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(i) = lower[rest..].find("href=") {
        let start = rest + i + 5;
        let quote = lower[start..].chars().next();
        let (from, end_char) = match quote {
            Some('"') => (start + 1, '"'),
            Some('\'') => (start + 1, '\''),
            _ => (start, ' '),
        };
        let end = lower[from..]
            .find([end_char, '>'])
            .map_or(lower.len(), |e| from + e);
        let url = &html[from..end];
        let anchor = lower[end..].find('>').and_then(|gt| {
            let body_start = end + gt + 1;
            let close = lower[body_start..].find("</a")?;
            Some(
                crate::mail::mime::strip_tags(&html[body_start..body_start + close])
                    .trim()
                    .to_string(),
            )
        });
        if let Some((host, credentials)) = url_host(url) {
            out.push(Link {
                url: url.trim().to_string(),
                host,
                credentials,
                text: anchor,
            });
        }
        rest = end.max(start);
    }
    for word in text.split(|c: char| c.is_whitespace() || "<>\"'()[]".contains(c)) {
        let b = word.as_bytes();
        let starts = |p: &[u8]| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p);
        if starts(b"http://") || starts(b"https://") {
            if let Some((host, credentials)) = url_host(word) {
                out.push(Link {
                    url: word.to_string(),
                    host,
                    credentials,
                    text: None,
                });
            }
        }
    }
    out
}

/// The host of an http(s) URL (lower case) and whether it names a user.
pub fn url_host(url: &str) -> Option<(String, bool)> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let after = ["http://", "https://"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))?;
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((_, h)) => (true, h),
        None => (false, authority),
    };
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("").to_string()
    } else {
        hostport.split(':').next().unwrap_or("").to_string()
    };
    let host = host.trim_end_matches('.').to_string();
    (!host.is_empty()).then_some((host, credentials))
}

fn is_ip_literal(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (host.contains('.') && host.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// A domain written as the text of a link ("www.bank.example",
/// "https://bank.example/login").
fn shown_domain(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .unwrap_or(&t);
    let host = t.split(['/', ' ', '?', '#']).next()?;
    let labels: Vec<&str> = host.split('.').collect();
    let looks = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    looks.then(|| host.to_string())
}

fn links(links: &[Link], hits: &mut Vec<&'static str>) {
    for l in links {
        if is_ip_literal(&l.host) {
            push_once(hits, "URL_IP_LITERAL");
        }
        if l.credentials {
            push_once(hits, "URL_CREDENTIALS");
        }
        if SHORTENERS.contains(&l.host.as_str()) {
            push_once(hits, "URL_SHORTENER");
        }
        if l.host.split('.').count() >= 5 && !is_ip_literal(&l.host) {
            push_once(hits, "URL_DEEP_SUBDOMAINS");
        }
        if let Some(shown) = l.text.as_deref().and_then(shown_domain) {
            if !same_site(&shown, &l.host) {
                push_once(hits, "LINK_TEXT_MISMATCH");
            }
        }
    }
}

/// The results in an Authentication-Results field, as (method, result)
/// pairs; SPF's is the envelope sender's (`smtp.mailfrom`).
pub fn auth_results(field: &str) -> Vec<(String, String)> {
    let value = field.split_once(':').map_or(field, |(_, v)| v);
    value
        .split(';')
        .skip(1)
        .filter_map(|piece| {
            let piece = piece.trim();
            let first = piece.split_whitespace().next()?;
            let (method, result) = first.split_once('=')?;
            let method = method.to_ascii_lowercase();
            if method == "spf" && !piece.contains("smtp.mailfrom") {
                return None;
            }
            Some((method, result.to_ascii_lowercase()))
        })
        .collect()
}

fn auth(field: &str, hits: &mut Vec<&'static str>) {
    for (method, result) in auth_results(field) {
        let id = match (method.as_str(), result.as_str()) {
            ("spf", "fail") => "SPF_FAIL",
            ("spf", "softfail") => "SPF_SOFTFAIL",
            ("dkim", "fail") => "DKIM_FAIL",
            ("dmarc", "fail") => "DMARC_FAIL",
            ("dmarc", "pass") => "DMARC_PASS",
            _ => continue,
        };
        push_once(hits, id);
    }
}

/// Brands whose names in a display name are a lure when the address is
/// not theirs: (name as written, lower case; their domains).
const BRANDS: &[(&str, &[&str])] = &[
    ("paypal", &["paypal.com"]),
    ("apple", &["apple.com", "icloud.com"]),
    (
        "microsoft",
        &["microsoft.com", "outlook.com", "office.com", "live.com"],
    ),
    ("office 365", &["microsoft.com", "office.com"]),
    (
        "amazon",
        &["amazon.com", "amazon.de", "amazon.co.uk", "amazon.fr"],
    ),
    ("netflix", &["netflix.com"]),
    ("google", &["google.com", "gmail.com"]),
    (
        "facebook",
        &["facebook.com", "facebookmail.com", "meta.com"],
    ),
    ("docusign", &["docusign.com", "docusign.net"]),
    ("dhl", &["dhl.com", "dhl.de"]),
    ("fedex", &["fedex.com"]),
    ("wells fargo", &["wellsfargo.com"]),
    ("chase", &["chase.com", "jpmchase.com"]),
];

/// Letters' scripts that look alike.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

fn script(c: char) -> Option<Script> {
    match c as u32 {
        0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f => Some(Script::Latin),
        0x370..=0x3ff => Some(Script::Greek),
        0x400..=0x52f => Some(Script::Cyrillic),
        _ => None,
    }
}

/// A label (after IDNA decoding) with letters of two look-alike scripts.
pub fn mixed_script(domain: &str) -> bool {
    let (unicode, _) = idna::domain_to_unicode(domain);
    unicode.split('.').any(|label| {
        let mut seen: Option<Script> = None;
        label.chars().filter_map(script).any(|s| {
            let mixed = seen.is_some_and(|p| p != s);
            seen = Some(s);
            mixed
        })
    })
}

/// Whether a display name names `brand` as a word or words of its own.
fn names_brand(name: &str, brand: &str) -> bool {
    let words: Vec<&str> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let want: Vec<&str> = brand.split(' ').collect();
    words.windows(want.len()).any(|w| w == want.as_slice())
}

fn phishing(msg: &Message<'_>, ctx: &Context<'_>, read: &Reading, hits: &mut Vec<&'static str>) {
    let from = msg.from().and_then(|a| a.first());
    let from_domain = from.and_then(|a| a.address()).and_then(domain_of);
    if ctx.from_local {
        let passed = auth_results(ctx.auth_results)
            .iter()
            .any(|(m, r)| r == "pass" && (m == "spf" || m == "dkim" || m == "dmarc"));
        if !passed {
            hits.push("FROM_LOCAL_UNAUTH");
        }
    }
    if let (Some(name), Some(fd)) = (from.and_then(|a| a.name()), &from_domain) {
        let name = name.to_lowercase();
        let spoof = BRANDS.iter().any(|(brand, domains)| {
            names_brand(&name, brand) && !domains.iter().any(|d| same_site(fd, d))
        });
        if spoof {
            hits.push("FROM_BRAND_SPOOF");
        }
    }
    let mut domains: Vec<&str> = from_domain.as_deref().into_iter().collect();
    domains.extend(read.link_hosts.iter().map(String::as_str));
    if domains.iter().any(|d| mixed_script(d)) {
        hits.push("MIXED_SCRIPT_DOMAIN");
    }
}

/// A message's header field `name` is one the filter writes.
pub fn is_own_header(name: &str) -> bool {
    // Compared as bytes: a name can hold anything (found by fuzzing: a
    // multi-byte character across the seventh byte).
    name.len() > 7 && name.as_bytes()[..7].eq_ignore_ascii_case(b"x-spam-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn fired(raw: &str, auth: &str) -> Vec<&'static str> {
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        check(
            &msg,
            &Context {
                auth_results: auth,
                now: 1_700_000_000,
                ..Default::default()
            },
        )
    }

    const CLEAN: &str = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <a@b.example>\r\nFrom: Ann <ann@b.example>\r\nTo: bob@c.example\r\nSubject: Lunch\r\n\r\nSee you at noon.\r\n";

    #[test]
    fn a_plain_message_fires_nothing() {
        assert!(fired(CLEAN, "").is_empty(), "{:?}", fired(CLEAN, ""));
    }

    #[test]
    fn header_rules() {
        let m = "From: \"support@bank.example\" <x@evil.example>\r\nReply-To: y@other.example\r\nMessage-ID: <nodomain>\r\nSubject: YOU HAVE WON A PRIZE!!\r\n\r\nhello\r\n";
        let f = fired(m, "");
        for want in [
            "MISSING_DATE",
            "MID_NO_DOMAIN",
            "MISSING_TO",
            "SUBJ_ALL_CAPS",
            "SUBJ_EXCLAIM",
            "FROM_NAME_SPOOF",
            "REPLYTO_OTHER_DOMAIN",
        ] {
            assert!(f.contains(&want), "{want} in {f:?}");
        }
        let future = CLEAN.replace("14 Nov 2023", "14 Nov 2030");
        assert_eq!(fired(&future, ""), ["DATE_IN_FUTURE"]);
        let past = CLEAN.replace("14 Nov 2023", "14 Nov 2020");
        assert_eq!(fired(&past, ""), ["DATE_IN_PAST"]);
    }

    #[test]
    fn body_and_link_rules() {
        let m = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <a@b.example>\r\nFrom: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\nContent-Type: text/html\r\n\r\n<a href=\"http://192.0.2.7/login\">https://www.bank.example/</a> <img src=x> <a href='https://user@host.example/'>x</a> <a href=http://bit.ly/x>y</a> <span style=\"display: none\">z</span> <a href=\"http://a.b.c.d.e.example/\">q</a>\r\n";
        let f = fired(m, "");
        for want in [
            "HTML_ONLY",
            "HTML_SHORT_IMAGE",
            "HTML_HIDDEN_TEXT",
            "URL_IP_LITERAL",
            "URL_CREDENTIALS",
            "URL_SHORTENER",
            "URL_DEEP_SUBDOMAINS",
            "LINK_TEXT_MISMATCH",
        ] {
            assert!(f.contains(&want), "{want} in {f:?}");
        }
        // The link text names the site it goes to: no mismatch.
        let ok = m.replace("192.0.2.7", "www.bank.example");
        assert!(!fired(&ok, "").contains(&"LINK_TEXT_MISMATCH"));
    }

    #[test]
    fn attachments_and_capitals() {
        let m = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <a@b.example>\r\nFrom: a@b.example\r\nTo: c@d.example\r\nSubject: invoice\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\r\nMZ\r\n--x--\r\n";
        assert_eq!(fired(m, ""), ["EXE_ATTACHMENT"]);
        let shout = CLEAN.replace("See you at noon.", &"BUY NOW CHEAP ".repeat(30));
        assert_eq!(fired(&shout, ""), ["BODY_CAPS"]);
    }

    #[test]
    fn phishing_rules() {
        // A Cyrillic "а" in "pаypal", IDNA-encoded in the link.
        let m = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <a@b.example>\r\nFrom: \"PayPal Service\" <service@pay-pal-help.example>\r\nTo: c@d.example\r\nSubject: account\r\n\r\nLog in at https://xn--pypal-4ve.com/login today\r\n";
        let f = fired(m, "");
        assert!(f.contains(&"FROM_BRAND_SPOOF"), "{f:?}");
        assert!(f.contains(&"MIXED_SCRIPT_DOMAIN"), "{f:?}");
        assert!(mixed_script("xn--pypal-4ve.com"));
        assert!(
            !mixed_script("bücher.example"),
            "Latin with accents is one script"
        );
        assert!(!mixed_script("пример.рф"), "all Cyrillic is one script");
        // The brand's own domain, or no brand: nothing.
        let own = m
            .replace("pay-pal-help.example", "mail.paypal.com")
            .replace("xn--pypal-4ve.com", "paypal.com");
        assert!(fired(&own, "").is_empty(), "{:?}", fired(&own, ""));
        let fan = m.replace("PayPal Service", "Paypalooza fan club");
        assert!(!fired(&fan, "").contains(&"FROM_BRAND_SPOOF"));
        // A local From with nothing passing, then with DKIM passing.
        let msg = MessageParser::default().parse(CLEAN.as_bytes()).unwrap();
        let mut ctx = Context {
            from_local: true,
            ..Default::default()
        };
        assert_eq!(check(&msg, &ctx), ["FROM_LOCAL_UNAUTH"]);
        ctx.auth_results = "Authentication-Results: mx; dkim=pass header.d=b.example";
        assert!(check(&msg, &ctx).is_empty());
    }

    #[test]
    fn sender_check_results() {
        let ar = "Authentication-Results: mx.test;\r\n\tspf=pass smtp.helo=x;\r\n\tspf=fail smtp.mailfrom=a@b.example;\r\n\tdkim=fail header.d=b.example;\r\n\tdmarc=fail header.from=b.example\r\n";
        assert_eq!(fired(CLEAN, ar), ["SPF_FAIL", "DKIM_FAIL", "DMARC_FAIL"]);
        let good = "Authentication-Results: mx.test; spf=softfail smtp.mailfrom=a@b; dmarc=pass header.from=b";
        assert_eq!(fired(CLEAN, good), ["SPF_SOFTFAIL", "DMARC_PASS"]);
    }

    #[test]
    fn every_rule_is_listed_once() {
        let all: Vec<&Rule> = all().collect();
        for (i, r) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|o| o.id != r.id), "{}", r.id);
            assert_eq!(find(r.id), Some(*r));
        }
        assert_eq!(bayes_band(0.5), Some("BAYES_50"));
        assert_eq!(bayes_band(0.25), None);
        assert_eq!(bayes_band(0.999), Some("BAYES_99"));
    }

    proptest::proptest! {
        #[test]
        fn any_message_gives_known_rules(
            subject in ".{0,80}",
            from in ".{0,60}",
            body in ".{0,400}",
            html in proptest::bool::ANY,
        ) {
            let ct = if html { "text/html" } else { "text/plain" };
            let raw = format!("From: {from}\r\nSubject: {subject}\r\nContent-Type: {ct}\r\n\r\n{body}");
            if let Some(msg) = MessageParser::default().parse(raw.as_bytes()) {
                let ctx = Context { auth_results: &body, now: 1_700_000_000, ..Default::default() };
                let f = check(&msg, &ctx);
                for id in &f {
                    proptest::prop_assert!(find(id).is_some());
                }
                let mut dedup = f.clone();
                dedup.sort_unstable();
                dedup.dedup();
                proptest::prop_assert_eq!(dedup.len(), f.len(), "each rule once: {:?}", f);
            }
        }

        #[test]
        fn hosts_are_hosts(url in "(http|https|HTTP)://.{0,60}") {
            if let Some((host, _)) = url_host(&url) {
                proptest::prop_assert!(!host.is_empty());
                proptest::prop_assert!(!host.contains(['/', '?', '#']));
            }
        }
    }

    #[test]
    fn own_header_names() {
        assert!(is_own_header("X-Spam-Status"));
        assert!(is_own_header("x-spam-flag"));
        assert!(!is_own_header("X-Spam"));
        assert!(!is_own_header("X-Spamless"));
        assert!(!is_own_header("xaplя>To"));
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("HTTPS://User:pw@Example.COM:8080/x"),
            Some(("example.com".into(), true))
        );
        assert_eq!(
            url_host("http://[2001:db8::1]/"),
            Some(("2001:db8::1".into(), false))
        );
        assert_eq!(url_host("ftp://x"), None);
        assert_eq!(url_host("http://"), None);
    }
}
