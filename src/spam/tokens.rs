//! What the classifier counts in a message: each a 64-bit hash (FNV-1a,
//! hand-written because the hashes are kept and must not change with a
//! crate's version) of a prefixed string, once per message.
//!
//! * header names present (`h:list-id`) and a few values: the Subject's
//!   words, the sender's address, domain and display-name words, the
//!   mailer, the root content type;
//! * the recipients, Reply-To's domain, Message-ID's domain, how many
//!   Received fields; each part's type, charset and transfer encoding;
//! * the words of the decoded text (HTML turned into text by
//!   mail-parser), lower-cased, 3 to 20 characters (longer ones count
//!   as their first letter and length); the tag and attribute names of
//!   HTML;
//! * pairs of neighbouring Chinese, Japanese or Korean characters
//!   (`cjk:` and the pair: such text has no spaces between words);
//!   cross-validation on the training sets did not change (they hold
//!   little such text), the test sets' false negatives at 5.0 went from
//!   159 to 156;
//! * the hosts of links, and their last two labels; the words of their
//!   paths and queries (cross-validation on the training sets of
//!   `cargo xtask bench spam`: the whole filter's false positives at the
//!   default junk score 16 -> 12 of 2,750, from 3.0 36 -> 21; false
//!   negatives 26 -> 28 of 500);
//! * the ids of the rules that fire on the message's content alone
//!   (`rule:SUBJ_PADDED`): the classifier learns how far each rule tells
//!   spam from ham where it is trained. On the corpus split of
//!   `cargo xtask bench spam` these lowered the classifier's false
//!   negatives at 0.5 from 4.8 % to 3.6 % on a split of the training
//!   sets alone (half trained, half tested), false positives 0.80 % and
//!   0.87 %; on the test sets from 12.5 % to 10.2 %, false positives
//!   equal (0.43 %).
//!
//! Word pairs (orthogonal sparse bigrams, each word with each of the
//! next four) were measured on the SpamAssassin corpus split of
//! `cargo xtask bench spam` and did worse with its 3,250 training
//! messages (false negatives 25.4 % against 18.0 % at a 0.7 threshold,
//! false positives equal), so words count alone for now. So did the
//! words of every other header field's value (17.98 % against 12.46 %
//! false negatives at 0.5) and the hosts and networks of Received fields
//! (15.19 %): on that corpus they mostly learn the relays ham came
//! through.

use rustc_hash::FxHashSet as HashSet;

use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders};

use super::rules::{Context, Reading};

/// The most text read from one message's parts.
const MAX_TEXT: usize = 256 * 1024;

