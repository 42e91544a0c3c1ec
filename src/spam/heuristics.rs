//! The classic heuristics on a message's own evidence: fields that are
//! malformed or forged (a Date that no parser reads, a Message-ID that a
//! claimed mailer never writes, a free-mail From that never passed
//! through the free-mail provider), HTML sent as plain text, recipient
//! lists harvested in bulk, and the phrases mass mailers have long used
//! (removal instructions, "this is not spam" claims, sums of dollars,
//! big red fonts, links "to be removed"). Like
//! [`super::rules`], no I/O: each looks at the parsed message only.
//!
//! Scores were chosen from how often each rule fired on the training
//! sets of `cargo xtask bench spam` (spam-1 against easy-ham-1 and
//! hard-ham-1), never from its test sets; `petrel spam evaluate` prints
//! every rule's hits on both.

use aho_corasick::AhoCorasick;
use mail_parser::{HeaderName, HeaderValue, Host, Message, MimeHeaders};

use super::rules::{rule, Reading, Rule};

pub const RULES: &[Rule] = &[
    rule("DATE_MALFORMED", 1.5, "a Date field that is not a date"),
    rule(
        "MID_MALFORMED",
        1.0,
        "a Message-ID that is not <left@right>",
    ),
    rule(
        "FORGED_OUTLOOK_MID",
        0.8,
        "X-Mailer claims Outlook, the Message-ID is not Outlook's",
    ),
    rule(
        "FORGED_FREEMAIL_RCVD",
        1.5,
        "From a free-mail provider, but no Received field names it",
    ),
    rule("HTML_IN_PLAIN", 0.5, "HTML markup sent as plain text"),
    rule(
        "RCPTS_HARVESTED",
        1.0,
        "ten or more To/Cc addresses, many alike",
    ),
    rule("TO_UNDISCLOSED", 1.0, "To names undisclosed recipients"),
    rule(
        "FROM_LOCAL_DIGITS",
        0.7,
        "the From address's local part ends in three or more digits",
    ),
    rule(
        "SUBJ_PADDED",
        2.0,
        "Subject with a long run of spaces (a tracking tail)",
    ),
    rule(
        "BODY_REMOVE_INSTRUCTIONS",
        1.5,
        "instructions to reply or click to be removed",
    ),
    rule(
        "BODY_NOT_SPAM_CLAIM",
        2.0,
        "claims not to be spam or cites the bill spammers quote (S. 1618)",
    ),
    rule(
        "BODY_SALES_PHRASES",
        1.0,
        "two or more pushy sales phrases (\"act now\", \"risk free\", ...)",
    ),
    rule(
        "BODY_DEAR_FRIEND",
        1.0,
        "the text opens with \"Dear friend\"",
    ),
    rule("BODY_MONEY", 0.5, "three or more sums of dollars"),
    rule("BODY_EXCLAIM", 0.7, "ten or more exclamation marks"),
    rule("HTML_FONT_BIG", 1.0, "HTML fonts of size 5 or more"),
    rule("HTML_FONT_RED", 1.0, "HTML text in red"),
    rule(
        "URL_REMOVE",
        1.5,
        "a link or mail address for being removed from a list",
    ),
];

/// Free-mail providers whose outgoing mail always names them in a
/// Received field.
const FREEMAIL: &[&str] = &[
    "hotmail.com",
    "yahoo.com",
    "msn.com",
    "aol.com",
    "excite.com",
];

/// Phrases of removal instructions.
const REMOVE: &[&str] = &[
    "to be removed",
    "removal instructions",
    "remove in the subject",
    "with remove in",
    "with \"remove\"",
    "remove\" in the subject",
    "click here to remove",
    "to unsubscribe from this mailing, reply",
];

/// Claims of not being spam, and the bill spammers cite.
const NOT_SPAM: &[&str] = &[
    "this is not spam",
    "this is not a spam",
    "not unsolicited",
    "is not an unsolicited",
    "s. 1618",
    "s.1618",
    "bill 1618",
    "section 301",
    "sent in compliance with",
];

/// At most 64 sales phrases: each has a bit in [`body_phrases`].
const _: () = assert!(SALES.len() <= 64);

/// Pushy sales phrases; two distinct ones fire BODY_SALES_PHRASES.
const SALES: &[&str] = &[
    "act now",
    "risk free",
    "risk-free",
    "money back guarantee",
    "100% guaranteed",
    "100% free",
    "limited time offer",
    "order now",
    "no obligation",
    "call now",
    "while supplies last",
    "satisfaction guaranteed",
    "extra income",
    "work from home",
    "credit card",
    "click here",
];

