//! Runs tests of Pigeonhole's `.svtest` suite end to end through a
//! running Petrel. The suite is Dovecot's (LGPL), fetched by `cargo xtask
//! setup` from Debian's source package into `~/.cache/petrel/`, never
//! copied here. Its files are Sieve with Pigeonhole's
//! `vnd.dovecot.testsuite` commands, which sieve-rs compiles only in its
//! own tests; this reader takes them apart instead:
//!
//! * `test_set "message"` / `"envelope.from"` / `"envelope.to"` set what
//!   is delivered, over SMTP, from and to whom.
//! * Everything a `test` block does before `test_result_execute` becomes
//!   the account's active script (or the file `test_script_compile`
//!   names); an `if … { test_fail "…"; }` among it becomes
//!   `fileinto :copy :create "svtest-fail-N"`, so a check inside the
//!   script that fails leaves a trace the runner finds.
//! * `test_result_execute` delivers the message to a fresh Petrel whose
//!   queue relays to a capturing SMTP sink.
//! * After it, `test_message :folder "F" N` reads the Nth message of F
//!   over IMAP (with its flags), `test_message :smtp N` the Nth message
//!   the sink received (with its envelope); each `if … { test_fail "…"; }`
//!   is then evaluated by sieve-rs against that message.
//!
//! Anything else of the testsuite (its configuration, result
//! inspection, multiscript runs) marks the test as not run here, with
//! the reason. Checks on `size` are skipped (and printed): Petrel's
//! trace headers are part of the message a script sees.
//! `SVTEST_DEBUG=1` prints each delivery's script, Petrel's log and the
//! messages stored and sent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;

/// Where `cargo xtask setup` unpacks Pigeonhole 0.5.19's tests.
pub fn suite_dir() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(home).join(".cache/petrel/dovecot-2.3-pigeonhole-0.5.19/tests")
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Tag(String),
    Str(String),
    Num(u64),
    Punct(char),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Sieve's lexical grammar (RFC 5228 §8.1).
pub fn lex(src: &str) -> Result<Vec<Token>, String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").ok_or("unterminated comment")?;
                i += 2 + end + 2;
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated string".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            s.push(*b.get(i + 1).ok_or("unterminated string")?);
                            i += 2;
                        }
                        Some(x) => {
                            s.push(*x);
                            i += 1;
                        }
                    }
                }
                i += 1;
                let s = String::from_utf8(s).map_err(|_| "string not UTF-8")?;
                out.push(Token {
                    tok: Tok::Str(s),
                    start,
                    end: i,
                });
            }
            b'[' | b']' | b'{' | b'}' | b'(' | b')' | b',' | b';' => {
                i += 1;
                out.push(Token {
                    tok: Tok::Punct(c as char),
                    start,
                    end: i,
                });
            }
            b'0'..=b'9' => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let mut n: u64 = src[start..i].parse().map_err(|_| "bad number")?;
                match b.get(i).map(|x| x.to_ascii_uppercase()) {
                    Some(b'K') => (n, i) = (n << 10, i + 1),
                    Some(b'M') => (n, i) = (n << 20, i + 1),
                    Some(b'G') => (n, i) = (n << 30, i + 1),
                    _ => {}
                }
                out.push(Token {
                    tok: Tok::Num(n),
                    start,
                    end: i,
                });
            }
            b':' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Tag(src[start + 1..i].to_ascii_lowercase()),
                    start,
                    end: i,
                });
            }
            x if x.is_ascii_alphabetic() || x == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &src[start..i];
                if word.eq_ignore_ascii_case("text") && b.get(i) == Some(&b':') {
                    // text: to the end of the line, then lines up to ".".
                    let nl = src[i..].find('\n').ok_or("text: without a line")?;
                    i += nl + 1;
                    let mut lines = Vec::new();
                    loop {
                        let end = src[i..].find('\n').map_or(src.len(), |n| i + n);
                        let line = src[i..end].trim_end_matches('\r');
                        i = (end + 1).min(src.len());
                        if line == "." {
                            break;
                        }
                        if end >= src.len() {
                            return Err("unterminated text:".into());
                        }
                        lines.push(
                            line.strip_prefix('.')
                                .filter(|l| l.starts_with('.'))
                                .unwrap_or(line),
                        );
                    }
                    let mut s = lines.join("\r\n");
                    if !lines.is_empty() {
                        s.push_str("\r\n");
                    }
                    out.push(Token {
                        tok: Tok::Str(s),
                        start,
                        end: i,
                    });
                } else {
                    out.push(Token {
                        tok: Tok::Ident(word.to_ascii_lowercase()),
                        start,
                        end: i,
                    });
                }
            }
            _ => return Err(format!("unexpected {:?} at {i}", c as char)),
        }
    }
    Ok(out)
}

