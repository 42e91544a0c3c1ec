//! Client autoconfiguration: what a mail client asks to set up an
//! account from an address alone.
//!
//! - Thunderbird: `/.well-known/autoconfig/mail/config-v1.1.xml` and
//!   `/mail/config-v1.1.xml` (on `autoconfig.<domain>`), the
//!   `clientConfig` 1.1 format;
//! - Outlook: POST `/autodiscover/autodiscover.xml` (on
//!   `autodiscover.<domain>`), the POX "outlook" response schema;
//! - Apple: `/mobileconfig?emailaddress=` (a configuration profile);
//! - RFC 6186 SRV records are in the DNS advice (`dns` module).
//!
//! Every answer is built from the listeners actually bound and the
//! configured `hostname`, for domains this server hosts; the account
//! itself is not looked up, so the answers tell nothing about which
//! addresses exist.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::core::{Core, Endpoints};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
        .route("/mobileconfig", get(mobileconfig))
}

/// Text for an XML element or attribute.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Thunderbird's `clientConfig` (version 1.1): implicit TLS first (RFC
/// 8314 prefers it), then STARTTLS; the login is the whole address.
pub fn thunderbird_xml(domain: &str, e: &Endpoints) -> String {
    let host = esc(&e.host);
    let d = esc(domain);
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{d} mail</displayName>\n    <displayShortName>{d}</displayShortName>\n"
    );
    let server = |tag: &str, kind: &str, port: Option<u16>, socket: &str| {
        match port {
        Some(p) => format!(
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{p}</port>\n      <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      <username>%EMAILADDRESS%</username>\n    </{tag}>\n"
        ),
        None => String::new(),
    }
    };
    x.push_str(&server("incomingServer", "imap", e.imaps, "SSL"));
    x.push_str(&server("incomingServer", "imap", e.imap, "STARTTLS"));
    x.push_str(&server("incomingServer", "pop3", e.pop3s, "SSL"));
    x.push_str(&server("incomingServer", "pop3", e.pop3, "STARTTLS"));
    x.push_str(&server("outgoingServer", "smtp", e.submissions, "SSL"));
    x.push_str(&server("outgoingServer", "smtp", e.submission, "STARTTLS"));
    x.push_str("  </emailProvider>\n</clientConfig>\n");
    x
}

/// The one incoming service a single-choice format names: (IMAP rather
/// than POP3, port, implicit TLS), implicit TLS first (RFC 8314).
fn incoming(e: &Endpoints) -> Option<(bool, u16, bool)> {
    match (e.imaps, e.imap, e.pop3s, e.pop3) {
        (Some(p), ..) => Some((true, p, true)),
        (None, Some(p), ..) => Some((true, p, false)),
        (None, None, Some(p), _) => Some((false, p, true)),
        (None, None, None, Some(p)) => Some((false, p, false)),
        _ => None,
    }
}

/// The submission service: (port, implicit TLS), 465 before 587.
fn outgoing(e: &Endpoints) -> Option<(u16, bool)> {
    match (e.submissions, e.submission) {
        (Some(p), _) => Some((p, true)),
        (None, Some(p)) => Some((p, false)),
        _ => None,
    }
}

/// Outlook's POX Autodiscover answer ("outlook" response schema 2006a).
pub fn autodiscover_xml(email: &str, e: &Endpoints) -> String {
    let host = esc(&e.host);
    let login = esc(email);
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    let proto = |kind: &str, port: u16, tls: bool| {
        let ssl = if tls { "on" } else { "off" };
        let encryption = if tls { "SSL" } else { "TLS" };
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        <Port>{port}</Port>\n        <LoginName>{login}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        <SSL>{ssl}</SSL>\n        <Encryption>{encryption}</Encryption>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n"
        )
    };
    if let Some((imap, port, tls)) = incoming(e) {
        x.push_str(&proto(if imap { "IMAP" } else { "POP3" }, port, tls));
    }
    if let Some((port, tls)) = outgoing(e) {
        x.push_str(&proto("SMTP", port, tls));
    }
    x.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    x
}