fn raw<'a>(msg: &'a Message<'_>, name: &'static str) -> Option<&'a str> {
    msg.header_raw(name).map(str::trim)
}

/// Outlook's Message-IDs: twelve hex digits, `$`, eight, `$`, eight, `@`;
/// in its Internet-only mode, twenty or more capitals from A to P and a
/// dot.
fn outlook_mid(id: &str) -> bool {
    let b = id.as_bytes();
    let imo = b.iter().take_while(|c| (b'A'..=b'P').contains(c)).count();
    if imo >= 20 && b.get(imo) == Some(&b'.') {
        return true;
    }
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_hexdigit))
    };
    hex(0..12)
        && b.get(12) == Some(&b'$')
        && hex(13..21)
        && b.get(21) == Some(&b'$')
        && hex(22..30)
        && b.get(30) == Some(&b'@')
}

pub fn check(msg: &Message<'_>, read: &Reading, hits: &mut Vec<&'static str>) {
    malformed(msg, hits);
    forged(msg, hits);
    recipients(msg, hits);
    if msg.subject().is_some_and(|s| s.contains("          ")) {
        hits.push("SUBJ_PADDED");
    }
    if msg.parts.iter().any(plain_but_html) {
        hits.push("HTML_IN_PLAIN");
    }
    body_phrases(&read.text, hits);
    body_marks(&read.text, hits);
    html_style(read, hits);
}

/// A Date no parser reads; a Message-ID that is not `<left@right>`.
fn malformed(msg: &Message<'_>, hits: &mut Vec<&'static str>) {
    if raw(msg, "Date").is_some() && msg.date().is_none() {
        hits.push("DATE_MALFORMED");
    }
    if let Some(id) = raw(msg, "Message-ID") {
        let inner = id.strip_prefix('<').and_then(|s| s.strip_suffix('>'));
        let ok = inner.is_some_and(|s| {
            !s.contains(char::is_whitespace)
                && s.split_once('@')
                    .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
        });
        if !ok {
            hits.push("MID_MALFORMED");
        }
    }
}

fn host_name<'a>(h: &'a Option<Host<'_>>) -> &'a str {
    match h {
        Some(Host::Name(n)) => n,
        _ => "",
    }
}

/// A mailer or a path that the message claims and its own fields deny.
fn forged(msg: &Message<'_>, hits: &mut Vec<&'static str>) {
    let mailer = raw(msg, "X-Mailer").unwrap_or("").to_ascii_lowercase();
    if mailer.contains("microsoft outlook") && !msg.message_id().is_some_and(outlook_mid) {
        hits.push("FORGED_OUTLOOK_MID");
    }
    let Some(from) = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase)
    else {
        return;
    };
    let Some((local, domain)) = from.rsplit_once('@') else {
        return;
    };
    if FREEMAIL.contains(&domain) {
        // "hotmail" of hotmail.com in a host a Received field names.
        let site = domain.split('.').next().unwrap_or(domain);
        let names = |text: &str| text.to_ascii_lowercase().contains(site);
        let named = msg.header_values(HeaderName::Received).any(|v| match v {
            HeaderValue::Received(r) => {
                names(host_name(&r.from))
                    || names(host_name(&r.by))
                    || names(host_name(&r.helo))
                    || r.from_iprev.as_deref().is_some_and(names)
            }
            HeaderValue::Text(t) => names(t),
            _ => false,
        });
        if !named {
            hits.push("FORGED_FREEMAIL_RCVD");
        }
    }
    let digits = local.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits >= 3 && digits < local.len() {
        hits.push("FROM_LOCAL_DIGITS");
    }
}

