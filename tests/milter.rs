//! External filters against a running Petrel, with the real filters an
//! operator would run: rspamd (Debian's, its proxy worker in milter
//! mode scanning by itself), SpamAssassin through spamass-milter (on a
//! Unix socket, spamd on a private port), and an HTTP hook (a Python
//! server). Each runs from a private directory on private ports.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::port::free_port;
use common::*;

const JOE: &str = "joe@example.org";

/// A process group that is stopped when the test ends, pass or fail.
struct Daemon(Child);

impl Daemon {
    fn spawn(cmd: &mut Command, log: &Path) -> Daemon {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (cargo xtask setup installs it)"));
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-9", "--", &pgid]).status();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{}.{}@remote.test>\r\nFrom: Ann <ann@remote.test>\r\nTo: joe@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n",
        subject.len(),
        body.len()
    )
}

async fn send(s: &TestServer, subject: &str, body: &str) -> String {
    smtp_send(
        s.addr("smtp"),
        "ann@remote.test",
        &[JOE],
        &message(subject, body),
    )
    .await
}

fn texts(msgs: Vec<Vec<u8>>) -> Vec<String> {
    msgs.into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

fn find<'a>(msgs: &'a [String], subject: &str) -> &'a str {
    let needle = format!("Subject: {subject}\r\n");
    msgs.iter()
        .find(|m| m.contains(&needle))
        .unwrap_or_else(|| panic!("no message {subject:?} in {msgs:#?}"))
}

/// rspamd with three test rules on the Subject, its proxy worker in
/// milter mode on `port`, every module that asks the network off.
fn rspamd(dir: &Path, port: u16) -> Daemon {
    for d in ["local.d", "override.d", "db", "run", "log"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w(
        "local.d/worker-proxy.inc",
        &format!("bind_socket = \"127.0.0.1:{port}\";\nmilter = yes;\ncount = 1;\ntimeout = 120s;\nupstream \"local\" {{\n  default = yes;\n  self_scan = yes;\n}}\n"),
    );
    w("override.d/worker-normal.inc", "enabled = false;\n");
    w("override.d/worker-controller.inc", "enabled = false;\n");
    w(
        "local.d/logging.inc",
        &format!(
            "type = \"file\";\nfilename = \"{}/log/rspamd.log\";\nlevel = \"info\";\n",
            dir.display()
        ),
    );
    w(
        "local.d/options.inc",
        "dns {\n  nameserver = [\"127.0.0.1:9\"];\n  timeout = 0.01s;\n  retransmits = 0;\n}\n",
    );
    for m in [
        "arc",
        "asn",
        "dkim",
        "dmarc",
        "fuzzy_check",
        "greylist",
        "mx_check",
        "phishing",
        "rbl",
        "replies",
        "spf",
        "surbl",
        "url_redirector",
    ] {
        w(&format!("local.d/{m}.conf"), "enabled = false;\n");
    }
    w(
        "rspamd.local.lua",
        r#"
local function subject_has(task, text)
  local s = task:get_header('Subject') or ''
  return s:find(text, 1, true) ~= nil
end
rspamd_config:register_symbol({name = 'PETREL_TEST_REJECT', score = 100.0,
  callback = function(task) return subject_has(task, 'please reject') end})
rspamd_config:register_symbol({name = 'PETREL_TEST_JUNK', score = 8.0,
  callback = function(task) return subject_has(task, 'please junk') end})
rspamd_config:register_symbol({name = 'PETREL_TEST_LATER', score = 0.0,
  callback = function(task)
    if subject_has(task, 'please defer') then
      task:set_pre_result('soft reject', 'come back later')
      return true
    end
    return false
  end})
"#,
    );
    Command::new("chmod")
        .args(["-R", "a+rwX", &dir.display().to_string()])
        .status()
        .unwrap();
    let var = |k: &str, v: &str| format!("--var={k}={}", dir.join(v).display());
    let d = Daemon::spawn(
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
    );
    wait_for("rspamd", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamd_milter() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead = free_port();
    let mut daemon = Some(rspamd(dir.path(), port));
    // rspamd first; then a milter that is not there, which lets mail by.
    let s = TestServer::start_logging(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\nenable = false\n[[smtp.milter]]\nname = \"rspamd\"\naddress = \"127.0.0.1:{port}\"\njunk-header = \"X-Spam: Yes\"\n[[smtp.milter]]\nname = \"gone\"\naddress = \"127.0.0.1:{dead}\"\non-failure = \"accept\"\n"
    ));
    s.account(JOE);
    let imap = s.addr("imap");
    // Clean: delivered as sent, to the Inbox.
    let r = send(&s, "hello", "lunch at noon").await;
    assert!(r.starts_with("250 "), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    assert!(!inbox[0].contains("X-Spam"), "{}", inbox[0]);
    // Over rspamd's add-header score: its field, and so Junk.
    let r = send(&s, "please junk", "cheap pills").await;
    assert!(r.starts_with("250 "), "{r}");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1);
    assert!(
        find(&junk, "please junk").contains("\r\nX-Spam: Yes\r\n"),
        "{}",
        junk[0]
    );
    // Its reject and soft reject are the SMTP replies, nothing stored.
    let r = send(&s, "please reject", "x").await;
    assert!(r.starts_with("554 5.7.1 Spam message rejected"), "{r}");
    let r = send(&s, "please defer", "x").await;
    assert!(r.starts_with("451 4.7.1 come back later"), "{r}");
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 1);
    let log = s.log_until("result=\"reject\"");
    assert!(
        log.contains("filter=rspamd") && log.contains("filter failed, message let by"),
        "{log}"
    );
    // rspamd stops: its mail waits (451), never passes unfiltered.
    drop(daemon.take());
    let r = send(&s, "while away", "x").await;
    assert!(
        r.starts_with("451 4.7.1 A mail filter is unavailable"),
        "{r}"
    );
    // It comes back on the same port: no restart of Petrel needed.
    daemon = Some(rspamd(dir.path(), port));
    let r = send(&s, "while away", "x").await;
    assert!(r.starts_with("250 "), "{r}");
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 2);
    let metrics = http_get(s.addr("http"), "/metrics");
    assert!(
        metrics.contains("petrel_filter_results_total{filter=\"rspamd\",result=\"reject\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("petrel_filter_results_total{filter=\"rspamd\",result=\"failure\"} 1"),
        "{metrics}"
    );
    drop(daemon);
}

