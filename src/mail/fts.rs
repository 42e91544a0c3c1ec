//! Full-text index for SEARCH's text keys (RFC 9051 §6.4.4: BODY, TEXT,
//! FROM/TO/CC/BCC/SUBJECT, HEADER).
//!
//! IMAP text keys are case-insensitive *substring* matches, not word
//! matches, so words are the wrong unit. The index holds every
//! three-character window (trigram) of a message's lowercased search text
//! with its position, and a needle of three or more characters becomes a
//! phrase of its consecutive trigrams: a document matches exactly when
//! the needle occurs in it. [`search_text`] makes that text, and the scan
//! that SEARCH falls back to compares against the very same text, so the
//! index and the scan agree (a proptest holds them to it).
//!
//! Writes are asynchronous but durable: ingest records `J acct email` in
//! the same transaction as the message, a background task indexes what
//! those records name, commits the index and only then removes them.
//! SEARCH treats messages still listed there as unknown to the index and
//! checks them by reading them, so a result never depends on the lag.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use mail_parser::{HeaderValue, Message, MessageParser, PartType};
use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STRING,
};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// What the text keys look at, lowercased.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SearchText {
    /// Header blocks (of the message and of every MIME part, raw) and the
    /// message's decoded header values.
    pub headers: String,
    /// Decoded text of the text/* parts; the raw bytes if the message does
    /// not parse.
    pub body: String,
    /// The message's Subject fields, each decoded and as written: what
    /// SEARCH SUBJECT compares, so the index answers it exactly.
    pub subject: String,
    /// Made from only the start of the message: the index holds it as
    /// partly indexed.
    pub partial: bool,
}

/// Case folding used on both sides of every text comparison.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// A header's value as SEARCH compares it: RFC 2047 words decoded,
/// addresses as `name <address>`. Values without a text form are empty;
/// their raw form is compared too.
pub fn decoded_header(v: &HeaderValue<'_>) -> String {
    match v {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(", "),
        HeaderValue::Address(a) => a
            .iter()
            .map(|x| {
                format!(
                    "{} <{}>",
                    x.name.as_deref().unwrap_or(""),
                    x.address.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// Appends `text` and a newline to `out` while `out` is shorter than
/// `cap` (past it the text is not needed: see [`index_text`]).
fn push_capped(out: &mut String, text: &str, cap: usize) {
    if out.len() >= cap {
        return;
    }
    let (t, _) = truncate(text, cap - out.len());
    out.push_str(t);
    out.push('\n');
}

fn walk(msg: &Message<'_>, headers: &mut String, body: &mut String, depth: usize, cap: usize) {
    let raw = msg.raw_message();
    for part in &msg.parts {
        let block = raw
            .get(part.offset_header as usize..part.offset_body as usize)
            .unwrap_or_default();
        push_capped(headers, &String::from_utf8_lossy(block), cap);
        match &part.body {
            PartType::Text(t) => push_capped(body, t, cap),
            PartType::Html(t) => push_capped(body, &html_search_text(t), cap),
            PartType::Message(inner) if depth < 8 => walk(inner, headers, body, depth + 1, cap),
            _ => {}
        }
    }
}

/// What is searched of an HTML part (RFC 8621 §4.4.1): its text without
/// the markup (tags, most attributes, style and script), then the values
/// of the attributes shown to the reader, `alt` and `title`.
fn html_search_text(html: &str) -> String {
    let mut out = mail_parser::decoders::html::html_to_text(html);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let tag = &rest[open + 1..];
        let end = tag.find('>').unwrap_or(tag.len());
        shown_attributes(&tag[..end], &mut out);
        rest = &tag[end..];
    }
    out
}

/// Appends the values of `alt` and `title` in one tag's inside.
fn shown_attributes(tag: &str, out: &mut String) {
    let lower = tag.to_ascii_lowercase();
    for name in ["alt", "title"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(name).map(|i| i + from) {
            from = at + name.len();
            // A whole attribute name: after white space, before `=`.
            let before = lower[..at].chars().next_back();
            if !before.is_some_and(char::is_whitespace) {
                continue;
            }
            let after = lower[from..].trim_start();
            let Some(value) = after.strip_prefix('=') else {
                continue;
            };
            let value = value.trim_start();
            let start = tag.len() - value.len();
            let text = match value.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &tag[start + 1..];
                    &inner[..inner.find(q).unwrap_or(inner.len())]
                }
                _ => {
                    let v = &tag[start..];
                    &v[..v.find(char::is_whitespace).unwrap_or(v.len())]
                }
            };
            out.push(' ');
            out.push_str(text);
        }
    }
}

/// Whether a header field `name` of the message contains `needle`
/// (case-insensitively), decoded or as written; an empty needle matches
/// any message with the field. SEARCH HEADER and JMAP's header filters.
pub fn header_contains(raw: &[u8], name: &str, needle: &str) -> bool {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return false;
    };
    let needle = fold(needle);
    // RFC 9051: HEADER with an empty string matches any message that has
    // the field.
    for h in msg.headers() {
        if h.name.as_str().eq_ignore_ascii_case(name) {
            let raw_value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            if needle.is_empty()
                || fold(&decoded_header(&h.value)).contains(&needle)
                || fold(&String::from_utf8_lossy(raw_value)).contains(&needle)
            {
                return true;
            }
        }
    }
    false
}

/// The text SEARCH's text keys are matched against.
pub fn search_text(raw: &[u8]) -> SearchText {
    text_upto(raw, usize::MAX)
}

/// The text the index keeps of a message: at most a little more than
/// [`MAX_FIELD`] bytes of each field (so a longer one is still seen to be
/// partial), without building the whole text of a large message first.
pub fn index_text(raw: &[u8]) -> SearchText {
    text_upto(raw, MAX_FIELD + 4)
}

fn text_upto(raw: &[u8], cap: usize) -> SearchText {
    let Some(msg) = MessageParser::default().parse(raw) else {
        let head = &raw[..raw.len().min(cap)];
        return SearchText {
            body: fold(&String::from_utf8_lossy(head)),
            ..Default::default()
        };
    };
    let mut headers = String::new();
    let mut body = String::new();
    walk(&msg, &mut headers, &mut body, 0, cap);
    let mut subject = String::new();
    for h in msg.headers() {
        let decoded = decoded_header(&h.value);
        if h.name.as_str().eq_ignore_ascii_case("subject") {
            let written = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            push_capped(&mut subject, &decoded, cap);
            push_capped(&mut subject, &String::from_utf8_lossy(written), cap);
        }
        push_capped(&mut headers, &decoded, cap);
    }
    SearchText {
        headers: fold(&headers),
        body: fold(&body),
        subject: fold(&subject),
        partial: false,
    }
}

/// Needles shorter than this are not looked up in the index.
pub const MIN_NEEDLE: usize = 3;

/// Every three-character window with its position.
#[derive(Clone, Default)]
struct Trigrams;

struct TrigramStream<'a> {
    text: &'a str,
    /// Byte offsets of the next windows' starts.
    /// Byte offset of the next window.
    from: usize,
    next: usize,
    token: Token,
}

