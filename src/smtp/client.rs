//! The outbound SMTP client: one connection to a remote MTA or smarthost
//! (RFC 5321 §3, §4), with STARTTLS (RFC 3207), implicit TLS and AUTH PLAIN.
//! Reply parsing is sans-IO ([`super::proto::parse_reply`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::proto::{parse_reply, Reply};

/// Largest reply accepted from a server (a long EHLO list fits easily).
const MAX_REPLY: usize = 64 * 1024;

enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

pub struct SmtpClient {
    stream: ClientStream,
    buf: Vec<u8>,
    timeout: Duration,
    /// The EHLO reply, once sent.
    pub ehlo: Option<Reply>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the server")
}

impl SmtpClient {
    /// Connects and reads the greeting. With `implicit_tls` the TLS
    /// handshake comes first.
    pub async fn connect(
        addr: SocketAddr,
        connect_timeout: Duration,
        timeout: Duration,
        implicit_tls: Option<(&str, Option<Arc<rustls::ClientConfig>>)>,
    ) -> io::Result<(SmtpClient, Reply)> {
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out())??;
        let _ = tcp.set_nodelay(true);
        let mut c = SmtpClient {
            stream: ClientStream::Plain(tcp),
            buf: Vec::with_capacity(1024),
            timeout,
            ehlo: None,
        };
        // Implicit TLS (RFC 8314): checked under `config` when given,
        // otherwise opportunistic.
        if let Some((name, config)) = implicit_tls {
            let config = config.unwrap_or_else(opportunistic_config);
            c.handshake_with(name, config).await?;
        }
        let greeting = c.read_reply().await?;
        Ok((c, greeting))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, ClientStream::Tls(_))
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let fut = async {
            match &mut self.stream {
                ClientStream::Plain(s) => s.write_all(data).await,
                ClientStream::Tls(s) => {
                    s.write_all(data).await?;
                    s.flush().await
                }
                ClientStream::Gone => Err(io::ErrorKind::NotConnected.into()),
            }
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| timed_out())?
    }

    pub async fn read_reply(&mut self) -> io::Result<Reply> {
        loop {
            match parse_reply(&self.buf, MAX_REPLY) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(why) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
            }
            let mut chunk = [0u8; 4096];
            let fut = async {
                match &mut self.stream {
                    ClientStream::Plain(s) => s.read(&mut chunk).await,
                    ClientStream::Tls(s) => s.read(&mut chunk).await,
                    ClientStream::Gone => Err(io::ErrorKind::NotConnected.into()),
                }
            };
            let n = tokio::time::timeout(self.timeout, fut)
                .await
                .map_err(|_| timed_out())??;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> io::Result<Reply> {
        let mut out = String::with_capacity(line.len() + 2);
        out.push_str(line);
        out.push_str("\r\n");
        self.write_all(out.as_bytes()).await?;
        self.read_reply().await
    }

    /// EHLO, falling back to HELO when the server refuses EHLO.
    pub async fn hello(&mut self, name: &str) -> io::Result<Reply> {
        let r = self.command(&format!("EHLO {name}")).await?;
        if r.is_positive() {
            self.ehlo = Some(r.clone());
            return Ok(r);
        }
        self.ehlo = None;
        self.command(&format!("HELO {name}")).await
    }

    pub fn offers(&self, keyword: &str) -> bool {
        self.ehlo.as_ref().is_some_and(|r| r.has_keyword(keyword))
    }

    /// STARTTLS and the handshake; the caller sends EHLO again (RFC 3207
    /// §4.2). With `checked` the certificate must be valid for
    /// `server_name` under that configuration; otherwise any certificate is
    /// taken (opportunistic TLS).
    pub async fn starttls(
        &mut self,
        server_name: &str,
        checked: Option<Arc<rustls::ClientConfig>>,
    ) -> io::Result<Reply> {
        let r = self.command("STARTTLS").await?;
        if r.code != 220 {
            return Ok(r);
        }
        self.buf.clear();
        self.handshake_with(server_name, checked.unwrap_or_else(opportunistic_config))
            .await?;
        self.ehlo = None;
        Ok(r)
    }

    async fn handshake_with(
        &mut self,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> io::Result<()> {
        let ClientStream::Plain(tcp) = std::mem::replace(&mut self.stream, ClientStream::Gone)
        else {
            return Err(io::Error::other("TLS is already active"));
        };
        let name = ServerName::try_from(server_name.to_string())
            .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("valid name"));
        let connector = TlsConnector::from(config);
        let tls = tokio::time::timeout(self.timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| timed_out())??;
        self.stream = ClientStream::Tls(Box::new(tls));
        Ok(())
    }

    /// AUTH PLAIN with an initial response (RFC 4954, RFC 4616).
    pub async fn auth_plain(&mut self, user: &str, secret: &str) -> io::Result<Reply> {
        let mut raw = Vec::with_capacity(user.len() + secret.len() + 2);
        raw.push(0);
        raw.extend_from_slice(user.as_bytes());
        raw.push(0);
        raw.extend_from_slice(secret.as_bytes());
        let b64 = crate::directory::sasl::b64_encode(&raw);
        self.command(&format!("AUTH PLAIN {b64}")).await
    }

    /// DATA: the message, dot-stuffed, then the final reply (or the
    /// refusal of DATA itself).
    pub async fn data(&mut self, message: &[u8]) -> io::Result<Reply> {
        let r = self.command("DATA").await?;
        if r.code != 354 {
            return Ok(r);
        }
        let stuffed = dot_stuff(message);
        self.write_all(&stuffed).await?;
        self.read_reply().await
    }

    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT")).await;
    }
}

