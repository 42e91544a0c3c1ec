//! Automatic certificates against a real ACME server: Pebble (Debian's
//! `pebble`, Let's Encrypt's test server) on loopback, resolving the
//! challenge name through dnsmasq. Petrel orders a certificate for its
//! host name, answers the HTTP-01 challenge on its http-redirect listener
//! and serves the new chain on its TLS listeners, without a restart; a
//! client trusting only Pebble's root accepts it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dns::{Dns, Rec};
use common::port::free_port;
use common::*;
use rustls::pki_types::ServerName;

struct Pebble(std::process::Child);

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The certificate chain a TLS listener presents for `mx.test`, trusting
/// only `root` (PEM); Err when the handshake fails.
async fn handshake(addr: std::net::SocketAddr, root: &str) -> Result<Vec<Vec<u8>>, String> {
    handshake_as(addr, root, "mx.test").await
}

async fn handshake_as(
    addr: std::net::SocketAddr,
    root: &str,
    name: &str,
) -> Result<Vec<Vec<u8>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector_trusting(root.as_bytes())
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap()
        .iter()
        .map(|c| c.to_vec())
        .collect())
}

#[tokio::test]
async fn http_01_certificate_goes_into_every_listener() {
    obtain("http-01").await;
}

/// TLS-ALPN-01 (RFC 8737): the validation comes to the https listener
/// (Pebble's tlsPort) asking for `acme-tls/1`; there is no plain HTTP
/// listener at all.
#[tokio::test]
async fn tls_alpn_01_certificate_goes_into_every_listener() {
    obtain("tls-alpn-01").await;
}

/// Pebble on private ports, resolving through a dnsmasq serving `mx.test`.
struct PebbleRun {
    _pebble: Pebble,
    dns: Dns,
    pdir: tempfile::TempDir,
    ppki: common::pki::TestPki,
    acme: u16,
    mgmt: u16,
    http: u16,
    tls: u16,
}