impl Tokenizer for Trigrams {
    type TokenStream<'a> = TrigramStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> TrigramStream<'a> {
        TrigramStream {
            text,
            from: 0,
            next: 0,
            token: Token::default(),
        }
    }
}

impl TokenStream for TrigramStream<'_> {
    fn advance(&mut self) -> bool {
        // The window of MIN_NEEDLE characters starting at byte `from`
        // (walked as it goes: a large text costs no table of offsets).
        let rest = &self.text[self.from..];
        let mut ends = rest.char_indices().map(|(i, c)| i + c.len_utf8());
        let Some(to) = ends.nth(MIN_NEEDLE - 1) else {
            return false;
        };
        self.token.offset_from = self.from;
        self.token.offset_to = self.from + to;
        self.token.position = self.next;
        self.token.text.clear();
        self.token.text.push_str(&rest[..to]);
        self.from += rest.chars().next().map_or(1, char::len_utf8);
        self.next += 1;
        true
    }
    fn token(&self) -> &Token {
        &self.token
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

fn trigrams(needle: &str) -> Vec<String> {
    let chars: Vec<char> = needle.chars().collect();
    chars
        .windows(MIN_NEEDLE)
        .map(|w| w.iter().collect())
        .collect()
}

/// Which text a needle is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Headers,
    Body,
    /// The Subject fields (see [`SearchText::subject`]).
    Subject,
    /// Headers or body.
    Both,
}

#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct FtsError(String);

impl From<tantivy::TantivyError> for FtsError {
    fn from(e: tantivy::TantivyError) -> Self {
        FtsError(e.to_string())
    }
}