/// One command: its name, the tokens up to `;` or its block, the block,
/// and where it is in the source.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub name: String,
    pub args: Vec<Token>,
    pub block: Option<Vec<Cmd>>,
    pub start: usize,
    pub end: usize,
}

impl Cmd {
    /// The string arguments, in order.
    pub fn strings(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn mentions(&self, ident: &str) -> bool {
        self.args
            .iter()
            .any(|t| matches!(&t.tok, Tok::Ident(i) if i == ident))
            || self
                .block
                .iter()
                .flatten()
                .any(|c| c.name == ident || c.mentions(ident))
    }

    /// Whether anything in it is a testsuite command or test.
    pub fn uses_testsuite(&self) -> bool {
        self.name.starts_with("test_")
            || self
                .args
                .iter()
                .any(|t| matches!(&t.tok, Tok::Ident(i) if i.starts_with("test_")))
            || self.block.iter().flatten().any(Cmd::uses_testsuite)
    }

    /// `if COND { test_fail "…"; }`: the condition's source and the
    /// message.
    pub fn check(&self, src: &str) -> Option<(String, String)> {
        let block = self.block.as_ref()?;
        if self.name != "if" || block.len() != 1 || block[0].name != "test_fail" {
            return None;
        }
        let cond = &src[self.args.first()?.start..self.args.last()?.end];
        Some((cond.to_string(), block[0].strings().join(" ")))
    }
}

pub fn parse(src: &str) -> Result<Vec<Cmd>, String> {
    let toks = lex(src)?;
    let mut i = 0;
    let cmds = block(&toks, &mut i)?;
    if i < toks.len() {
        return Err(format!("unexpected {:?}", toks[i].tok));
    }
    Ok(cmds)
}

fn block(toks: &[Token], i: &mut usize) -> Result<Vec<Cmd>, String> {
    let mut out = Vec::new();
    while let Some(t) = toks.get(*i) {
        let name = match &t.tok {
            Tok::Ident(n) => n.clone(),
            Tok::Punct('}') => break,
            other => return Err(format!("expected a command, found {other:?}")),
        };
        let start = t.start;
        *i += 1;
        let mut args = Vec::new();
        loop {
            let t = toks.get(*i).ok_or("command without end")?;
            match t.tok {
                Tok::Punct(';') => {
                    *i += 1;
                    out.push(Cmd {
                        name,
                        args,
                        block: None,
                        start,
                        end: t.end,
                    });
                    break;
                }
                Tok::Punct('{') => {
                    *i += 1;
                    let inner = block(toks, i)?;
                    let close = toks.get(*i).ok_or("block without }")?;
                    *i += 1;
                    out.push(Cmd {
                        name,
                        args,
                        block: Some(inner),
                        start,
                        end: close.end,
                    });
                    break;
                }
                _ => {
                    args.push(t.clone());
                    *i += 1;
                }
            }
        }
    }
    Ok(out)
}

/// What a test came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// The first check that failed: Pigeonhole's own message.
    Fail(String),
    /// The testsuite feature that keeps it from running here.
    NotRun(String),
}

/// A message the sink received.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

