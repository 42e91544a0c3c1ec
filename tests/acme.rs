//! Automatic certificates against a real ACME server: Pebble (Debian's
//! `pebble`, Let's Encrypt's test server) on loopback, resolving the
//! challenge name through dnsmasq. Petrel orders a certificate for its
//! host name, answers the HTTP-01 challenge on its http-redirect listener
//! and serves the new chain on its TLS listeners, without a restart; a
//! client trusting only Pebble's root accepts it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dns::{free_port, Dns, Rec};
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
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector_trusting(root.as_bytes())
        .connect(ServerName::try_from("mx.test").unwrap(), tcp)
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

async fn obtain(challenge: &str) {
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
    let _dns = Dns::start_at(&[Rec::A("mx.test", "127.0.0.1")], dns_port);
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
    let _pebble = Pebble(
        Command::new("pebble")
            .arg("-config")
            .arg(&cfg)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns_port}"))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
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

    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&format!(
        "[tls.acme]\ndirectory = \"https://localhost:{acme}/dir\"\ncontact = [\"mailto:postmaster@mx.test\"]\nca-file = \"{}\"\nchallenge = \"{challenge}\"\n",
        ppki.ca.display()
    ));
    let config = if challenge == "http-01" {
        config.replace(
            "http = [\"127.0.0.1:0\"]",
            &format!("http = [\"127.0.0.1:0\"]\nhttp-redirect = [\"127.0.0.1:{http}\"]"),
        )
    } else {
        config.replace(
            "http = [\"127.0.0.1:0\"]",
            &format!("http = []\nhttps = [\"127.0.0.1:{tls}\"]"),
        )
    };
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
    let s = TestServer::start_in_logging(dir, log);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let log = s.log();
        if log.contains("ACME: certificate installed") {
            break;
        }
        assert!(
            Instant::now() < deadline && !log.contains("ACME: no certificate"),
            "no certificate from Pebble:\n{log}\nPebble:\n{}",
            std::fs::read_to_string(pdir.path().join("pebble.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s
        .log()
        .contains(&format!("ACME: {challenge} challenge answered")));

    // Pebble's root, from its management interface.
    let root = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&ppki.ca)
        .arg(format!("https://localhost:{mgmt}/roots/0"))
        .output()
        .unwrap();
    assert!(root.status.success(), "cannot fetch Pebble's root");
    let root = String::from_utf8(root.stdout).unwrap();
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