/// One change for the index.
#[derive(Debug)]
pub enum FtsOp {
    Add {
        acct: u32,
        email: u64,
        text: SearchText,
    },
    Remove {
        acct: u32,
        email: u64,
    },
    RemoveAccount(u32),
}

pub struct FtsIndex {
    index: Index,
    reader: IndexReader,
    /// Made when there is work and dropped when the queue is empty, so
    /// an idle server does not hold its memory budget and threads.
    writer: Mutex<Option<IndexWriter>>,
    writer_bytes: usize,
    id: Field,
    acct: Field,
    partial: Field,
    headers: Field,
    body: Field,
    subject: Field,
    /// Whether the index was created by this open or its filling did not
    /// finish (so it must be filled from the store).
    pub created: bool,
    /// False until every stored message is in the index or queued for it:
    /// SEARCH does not use it before.
    ready: std::sync::atomic::AtomicBool,
    marker: std::path::PathBuf,
}

/// Tantivy removes only the files it made, so this one may live beside
/// the index's own.
fn fill_marker(dir: &Path) -> std::path::PathBuf {
    dir.join("petrel-filling")
}

/// The tokenizer's name is part of the index layout: a new name rebuilds
/// indexes made before (v2: HTML parts are indexed without markup).
const TOKENIZER: &str = "petrel_trigram_v2";

/// Bytes of a message's headers or body text that are indexed; the rest
/// of a larger message is found by reading it.
pub const MAX_FIELD: usize = 512 << 10;