/// An SMTP server that takes every message (no STARTTLS, no checks).
pub async fn sink() -> (SocketAddr, Arc<Mutex<Vec<Sent>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let log = got.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = tcp.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 sink.test ESMTP\r\n").await;
                let mut cur = Sent::default();
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let angle = |l: &str| {
                        l.split_once('<')
                            .and_then(|(_, r)| r.split_once('>'))
                            .map(|(a, _)| a.to_string())
                            .unwrap_or_default()
                    };
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                        "MAIL" => {
                            cur = Sent {
                                from: angle(&line),
                                ..Sent::default()
                            };
                            b"250 2.1.0 ok\r\n"
                        }
                        "RCPT" => {
                            cur.to.push(angle(&line));
                            b"250 2.1.5 ok\r\n"
                        }
                        "DATA" => {
                            let _ = w.write_all(b"354 go\r\n").await;
                            let mut data = Vec::new();
                            loop {
                                let mut l = Vec::new();
                                if r.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == b".\r\n" {
                                    break;
                                }
                                let l = if l.starts_with(b"..") {
                                    &l[1..]
                                } else {
                                    &l[..]
                                };
                                data.extend_from_slice(l);
                            }
                            cur.data = data;
                            log.lock().unwrap().push(std::mem::take(&mut cur));
                            b"250 2.0.0 taken\r\n"
                        }
                        "QUIT" => b"221 2.0.0 bye\r\n",
                        _ => b"250 2.0.0 ok\r\n",
                    };
                    if w.write_all(reply).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    (addr, got)
}

/// The state a file's top level sets for the tests after it.
#[derive(Clone, Default)]
struct Setup {
    requires: Vec<String>,
    vars: HashMap<String, String>,
    message: String,
    from: Option<String>,
    to: Option<String>,
    mailboxes: Vec<String>,
    /// A testsuite setting Petrel has no counterpart for.
    unsupported: Option<String>,
}

fn expand(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

/// Runs every `test` block of one `.svtest` file: (name, outcome).
pub async fn run_file(rel: &str) -> Vec<(String, Outcome)> {
    let path = suite_dir().join(rel);
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; `cargo xtask setup` fetches Pigeonhole's tests",
            path.display()
        )
    });
    let cmds = parse(&src).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut st = Setup::default();
    let mut out = Vec::new();
    for c in &cmds {
        let s = c.strings();
        match c.name.as_str() {
            "require" => st
                .requires
                .extend(s.into_iter().filter(|r| r != "vnd.dovecot.testsuite")),
            "set" if s.len() == 2 => {
                st.vars.insert(s[0].clone(), s[1].clone());
            }
            "test_set" => set(&mut st, &s),
            "test_mailbox_create" => st.mailboxes.extend(s),
            "test_result_reset" | "test_config_reload" => {}
            "test_config_set" => st.unsupported = Some(format!("test_config_set {}", s.join(" "))),
            "test" => {
                let name = s.first().cloned().unwrap_or_default();
                let dir = path.parent().unwrap();
                let r = run_test(&src, c.block.as_deref().unwrap_or(&[]), &st, dir).await;
                out.push((name, r));
            }
            other => {
                st.unsupported = Some(format!("top-level `{other}`"));
            }
        }
    }
    out
}

fn set(st: &mut Setup, s: &[String]) {
    let value = s.get(1).map(|v| expand(v, &st.vars)).unwrap_or_default();
    match s.first().map(String::as_str) {
        Some("message") => st.message = value,
        Some("envelope.from") => st.from = Some(value),
        Some("envelope.to") => st.to = Some(value),
        Some(other) => st.unsupported = Some(format!("test_set {other}")),
        None => {}
    }
}