fn start_pebble() -> PebbleRun {
    let pdir = tempfile::tempdir().unwrap();
    // Pebble's own HTTPS (the ACME API and its management interface).
    let ppki = common::pki::issue(pdir.path(), &["localhost"]);
    let (acme, mgmt, http, tls, dns_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let dns = Dns::start_at(
        &[
            Rec::A("mx.test", "127.0.0.1"),
            Rec::A("mail.mx.test", "127.0.0.1"),
            Rec::A("mta-sts.hosted.test", "127.0.0.1"),
            Rec::A("autoconfig.hosted.test", "127.0.0.1"),
        ],
        dns_port,
    );
    let cfg = pdir.path().join("pebble.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"pebble": {{"listenAddress": "127.0.0.1:{acme}", "managementListenAddress": "127.0.0.1:{mgmt}", "certificate": "{}", "privateKey": "{}", "httpPort": {http}, "tlsPort": {tls}, "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
            ppki.chain.display(),
            ppki.key.display(),
        ),
    )
    .unwrap();
    let pebble = Pebble(
        Command::new("pebble")
            .arg("-config")
            .arg(&cfg)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            // Pebble's default: 5 % of good nonces are refused as badNonce,
            // which the client must retry with the nonce of the refusal
            // (RFC 8555 §6.5).
            .env("PEBBLE_WFE_NONCEREJECT", "5")
            .stdout(std::fs::File::create(pdir.path().join("pebble.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble (cargo xtask setup installs Debian's pebble)"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", acme)).is_err() {
        assert!(Instant::now() < deadline, "pebble did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    PebbleRun {
        _pebble: pebble,
        dns,
        pdir,
        ppki,
        acme,
        mgmt,
        http,
        tls,
    }
}

fn acme_config(p: &PebbleRun, challenge: &str, agree: bool) -> String {
    let (acme, http, tls) = (p.acme, p.http, p.tls);
    let config = test_config(&format!(
        "{}[tls.acme]\ndirectory = \"https://localhost:{acme}/dir\"\ncontact = [\"mailto:postmaster@mx.test\"]\ndomains = [\"mx.test\", \"mail.mx.test\"]\nca-file = \"{}\"\nchallenge = \"{challenge}\"\nagree-to-terms = {agree}\n",
        p.dns.resolver_toml(),
        p.ppki.ca.display()
    ));
    if challenge == "http-01" {
        config.replace(
            "http = [\"127.0.0.1:0\"]",
            &format!("http = [\"127.0.0.1:0\"]\nhttp-redirect = [\"127.0.0.1:{http}\"]"),
        )
    } else {
        config.replace(
            "http = [\"127.0.0.1:0\"]",
            &format!("http = []\nhttps = [\"127.0.0.1:{tls}\"]"),
        )
    }
}

fn start_petrel(config: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
    TestServer::start_in_logging(dir, log)
}

async fn obtain(challenge: &str) {
    let p = start_pebble();
    let s = start_petrel(&acme_config(&p, challenge, true));
    wait_installed(&s, &p, 1);
    assert!(s
        .log()
        .contains(&format!("ACME: {challenge} challenge answered")));
    if challenge == "http-01" {
        // RFC 8555 §8.3: only the open challenges' tokens are answered;
        // anything else (and every token once the order is done) is 404.
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!(
                "http://127.0.0.1:{}/.well-known/acme-challenge/..%2F..%2Fetc%2Fpasswd",
                p.http
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "404");
    }

    let root = pebble_root(&p);
    for listener in ["imaps", "submissions", "pop3s"] {
        let chain = handshake(s.addr(listener), &root)
            .await
            .unwrap_or_else(|e| panic!("{listener}: {e}"));
        assert!(
            chain.len() >= 2,
            "{listener}: leaf and intermediate expected"
        );
    }
    // The files in place hold it too (a restart keeps it), the key private.
    let cert = std::fs::read_to_string(s.data_dir().join("tls/cert.pem")).unwrap();
    assert!(cert.matches("BEGIN CERTIFICATE").count() >= 2, "{cert}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.data_dir().join("tls/key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(s.data_dir().join("acme/account.json").exists());

    // A restart finds the certificate current: no new order.
    let dir = s.kill_keep_dir();
    let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
    let s = TestServer::start_in_logging(dir, log);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!s.log().contains("ACME: ordering"), "{}", s.log());
    handshake(s.addr("imaps"), &root).await.unwrap();
}

/// RFC 8555 §7.3: Pebble's directory lists terms of service; without
/// `tls.acme.agree-to-terms` no account is made and the log says which
/// terms to read and which key accepts them.
#[tokio::test]
async fn terms_of_service_are_not_agreed_to_by_default() {
    let p = start_pebble();
    let s = start_petrel(&acme_config(&p, "http-01", false));
    let log = s.log_until("agree-to-terms");
    assert!(
        log.contains("ACME: no certificate")
            && log.contains("terms of service are at")
            && log.contains("tls.acme.agree-to-terms = true"),
        "{log}"
    );
    assert!(!s.data_dir().join("acme/account.json").exists());
}

const PROBLEM: &str =
    r#"{"type":"urn:ietf:params:acme:error:serverInternal","detail":"down for maintenance"}"#;

/// RFC 8555 §6.1: every request carries a User-Agent naming the ACME
/// software and the HTTP client with their versions, and an
/// Accept-Language. A TLS listener standing in for the CA records the
/// first request (the directory) and answers 503.
#[tokio::test]
async fn requests_name_their_software_and_language() {
    use tokio::io::AsyncWriteExt;
    let tmp = tempfile::tempdir().unwrap();
    let pki = common::pki::issue(tmp.path(), &["localhost"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let req = read_http_head(&mut tls).await;
            let _ = tls
                .write_all(format!("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PROBLEM}", PROBLEM.len()).as_bytes())
                .await;
            let _ = tls.shutdown().await;
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned()).await;
        }
    });
    let s = start_petrel(&test_config(&format!(
        "[tls.acme]\ndirectory = \"https://localhost:{port}/dir\"\nca-file = \"{}\"\n",
        pki.ca.display()
    )));
    let req = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no ACME request")
        .unwrap();
    let head = req.to_ascii_lowercase();
    let agent = head
        .lines()
        .find_map(|l| l.strip_prefix("user-agent:"))
        .unwrap_or_else(|| panic!("no User-Agent:\n{req}"))
        .trim()
        .to_string();
    assert!(
        agent.starts_with(&format!("petrel/{}", env!("CARGO_PKG_VERSION")))
            && agent.contains("instant-acme/")
            && agent.contains("hyper/"),
        "{agent}"
    );
    assert!(head.contains("\r\naccept-language: "), "{req}");
    assert!(head.starts_with("get /dir http/1.1\r\n"), "{req}");
    // §6.5.1: the client never sends a Replay-Nonce field.
    assert!(!head.contains("replay-nonce"), "{req}");
    // §6.7: the problem's detail is shown.
    let log = s.log_until("ACME: no certificate");
    assert!(
        log.contains(
            "answered 503: down for maintenance (urn:ietf:params:acme:error:serverInternal)"
        ),
        "{log}"
    );
}

/// Pebble's root, from its management interface.
fn pebble_root(p: &PebbleRun) -> String {
    let root = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&p.ppki.ca)
        .arg(format!("https://localhost:{}/roots/0", p.mgmt))
        .output()
        .unwrap();
    assert!(root.status.success(), "cannot fetch Pebble's root");
    String::from_utf8(root.stdout).unwrap()
}

/// Waits for the n-th `ACME: certificate installed` line.
fn wait_installed(s: &TestServer, p: &PebbleRun, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let log = s.log();
        if log.matches("ACME: certificate installed").count() >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline && !log.contains("ACME: no certificate"),
            "no certificate from Pebble:\n{log}\nPebble:\n{}",
            std::fs::read_to_string(p.pdir.path().join("pebble.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// With `tls.acme.domains` unset the certificate names the host and, for
/// each hosted domain, the mta-sts./autoconfig./autodiscover. names that
/// resolve; adding a domain brings its names onto a new certificate
/// without waiting for the hourly check.
#[tokio::test]
async fn default_names_follow_hosted_domains() {
    let p = start_pebble();
    let config =
        acme_config(&p, "http-01", true).replace("domains = [\"mx.test\", \"mail.mx.test\"]\n", "");
    let s = start_petrel(&config);
    wait_installed(&s, &p, 1);
    let root = pebble_root(&p);
    assert!(handshake_as(s.addr("imaps"), &root, "mta-sts.hosted.test")
        .await
        .is_err());
    s.cli_ok(&["domain", "create", "hosted.test"]);
    let log = wait_installed(&s, &p, 2);
    assert!(
        log.contains("autodiscover.hosted.test has no address in DNS yet"),
        "{log}"
    );
    for name in ["mx.test", "mta-sts.hosted.test", "autoconfig.hosted.test"] {
        handshake_as(s.addr("imaps"), &root, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