fn truncate(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

fn doc_id(acct: u32, email: u64) -> String {
    format!("{acct}:{email}")
}

impl FtsIndex {
    /// Opens (or creates) the index in `dir`. `writer_bytes` is the
    /// indexing memory budget.
    pub fn open(dir: &Path, writer_bytes: usize) -> Result<FtsIndex, FtsError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| FtsError(format!("cannot create {}: {e}", dir.display())))?;
        let mut schema = Schema::builder();
        let id = schema.add_text_field("id", STRING);
        let acct = schema.add_u64_field("acct", INDEXED);
        let partial = schema.add_u64_field("partial", INDEXED);
        schema.add_u64_field("email", FAST);
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let headers = schema.add_text_field("headers", text.clone());
        let body = schema.add_text_field("body", text.clone());
        let subject = schema.add_text_field("subject", text);
        let schema = schema.build();
        let mut mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| FtsError(format!("cannot open {}: {e}", dir.display())))?;
        // Present from the index's creation until the stored messages are
        // all queued for it, so a crash in between starts that over.
        let marker = fill_marker(dir);
        let mut created = !Index::exists(&mmap).map_err(|e| FtsError(e.to_string()))?;
        if !created && Index::open(mmap.clone())?.schema() != schema {
            // Made by an older version: rebuilt from the store (SEARCH
            // reads the messages meanwhile, see `fill_new_index`).
            tracing::info!("search index: new layout, rebuilding {}", dir.display());
            std::fs::remove_dir_all(dir)
                .and_then(|_| std::fs::create_dir_all(dir))
                .map_err(|e| FtsError(format!("cannot rebuild {}: {e}", dir.display())))?;
            mmap = tantivy::directory::MmapDirectory::open(dir)
                .map_err(|e| FtsError(format!("cannot open {}: {e}", dir.display())))?;
            created = true;
        }
        if created {
            std::fs::write(&marker, b"")
                .map_err(|e| FtsError(format!("cannot write {}: {e}", marker.display())))?;
        }
        let created = created || marker.exists();
        let index = Index::open_or_create(mmap, schema)?;
        index.tokenizers().register(TOKENIZER, Trigrams);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(FtsIndex {
            index,
            reader,
            writer: Mutex::new(None),
            writer_bytes: writer_bytes.max(15_000_000),
            id,
            acct,
            partial,
            headers,
            body,
            subject,
            created,
            ready: std::sync::atomic::AtomicBool::new(!created),
            marker,
        })
    }

    /// Whether SEARCH may use the index (see `ready`).
    pub fn ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every stored message is in the index or queued for it.
    fn filled(&self) -> Result<(), FtsError> {
        match std::fs::remove_file(&self.marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(FtsError(format!(
                    "cannot remove {}: {e}",
                    self.marker.display()
                )))
            }
        }
        self.ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Applies `ops`, commits (durably) and makes them visible to
    /// searches. Blocking.
    pub fn apply(&self, ops: Vec<FtsOp>) -> Result<(), FtsError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.index.writer_with_num_threads(1, self.writer_bytes)?);
        }
        let w = guard.as_mut().expect("made above");
        let email_field = self.index.schema().get_field("email")?;
        for op in ops {
            match op {
                FtsOp::Add { acct, email, text } => {
                    // Idempotent: a crash after the commit and before the
                    // queue records are removed indexes the message again.
                    w.delete_term(Term::from_field_text(self.id, &doc_id(acct, email)));
                    let mut doc = TantivyDocument::default();
                    doc.add_text(self.id, doc_id(acct, email));
                    doc.add_u64(self.acct, acct as u64);
                    doc.add_u64(email_field, email);
                    let (headers, cut_h) = truncate(&text.headers, MAX_FIELD);
                    let (body, cut_b) = truncate(&text.body, MAX_FIELD);
                    let (subject, cut_s) = truncate(&text.subject, MAX_FIELD);
                    if cut_h || cut_b || cut_s || text.partial {
                        // Only partly indexed: SEARCH reads it (`unsure`).
                        doc.add_u64(self.partial, 1);
                    }
                    doc.add_text(self.headers, headers);
                    doc.add_text(self.body, body);
                    doc.add_text(self.subject, subject);
                    w.add_document(doc)?;
                }
                FtsOp::Remove { acct, email } => {
                    w.delete_term(Term::from_field_text(self.id, &doc_id(acct, email)));
                }
                FtsOp::RemoveAccount(acct) => {
                    w.delete_term(Term::from_field_u64(self.acct, acct as u64));
                }
            }
        }
        w.commit()?;
        drop(guard);
        self.reader.reload()?;
        Ok(())
    }

    /// Lets go of the writer (after its merges), freeing its memory until
    /// the next change. Blocking.
    pub fn release_writer(&self) -> Result<(), FtsError> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            w.wait_merging_threads()?;
        }
        Ok(())
    }

    fn text_query(&self, field: Field, needle: &str) -> Box<dyn Query> {
        let terms: Vec<Term> = trigrams(needle)
            .iter()
            .map(|t| Term::from_field_text(field, t))
            .collect();
        if terms.len() == 1 {
            Box::new(TermQuery::new(
                terms[0].clone(),
                IndexRecordOption::WithFreqs,
            ))
        } else {
            Box::new(PhraseQuery::new(terms))
        }
    }

    /// The account's indexed messages whose `scope` text contains
    /// `needle` (already folded), or `None` for needles too short to look
    /// up. Blocking.
    pub fn search(
        &self,
        acct: u32,
        scope: Scope,
        needle: &str,
    ) -> Result<Option<HashSet<u64>>, FtsError> {
        if needle.chars().count() < MIN_NEEDLE {
            return Ok(None);
        }
        let text: Box<dyn Query> = match scope {
            Scope::Headers => self.text_query(self.headers, needle),
            Scope::Body => self.text_query(self.body, needle),
            Scope::Subject => self.text_query(self.subject, needle),
            Scope::Both => Box::new(BooleanQuery::new(vec![
                (Occur::Should, self.text_query(self.headers, needle)),
                (Occur::Should, self.text_query(self.body, needle)),
            ])),
        };
        self.collect(acct, text).map(Some)
    }

    /// The account's messages that are only partly indexed. Blocking.
    pub fn partial(&self, acct: u32) -> Result<HashSet<u64>, FtsError> {
        let q = Box::new(TermQuery::new(
            Term::from_field_u64(self.partial, 1),
            IndexRecordOption::Basic,
        ));
        self.collect(acct, q)
    }

    fn collect(&self, acct: u32, text: Box<dyn Query>) -> Result<HashSet<u64>, FtsError> {
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(self.acct, acct as u64),
                    IndexRecordOption::Basic,
                )),
            ),
            (Occur::Must, text),
        ]);
        let searcher = self.reader.searcher();
        let hits = searcher.search(&q, &DocSetCollector)?;
        let mut out = HashSet::with_capacity(hits.len());
        let mut columns = Vec::new();
        for seg in searcher.segment_readers() {
            columns.push(seg.fast_fields().u64("email")?);
        }
        for addr in hits {
            if let Some(email) = columns
                .get(addr.segment_ord as usize)
                .and_then(|c| c.first(addr.doc_id))
            {
                out.insert(email);
            }
        }
        Ok(out)
    }
}