async fn run_test(src: &str, body: &[Cmd], outer: &Setup, dir: &Path) -> Outcome {
    let mut st = outer.clone();
    if let Some(u) = &st.unsupported {
        return Outcome::NotRun(u.clone());
    }
    let mut script = String::new();
    let mut file_script: Option<String> = None;
    let mut checks: Vec<String> = Vec::new();
    let mut rest = None;
    for (n, c) in body.iter().enumerate() {
        if c.mentions("test_result_execute") || c.name == "test_result_execute" {
            rest = Some(&body[n + 1..]);
            break;
        }
        match c.name.as_str() {
            "test_set" => {
                set(&mut st, &c.strings());
                if let Some(u) = &st.unsupported {
                    return Outcome::NotRun(u.clone());
                }
                continue;
            }
            "test_script_run" | "test_result_reset" => continue,
            "test_mailbox_create" => {
                st.mailboxes.extend(c.strings());
                continue;
            }
            _ => {}
        }
        // What Pigeonhole's result holds inside is not Petrel's to show;
        // the actions run all the same.
        if c.check(src).is_some() && c.mentions("test_result_action") {
            println!("  not compared: test_result_action (Pigeonhole's result list)");
            continue;
        }
        if c.mentions("test_script_compile") {
            let f = c.strings().into_iter().find(|s| s.ends_with(".sieve"));
            let Some(f) = f else {
                return Outcome::NotRun("test_script_compile without a file".into());
            };
            match std::fs::read_to_string(dir.join(&f)) {
                Ok(t) => file_script = Some(t),
                Err(e) => return Outcome::NotRun(format!("{f}: {e}")),
            }
            continue;
        }
        if c.mentions("test_script_run") {
            continue;
        }
        if let Some((cond, _)) = c.check(src) {
            if is_size(&cond) {
                println!("  not compared: `{}` (Petrel's trace headers)", cond.trim());
                continue;
            }
        }
        if let Some((cond, msg)) = c.check(src) {
            if !c.uses_testsuite() || cond_is_plain(&cond) {
                script.push_str(&format!(
                    "if {cond} {{ fileinto :copy :create \"svtest-fail-{}\"; }}\n",
                    checks.len()
                ));
                checks.push(msg);
                continue;
            }
        }
        if c.name == "set" && c.strings().len() == 2 && c.args.len() == 2 {
            // Checks after execution may name it too.
            let v = c.strings();
            st.vars.insert(v[0].clone(), v[1].clone());
        }
        if c.uses_testsuite() {
            let what = first_testsuite_word(c);
            return Outcome::NotRun(format!("`{what}` before test_result_execute"));
        }
        script.push_str(&src[c.start..c.end]);
        script.push('\n');
    }
    let Some(after) = rest else {
        return Outcome::NotRun("no test_result_execute (a language test)".into());
    };
    let script = match file_script {
        Some(f) if script.trim().is_empty() => f,
        Some(_) => return Outcome::NotRun("a script file and commands beside it".into()),
        None => {
            let mut req = st.requires.clone();
            for r in ["fileinto", "copy", "mailbox"] {
                if !req.iter().any(|x| x == r) {
                    req.push(r.into());
                }
            }
            format!("require {};\n{script}", string_list(&req))
        }
    };
    let delivered = match deliver(&st, &script).await {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(e),
    };
    if let Some(r) = &delivered.refused {
        println!("  refused at SMTP: {r}");
    }
    if std::env::var("SVTEST_DEBUG").is_ok() {
        eprintln!("script:\n{script}\nlog:\n{}", delivered.log);
        for (b, msgs) in &delivered.boxes {
            for (raw, flags) in msgs {
                eprintln!("[{b}] {flags:?}\n{}", String::from_utf8_lossy(raw));
            }
        }
        for m in &delivered.sent {
            eprintln!(
                "[sent {} -> {:?}]\n{}",
                m.from,
                m.to,
                String::from_utf8_lossy(&m.data)
            );
        }
    }
    for (n, msg) in checks.iter().enumerate() {
        if delivered.boxes.contains_key(&format!("svtest-fail-{n}")) {
            return Outcome::Fail(msg.clone());
        }
    }
    // After the execution: select a message, test it.
    let mut current: Option<Selected> = None;
    for c in after {
        match c.name.as_str() {
            "test_result_reset" => continue,
            "set" if c.strings().len() == 2 && c.args.len() == 2 => {
                let v = c.strings();
                st.vars.insert(v[0].clone(), v[1].clone());
                continue;
            }
            "test_message" => {
                match select(c, &delivered) {
                    Some(m) => current = Some(m),
                    None => {
                        return Outcome::Fail(format!("no message for {}", &src[c.start..c.end]))
                    }
                }
                continue;
            }
            _ => {}
        }
        if let Some((cond, msg)) = c.check(src) {
            if cond.contains("test_message") {
                // `if not test_message :folder "F" N { test_fail }`.
                let inner = Cmd {
                    name: "test_message".into(),
                    args: c.args.clone(),
                    block: None,
                    start: c.start,
                    end: c.end,
                };
                let negated = cond.trim_start().starts_with("not");
                match (select(&inner, &delivered), negated) {
                    (Some(m), true) => current = Some(m),
                    (None, true) | (Some(_), false) => return Outcome::Fail(msg),
                    (None, false) => {}
                }
                continue;
            }
            if !cond_is_plain(&cond) {
                return Outcome::NotRun(format!("`{}` after execution", cond.trim()));
            }
            if is_size(&cond) {
                println!("  not compared: `{}` (Petrel's trace headers)", cond.trim());
                continue;
            }
            let Some(m) = &current else {
                return Outcome::NotRun("a check after execution with no message selected".into());
            };
            match eval(&st.requires, &st.vars, &cond, m) {
                Ok(true) => return Outcome::Fail(msg),
                Ok(false) => {}
                Err(e) => return Outcome::NotRun(format!("check `{}`: {e}", cond.trim())),
            }
            continue;
        }
        return Outcome::NotRun(format!("`{}` after execution", first_testsuite_word(c)));
    }
    Outcome::Pass
}