/// Ten or more To/Cc addresses of which a third follow a neighbour of
/// the same domain with the same first three letters (a list harvested
/// and sorted); To naming undisclosed recipients.
fn recipients(msg: &Message<'_>, hits: &mut Vec<&'static str>) {
    let mut rcpts: Vec<String> = Vec::new();
    for list in [msg.to(), msg.cc()].into_iter().flatten() {
        rcpts.extend(
            list.iter()
                .filter_map(|a| a.address())
                .map(str::to_ascii_lowercase),
        );
    }
    if rcpts.len() >= 10 {
        fn domain(a: &str) -> Option<&str> {
            a.rsplit_once('@').map(|x| x.1)
        }
        let alike = rcpts
            .windows(2)
            .filter(|w| {
                domain(&w[0]) == domain(&w[1]) && w[0].get(..3).is_some_and(|p| w[1].starts_with(p))
            })
            .count();
        if alike * 3 >= rcpts.len() {
            hits.push("RCPTS_HARVESTED");
        }
    }
    let to = raw(msg, "To").unwrap_or("").to_ascii_lowercase();
    if to.contains("undisclosed") || to.contains("recipient list suppressed") {
        hits.push("TO_UNDISCLOSED");
    }
}

/// A part declared (or defaulted to) text/plain whose first 64 KB hold
/// three or more kinds of HTML tags.
fn plain_but_html(p: &mail_parser::MessagePart<'_>) -> bool {
    let declared_plain = p.content_type().is_none_or(|c| {
        c.ctype().eq_ignore_ascii_case("text")
            && c.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
    });
    match &p.body {
        mail_parser::PartType::Text(t) if declared_plain => {
            let head = t.as_bytes();
            let head = &head[..head.len().min(64 * 1024)];
            // One bit per kind of tag seen.
            HTML_TAGS
                .find_iter(head)
                .fold(0u32, |seen, m| seen | 1 << m.pattern().as_usize())
                .count_ones()
                >= 3
        }
        _ => false,
    }
}

/// Sums of dollars; exclamation marks.
fn body_marks(text: &str, hits: &mut Vec<&'static str>) {
    let b = text.as_bytes();
    let dollars = b
        .windows(2)
        .filter(|w| w[0] == b'$' && w[1].is_ascii_digit())
        .count();
    if dollars >= 3 {
        hits.push("BODY_MONEY");
    }
    if b.iter().filter(|c| **c == b'!').count() >= 10 {
        hits.push("BODY_EXCLAIM");
    }
}

/// What [`html_style`] looks for, in one matcher: big fonts, then red
/// ones, then mail addresses "to be removed".
const STYLE: &[&str] = &[
    "size=5",
    "size=6",
    "size=7",
    "size=+2",
    "size=+3",
    "size=+4",
    "color=#ff0000",
    "color=red",
    "color:#ff0000",
    "color:red",
    "mailto:remove",
    "subject=remove",
];

static STYLE_MATCHER: std::sync::LazyLock<AhoCorasick> =
    std::sync::LazyLock::new(|| AhoCorasick::new(STYLE).expect("the style list builds"));

/// Big or red fonts; links and mail addresses "to be removed".
fn html_style(read: &Reading, hits: &mut Vec<&'static str>) {
    // Lower case without white space or quotes: `size="5"`, `size=5` and
    // `size = 5` read alike.
    let lower = read.html_lower.as_bytes();
    let html: Vec<u8> = if lower.is_ascii() {
        // A byte at a time (one `chars()` filter for all HTML made the
        // whole filter about 2 % slower offline): the ASCII characters
        // `char::is_whitespace` knows are tab to carriage return and space.
        lower
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\t'..=b'\r' | b' ' | b'"' | b'\''))
            .collect()
    } else {
        let mut html = String::with_capacity(lower.len());
        read.html_lower
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .for_each(|piece| html.push_str(piece));
        html.into_bytes()
    };
    let (mut big, mut red, mut remove) = (false, false, false);
    // No pattern can start inside another's match, so the matches that
    // do not overlap find every kind (and the search can skip ahead).
    for m in STYLE_MATCHER.find_iter(&html) {
        match m.pattern().as_usize() {
            0..6 => big = true,
            6..10 => red = true,
            _ => remove = true,
        }
    }
    if big {
        hits.push("HTML_FONT_BIG");
    }
    if red {
        hits.push("HTML_FONT_RED");
    }
    if remove
        || read
            .links
            .iter()
            .any(|l| l.url.to_ascii_lowercase().contains("remove"))
    {
        hits.push("URL_REMOVE");
    }
}

/// HTML tags whose presence in plain text betrays HTML.
static HTML_TAGS: std::sync::LazyLock<AhoCorasick> = std::sync::LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "<html", "<body", "<font", "<a href", "<br>", "<p>", "<table",
        ])
        .expect("the tag list builds")
});