/// How long the indexer lets new messages gather before indexing them,
/// and how long it keeps its writer (and the writer's memory) when idle.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1000);
const WRITER_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Records handled per indexing batch, and the most message bytes read
/// for one.
const BATCH: usize = 512;
const BATCH_BYTES: usize = 8 << 20;
/// Bytes of a message the indexer reads at most.
const INDEX_READ_MAX: usize = 2 * MAX_FIELD;

/// How the indexer yields to bulk arrivals (`search.defer-above`,
/// `search.max-defer`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Changes of mail per second above which indexing waits; 0: never.
    pub defer_above: u32,
    pub max_defer: std::time::Duration,
}

/// The indexer's view of how busy the mail store is: changes per second
/// over the last second or more, and where it is in a busy stretch.
struct Busy {
    pace: Pace,
    count: u64,
    at: std::time::Instant,
    rate: u64,
    stretch: Stretch,
}

#[derive(Debug, Clone, Copy)]
enum Stretch {
    Quiet,
    /// Indexing waits, since then.
    Waiting(std::time::Instant),
    /// Waited `max_defer`; indexing goes on alongside until it is quiet.
    Alongside,
}

impl Busy {
    fn new(pace: Pace, count: u64) -> Busy {
        Busy {
            pace,
            count,
            at: std::time::Instant::now(),
            rate: 0,
            stretch: Stretch::Quiet,
        }
    }

    /// Whether indexing should wait now, given the activity counter.
    fn wait(&mut self, count: u64) -> bool {
        let dt = self.at.elapsed();
        if dt >= std::time::Duration::from_secs(1) {
            self.rate = count.saturating_sub(self.count) * 1000 / (dt.as_millis() as u64).max(1);
            self.count = count;
            self.at = std::time::Instant::now();
        }
        let bulk = self.pace.defer_above > 0 && self.rate > self.pace.defer_above as u64;
        let (wait, next) = match (bulk, self.stretch) {
            (false, Stretch::Waiting(since)) => {
                tracing::info!(
                    "search index: mail changes at {}/s again; indexing what waited {} s",
                    self.rate,
                    since.elapsed().as_secs()
                );
                (false, Stretch::Quiet)
            }
            (false, _) => (false, Stretch::Quiet),
            (true, Stretch::Quiet) => {
                tracing::info!(
                    "search index: mail changes at {}/s (search.defer-above {}); indexing waits up to {} s",
                    self.rate,
                    self.pace.defer_above,
                    self.pace.max_defer.as_secs()
                );
                (true, Stretch::Waiting(std::time::Instant::now()))
            }
            (true, Stretch::Waiting(since)) if since.elapsed() < self.pace.max_defer => {
                (true, self.stretch)
            }
            (true, Stretch::Waiting(_)) => {
                tracing::info!(
                    "search index: still {}/s after search.max-defer; indexing alongside",
                    self.rate
                );
                (false, Stretch::Alongside)
            }
            (true, Stretch::Alongside) => (false, Stretch::Alongside),
        };
        self.stretch = next;
        metrics::gauge!("petrel_search_index_waiting").set(if wait { 1.0 } else { 0.0 });
        wait
    }
}

#[cfg(test)]
mod pace_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn busy(defer_above: u32, max_defer: u64) -> Busy {
        Busy::new(
            Pace {
                defer_above,
                max_defer: Duration::from_secs(max_defer),
            },
            0,
        )
    }

    /// Pretends a second went by with `n` changes.
    fn second(b: &mut Busy, n: u64) -> bool {
        b.at = Instant::now() - Duration::from_secs(1);
        let count = b.count + n;
        b.wait(count)
    }

    #[test]
    fn waits_while_busy_and_at_most_max_defer() {
        let mut b = busy(100, 120);
        assert!(!second(&mut b, 50), "a trickle is indexed at once");
        assert!(second(&mut b, 500), "bulk arrivals: wait");
        assert!(second(&mut b, 500));
        assert!(!second(&mut b, 10), "quiet again: index");
        assert!(second(&mut b, 500));
        // The stretch passes max-defer: index alongside until quiet.
        b.stretch = Stretch::Waiting(Instant::now() - Duration::from_secs(121));
        assert!(!second(&mut b, 500));
        assert!(!second(&mut b, 500), "still busy, still indexing");
        assert!(!second(&mut b, 0));
        assert!(second(&mut b, 500), "a new stretch waits again");
        // 0 turns waiting off.
        let mut off = busy(0, 120);
        assert!(!second(&mut off, 100_000));
    }
}

