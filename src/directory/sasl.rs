//! SASL mechanisms shared by SMTP, IMAP and POP3: PLAIN (RFC 4616), LOGIN
//! and SCRAM-SHA-256 (RFC 7677). [`authenticate`] runs one exchange; the
//! protocol supplies how a challenge is sent and a response read
//! ([`SaslIo`]), so the mechanisms are written once.

use base64::Engine;

use std::net::IpAddr;

use super::ratelimit::Gate;
use super::scram::{ScramError, ScramSecret, ScramServer};
use super::{Account, Directory, Login};

/// Mechanisms offered, in order of preference for the EHLO/CAPABILITY list.
pub const MECHANISMS: &[&str] = &["SCRAM-SHA-256", "PLAIN", "LOGIN"];

/// A client response to a challenge.
pub enum Response {
    Data(Vec<u8>),
    /// The client sent "*" (RFC 4954 §4, RFC 9051 §6.2.2).
    Cancel,
    /// Not valid base64.
    BadEncoding,
}

/// The protocol side of an exchange.
pub trait SaslIo {
    /// Sends `data` as a challenge (the protocol base64-encodes it) and
    /// reads the answer; `None` when the connection is gone.
    fn challenge(&mut self, data: &[u8]) -> impl std::future::Future<Output = Option<Response>>;
}

#[derive(Debug)]
pub enum SaslOutcome {
    Success(Account),
    /// Wrong credentials (the throttle has counted them).
    Failed,
    /// The login throttle refused the attempt before any password was
    /// checked: answer with a temporary error that does not depend on the
    /// password.
    Throttled,
    Cancelled,
    /// The client broke the mechanism's syntax.
    Malformed(&'static str),
    Unsupported,
    /// The directory could not be read: a temporary failure.
    Unavailable,
    /// Right credentials, but the password is a well-known one (RFC 9051
    /// §11.7): refused, with a request to have it changed.
    Blocked,
    Closed,
}

/// Checks a user name and password from `ip` (LOGIN, USER/PASS, HTTP
/// Basic and the PLAIN and LOGIN mechanisms).
pub async fn check_password(dir: &Directory, ip: IpAddr, user: &str, pass: &str) -> SaslOutcome {
    match dir.login(ip, user, pass).await {
        Ok(Login::Ok(a)) => SaslOutcome::Success(a),
        Ok(Login::Failed) => SaslOutcome::Failed,
        Ok(Login::Throttled) => SaslOutcome::Throttled,
        Ok(Login::Blocked(_)) => SaslOutcome::Blocked,
        Err(e) => {
            tracing::warn!("login: directory unavailable: {e}");
            SaslOutcome::Unavailable
        }
    }
}

/// Runs one authentication exchange for a client at `ip`. `initial` is
/// the initial response (SASL-IR / SMTP AUTH argument) already decoded;
/// `Some(vec![])` is the empty initial response ("=").
pub async fn authenticate<I: SaslIo>(
    dir: &Directory,
    ip: IpAddr,
    io: &mut I,
    mechanism: &str,
    initial: Option<Vec<u8>>,
) -> SaslOutcome {
    let mech = mechanism.to_ascii_uppercase();
    let check =
        |user: String, pass: String| async move { check_password(dir, ip, &user, &pass).await };
    match mech.as_str() {
        "PLAIN" => match first(io, initial).await {
            None => SaslOutcome::Closed,
            Some(Response::Cancel) => SaslOutcome::Cancelled,
            Some(Response::BadEncoding) => SaslOutcome::Malformed("invalid base64"),
            Some(Response::Data(d)) => match decode_plain(&d) {
                Some((u, p)) => check(u, p).await,
                None => SaslOutcome::Malformed("invalid PLAIN response"),
            },
        },
        "LOGIN" => {
            // draft-murchison-sasl-login: "Username:" then "Password:".
            let mut answers = Vec::with_capacity(2);
            let mut initial = initial.filter(|v| !v.is_empty());
            for prompt in [&b"Username:"[..], b"Password:"] {
                let r = match initial.take() {
                    Some(v) => Some(Response::Data(v)),
                    None => io.challenge(prompt).await,
                };
                match r {
                    None => return SaslOutcome::Closed,
                    Some(Response::Cancel) => return SaslOutcome::Cancelled,
                    Some(Response::BadEncoding) => return SaslOutcome::Malformed("invalid base64"),
                    Some(Response::Data(d)) => match String::from_utf8(d) {
                        Ok(s) => answers.push(s),
                        Err(_) => return SaslOutcome::Malformed("not UTF-8"),
                    },
                }
            }
            let pass = answers.pop().unwrap_or_default();
            let user = answers.pop().unwrap_or_default();
            check(user, pass).await
        }
        "SCRAM-SHA-256" => {
            let r = first(io, initial).await;
            scram(dir, ip, io, r).await
        }
        _ => SaslOutcome::Unsupported,
    }
}

/// The first client message: the initial response, or the answer to an
/// empty challenge.
async fn first<I: SaslIo>(io: &mut I, initial: Option<Vec<u8>>) -> Option<Response> {
    match initial {
        Some(v) => Some(Response::Data(v)),
        None => io.challenge(b"").await,
    }
}

async fn scram<I: SaslIo>(
    dir: &Directory,
    ip: IpAddr,
    io: &mut I,
    first: Option<Response>,
) -> SaslOutcome {
    let client_first = match first {
        None => return SaslOutcome::Closed,
        Some(Response::Cancel) => return SaslOutcome::Cancelled,
        Some(Response::BadEncoding) => return SaslOutcome::Malformed("invalid base64"),
        Some(Response::Data(d)) => d,
    };
    let (mut srv, user) = match ScramServer::client_first(&client_first) {
        Ok(x) => x,
        Err(ScramError::Failed) => return SaslOutcome::Failed,
        Err(ScramError::ChannelBinding) => {
            return SaslOutcome::Malformed("channel binding is not supported")
        }
        Err(ScramError::Malformed(why)) => return SaslOutcome::Malformed(why),
    };
    let account = match dir.get_account(&user).await {
        Ok(a) => a,
        Err(_) => return SaslOutcome::Unavailable,
    };
    // The throttle decides on the login alone, before the proof.
    let (gate, key) = dir.login_gate(ip, account.as_ref(), &user);
    if gate == Gate::Throttled {
        tracing::info!(%ip, login = ?key, "login throttled");
        metrics::counter!("petrel_logins_total", "result" => "throttled").increment(1);
        return SaslOutcome::Throttled;
    }
    let account = account.filter(|a| a.enabled);
    let secret = account
        .as_ref()
        .and_then(|a| a.scram_sha256.as_deref())
        .and_then(ScramSecret::decode);
    let server_first = srv.server_first(secret);
    let client_final = match io.challenge(server_first.as_bytes()).await {
        None => return SaslOutcome::Closed,
        Some(Response::Cancel) => return SaslOutcome::Cancelled,
        Some(Response::BadEncoding) => return SaslOutcome::Malformed("invalid base64"),
        Some(Response::Data(d)) => d,
    };
    match srv.client_final(&client_final) {
        Ok(server_final) => {
            // RFC 4954 §4 / RFC 9051 §6.2.2: the server's final data goes
            // in one more challenge, answered by an empty response.
            match io.challenge(server_final.as_bytes()).await {
                None => SaslOutcome::Closed,
                Some(Response::Cancel) => SaslOutcome::Cancelled,
                Some(_) => match account {
                    Some(a) => {
                        dir.record_login(ip, &key, true);
                        if dir.well_known_blocked(&a, None).await {
                            tracing::warn!(%ip, login = %a.address, "login refused: the password is a well-known one (passwords.block-well-known)");
                            return SaslOutcome::Blocked;
                        }
                        SaslOutcome::Success(a)
                    }
                    None => {
                        dir.record_login(ip, &key, false);
                        SaslOutcome::Failed
                    }
                },
            }
        }
        Err(ScramError::Malformed(why)) => SaslOutcome::Malformed(why),
        Err(_) => {
            dir.record_login(ip, &key, false);
            SaslOutcome::Failed
        }
    }
}

/// Decodes a client line: "*" cancels, otherwise base64 ("=" alone is an
/// empty response, as some clients send for an empty initial response).
pub fn decode_response(line: &[u8]) -> Response {
    let line = line.trim_ascii();
    if line == b"*" {
        return Response::Cancel;
    }
    if line == b"=" {
        return Response::Data(Vec::new());
    }
    match std::str::from_utf8(line).ok().and_then(b64_decode) {
        Some(d) => Response::Data(d),
        None => Response::BadEncoding,
    }
}

pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim().as_bytes())
        .ok()
}

