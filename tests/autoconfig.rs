//! Client autoconfiguration against a running server: Thunderbird's
//! clientConfig, Outlook's Autodiscover and Apple's profile name the
//! listeners that are really bound, and a client following them logs in.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;

use common::*;

/// One HTTP/1.1 request; the whole response.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> String {
    let mut t = std::net::TcpStream::connect(addr).expect("connect");
    let host = if headers.starts_with("Host:") {
        ""
    } else {
        "Host: x\r\n"
    };
    t.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\n{host}{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    t.read_to_string(&mut out).unwrap();
    out
}

fn split(response: &str) -> (&str, &str) {
    response.split_once("\r\n\r\n").unwrap_or((response, ""))
}

fn child_text<'a>(n: roxmltree::Node<'a, 'a>, tag: &str) -> &'a str {
    n.children()
        .find(|c| c.tag_name().name() == tag)
        .and_then(|c| c.text())
        .unwrap_or_else(|| panic!("no <{tag}> in {:?}", n.tag_name()))
}

fn server() -> TestServer {
    let s = TestServer::start();
    s.account("joe@example.org");
    s
}

/// Thunderbird's format (clientConfig 1.1): every bound listener, implicit
/// TLS before STARTTLS, the address as login; and the advertised IMAPS
/// port takes that login.
#[tokio::test]
async fn thunderbird_config_matches_the_listeners() {
    let s = server();
    let r = http(
        s.addr("http"),
        "GET",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=joe%40example.org",
        "",
        "",
    );
    let (head, body) = split(&r);
    assert!(head.starts_with("HTTP/1.1 200"), "{r}");
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/xml"),
        "{head}"
    );
    let doc = roxmltree::Document::parse(body).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "clientConfig");
    assert_eq!(root.attribute("version"), Some("1.1"));
    let provider = root
        .children()
        .find(|n| n.has_tag_name("emailProvider"))
        .unwrap();
    assert_eq!(provider.attribute("id"), Some("example.org"));
    assert_eq!(child_text(provider, "domain"), "example.org");
    let servers: Vec<(String, String, u16, String)> = provider
        .children()
        .filter(|n| n.has_tag_name("incomingServer") || n.has_tag_name("outgoingServer"))
        .map(|n| {
            assert_eq!(child_text(n, "hostname"), "mx.test");
            assert_eq!(child_text(n, "authentication"), "password-cleartext");
            assert_eq!(child_text(n, "username"), "%EMAILADDRESS%");
            (
                n.tag_name().name().to_string(),
                n.attribute("type").unwrap().to_string(),
                child_text(n, "port").parse().unwrap(),
                child_text(n, "socketType").to_string(),
            )
        })
        .collect();
    let expect = |tag: &str, kind: &str, listener: &str, socket: &str| {
        (
            tag.to_string(),
            kind.to_string(),
            s.addr(listener).port(),
            socket.to_string(),
        )
    };
    assert_eq!(
        servers,
        vec![
            expect("incomingServer", "imap", "imaps", "SSL"),
            expect("incomingServer", "imap", "imap", "STARTTLS"),
            expect("incomingServer", "pop3", "pop3s", "SSL"),
            expect("incomingServer", "pop3", "pop3", "STARTTLS"),
            expect("outgoingServer", "smtp", "submissions", "SSL"),
            expect("outgoingServer", "smtp", "submission", "STARTTLS"),
        ]
    );
    // Follow it: IMAP over TLS on the advertised port, the address as login.
    let addr: SocketAddr = format!("127.0.0.1:{}", servers[0].2).parse().unwrap();
    let mut c = LineClient::connect_tls(&s, addr).await;
    assert!(c.line().await.starts_with("* OK"));
    c.send("a LOGIN joe@example.org pw\r\n").await;
    assert!(c.imap_until("a").await.last().unwrap().starts_with("a OK"));

    // The other URL, with the domain taken from the Host header.
    let r = http(
        s.addr("http"),
        "GET",
        "/mail/config-v1.1.xml",
        "Host: autoconfig.example.org\r\n",
        "",
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("<domain>example.org</domain>"), "{r}");
    // A domain the server does not host gets nothing.
    let r = http(
        s.addr("http"),
        "GET",
        "/mail/config-v1.1.xml?emailaddress=joe%40elsewhere.test",
        "",
        "",
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

/// Outlook's POX Autodiscover: the address from the request, IMAP and
/// SMTP over implicit TLS on the bound ports; bad requests get 400.
#[test]
fn autodiscover_answers_outlook() {
    let s = server();
    let req = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>joe@example.org</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
    let r = http(
        s.addr("http"),
        "POST",
        "/autodiscover/autodiscover.xml",
        "Content-Type: text/xml\r\n",
        req,
    );
    let (head, body) = split(&r);
    assert!(head.starts_with("HTTP/1.1 200"), "{r}");
    let doc = roxmltree::Document::parse(body).unwrap();
    let account = doc
        .descendants()
        .find(|n| {
            n.has_tag_name((
                "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
                "Account",
            ))
        })
        .expect("Account in the outlook response schema");
    assert_eq!(child_text(account, "AccountType"), "email");
    assert_eq!(child_text(account, "Action"), "settings");
    let protocols: Vec<(String, u16, String, String)> = account
        .children()
        .filter(|n| n.tag_name().name() == "Protocol")
        .map(|p| {
            assert_eq!(child_text(p, "Server"), "mx.test");
            assert_eq!(child_text(p, "AuthRequired"), "on");
            (
                child_text(p, "Type").to_string(),
                child_text(p, "Port").parse().unwrap(),
                child_text(p, "SSL").to_string(),
                child_text(p, "LoginName").to_string(),
            )
        })
        .collect();
    assert_eq!(
        protocols,
        vec![
            (
                "IMAP".to_string(),
                s.addr("imaps").port(),
                "on".to_string(),
                "joe@example.org".to_string()
            ),
            (
                "SMTP".to_string(),
                s.addr("submissions").port(),
                "on".to_string(),
                "joe@example.org".to_string()
            ),
        ]
    );
    // Upper-case path (as Outlook sends it) works too.
    let r = http(
        s.addr("http"),
        "POST",
        "/Autodiscover/Autodiscover.xml",
        "",
        req,
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    for bad in ["", "<a>", "<a><EMailAddress>nobody</EMailAddress></a>"] {
        let r = http(
            s.addr("http"),
            "POST",
            "/autodiscover/autodiscover.xml",
            "",
            bad,
        );
        assert!(r.starts_with("HTTP/1.1 400"), "{bad:?}: {r}");
    }
    let other = req.replace("joe@example.org", "joe@elsewhere.test");
    let r = http(
        s.addr("http"),
        "POST",
        "/autodiscover/autodiscover.xml",
        "",
        &other,
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

/// The Apple profile parses with Python's plistlib and names the bound
/// IMAPS and submissions ports.
#[test]
fn mobileconfig_is_a_valid_profile() {
    let s = server();
    let r = http(
        s.addr("http"),
        "GET",
        "/mobileconfig?emailaddress=joe%40example.org",
        "",
        "",
    );
    let (head, body) = split(&r);
    assert!(head.starts_with("HTTP/1.1 200"), "{r}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/x-apple-aspen-config"),
        "{head}"
    );
    assert!(
        lower.contains("filename=\"example.org.mobileconfig\""),
        "{head}"
    );
    let path = s.data_dir().join("joe.mobileconfig");
    std::fs::write(&path, body).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import plistlib,sys\n\
             p=plistlib.load(open(sys.argv[1],'rb'))\n\
             assert p['PayloadType']=='Configuration', p\n\
             m=p['PayloadContent'][0]\n\
             assert m['PayloadType']=='com.apple.mail.managed'\n\
             print(m['EmailAccountType'], m['EmailAddress'], m['IncomingMailServerHostName'], m['IncomingMailServerPortNumber'], m['IncomingMailServerUseSSL'], m['OutgoingMailServerPortNumber'], m['OutgoingMailServerUseSSL'], m['IncomingMailServerUsername'], p['PayloadUUID']!=m['PayloadUUID'])",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "EmailTypeIMAP joe@example.org mx.test {} True {} True joe@example.org True",
            s.addr("imaps").port(),
            s.addr("submissions").port()
        )
    );
    let r = http(s.addr("http"), "GET", "/mobileconfig", "", "");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}