/// RFC 5321 §4.5.2: a line that starts with "." gets one more; the data
/// ends with CRLF "." CRLF. Bare LF line ends are sent as CRLF.
pub fn dot_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 64 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in msg {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Opportunistic TLS (RFC 7435): encrypt, but accept any certificate, as
/// an MTA without MTA-STS or DANE policy does.
fn opportunistic_config() -> Arc<rustls::ClientConfig> {
    static CFG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CFG.get_or_init(|| config_checking_with(Box::new(|_, _, _, _, _| Ok(()))))
        .clone()
}

/// How a server certificate is judged: end entity, the rest of the chain
/// the server sent, the name asked for, OCSP response, time.
pub type CertCheck = dyn Fn(
        &CertificateDer<'_>,
        &[CertificateDer<'_>],
        &ServerName<'_>,
        &[u8],
        UnixTime,
    ) -> Result<(), rustls::Error>
    + Send
    + Sync;

/// A client configuration whose certificate check is `check` (the
/// handshake signatures are always verified: the peer must hold the key
/// of the certificate it shows).
pub fn config_checking_with(check: Box<CertCheck>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = CustomCheck {
        check,
        provider: provider.clone(),
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Arc::new(cfg)
}

struct CustomCheck {
    check: Box<CertCheck>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for CustomCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomCheck")
    }
}

impl ServerCertVerifier for CustomCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        (self.check)(end_entity, intermediates, server_name, ocsp, now)
            .map(|_| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::dot_stuff;
    use crate::smtp::data::{DataOutcome, DataReceiver};
    use proptest::prelude::*;

    proptest! {
        /// What the client sends, the server's DATA receiver gives back:
        /// dot-stuffing and its removal are inverse for CRLF text.
        #[test]
        fn stuffing_round_trips_through_the_receiver(
            lines in proptest::collection::vec("[.a-z ]{0,12}", 0..12)
        ) {
            let mut msg = String::new();
            for l in &lines {
                msg.push_str(l);
                msg.push_str("\r\n");
            }
            let wire = dot_stuff(msg.as_bytes());
            let mut rx = DataReceiver::new(1 << 20);
            let out = rx.feed(&wire);
            prop_assert_eq!(out, DataOutcome::Done { consumed: wire.len() });
            let expect = if msg.is_empty() { b"\r\n".to_vec() } else { msg.clone().into_bytes() };
            prop_assert_eq!(rx.into_message(), expect);
        }
    }

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\n.\nb"), b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n.\r\n");
    }
}