impl super::MailStore {
    /// Starts the task that applies `J` records to the index (or, with
    /// the index off, drops them). Bulk arrivals come first: while mail
    /// changes faster than `pace.defer_above` a second, indexing waits
    /// (at most `pace.max_defer` at a time); SEARCH and Email/query read
    /// the messages still queued, so answers stay complete.
    pub fn spawn_indexer(&self, mut shutdown: crate::net::Shutdown, pace: Pace) {
        let mail = self.clone();
        tokio::spawn(async move {
            if let Err(e) = mail.fill_new_index().await {
                tracing::error!("search index: cannot queue the existing messages: {e}");
            }
            let activity = || mail.activity.load(std::sync::atomic::Ordering::Relaxed);
            let mut bulk = Busy::new(pace, activity());
            let mut busy = false;
            loop {
                if bulk.wait(activity()) {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => continue,
                        _ = shutdown.wait() => return,
                    }
                }
                match mail.index_batch().await {
                    Ok(n) if n > 0 => {
                        busy = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("search index: {e}; trying again shortly"),
                }
                let woken = tokio::select! {
                    _ = mail.fts_wake.notified() => true,
                    _ = tokio::time::sleep(WRITER_IDLE) => false,
                    _ = shutdown.wait() => return,
                };
                if woken {
                    // Messages arriving one by one are indexed together:
                    // one commit (and its fsync) for what came meanwhile.
                    // SEARCH reads what is still queued, so this costs
                    // no result.
                    tokio::select! {
                        _ = tokio::time::sleep(COALESCE) => {}
                        _ = shutdown.wait() => return,
                    }
                } else if std::mem::take(&mut busy) {
                    // Idle for a while: let go of the writer's memory.
                    if let Some(ix) = mail.fts.clone() {
                        match tokio::task::spawn_blocking(move || ix.release_writer()).await {
                            Ok(Err(e)) => tracing::warn!("search index: {e}"),
                            Err(e) => tracing::warn!("search index: {e}"),
                            Ok(Ok(())) => {}
                        }
                    }
                }
            }
        });
    }

    /// A newly created index is filled with the messages already stored
    /// (the index was off, or its directory was removed).
    async fn fill_new_index(&self) -> super::Result<()> {
        let Some(fts) = self.fts.as_ref().filter(|f| f.created) else {
            return Ok(());
        };
        let mut from = vec![b'E'];
        loop {
            let batch = self.store.scan(from.clone(), vec![b'F'], 10_000).await?;
            let Some((last, _)) = batch.last() else {
                if let Err(e) = fts.filled() {
                    tracing::error!("{e}");
                }
                tracing::info!("search index: every stored message is queued for indexing");
                return Ok(());
            };
            from = last.clone();
            from.push(0);
            let keys: Vec<Vec<u8>> = batch
                .into_iter()
                .map(|(mut k, _)| {
                    k[0] = b'J';
                    k
                })
                .collect();
            self.store
                .transact(move |txn| {
                    for k in keys {
                        if txn.get(&k)?.is_none() {
                            txn.put(k, super::FTS_ADD.to_vec());
                        }
                    }
                    Ok(())
                })
                .await?;
        }
    }