/// The phrase lists in one matcher, case-insensitive; a match's pattern
/// index tells its list (REMOVE, then NOT_SPAM, then SALES).
static PHRASES: std::sync::LazyLock<AhoCorasick> = std::sync::LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(REMOVE.iter().chain(NOT_SPAM).chain(SALES))
        .expect("the phrase lists build")
});

fn body_phrases(text: &str, hits: &mut Vec<&'static str>) {
    // Runs of white space read as one space, so a phrase broken across
    // lines still matches; the first 64 KB are enough.
    let head = &text.as_bytes()[..text.len().min(64 * 1024)];
    let mut flat: Vec<u8> = Vec::with_capacity(head.len());
    for word in head
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
    {
        if !flat.is_empty() {
            flat.push(b' ');
        }
        flat.extend_from_slice(word);
    }
    let (mut remove, mut not_spam) = (false, false);
    // One bit per sales phrase seen.
    let mut sales = 0u64;
    for m in PHRASES.find_overlapping_iter(&flat) {
        let i = m.pattern().as_usize();
        if i < REMOVE.len() {
            remove = true;
        } else if i < REMOVE.len() + NOT_SPAM.len() {
            not_spam = true;
        } else {
            sales |= 1 << (i - REMOVE.len() - NOT_SPAM.len());
        }
    }
    if remove {
        hits.push("BODY_REMOVE_INSTRUCTIONS");
    }
    if not_spam {
        hits.push("BODY_NOT_SPAM_CLAIM");
    }
    if sales.count_ones() >= 2 {
        hits.push("BODY_SALES_PHRASES");
    }
    if flat.len() >= 11 && flat[..11].eq_ignore_ascii_case(b"dear friend") {
        hits.push("BODY_DEAR_FRIEND");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    const HEAD: &str = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <a@b.example>\r\nFrom: Ann <ann@b.example>\r\nTo: bob@c.example\r\nSubject: Lunch\r\n";

    fn fired(raw: &str) -> Vec<&'static str> {
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        let mut hits = Vec::new();
        check(&msg, &Reading::of(&msg), &mut hits);
        hits
    }

    fn with(field: &str, value: &str, body: &str) -> String {
        let mut out = String::new();
        let mut replaced = false;
        for line in HEAD.split_inclusive("\r\n") {
            if line.split(':').next() == Some(field) {
                out.push_str(&format!("{field}: {value}\r\n"));
                replaced = true;
            } else {
                out.push_str(line);
            }
        }
        if !replaced {
            out.push_str(&format!("{field}: {value}\r\n"));
        }
        format!("{out}\r\n{body}\r\n")
    }

    #[test]
    fn an_ordinary_message_fires_none() {
        let m = with(
            "X-Mailer",
            "Microsoft Outlook, Build 10.0.2627",
            "See you at noon!\r\n\r\nAnn",
        );
        let m = m.replace(
            "<a@b.example>",
            "<000001c2397c$1ec6b9a0$0200a8c0@b.example>",
        );
        assert!(fired(&m).is_empty(), "{:?}", fired(&m));
    }

    #[test]
    fn malformed_fields() {
        assert_eq!(
            fired(&with("Date", "yesterday at noon", "hi")),
            ["DATE_MALFORMED"]
        );
        for mid in ["a@b.example", "<no domain@x>", "<nodomain>", "<@x>"] {
            assert_eq!(
                fired(&with("Message-ID", mid, "hi")),
                ["MID_MALFORMED"],
                "{mid}"
            );
        }
    }

    #[test]
    fn forged_mailer_and_path() {
        let outlook = with("X-Mailer", "Microsoft Outlook Express 6.00.2600.0000", "hi");
        assert_eq!(fired(&outlook), ["FORGED_OUTLOOK_MID"]);
        // Outlook's Internet-only mode writes its own form.
        let imo = outlook.replace(
            "<a@b.example>",
            "<BCEFLMCEIJHPCPLGADJIGEEFCAAA.ann@b.example>",
        );
        assert!(fired(&imo).is_empty());
        let free = with("From", "Ann <ann@hotmail.com>", "hi");
        let rcvd = "Received: from mail.example (mail.example [192.0.2.1]) by mx.c.example with SMTP; Tue, 14 Nov 2023 22:13:21 +0000\r\n";
        assert_eq!(fired(&format!("{rcvd}{free}")), ["FORGED_FREEMAIL_RCVD"]);
        let via = "Received: from hotmail.com (oe42.law11.hotmail.com [192.0.2.9]) by mx.c.example with SMTP; Tue, 14 Nov 2023 22:13:21 +0000\r\n";
        assert!(fired(&format!("{via}{free}")).is_empty());
        assert_eq!(
            fired(&with("From", "x <corn427@b.example>", "hi")),
            ["FROM_LOCAL_DIGITS"]
        );
        assert!(
            fired(&with("From", "x <12345@b.example>", "hi")).is_empty(),
            "all digits is a number, not a tail"
        );
    }

    #[test]
    fn recipients_and_subject() {
        let many: Vec<String> = (0..12).map(|i| format!("pooh{i}@c.example")).collect();
        assert_eq!(
            fired(&with("To", &many.join(", "), "hi")),
            ["RCPTS_HARVESTED"]
        );
        let team = [
            "ann", "bob", "carl", "dora", "eve", "fred", "gus", "hal", "ivy", "jo",
        ]
        .map(|n| format!("{n}@c.example"));
        assert!(fired(&with("To", &team.join(", "), "hi")).is_empty());
        assert_eq!(
            fired(&with("To", "undisclosed-recipients:;", "hi")),
            ["TO_UNDISCLOSED"]
        );
        assert_eq!(
            fired(&with(
                "Subject",
                "Cheap phone bills                 25711",
                "hi"
            )),
            ["SUBJ_PADDED"]
        );
    }

    #[test]
    fn html_sent_as_plain_text() {
        let body = "<HTML><FONT FACE=arial>Dear reader,<BR>\r\nnews</FONT></HTML>";
        assert_eq!(fired(&with("Subject", "x", body)), ["HTML_IN_PLAIN"]);
        let declared = with("Content-Type", "text/html", body);
        assert!(!fired(&declared).contains(&"HTML_IN_PLAIN"));
        assert!(fired(&with("Subject", "x", "a <br> in prose")).is_empty());
    }

    #[test]
    fn phrases_across_lines_and_cases() {
        let remove = "To be\r\n   REMOVED from our list, reply.";
        assert_eq!(
            fired(&with("Subject", "x", remove)),
            ["BODY_REMOVE_INSTRUCTIONS"]
        );
        let claim = "This is NOT spam: under Bill S.1618 Title III.";
        assert_eq!(fired(&with("Subject", "x", claim)), ["BODY_NOT_SPAM_CLAIM"]);
        assert_eq!(
            fired(&with("Subject", "x", "Act now, it is risk free.")),
            ["BODY_SALES_PHRASES"]
        );
        // One phrase, twice, is one phrase.
        assert!(fired(&with("Subject", "x", "act now, act now")).is_empty());
        assert_eq!(
            fired(&with("Subject", "x", "Dear Friend,\r\nhello")),
            ["BODY_DEAR_FRIEND"]
        );
        assert!(fired(&with("Subject", "x", "My dear friend,")).is_empty());
    }

    #[test]
    fn marks_fonts_and_links() {
        assert_eq!(
            fired(&with("Subject", "x", "$10, $20 or $300")),
            ["BODY_MONEY"]
        );
        assert!(fired(&with("Subject", "x", "$10 and $20 and $ 3")).is_empty());
        assert_eq!(
            fired(&with("Subject", "x", "wow!!!!! yes!!!!!")),
            ["BODY_EXCLAIM"]
        );
        let html = |b: &str| {
            with(
                "Content-Type",
                "text/html",
                &format!("<p>{b} text text</p>"),
            )
        };
        let f = fired(&html("<font size=\"+3\" color = \"#FF0000\">BIG</font>"));
        assert!(
            f.contains(&"HTML_FONT_BIG") && f.contains(&"HTML_FONT_RED"),
            "{f:?}"
        );
        let f = fired(&html("<font size=\"2\" color=\"#000000\">small</font>"));
        assert!(
            !f.contains(&"HTML_FONT_BIG") && !f.contains(&"HTML_FONT_RED"),
            "{f:?}"
        );
        assert!(
            fired(&html("<a href=\"http://x.example/remove.cgi?u=1\">out</a>"))
                .contains(&"URL_REMOVE")
        );
        assert!(fired(&html("<a href=\"mailto:remove@x.example\">out</a>")).contains(&"URL_REMOVE"));
        assert!(!fired(&html("<a href=\"http://x.example/news\">news</a>")).contains(&"URL_REMOVE"));
    }
}
