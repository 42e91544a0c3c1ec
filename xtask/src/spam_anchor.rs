//! The anchors of `cargo xtask bench spam`, each learning from the same
//! training messages Petrel learns and scoring the same test messages:
//!
//! * SpamAssassin (Debian's 4.0.x, its shipped rules, local tests only:
//!   no DNS blocklists or network checks), Bayes learnt by `sa-learn`,
//!   spamd/spamc at its default threshold of 5.0;
//! * rspamd (Debian's 3.4, its shipped modules, DNS pointed at nothing
//!   so that only local checks count), Bayes in a private Redis learnt
//!   through its controller, spam from its `add header` score of 6.0.
//!
//! Everything runs from a private directory and private ports; nothing
//! of the system's configuration is changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What SpamAssassin made of the test sets.
pub struct Outcome {
    pub false_positives: usize,
    pub hams: usize,
    pub false_negatives: usize,
    pub spams: usize,
    pub per_second: f64,
    pub version: String,
}

impl Outcome {
    /// The figures as one line: how it ran, then the rates.
    pub fn line(&self, setup: &str, clients: &str) -> String {
        let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        format!(
            "{} ({setup}): false positives {} of {} ({:.2} %), false negatives {} of {} ({:.2} %), {:.1} msg/s ({clients})",
            self.version,
            self.false_positives,
            self.hams,
            pct(self.false_positives, self.hams),
            self.false_negatives,
            self.spams,
            pct(self.false_negatives, self.spams),
            self.per_second
        )
    }
}

/// The messages of a corpus folder (the `.txt` files; `.json` are its
/// metadata).
fn messages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    v.sort();
    Ok(v)
}