pub fn b64_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decodes a PLAIN response `authzid NUL authcid NUL passwd` (RFC 4616 §2).
/// An authorization identity other than the login itself is refused.
pub fn decode_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let authz = parts.next()?;
    let authc = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    // RFC 4616 §2 and RFC 5804 §2.1: the identities are SASLprep'd
    // (RFC 4013); one that prepares to nothing, or cannot be prepared,
    // fails.
    let prep = |b: &[u8]| -> Option<String> {
        let s = std::str::from_utf8(b).ok()?;
        let p = stringprep::saslprep(s).ok()?.into_owned();
        (!p.is_empty()).then_some(p)
    };
    let authc = prep(authc)?;
    let pass = String::from_utf8(pass.to_vec()).ok()?;
    if !authz.is_empty() && !prep(authz)?.eq_ignore_ascii_case(&authc) {
        return None;
    }
    Some((authc, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identities_are_saslprepped() {
        // U+00AD (soft hyphen) maps to nothing; U+2003 (em space) to a space.
        assert_eq!(
            decode_plain("\0jo\u{ad}e@x.org\0pw".as_bytes()),
            Some(("joe@x.org".into(), "pw".into()))
        );
        // An authorization identity that prepares to nothing fails.
        assert_eq!(decode_plain("\u{ad}\0joe@x.org\0pw".as_bytes()), None);
        assert_eq!(decode_plain("\0\u{ad}\0pw".as_bytes()), None);
        // A prohibited character (a control) cannot be prepared.
        assert_eq!(decode_plain(b"\0jo\x07e\0pw"), None);
    }

    #[test]
    fn plain() {
        assert_eq!(
            decode_plain(b"\0joe@x.org\0pw"),
            Some(("joe@x.org".into(), "pw".into()))
        );
        assert_eq!(
            decode_plain(b"joe@x.org\0joe@x.org\0pw"),
            Some(("joe@x.org".into(), "pw".into()))
        );
        assert_eq!(decode_plain(b"other\0joe@x.org\0pw"), None);
        assert_eq!(decode_plain(b"\0\0pw"), None);
        assert_eq!(decode_plain(b"only"), None);
    }
}