fn first_testsuite_word(c: &Cmd) -> String {
    if c.name.starts_with("test_") {
        return c.name.clone();
    }
    for t in &c.args {
        if let Tok::Ident(i) = &t.tok {
            if i.starts_with("test_") {
                return i.clone();
            }
        }
    }
    c.block
        .iter()
        .flatten()
        .find(|c| c.uses_testsuite())
        .map(first_testsuite_word)
        .unwrap_or_else(|| c.name.clone())
}

/// A `size` test: Petrel adds Return-Path, Received and
/// Authentication-Results before a script runs (as an MTA in front of
/// Pigeonhole's LDA would), so sizes differ from Pigeonhole's by those
/// headers and are not compared.
fn is_size(cond: &str) -> bool {
    lex(cond)
        .unwrap_or_default()
        .iter()
        .any(|t| t.tok == Tok::Ident("size".into()))
}

/// A condition with no testsuite test in it.
fn cond_is_plain(cond: &str) -> bool {
    !lex(cond)
        .unwrap_or_default()
        .iter()
        .any(|t| matches!(&t.tok, Tok::Ident(i) if i.starts_with("test_")))
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn string_list(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| quoted(s)).collect();
    format!("[{}]", q.join(", "))
}

/// A mailbox's messages: raw, and their flags.
pub type Stored = Vec<(Vec<u8>, Vec<String>)>;

/// What one delivery left: every mailbox's messages (raw, flags) and what
/// the sink received.
pub struct Delivered {
    pub log: String,
    /// The SMTP reply when the message was refused.
    pub refused: Option<String>,
    pub boxes: HashMap<String, Stored>,
    pub sent: Vec<Sent>,
    pub account: String,
}

/// A message chosen by `test_message`, with what the checks may ask of
/// it.
pub struct Selected {
    raw: Vec<u8>,
    flags: Vec<String>,
    from: String,
    to: String,
}

fn select(c: &Cmd, d: &Delivered) -> Option<Selected> {
    let tag = c.args.iter().find_map(|t| match &t.tok {
        Tok::Tag(x) => Some(x.clone()),
        _ => None,
    })?;
    let n = c.args.iter().find_map(|t| match t.tok {
        Tok::Num(n) => Some(n as usize),
        _ => None,
    })?;
    match tag.as_str() {
        "smtp" => d.sent.get(n).map(|s| Selected {
            raw: s.data.clone(),
            flags: Vec::new(),
            from: s.from.clone(),
            to: s.to.first().cloned().unwrap_or_default(),
        }),
        "folder" => {
            let name = c.strings().into_iter().next()?;
            let list = d.boxes.get(&name).or_else(|| {
                d.boxes
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| v)
            })?;
            list.get(n).map(|(raw, flags)| Selected {
                raw: raw.clone(),
                flags: flags.clone(),
                from: String::new(),
                to: d.account.clone(),
            })
        }
        _ => None,
    }
}