/// A UUID-shaped identifier derived from `parts` (a profile installed
/// twice replaces itself instead of adding a second account).
fn stable_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let b = h.finalize();
    let hex = hex::encode_upper(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An Apple configuration profile (property list) with one mail account.
/// Unsigned: devices show it as "not verified".
pub fn mobileconfig_plist(email: &str, e: &Endpoints) -> String {
    let (imap, in_port, in_ssl) = incoming(e).unwrap_or((true, 993, true));
    let in_kind = if imap {
        "EmailTypeIMAP"
    } else {
        "EmailTypePOP"
    };
    let (out_port, out_ssl) = outgoing(e).unwrap_or((465, true));
    let b = |v: bool| if v { "<true/>" } else { "<false/>" };
    let host = esc(&e.host);
    let addr = esc(email);
    let reverse: String = e.host.split('.').rev().collect::<Vec<_>>().join(".");
    let id = esc(&reverse);
    let account_uuid = stable_uuid(&[&e.host, email, "account"]);
    let profile_uuid = stable_uuid(&[&e.host, email, "profile"]);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key>
      <string>{addr}</string>
      <key>EmailAccountType</key>
      <string>{in_kind}</string>
      <key>EmailAddress</key>
      <string>{addr}</string>
      <key>IncomingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key>
      <string>{host}</string>
      <key>IncomingMailServerPortNumber</key>
      <integer>{in_port}</integer>
      <key>IncomingMailServerUseSSL</key>
      {in_ssl}
      <key>IncomingMailServerUsername</key>
      <string>{addr}</string>
      <key>OutgoingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key>
      <string>{host}</string>
      <key>OutgoingMailServerPortNumber</key>
      <integer>{out_port}</integer>
      <key>OutgoingMailServerUseSSL</key>
      {out_ssl}
      <key>OutgoingMailServerUsername</key>
      <string>{addr}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key>
      <true/>
      <key>PayloadDisplayName</key>
      <string>{addr}</string>
      <key>PayloadIdentifier</key>
      <string>{id}.mail.{account_uuid}</string>
      <key>PayloadType</key>
      <string>com.apple.mail.managed</string>
      <key>PayloadUUID</key>
      <string>{account_uuid}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key>
  <string>Mail: {addr}</string>
  <key>PayloadIdentifier</key>
  <string>{id}.profile.{profile_uuid}</string>
  <key>PayloadRemovalDisallowed</key>
  <false/>
  <key>PayloadType</key>
  <string>Configuration</string>
  <key>PayloadUUID</key>
  <string>{profile_uuid}</string>
  <key>PayloadVersion</key>
  <integer>1</integer>
</dict>
</plist>
"#,
        in_ssl = b(in_ssl),
        out_ssl = b(out_ssl),
    )
}

/// Requests larger than this are refused before parsing.
pub const MAX_REQUEST: usize = 16 * 1024;

/// The address in an Autodiscover request: the text of its
/// `EMailAddress` element, in any namespace. None for anything else
/// (not XML, no such element, a DTD, too large).
pub fn autodiscover_request(body: &[u8]) -> Option<String> {
    if body.len() > MAX_REQUEST {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    // roxmltree refuses DTDs unless allowed: no entity expansion.
    let doc = roxmltree::Document::parse(text).ok()?;
    let address = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "EMailAddress")?
        .text()?
        .trim()
        .to_string();
    valid_address(&address).then_some(address)
}

/// A plausible mail address: one `@`, something on each side, no
/// whitespace or control characters, not absurdly long.
fn valid_address(a: &str) -> bool {
    a.len() <= 254
        && !a.chars().any(|c| c.is_whitespace() || c.is_control())
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
}

fn not_found(what: &str) -> Response {
    ApiError(StatusCode::NOT_FOUND, what.to_string()).into_response()
}