pub fn hash(s: &str) -> u64 {
    fnv(FNV_OFFSET, s.as_bytes())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes` continuing from `h`: `fnv(fnv(o, a), b)` is the
/// hash of `a` followed by `b`, so a prefixed token needs no string.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A message's tokens as they are found, each once.
#[derive(Default)]
struct Sink(HashSet<u64>);

impl Sink {
    fn add(&mut self, s: &str) {
        self.0.insert(hash(s));
    }

    /// `prefix` then `value`: the hash of `format!("{prefix}{value}")`.
    fn add2(&mut self, prefix: &str, value: &str) {
        self.0
            .insert(fnv(fnv(FNV_OFFSET, prefix.as_bytes()), value.as_bytes()));
    }

    /// `skip:` with an ASCII word's first letter and its length in tens
    /// (`skip:a60`), as [`words`] writes it.
    fn add_skip(&mut self, first: u8, len: usize) {
        let h = fnv(fnv(FNV_OFFSET, b"skip:"), &[first]);
        self.0
            .insert(fnv(h, (len / 10 * 10).to_string().as_bytes()));
    }

    /// As [`Sink::add2`] with `value` in ASCII lower case.
    fn add2_lower(&mut self, prefix: &str, value: &str) {
        let mut h = fnv(FNV_OFFSET, prefix.as_bytes());
        for b in value.bytes() {
            h = fnv(h, &[b.to_ascii_lowercase()]);
        }
        self.0.insert(h);
    }
}

/// The tokens of a message, sorted, each once.
pub fn tokens(raw: &[u8]) -> Vec<u64> {
    // An mbox "From " line before the header is no header field.
    let raw = match raw.strip_prefix(b"From ") {
        Some(rest) => rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(&raw[..0], |n| &rest[n + 1..]),
        None => raw,
    };
    match MessageParser::default().parse(raw) {
        Some(msg) => tokens_of(&msg),
        None => {
            let mut out = Sink::default();
            let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_TEXT)]);
            text_words(&text, &mut out);
            sorted(out.0)
        }
    }
}

/// The tokens of a message parsed already, sorted, each once.
pub fn tokens_of(msg: &Message<'_>) -> Vec<u64> {
    let read = Reading::of(msg);
    let fired = super::rules::check_read(msg, &read, &Context::default());
    tokens_read(msg, &read, &fired)
}

/// [`tokens_of`] with the message read already and the rules that fire
/// on its content alone ([`super::rules::content_only`]).
pub fn tokens_read(msg: &Message<'_>, read: &Reading, fired: &[&str]) -> Vec<u64> {
    let (html, text) = (read.html.as_str(), read.text.as_str());
    let mut out = Sink::default();
    for id in fired {
        out.add2("rule:", id);
    }
    for h in msg.headers() {
        out.add2_lower("h:", h.name.as_str());
    }
    if let Some(s) = msg.subject() {
        for w in words(s) {
            out.add2("s:", &w);
        }
    }
    if let Some(from) = msg.from().and_then(|f| f.first()) {
        if let Some(a) = from.address() {
            let a = a.to_ascii_lowercase();
            if let Some((_, d)) = a.rsplit_once('@') {
                out.add2("from-domain:", d);
            }
            out.add2("from:", &a);
        }
        if let Some(n) = from.name() {
            for w in words(n) {
                out.add2("from-name:", &w);
            }
        }
    }
    let mut recipients = 0;
    for list in [msg.to(), msg.cc()].into_iter().flatten() {
        for a in list.iter() {
            recipients += 1;
            if let Some(addr) = a.address() {
                let addr = addr.to_ascii_lowercase();
                out.add2("to:", &addr);
                if let Some((_, d)) = addr.rsplit_once('@') {
                    out.add2("to-domain:", d);
                }
            }
        }
    }
    out.add2("recipients:", &recipients.min(10).to_string());
    if let Some(d) = msg
        .reply_to()
        .and_then(|r| r.first())
        .and_then(|a| a.address())
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
    {
        out.add2("reply-to-domain:", &d);
    }
    match msg.message_id().map(|id| id.rsplit_once('@')) {
        Some(Some((_, d))) => out.add2_lower("message-id:", d),
        Some(None) => out.add("message-id:no-domain"),
        None => out.add("message-id:none"),
    }
    let received = msg.header_values(HeaderName::Received).count();
    out.add2("received:", &received.min(10).to_string());
    for name in [
        HeaderName::Other("X-Mailer".into()),
        HeaderName::Other("User-Agent".into()),
    ] {
        if let Some(v) = msg.header(name).and_then(|v| v.as_text()) {
            out.add2_lower("mailer:", v);
        }
    }
    if let Some(ct) = msg.root_part().content_type() {
        out.add(&format!(
            "ct:{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        ));
    }
    for part in &msg.parts {
        if let Some(ct) = part.content_type() {
            out.add(&format!(
                "part:{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            ));
            if let Some(cs) = ct.attribute("charset") {
                out.add2_lower("charset:", cs);
            }
        }
        if let Some(cte) = part.content_transfer_encoding() {
            out.add2_lower("cte:", cte);
        }
    }
    // Links in the HTML's attributes as well as in the text.
    if !html.is_empty() {
        hosts(&read.html_lower, &mut out);
        tags(html, &mut out);
        out.add("html");
    }
    let mut cut = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    hosts(&text[..cut].to_ascii_lowercase(), &mut out);
    text_words(&text[..cut], &mut out);
    sorted(out.0)
}

fn sorted(set: HashSet<u64>) -> Vec<u64> {
    let mut v: Vec<u64> = set.into_iter().collect();
    v.sort_unstable();
    v
}

/// Words as counted: lower case, surrounding punctuation off.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace().filter_map(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && !"$!%".contains(c));
        let n = w.chars().count();
        if n < 3 {
            None
        } else if n > 20 {
            Some(format!(
                "skip:{}{}",
                w.chars().next().unwrap_or('_'),
                n / 10 * 10
            ))
        } else {
            Some(w.to_lowercase())
        }
    })
}

/// [`words`] without a new string for each ASCII word (most of them).
fn text_words(text: &str, out: &mut Sink) {
    let mut buf = String::new();
    for w in text.split_whitespace() {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && !"$!%".contains(c));
        if !w.is_ascii() {
            words(w).for_each(|w| out.add(&w));
            cjk_pairs(w, out);
            continue;
        }
        match w.len() {
            0..3 => {}
            3..=20 => {
                buf.clear();
                buf.push_str(w);
                buf.make_ascii_lowercase();
                out.add(&buf);
            }
            n => out.add_skip(w.as_bytes()[0], n),
        }
    }
}

/// Chinese, Japanese and Korean text has no spaces between its words:
/// each pair of such neighbouring characters counts (`cjk:` and the
/// pair), the first hundred pairs of each word.
fn cjk_pairs(w: &str, out: &mut Sink) {
    let cjk = |c: char| {
        matches!(c,
            '\u{3040}'..='\u{30ff}'   // Hiragana, Katakana
            | '\u{3400}'..='\u{9fff}' // Han
            | '\u{ac00}'..='\u{d7af}' // Hangul syllables
            | '\u{f900}'..='\u{faff}')
    };
    let mut prev: Option<char> = None;
    let mut n = 0;
    let mut pair = String::new();
    for c in w.chars() {
        if !cjk(c) {
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            if n < 100 {
                pair.clear();
                pair.push(p);
                pair.push(c);
                out.add2("cjk:", &pair);
                n += 1;
            }
        }
        prev = Some(c);
    }
}

/// HTML tag names and attribute names (`tag:font`, `attr:color`).
fn tags(html: &str, out: &mut Sink) {
    for piece in html.split('<').skip(1) {
        let inside = piece.split('>').next().unwrap_or("");
        let mut words = inside.split(|c: char| c.is_whitespace() || c == '/');
        if let Some(name) = words.find(|w| !w.is_empty()) {
            if name.chars().all(|c| c.is_ascii_alphanumeric()) && name.len() <= 12 {
                out.add2_lower("tag:", name);
            }
        }
        for w in words {
            if let Some((attr, _)) = w.split_once('=') {
                if attr.chars().all(|c| c.is_ascii_alphabetic())
                    && !attr.is_empty()
                    && attr.len() <= 12
                {
                    out.add2_lower("attr:", attr);
                }
            }
        }
    }
}

static LINK_MARKERS: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(["http://", "https://", "www."])
            .expect("the link markers build")
    });

/// Link hosts (`http://`, `https://`, `www.`), and their domains.
/// `lower` is in ASCII lower case already.
fn hosts(lower: &str, out: &mut Sink) {
    let mut rest = lower;
    // The nearest marker in one pass (three searches each to the end of
    // the text made long HTML quadratic: a fifth of the filter's time).
    while let Some(p) = LINK_MARKERS
        .find(rest)
        .map(|m| (m.start(), m.end() - m.start()))
    {
        let start = if rest[p.0..].starts_with("www.") {
            p.0
        } else {
            p.0 + p.1
        };
        let host: String = rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        let host = host.trim_end_matches('.');
        if host.contains('.') {
            out.add2("url:", host);
            let labels: Vec<&str> = host.rsplitn(3, '.').collect();
            if labels.len() >= 2 {
                out.add2("url-domain:", &format!("{}.{}", labels[1], labels[0]));
            }
            if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                out.add("url:ip-literal");
            }
        }
        // Past the marker and the host (ASCII): always ahead, always on
        // a character boundary (found by fuzzing: a multi-byte character
        // right after "http://").
        rest = &rest[start + host.len()..];
        // The words of the link's path and query (`url-word:unsubscribe`),
        // the first twenty.
        let end = rest
            .find(|c: char| c.is_whitespace() || "\"'<>()".contains(c))
            .unwrap_or(rest.len());
        let words = rest[..end].split(|c: char| !c.is_ascii_alphanumeric());
        for w in words.filter(|w| (3..=20).contains(&w.len())).take(20) {
            out.add2("url-word:", w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_tokens_hash_as_their_strings() {
        let mut sink = Sink::default();
        sink.add2("url:", "shop.example");
        sink.add2_lower("h:", "List-ID");
        sink.add_skip(b'Q', 64);
        let mut want = vec![
            hash("url:shop.example"),
            hash("h:list-id"),
            hash("skip:Q60"),
        ];
        want.sort_unstable();
        assert_eq!(sorted(sink.0), want);
    }

    #[test]
    fn pairs_of_cjk_characters_count() {
        let t = tokens(
            "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n免费发票 ok\r\n"
                .as_bytes(),
        );
        for want in ["cjk:免费", "cjk:费发", "cjk:发票"] {
            assert!(t.binary_search(&hash(want)).is_ok(), "{want}");
        }
        // Latin text has none.
        let latin = tokens(b"Subject: x\r\n\r\nfree invoice\r\n");
        assert!(!latin.contains(&hash("cjk:fr")));
    }

    #[test]
    fn counts_headers_words_and_links() {
        let m = b"From: \"Cheap Meds\" <deals@pharma.example>\r\nSubject: Buy now\r\nList-Id: <x>\r\nContent-Type: text/html\r\n\r\n<p>Click <a href=\"http://shop.pharma.example/offers?id=x\">here</a> today</p>";
        let t = tokens(m);
        for want in [
            "h:list-id",
            "s:buy",
            "s:now",
            "from:deals@pharma.example",
            "from-domain:pharma.example",
            "from-name:cheap",
            "url:shop.pharma.example",
            "url-domain:pharma.example",
            "url-word:offers",
            "click",
            "today",
            "html",
            "tag:a",
            "attr:href",
            "ct:text/html",
        ] {
            assert!(t.binary_search(&hash(want)).is_ok(), "{want}");
        }
        assert!(t.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
        assert!(
            t.binary_search(&hash("a")).is_err(),
            "short words are not counted"
        );
        // Bytes that are not UTF-8 do not stop the reading.
        let t = tokens(b"X-Junk: \xff\xfe\r\n\r\nplain words here");
        assert!(t.binary_search(&hash("words")).is_ok());
    }

    #[test]
    fn links_end_anywhere() {
        for text in [
            "http://é",
            "https://",
            "www.",
            "http://a.b/ www.c.d",
            "www.x.é",
        ] {
            let t = tokens(format!("Subject: x\r\n\r\n{text}").as_bytes());
            assert!(t.binary_search(&hash("h:subject")).is_ok(), "{text}");
        }
        let t = tokens(b"Subject: x\r\n\r\nsee http://a.b/ and www.c.d");
        assert!(t.binary_search(&hash("url:a.b")).is_ok());
        assert!(t.binary_search(&hash("url:www.c.d")).is_ok());
    }

    #[test]
    fn learnt_as_scored() {
        // An old Date and failed checks fire rules at delivery that a
        // message learnt later cannot: the classifier counts neither.
        let raw = b"Date: Tue, 14 Nov 2000 22:13:20 +0000\r\nFrom: a@b.example\r\nTo: c@d.example\r\nSubject: WIN A PRIZE NOW TODAY\r\n\r\nTo be removed, reply.\r\n";
        let msg = MessageParser::default().parse(raw).unwrap();
        let read = Reading::of(&msg);
        let ctx = Context {
            auth_results: "Authentication-Results: mx; spf=fail smtp.mailfrom=a@b.example",
            now: 1_700_000_000,
            ..Default::default()
        };
        let fired = super::super::rules::check_read(&msg, &read, &ctx);
        assert!(
            fired.contains(&"DATE_IN_PAST") && fired.contains(&"SPF_FAIL"),
            "{fired:?}"
        );
        let content = super::super::rules::content_only(&fired);
        let t = tokens_read(&msg, &read, &content);
        assert_eq!(t, tokens(raw), "learnt and scored alike");
        for id in ["SUBJ_ALL_CAPS", "BODY_REMOVE_INSTRUCTIONS"] {
            assert!(
                t.binary_search(&hash(&format!("rule:{id}"))).is_ok(),
                "{id}"
            );
        }
        assert!(t.binary_search(&hash("rule:SPF_FAIL")).is_err());
    }

    #[test]
    fn long_words_count_by_shape() {
        let t = tokens(b"Subject: x\r\n\r\nsupercalifragilisticexpialidocious word");
        assert!(t.binary_search(&hash("skip:s30")).is_ok());
        assert!(t.binary_search(&hash("word")).is_ok());
    }
}