/// Whether `cond` holds for the selected message, by sieve-rs.
fn eval(
    requires: &[String],
    vars: &HashMap<String, String>,
    cond: &str,
    m: &Selected,
) -> Result<bool, String> {
    let mut req: Vec<String> = requires.to_vec();
    for r in ["fileinto", "imap4flags"] {
        if !req.iter().any(|x| x == r) {
            req.push(r.into());
        }
    }
    let mut text = format!("require {};\n", string_list(&req));
    if !m.flags.is_empty() {
        text.push_str(&format!("setflag {};\n", string_list(&m.flags)));
    }
    if req.iter().any(|r| r == "variables") {
        for (k, v) in vars {
            text.push_str(&format!("set {} {};\n", quoted(k), quoted(v)));
        }
    }
    text.push_str(&format!(
        "if {cond} {{ fileinto \"svtest-true\"; }} else {{ fileinto \"svtest-false\"; }}\n"
    ));
    let compiled = sieve::Compiler::new()
        .compile(text.as_bytes())
        .map_err(|e| format!("{e}"))?;
    let rt = sieve::Runtime::new();
    let mut ctx = rt
        .filter(&m.raw)
        .with_envelope(sieve::Envelope::From, m.from.as_str())
        .with_envelope(sieve::Envelope::To, m.to.as_str());
    let mut input = sieve::Input::script("check", Arc::new(compiled));
    while let Some(ev) = ctx.run(input) {
        match ev.map_err(|e| format!("{e:?}"))? {
            sieve::Event::FileInto { folder, .. } => return Ok(folder == "svtest-true"),
            _ => input = sieve::Input::True,
        }
    }
    Err("the check ran to no answer".into())
}