    /// Emails of the account not yet in the index.
    /// Looks `needles` up in the account's index: the hits of each, in
    /// order, and the messages the index cannot vouch for (waiting for the
    /// indexer or partly indexed). `None` without a ready index or if it
    /// fails (logged): the caller reads the messages instead. Pending
    /// records are read first: the indexer commits the index before it
    /// removes them, so every message is in one or the other.
    pub(crate) async fn fts_lookup(
        &self,
        acct: u32,
        needles: Vec<(Scope, String)>,
    ) -> Option<(Vec<HashSet<u64>>, HashSet<u64>)> {
        let index = self.fts.clone().filter(|f| f.ready())?;
        if needles.is_empty() {
            return None;
        }
        let pending = match self.fts_pending(acct).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("search index: {e}; reading the messages instead");
                return None;
            }
        };
        let answers = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(needles.len());
            for (scope, n) in &needles {
                out.push(index.search(acct, *scope, n)?.unwrap_or_default());
            }
            Ok::<_, FtsError>((out, index.partial(acct)?))
        })
        .await;
        match answers {
            Ok(Ok((hits, partial))) => {
                let mut unsure = pending;
                unsure.extend(partial);
                Some((hits, unsure))
            }
            Ok(Err(e)) => {
                tracing::warn!("{e}; reading the messages instead");
                None
            }
            Err(e) => {
                tracing::warn!("search index: {e}; reading the messages instead");
                None
            }
        }
    }

    pub(crate) async fn fts_pending(&self, acct: u32) -> super::Result<HashSet<u64>> {
        Ok(self
            .store
            .scan_prefix(super::k_acct(b'J', acct))
            .await?
            .into_iter()
            .filter(|(_, v)| v == super::FTS_ADD)
            .filter_map(|(k, _)| Some(u64::from_be_bytes(k.get(5..13)?.try_into().ok()?)))
            .collect())
    }

    /// How many index changes wait for the indexer, counted up to `limit`.
    pub async fn fts_waiting(&self, limit: usize) -> Result<usize, crate::store::StoreError> {
        Ok(self.store.scan(vec![b'J'], vec![b'K'], limit).await?.len())
    }

    /// Applies one batch of `J` records; returns how many it handled.
    pub async fn index_batch(&self) -> Result<usize, String> {
        let recs = self
            .store
            .scan(vec![b'J'], vec![b'K'], BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if recs.is_empty() {
            return Ok(0);
        }
        let mut done = Vec::with_capacity(recs.len());
        let mut ops = Vec::new();
        let mut raws = Vec::new();
        let mut bytes = 0;
        for (k, v) in recs {
            let (Some(acct), Some(email)) = (
                k.get(1..5)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes),
                k.get(5..13)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes),
            ) else {
                done.push((k, v));
                continue;
            };
            if self.fts.is_some() {
                match v.as_slice() {
                    super::FTS_ADD => {
                        let meta = self
                            .email_meta(acct, email)
                            .await
                            .map_err(|e| e.to_string())?;
                        if let Some(meta) = meta {
                            // Of a large message only the start is read:
                            // the index keeps MAX_FIELD bytes of text at
                            // most, and SEARCH reads the message itself
                            // for what lies beyond (it is marked partial).
                            let whole = meta.size as usize <= INDEX_READ_MAX;
                            if let Some(raw) = self
                                .blobs
                                .get_range(&self.store, &meta.blob, 0, INDEX_READ_MAX)
                                .await
                                .map_err(|e| e.to_string())?
                            {
                                bytes += raw.len();
                                raws.push((acct, email, raw, whole));
                            }
                        }
                    }
                    super::FTS_REMOVE => ops.push(FtsOp::Remove { acct, email }),
                    _ => ops.push(FtsOp::RemoveAccount(acct)),
                }
            }
            done.push((k, v));
            if bytes > BATCH_BYTES {
                break;
            }
        }
        if let Some(index) = self.fts.clone() {
            tokio::task::spawn_blocking(move || {
                for (acct, email, raw, whole) in raws {
                    let mut text = index_text(&raw);
                    text.partial |= !whole;
                    ops.push(FtsOp::Add { acct, email, text });
                }
                index.apply(ops)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        }
        let n = done.len();
        // Records rewritten meanwhile stay for the next batch.
        self.store
            .transact(move |txn| {
                for (k, v) in done {
                    if txn.get(&k)?.as_deref() == Some(v.as_slice()) {
                        txn.delete(k);
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(subject: &str, body: &str) -> Vec<u8> {
        format!("From: Joe <joe@example.org>\r\nSubject: {subject}\r\n\r\n{body}\r\n").into_bytes()
    }

    #[test]
    fn trigram_positions_are_consecutive() {
        let mut t = Trigrams;
        let mut s = t.token_stream("héllo");
        let mut got = Vec::new();
        while s.advance() {
            got.push((s.token().text.clone(), s.token().position));
        }
        assert_eq!(
            got,
            vec![("hél".into(), 0), ("éll".into(), 1), ("llo".into(), 2)]
        );
        let mut s = t.token_stream("ab");
        assert!(!s.advance());
    }

    #[test]
    fn search_text_decodes_words_and_parts() {
        let raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--x--\r\n";
        let t = search_text(raw);
        assert!(t.headers.contains("grüße"), "{t:?}");
        assert!(t.headers.contains("content-transfer-encoding: base64"));
        assert!(t.body.contains("hello world"), "{t:?}");
        assert!(!t.body.contains("agvsbg8"));
    }

    /// RFC 8621 §4.4.1: an HTML part is searched without its markup, with
    /// the alt and title texts.
    #[test]
    fn html_parts_are_searched_without_markup() {
        let raw = b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>.x{color:red}</style></head><body><p class=\"lead\" title=\"Tooltip here\">Caf&eacute; at <b>noon</b><img src=\"x.png\" alt='a sunny picture'><a href=\"https://tracker.example/q\" TITLE=shown>link</a></p><script>var secret=1;</script></body></html>\r\n";
        let t = search_text(raw);
        for want in [
            "café at noon",
            "tooltip here",
            "a sunny picture",
            "shown",
            "link",
        ] {
            assert!(t.body.contains(want), "{want}: {t:?}");
        }
        for markup in [
            "<p", "class", "lead", "href", "tracker", "color", "secret", "x.png",
        ] {
            assert!(!t.body.contains(markup), "{markup}: {t:?}");
        }
        // Not an attribute name on its own: no text.
        let mut out = String::new();
        shown_attributes("img data-alt=\"no\" xtitle=no", &mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn index_finds_substrings_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let ix = FtsIndex::open(dir.path(), 20_000_000).unwrap();
        assert!(ix.created);
        let docs = [
            (1, 1, msg("Quarterly report", "the needle is here")),
            (1, 2, msg("Hello", "needs a leaf")),
            (2, 3, msg("Other account", "the needle again")),
        ];
        let ops = docs
            .iter()
            .map(|(a, e, raw)| FtsOp::Add {
                acct: *a,
                email: *e,
                text: search_text(raw),
            })
            .collect();
        ix.apply(ops).unwrap();
        let s = |acct, scope, n: &str| {
            let mut v: Vec<u64> = ix
                .search(acct, scope, n)
                .unwrap()
                .unwrap()
                .into_iter()
                .collect();
            v.sort();
            v
        };
        assert_eq!(s(1, Scope::Body, "needle"), vec![1]);
        assert_eq!(s(1, Scope::Body, "nee"), vec![1, 2]);
        // "ne" + "ed" + "le" all occur in 2 but not "needle" itself.
        assert_eq!(s(1, Scope::Both, "eedl"), vec![1]);
        assert_eq!(s(1, Scope::Headers, "quarterly"), vec![1]);
        assert_eq!(s(1, Scope::Subject, "quarterly"), vec![1]);
        assert_eq!(s(1, Scope::Subject, "joe"), Vec::<u64>::new());
        assert_eq!(s(1, Scope::Headers, "joe"), vec![1, 2]);
        assert_eq!(s(1, Scope::Body, "quarterly"), Vec::<u64>::new());
        assert_eq!(s(2, Scope::Both, "needle"), vec![3]);
        assert!(ix.search(1, Scope::Body, "ne").unwrap().is_none());
        ix.apply(vec![FtsOp::Remove { acct: 1, email: 1 }]).unwrap();
        assert_eq!(s(1, Scope::Body, "needle"), Vec::<u64>::new());
        ix.apply(vec![FtsOp::RemoveAccount(2)]).unwrap();
        assert_eq!(s(2, Scope::Both, "needle"), Vec::<u64>::new());
        // Not filled yet: opened again, it is to be filled again.
        assert!(!ix.ready());
        drop(ix);
        let again = FtsIndex::open(dir.path(), 20_000_000).unwrap();
        assert!(again.created && !again.ready());
        again.filled().unwrap();
        assert!(again.ready());
        drop(again);
        let again = FtsIndex::open(dir.path(), 20_000_000).unwrap();
        assert!(!again.created && again.ready());
        assert_eq!(
            again.search(1, Scope::Body, "leaf").unwrap().unwrap(),
            HashSet::from([2])
        );
    }

    #[test]
    fn index_of_an_older_layout_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut schema = Schema::builder();
            schema.add_text_field("id", STRING);
            schema.add_text_field("headers", tantivy::schema::TEXT);
            Index::create_in_dir(dir.path(), schema.build()).unwrap();
        }
        let ix = FtsIndex::open(dir.path(), 20_000_000).unwrap();
        assert!(ix.created && !ix.ready(), "refilled from the store");
        ix.apply(vec![FtsOp::Add {
            acct: 1,
            email: 7,
            text: search_text(&msg("Minutes", "text")),
        }])
        .unwrap();
        assert_eq!(
            ix.search(1, Scope::Subject, "minute").unwrap().unwrap(),
            HashSet::from([7])
        );
    }
}