/// spamd on a private port with one test rule, and spamass-milter on a
/// Unix socket in `dir` asking it, refusing from 15.
fn spamassassin(dir: &Path) -> (Daemon, Daemon) {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    for e in std::fs::read_dir("/etc/spamassassin").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "pre") {
            std::fs::copy(&p, conf.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        conf.join("local.cf"),
        "use_bayes 0\nskip_rbl_checks 1\nrequired_score 5.0\nheader PETREL_TEST_JUNK Subject =~ /please junk/\nscore PETREL_TEST_JUNK 8.0\n",
    )
    .unwrap();
    Command::new("chmod")
        .args(["-R", "a+rwX", &dir.display().to_string()])
        .status()
        .unwrap();
    let port = free_port();
    let spamd = Daemon::spawn(
        Command::new("spamd").args([
            "-L",
            "-x",
            &format!("--siteconfigpath={}", conf.display()),
            &format!("--helper-home-dir={}", dir.join("home").display()),
            "-i",
            "127.0.0.1",
            "-A",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-u",
            "nobody",
            "-s",
            "stderr",
        ]),
        &dir.join("spamd.log"),
    );
    wait_for("spamd", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let socket = dir.join("milter.sock");
    let milter = Daemon::spawn(
        Command::new("spamass-milter").args([
            "-p",
            &socket.display().to_string(),
            "-r",
            "15",
            "--",
            "-d",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]),
        &dir.join("milter.log"),
    );
    wait_for("spamass-milter", || socket.exists());
    (spamd, milter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spamassassin_milter() {
    let dir = tempfile::tempdir().unwrap();
    let daemons = spamassassin(dir.path());
    let s = TestServer::start_with(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\nenable = false\n[smtp]\nauth-without-tls = true\n[[smtp.milter]]\naddress = \"unix:{}\"\njunk-header = \"X-Spam-Flag: YES\"\n",
        dir.path().join("milter.sock").display()
    ));
    s.account(JOE);
    s.account("ann@example.org");
    let imap = s.addr("imap");
    let r = send(&s, "hello", "lunch at noon").await;
    assert!(r.starts_with("250 "), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    assert!(
        inbox[0].contains("\r\nX-Spam-Status: No, score="),
        "{}",
        inbox[0]
    );
    // Spam: SpamAssassin's report replaces the body (report_safe) and
    // the original travels attached; the flag files it in Junk.
    let r = send(&s, "please junk", "the original text").await;
    assert!(r.starts_with("250 "), "{r}");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1, "{junk:#?}");
    let m = &junk[0];
    assert!(m.contains("\r\nX-Spam-Flag: YES\r\n"), "{m}");
    assert!(m.contains("PETREL_TEST_JUNK"), "{m}");
    assert!(m.contains("Content-Type: multipart/mixed"), "{m}");
    assert!(m.contains("message/rfc822"), "{m}");
    assert!(m.contains("the original text"), "{m}");
    // GTUBE scores 1000: over -r 15, refused with spamass-milter's reply.
    let gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
    let r = send(&s, "test", gtube).await;
    assert!(r.starts_with("550 5.7.1 Blocked by SpamAssassin"), "{r}");
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 1);
    // The milter is for port 25 only (`ports`' default): a logged-in
    // user's message does not meet it.
    let own = message("test", gtube).replace("ann@remote.test", "ann@example.org");
    let r = submit(&s, "ann@example.org", &[JOE], &own).await;
    assert!(r.starts_with("250 "), "{r}");
    wait_for_mail(imap, JOE, 2).await;
    drop(daemons);
}

/// The hook: answers by the message's Subject, and shows it saw the
/// envelope by echoing the recipients in a field.
const HOOK: &str = r#"
import http.server, json, sys, time

class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        rcpts = self.headers.get_all('X-Petrel-Rcpt-To') or []
        answer = {"action": "continue",
                  "headers": [{"name": "X-Hook-Saw", "value": ",".join(rcpts) + " from " + self.headers['X-Petrel-Mail-From']}]}
        if b"Subject: hook reject" in body:
            answer = {"action": "reject", "reply": "554 5.7.1 The hook says no"}
        elif b"Subject: hook quarantine" in body:
            answer["action"] = "quarantine"
        elif b"Subject: hook discard" in body:
            answer = {"action": "discard"}
        elif b"Subject: hook nonsense" in body:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"not json")
            return
        elif b"Subject: hook slow" in body:
            time.sleep(3)
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Hook).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_hook() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = dir.path().join("hook.py");
    std::fs::write(&script, HOOK).unwrap();
    let _hook = Daemon::spawn(
        Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .stdin(Stdio::null()),
        &dir.path().join("hook.log"),
    );
    wait_for("the hook", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let s = TestServer::start_with(&format!(
        "[imap]\nauth-without-tls = true\n[spam]\nenable = false\n[[smtp.hook]]\nurl = \"http://127.0.0.1:{port}/check\"\ntimeout = 1\n"
    ));
    s.account(JOE);
    let imap = s.addr("imap");
    let r = send(&s, "hello", "x").await;
    assert!(r.starts_with("250 "), "{r}");
    let inbox = texts(wait_for_mail(imap, JOE, 1).await);
    assert!(
        inbox[0].contains("\r\nX-Hook-Saw: joe@example.org from ann@remote.test\r\n"),
        "{}",
        inbox[0]
    );
    let r = send(&s, "hook reject", "x").await;
    assert!(r.starts_with("554 5.7.1 The hook says no"), "{r}");
    let r = send(&s, "hook discard", "x").await;
    assert!(r.starts_with("250 "), "{r}");
    let r = send(&s, "hook quarantine", "x").await;
    assert!(r.starts_with("250 "), "{r}");
    let junk = texts(imap_fetch_mailbox(imap, JOE, "pw", "Junk").await);
    assert_eq!(junk.len(), 1);
    assert!(junk[0].contains("Subject: hook quarantine"), "{}", junk[0]);
    assert!(junk[0].contains("X-Hook-Saw: "), "{}", junk[0]);
    // Nonsense and silence past the timeout are failures: 451.
    for subject in ["hook nonsense", "hook slow"] {
        let r = send(&s, subject, "x").await;
        assert!(
            r.starts_with("451 4.7.1 A mail filter is unavailable"),
            "{subject}: {r}"
        );
    }
    // The discarded and refused ones were never stored.
    assert_eq!(imap_fetch_all(imap, JOE, "pw").await.len(), 1);
}