/// Delivers the setup's message to a fresh Petrel with `script` active;
/// waits for the queue to empty.
async fn deliver(st: &Setup, script: &str) -> Result<Delivered, String> {
    let (sink_addr, sent) = sink().await;
    let s = TestServer::start_logging(&format!(
        "[imap]\nauth-without-tls = true\n[queue]\nrelay = \"{sink_addr}\"\nretry = [1]\n"
    ));
    // Unset, the envelope follows the message's To and From (as the
    // testsuite does).
    let header = |name: &str| -> Option<String> {
        let m = mail_parser::MessageParser::new().parse(st.message.as_bytes())?;
        let list = match name {
            "to" => m.to(),
            _ => m.from(),
        }?;
        list.first()?.address().map(str::to_ascii_lowercase)
    };
    let account = st
        .to
        .clone()
        .filter(|t| t.contains('@'))
        .or_else(|| header("to"))
        .unwrap_or_else(|| "svtest@example.org".into());
    s.account(&account);
    // Addresses a script sends to (redirect, notify's mailto:) in the
    // account's domain are local to this Petrel: they get accounts, and
    // what reaches them counts as sent.
    let domain = account
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let mut local: Vec<String> = Vec::new();
    for t in redirect_targets(script) {
        if t.rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain))
            && !t.eq_ignore_ascii_case(&account)
            && !local.contains(&t)
        {
            s.account(&t);
            local.push(t);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svtest.sieve");
    std::fs::write(&file, script).unwrap();
    let out = s.cli(&[
        "sieve",
        "put",
        &account,
        "svtest",
        file.to_str().unwrap(),
        "--activate",
    ]);
    if !out.status.success() {
        return Err(format!(
            "Petrel refused the script: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    for m in &st.mailboxes {
        imap_as_plain(&s, &account, &format!("b CREATE \"{m}\"\r\n")).await;
    }
    let from = st
        .from
        .clone()
        .or_else(|| header("from"))
        .unwrap_or_else(|| "sender@example.com".into());
    let from = from.trim_matches(|c| c == '<' || c == '>').to_string();
    let body = st.message.replace("\r\n", "\n").replace('\n', "\r\n");
    let r = smtp_send(s.addr("smtp"), &from, &[account.as_str()], &body).await;
    // A refusal (reject at DATA, RFC 5429 §2.1) is an outcome too.
    let refused = (!r.starts_with("250")).then(|| r.trim().to_string());
    // The queue (redirects, responses, notifications) empties.
    for _ in 0..100 {
        let q = s.cli_ok(&["queue", "list"]);
        if !q.lines().any(|l| l.contains('@')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let boxes = mailboxes(&s, &account).await;
    // One entry per envelope recipient, as the testsuite counts them.
    let mut sent: Vec<Sent> = sent
        .lock()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m.to.iter().map(|t| Sent {
                from: m.from.clone(),
                to: vec![t.clone()],
                data: m.data.clone(),
            })
        })
        .collect();
    for t in &local {
        for raw in imap_fetch_all(s.addr("imap"), t, "pw").await {
            let text = String::from_utf8_lossy(&raw).to_string();
            let from = text
                .lines()
                .find_map(|l| l.strip_prefix("Return-Path:"))
                .map(|v| v.trim().trim_matches(|c| c == '<' || c == '>').to_string())
                .unwrap_or_default();
            sent.push(Sent {
                from,
                to: vec![t.clone()],
                data: raw,
            });
        }
    }
    // In the order Petrel queued them (the queue sends in parallel).
    let log = s.log();
    let order = |to: &str| -> usize {
        log.lines()
            .filter(|l| l.contains("queued") && l.contains("queue_id="))
            .position(|l| {
                l.split_whitespace().any(|w| {
                    w.strip_prefix("to=").is_some_and(|t| {
                        t.replace('"', "")
                            .eq_ignore_ascii_case(&to.replace('"', ""))
                    })
                })
            })
            .unwrap_or(usize::MAX)
    };
    sent.sort_by_key(|m| order(m.to.first().map(String::as_str).unwrap_or("")));
    Ok(Delivered {
        log,
        refused,
        boxes,
        sent,
        account,
    })
}

/// The addresses a script's `redirect` and `notify` name.
fn redirect_targets(script: &str) -> Vec<String> {
    fn walk(cmds: &[Cmd], out: &mut Vec<String>) {
        for c in cmds {
            if c.name == "redirect" || c.name == "notify" {
                for s in c.strings() {
                    out.extend(
                        s.split(|c: char| "?&=,:;<> \"".contains(c))
                            .filter(|w| w.contains('@') && !w.starts_with('@'))
                            .map(str::to_ascii_lowercase),
                    );
                }
            }
            walk(c.block.as_deref().unwrap_or(&[]), out);
        }
    }
    let mut out = Vec::new();
    walk(&parse(script).unwrap_or_default(), &mut out);
    out
}

async fn imap_as_plain(s: &TestServer, user: &str, cmds: &str) -> String {
    super::jmap::imap_as(s.addr("imap"), user, cmds).await
}

/// Every mailbox with its messages and their flags.
async fn mailboxes(s: &TestServer, user: &str) -> HashMap<String, Stored> {
    let list = imap_as_plain(s, user, "b LIST \"\" \"*\"\r\n").await;
    let mut out = HashMap::new();
    for l in list.lines().filter(|l| l.starts_with("* LIST")) {
        let name = l
            .rsplit_once(' ')
            .map(|(_, n)| n.trim_matches('"').to_string())
            .unwrap_or_default();
        let msgs = imap_fetch_mailbox(s.addr("imap"), user, "pw", &name).await;
        let flags_out = imap_as_plain(
            s,
            user,
            &format!("b EXAMINE \"{name}\"\r\nc FETCH 1:* (FLAGS)\r\n"),
        )
        .await;
        let flags: Vec<Vec<String>> = flags_out
            .lines()
            .filter(|l| l.contains("FETCH (FLAGS"))
            .map(|l| {
                l.split_once("FLAGS (")
                    .and_then(|(_, r)| r.split_once(')'))
                    .map(|(f, _)| {
                        f.split_whitespace()
                            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let with: Stored = msgs
            .into_iter()
            .enumerate()
            .map(|(i, m)| (m, flags.get(i).cloned().unwrap_or_default()))
            .collect();
        out.insert(name, with);
    }
    out
}