fn xml(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The hosted domain an address belongs to, or a 404 saying why not.
async fn hosted(core: &Core, domain: &str) -> Result<String, Response> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    match core.directory.is_local_domain(&domain).await {
        Ok(true) => Ok(domain),
        Ok(false) => Err(not_found(&format!(
            "{domain} is not a domain of this server"
        ))),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

#[derive(Deserialize)]
struct AddressQuery {
    emailaddress: Option<String>,
}

async fn thunderbird(
    State(st): State<AppState>,
    Query(q): Query<AddressQuery>,
    headers: HeaderMap,
) -> Response {
    // The domain: from the address, else from the host name asked for
    // (autoconfig.<domain> or <domain> itself).
    let from_address = q
        .emailaddress
        .as_deref()
        .filter(|a| valid_address(a))
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_string());
    let from_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
        .map(|h| h.strip_prefix("autoconfig.").unwrap_or(h).to_string());
    let Some(domain) = from_address.or(from_host) else {
        return not_found("give the address: ?emailaddress=user@domain");
    };
    match hosted(&st.core, &domain).await {
        Ok(d) => {
            tracing::info!(domain = %d, "autoconfig: Thunderbird configuration served");
            xml(
                "text/xml; charset=utf-8",
                thunderbird_xml(&d, &Endpoints::of(&st.core)),
            )
        }
        Err(r) => r,
    }
}

async fn autodiscover(State(st): State<AppState>, body: Bytes) -> Response {
    let Some(email) = autodiscover_request(&body) else {
        return ApiError(
            StatusCode::BAD_REQUEST,
            "not an Autodiscover request: POST XML with an EMailAddress element".into(),
        )
        .into_response();
    };
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if let Err(r) = hosted(&st.core, domain).await {
        return r;
    }
    tracing::info!(%email, "autoconfig: Autodiscover answer served");
    xml(
        "application/xml; charset=utf-8",
        autodiscover_xml(&email, &Endpoints::of(&st.core)),
    )
}

async fn mobileconfig(State(st): State<AppState>, Query(q): Query<AddressQuery>) -> Response {
    let Some(email) = q.emailaddress.filter(|a| valid_address(a)) else {
        return not_found("give the address: /mobileconfig?emailaddress=user@domain");
    };
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let domain = match hosted(&st.core, domain).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    tracing::info!(%email, "autoconfig: Apple profile served");
    let mut r = xml(
        "application/x-apple-aspen-config",
        mobileconfig_plist(&email, &Endpoints::of(&st.core)),
    );
    if let Ok(v) = format!("attachment; filename=\"{domain}.mobileconfig\"").parse() {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn endpoints() -> Endpoints {
        Endpoints {
            host: "mail.example.org".into(),
            imaps: Some(993),
            imap: Some(143),
            pop3s: None,
            pop3: None,
            submissions: Some(465),
            submission: Some(587),
        }
    }

    #[test]
    fn thunderbird_lists_implicit_tls_first_and_skips_missing() {
        let x = thunderbird_xml("example.org", &endpoints());
        let doc = roxmltree::Document::parse(&x).unwrap();
        let incoming: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("incomingServer"))
            .collect();
        assert_eq!(incoming.len(), 2, "no POP3 listener, no POP3 entry");
        let port = |n: &roxmltree::Node| {
            n.children()
                .find(|c| c.has_tag_name("port"))
                .and_then(|c| c.text())
                .unwrap()
                .to_string()
        };
        assert_eq!(port(&incoming[0]), "993");
        assert_eq!(port(&incoming[1]), "143");
    }

    #[test]
    fn autodiscover_request_reads_the_address_only() {
        let req = r#"<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>joe@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert_eq!(
            autodiscover_request(req.as_bytes()).as_deref(),
            Some("joe@example.org")
        );
        // Entity tricks are refused, not expanded.
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "joe@example.org">]><a><EMailAddress>&x;</EMailAddress></a>"#;
        assert_eq!(autodiscover_request(bomb.as_bytes()), None);
        assert_eq!(
            autodiscover_request(b"<a><EMailAddress>no at</EMailAddress></a>"),
            None
        );
        assert_eq!(autodiscover_request(b"not xml"), None);
    }

    #[test]
    fn values_are_escaped() {
        let mut e = endpoints();
        e.host = "a<b&c".into();
        let x = autodiscover_xml("x\"y@example.org", &e);
        assert!(roxmltree::Document::parse(&x).is_ok(), "{x}");
        assert!(x.contains("a&lt;b&amp;c"));
    }

    proptest! {
        /// Whatever the bytes, the parser answers (no panic) and anything it
        /// returns is a plausible address.
        #[test]
        fn autodiscover_request_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(a) = autodiscover_request(&body) {
                prop_assert!(valid_address(&a));
            }
        }

        /// An address wrapped in a request comes back unchanged.
        #[test]
        fn autodiscover_request_round_trips(local in "[a-z0-9._+-]{1,20}", domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}") {
            let a = format!("{local}@{domain}");
            let req = format!("<Autodiscover><Request><EMailAddress>{a}</EMailAddress></Request></Autodiscover>");
            prop_assert_eq!(autodiscover_request(req.as_bytes()), Some(a));
        }

        /// Generated documents are well-formed XML whatever the host name.
        #[test]
        fn answers_are_well_formed(host in "\\PC{1,40}", local in "[a-z]{1,10}") {
            let mut e = endpoints();
            e.host = host;
            let email = format!("{local}@example.org");
            for x in [thunderbird_xml("example.org", &e), autodiscover_xml(&email, &e)] {
                prop_assert!(roxmltree::Document::parse(&x).is_ok(), "{}", x);
            }
            // The plist has a DOCTYPE: parse it allowing one.
            let p = mobileconfig_plist(&email, &e);
            let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
            prop_assert!(roxmltree::Document::parse_with_options(&p, opts).is_ok(), "{}", p);
        }
    }
}