fn link_all(from: &[PathBuf], to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for d in from {
        for (i, m) in messages(d)?.iter().enumerate() {
            let name = format!(
                "{}-{i}",
                d.file_name().unwrap_or_default().to_string_lossy()
            );
            std::fs::copy(m, to.join(name)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(17783)
}

/// Exit 1 from `spamc -c`: spam.
fn is_spam(port: u16, msg: &Path) -> Result<bool, String> {
    let input = std::fs::File::open(msg).map_err(|e| e.to_string())?;
    let st = Command::new("spamc")
        .args(["-d", "127.0.0.1", "-p", &port.to_string(), "-c"])
        .stdin(input)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("spamc: {e}"))?;
    match st.code() {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        c => Err(format!("spamc failed ({c:?}) on {}", msg.display())),
    }
}

/// The corpus folders an anchor learns from and is measured on.
pub struct Split {
    pub train_spam: Vec<PathBuf>,
    pub train_ham: Vec<PathBuf>,
    pub test_spam: PathBuf,
    pub test_ham: PathBuf,
}

/// An empty private directory for one anchor's run.
fn private_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("petrel-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn run(split: &Split) -> Result<Outcome, String> {
    let dir = private_dir("sa");
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("bayes")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("home")).map_err(|e| e.to_string())?;
    // The plugin loads of the system's *.pre files, our own local.cf.
    for e in std::fs::read_dir("/etc/spamassassin").map_err(|e| e.to_string())? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "pre") {
            std::fs::copy(&p, conf.join(p.file_name().unwrap_or_default()))
                .map_err(|e| e.to_string())?;
        }
    }
    std::fs::write(
        conf.join("local.cf"),
        format!(
            "use_bayes 1\nbayes_auto_learn 0\nbayes_auto_expire 0\nbayes_path {}/bayes/bayes\nbayes_file_mode 0777\nrequired_score 5.0\nskip_rbl_checks 1\n",
            dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    link_all(&split.train_spam, &dir.join("train-spam"))?;
    link_all(&split.train_ham, &dir.join("train-ham"))?;
    let conf_arg = format!("--siteconfigpath={}", conf.display());
    let t0 = Instant::now();
    for (kind, d) in [("--spam", "train-spam"), ("--ham", "train-ham")] {
        crate::run(Command::new("sa-learn").args([
            conf_arg.as_str(),
            "--no-sync",
            kind,
            &dir.join(d).display().to_string(),
        ]))?;
    }
    crate::run(Command::new("sa-learn").args([conf_arg.as_str(), "--sync"]))?;
    println!(
        "bench spam: SpamAssassin learnt in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    // spamd drops root for nobody: let it read and write the database.
    crate::run(Command::new("chmod").args(["-R", "a+rwX", &dir.display().to_string()]))?;
    let port = free_port();
    let mut spamd = Command::new("spamd");
    spamd
        .args([
            "-L",
            "-x",
            conf_arg.as_str(),
            "-i",
            "127.0.0.1",
            "-A",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "2",
            "-u",
            "nobody",
            "-s",
            "stderr",
        ])
        .arg(format!("--helper-home-dir={}", dir.join("home").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("spamd.log")).map_err(|e| e.to_string())?);
    {
        use std::os::unix::process::CommandExt;
        spamd.process_group(0);
    }
    let mut child = spamd.spawn().map_err(|e| format!("spamd: {e}"))?;
    let stop = stop_group;
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            stop(&mut child);
            return Err(format!(
                "spamd did not start: see {}",
                dir.join("spamd.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let spams = messages(&split.test_spam)?;
    let hams = messages(&split.test_ham)?;
    let all: Vec<(PathBuf, bool)> = spams
        .iter()
        .map(|p| (p.clone(), true))
        .chain(hams.iter().map(|p| (p.clone(), false)))
        .collect();
    let t0 = Instant::now();
    // Two clients, as spamd has two children (the machine's cores).
    let results: Result<Vec<(bool, bool)>, String> = std::thread::scope(|s| {
        let halves: Vec<_> = all
            .chunks(all.len().div_ceil(2).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(p, spam)| is_spam(port, p).map(|v| (*spam, v)))
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in halves {
            out.extend(
                h.join()
                    .map_err(|_| "spamc thread panicked".to_string())??,
            );
        }
        Ok(out)
    });
    let secs = t0.elapsed().as_secs_f64();
    stop(&mut child);
    let results = results?;
    let version = Command::new("spamassassin")
        .arg("-V")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Outcome {
        false_positives: results.iter().filter(|(s, v)| !*s && *v).count(),
        hams: hams.len(),
        false_negatives: results.iter().filter(|(s, v)| *s && !*v).count(),
        spams: spams.len(),
        per_second: results.len() as f64 / secs,
        version,
    })
}

/// rspamd modules that ask DNS, Redis (beyond the Bayes statistics) or
/// the network, off for the anchor: the reference ran its local
/// modules.
const NETWORK_MODULES: &[&str] = &[
    "arc",
    "asn",
    "bimi",
    "dcc",
    "dkim",
    "dmarc",
    "emails",
    "fuzzy_check",
    "greylist",
    "hfilter",
    "history_redis",
    "mx_check",
    "neural",
    "once_received",
    "ratelimit",
    "rbl",
    "replies",
    "reputation",
    "rspamd_update",
    "spf",
    "surbl",
    "url_redirector",
];

/// Kills a child started in its own process group, with its children.
fn stop_group(child: &mut std::process::Child) {
    // procps kill needs `--` before a negative (group) id.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

fn spawn_group(cmd: &mut Command, log: &Path) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::null())
        .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))
}

/// `rspamc` over `files`, a few hundred at a time: its output.
fn rspamc(server: &str, args: &[&str], files: &[PathBuf]) -> Result<String, String> {
    let mut out = String::new();
    for chunk in files.chunks(400) {
        let o = Command::new("rspamc")
            .args(["-h", server, "-n", "2"])
            .args(args)
            .args(chunk)
            .output()
            .map_err(|e| format!("rspamc: {e}"))?;
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    Ok(out)
}

/// Each file's score in rspamc's report.
fn scores(report: &str) -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    let mut file = None;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("Results for file: ") {
            file = rest.rsplit_once(" (").map(|(f, _)| f.to_string());
        } else if let (Some(f), Some(rest)) = (&file, line.strip_prefix("Score: ")) {
            if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse().ok()) {
                out.insert(f.clone(), v);
            }
        }
    }
    out
}

pub fn rspamd(split: &Split) -> Result<Outcome, String> {
    let dir = private_dir("rspamd");
    for d in ["local.d", "override.d", "db", "run", "log"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    let (normal, controller, redis) = (free_port(), free_port(), free_port());
    let w =
        |name: &str, text: String| std::fs::write(dir.join(name), text).map_err(|e| e.to_string());
    w(
        "local.d/worker-normal.inc",
        format!("bind_socket = \"127.0.0.1:{normal}\";\ncount = 2;\n"),
    )?;
    w(
        "local.d/worker-controller.inc",
        format!("bind_socket = \"127.0.0.1:{controller}\";\nsecure_ip = \"127.0.0.1\";\n"),
    )?;
    w("override.d/worker-proxy.inc", "enabled = false;\n".into())?;
    w(
        "local.d/redis.conf",
        format!("servers = \"127.0.0.1:{redis}\";\n"),
    )?;
    w(
        "local.d/logging.inc",
        format!(
            "type = \"file\";\nfilename = \"{}/log/rspamd.log\";\nlevel = \"warning\";\n",
            dir.display()
        ),
    )?;
    // Local checks only: the modules that ask DNS, Redis or the network
    // are off, and DNS goes to a port where nothing answers, given up
    // on at once (some modules still ask; with a longer wait each message
    // took 0.2 s of it).
    w(
        "local.d/options.inc",
        "dns {\n  nameserver = [\"127.0.0.1:9\"];\n  timeout = 0.01s;\n  retransmits = 0;\n}\n"
            .into(),
    )?;
    for m in NETWORK_MODULES {
        w(&format!("local.d/{m}.conf"), "enabled = false;\n".into())?;
    }
    crate::run(Command::new("chmod").args(["-R", "a+rwX", &dir.display().to_string()]))?;
    let mut redis_child = spawn_group(
        Command::new("redis-server").args([
            "--port",
            &redis.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &dir.join("db").display().to_string(),
        ]),
        &dir.join("log/redis.log"),
    )?;
    let var = |k: &str, v: &str| format!("--var={k}={}", dir.join(v).display());
    let mut rspamd = match spawn_group(
        Command::new("rspamd").args([
            "-f",
            "-u",
            "nobody",
            "-g",
            "nogroup",
            "-c",
            "/etc/rspamd/rspamd.conf",
            &format!("--var=LOCAL_CONFDIR={}", dir.display()),
            &var("DBDIR", "db"),
            &var("RUNDIR", "run"),
            &var("LOGDIR", "log"),
        ]),
        &dir.join("log/stderr.log"),
    ) {
        Ok(c) => c,
        Err(e) => {
            stop_group(&mut redis_child);
            return Err(e);
        }
    };
    let result = rspamd_measure(
        &dir,
        &format!("127.0.0.1:{normal}"),
        &format!("127.0.0.1:{controller}"),
        split,
    );
    stop_group(&mut rspamd);
    stop_group(&mut redis_child);
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn rspamd_measure(
    dir: &Path,
    normal: &str,
    controller: &str,
    split: &Split,
) -> Result<Outcome, String> {
    // Ready once a scan answers (it compiles its expressions first).
    let probe = dir.join("probe.eml");
    std::fs::write(&probe, "Subject: probe\r\n\r\nprobe\r\n").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !rspamc(normal, &[], std::slice::from_ref(&probe))?.contains("Score:") {
        if Instant::now() > deadline {
            return Err(format!("rspamd did not start: see {}/log", dir.display()));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let t0 = Instant::now();
    for (cmd, dirs) in [
        ("learn_spam", &split.train_spam),
        ("learn_ham", &split.train_ham),
    ] {
        let mut files = Vec::new();
        for d in dirs {
            files.extend(messages(d)?);
        }
        rspamc(controller, &[cmd], &files)?;
    }
    println!(
        "bench spam: rspamd learnt in {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    let spams = messages(&split.test_spam)?;
    let hams = messages(&split.test_ham)?;
    let all: Vec<PathBuf> = spams.iter().chain(hams.iter()).cloned().collect();
    let t0 = Instant::now();
    let report = rspamc(normal, &[], &all)?;
    let secs = t0.elapsed().as_secs_f64();
    let got = scores(&report);
    if got.len() != all.len() {
        return Err(format!(
            "rspamd scored {} of {} messages: see {}/log",
            got.len(),
            all.len(),
            dir.display()
        ));
    }
    let spam_at = |p: &PathBuf| got[&p.display().to_string()] >= 6.0;
    let version = Command::new("rspamd")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Ok(Outcome {
        false_positives: hams.iter().filter(|p| spam_at(p)).count(),
        hams: hams.len(),
        false_negatives: spams.iter().filter(|p| !spam_at(p)).count(),
        spams: spams.len(),
        per_second: all.len() as f64 / secs,
        version,
    })
}
