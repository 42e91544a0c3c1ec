//! Connections: a stream that is plain or TLS (and can be upgraded by
//! STARTTLS), line framing with a length limit, TLS set-up, and the shutdown
//! signal that sessions watch.

pub mod budget;
pub mod http_client;
pub mod limit;
pub mod proxy;
pub mod tls;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A unix socket (the LMTP socket listener).
    Unix(tokio::net::UnixStream),
    /// Transitional value while a STARTTLS handshake owns the socket.
    Gone,
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The TLS version and the cipher suite's registered name, e.g.
    /// `("TLSv1.3", "TLS_AES_256_GCM_SHA384")`, for Received clauses and
    /// logs (RFC 8314 §4.3, §4).
    pub fn tls_info(&self) -> Option<(String, String)> {
        let Stream::Tls(s) = self else {
            return None;
        };
        let c = s.get_ref().1;
        let version = c
            .protocol_version()
            .and_then(|v| v.as_str())
            .map(|v| v.replace('_', "."))
            .unwrap_or_else(|| "TLS".into());
        let suite = c
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .map(|s| s.replacen("TLS13_", "TLS_", 1))
            .unwrap_or_else(|| "unknown".into());
        Some((version, suite))
    }

    /// Logs a finished handshake: who, on which listener, with what.
    pub fn log_tls(&self, peer: std::net::SocketAddr, listener: &str) {
        if let Some((version, suite)) = self.tls_info() {
            tracing::info!(client = %peer.ip(), listener, %version, %suite, "TLS handshake");
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// What reading a line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line without its terminating LF (and CR, if present).
    Line(Vec<u8>),
    /// The line exceeded the limit; it was read and discarded up to its end.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// A buffered connection.
pub struct Conn {
    pub stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    /// COMPRESS=DEFLATE (RFC 4978) once turned on.
    deflate: Option<Box<Deflate>>,
}

/// Raw DEFLATE (RFC 1951) both ways, each write ending with a sync flush.
struct Deflate {
    comp: flate2::Compress,
    decomp: flate2::Decompress,
    /// Compressed bytes not yet inflated (kept to bound one fill).
    pending: Vec<u8>,
}

/// Inflated bytes one fill may add: a small compressed input must not
/// grow the buffer without bound.
const INFLATE_STEP: usize = 1 << 20;

impl Deflate {
    fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            out.reserve(4096);
            let before = self.comp.total_in();
            self.comp
                .compress_vec(input, &mut out, flate2::FlushCompress::Sync)
                .map_err(io::Error::other)?;
            input = &input[(self.comp.total_in() - before) as usize..];
            // Done once all input is in and the flush fitted.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// Inflates pending input into `out`, at most about INFLATE_STEP.
    fn inflate(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        while !self.pending.is_empty() && out.len() - start < INFLATE_STEP {
            out.reserve(8192);
            let (before_in, before_out) = (self.decomp.total_in(), out.len());
            self.decomp
                .decompress_vec(&self.pending, out, flate2::FlushDecompress::Sync)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = (self.decomp.total_in() - before_in) as usize;
            self.pending.drain(..used);
            if used == 0 && out.len() == before_out {
                break; // needs more input
            }
        }
        Ok(out.len() - start)
    }
}

impl Conn {
    pub fn new(stream: Stream) -> Self {
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
            pos: 0,
            deflate: None,
        }
    }

    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Puts bytes back in front of the buffer (they will be read next).
    pub fn unread(&mut self, mut data: Vec<u8>) {
        data.extend_from_slice(self.buffered());
        self.buf = data;
        self.pos = 0;
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos * 2 > self.buf.capacity() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if let Some(d) = self.deflate.as_mut() {
            // Inflate what is pending; read more compressed bytes until
            // something comes out (0 means the end of the stream).
            loop {
                let n = d.inflate(&mut self.buf)?;
                if n > 0 {
                    return Ok(n);
                }
                d.pending.reserve(8192);
                if self.stream.read_buf(&mut d.pending).await? == 0 {
                    return Ok(0);
                }
            }
        }
        // Straight into the buffer's spare room: a read buffer kept in the
        // future across the await would cost every idle connection 16 KB.
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(8192);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        let mut discarding = false;
        loop {
            if let Some(i) = self.buffered().iter().position(|&b| b == b'\n') {
                if discarding || i > max + 1 {
                    self.consume(i + 1);
                    return Ok(Line::TooLong);
                }
                let mut line = self.buffered()[..i].to_vec();
                self.consume(i + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Line(line));
            }
            if self.buffered().len() > max + 1 {
                // Drop what we have and keep reading until the line ends.
                discarding = true;
                let n = self.buffered().len();
                self.consume(n);
            }
            if self.fill().await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Reads a line with a timeout; a timeout reads as end of stream.
    pub async fn read_line_timeout(&mut self, max: usize, t: Duration) -> io::Result<Line> {
        match tokio::time::timeout(t, self.read_line(max)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timeout")),
        }
    }

    /// Writes `out` and empties it, keeping its allocation for the next
    /// replies.
    pub async fn write_out(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let r = self.write(out).await;
        out.clear();
        r
    }

    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self.deflate.as_mut() {
            Some(d) => {
                let out = d.compress(data)?;
                self.stream.write_all(&out).await?;
            }
            None => self.stream.write_all(data).await?,
        }
        self.stream.flush().await
    }

    /// Turns on COMPRESS=DEFLATE (RFC 4978) from the next byte on, both
    /// ways. Bytes already buffered were sent uncompressed before the
    /// client saw the OK, which it must wait for: they are dropped.
    pub fn start_deflate(&mut self) -> bool {
        if self.deflate.is_some() {
            return false;
        }
        self.buf.clear();
        self.pos = 0;
        self.deflate = Some(Box::new(Deflate {
            comp: flate2::Compress::new(flate2::Compression::default(), false),
            decomp: flate2::Decompress::new(false),
            pending: Vec::new(),
        }));
        true
    }

    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Ends the connection: over TLS a close_notify alert goes out before
    /// TCP closes (RFC 8314 §3.4), so the client can tell a clean end from
    /// a cut one. Bounded, so a client that stopped reading cannot hold it.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stream.shutdown()).await;
    }

    /// Replaces a plain stream with TLS. Bytes the client sent before the
    /// handshake are discarded (RFC 3207 §4.2: no command injection).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        self.buf.clear();
        self.pos = 0;
        match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(tcp) => {
                let peer = tcp.peer_addr();
                let tls = acceptor.accept(tcp).await?;
                self.stream = Stream::Tls(Box::new(tls));
                if let Ok(peer) = peer {
                    self.stream.log_tls(peer, "starttls");
                }
                Ok(())
            }
            other => {
                self.stream = other;
                Err(io::Error::other("TLS is already active"))
            }
        }
    }
}

/// Tells sessions the server is stopping, and lets the server wait for them.
#[derive(Clone)]
pub struct Shutdown {
    rx: tokio::sync::watch::Receiver<bool>,
    /// Dropped by each session when it ends; the server waits for all.
    _guard: Option<tokio::sync::mpsc::Sender<()>>,
}

pub struct ShutdownController {
    tx: tokio::sync::watch::Sender<bool>,
    done_tx: Option<tokio::sync::mpsc::Sender<()>>,
    done_rx: tokio::sync::mpsc::Receiver<()>,
}

impl ShutdownController {
    pub fn new() -> Self {
        let (tx, _) = tokio::sync::watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::mpsc::channel(1);
        ShutdownController {
            tx,
            done_tx: Some(done_tx),
            done_rx,
        }
    }

    pub fn handle(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
            _guard: self.done_tx.clone(),
        }
    }

    /// Signals every session and waits (up to `grace`) until all have ended.
    pub async fn shutdown(mut self, grace: Duration) -> bool {
        let _ = self.tx.send(true);
        self.done_tx.take();
        tokio::time::timeout(grace, self.done_rx.recv())
            .await
            .is_ok()
    }
}

impl Default for ShutdownController {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn is_shutting_down(&self) -> bool {
        *self.rx.borrow()
    }

    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (Conn, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (Conn::new(Stream::Plain(server)), client)
    }

    #[tokio::test]
    async fn lines_and_overlong() {
        let (mut c, mut client) = pair().await;
        client.write_all(b"short\r\n").await.unwrap();
        client.write_all(&vec![b'x'; 5000]).await.unwrap();
        client.write_all(b"\r\nnext\n").await.unwrap();
        drop(client);
        assert_eq!(
            c.read_line(100).await.unwrap(),
            Line::Line(b"short".to_vec())
        );
        assert_eq!(c.read_line(100).await.unwrap(), Line::TooLong);
        assert_eq!(
            c.read_line(100).await.unwrap(),
            Line::Line(b"next".to_vec())
        );
        assert_eq!(c.read_line(100).await.unwrap(), Line::Eof);
    }
}

#[cfg(test)]
mod deflate_tests {
    use super::*;

    fn pair() -> Deflate {
        Deflate {
            comp: flate2::Compress::new(flate2::Compression::default(), false),
            decomp: flate2::Decompress::new(false),
            pending: Vec::new(),
        }
    }

    #[test]
    fn round_trip_and_bounded_inflate() {
        let mut d = pair();
        let text = b"a1 FETCH 1:* (FLAGS)\r\n".repeat(10);
        d.pending = d.compress(&text).unwrap();
        let mut out = Vec::new();
        assert_eq!(d.inflate(&mut out).unwrap(), text.len());
        assert_eq!(out, text);
        // 8 MiB of zeros compress to a few KB; one inflate step adds at
        // most about INFLATE_STEP, the rest stays pending.
        let mut bomb = pair();
        bomb.pending = bomb.compress(&vec![0u8; 8 << 20]).unwrap();
        assert!(bomb.pending.len() < 64 * 1024);
        let mut out = Vec::new();
        let n = bomb.inflate(&mut out).unwrap();
        assert!(
            (INFLATE_STEP..INFLATE_STEP + 128 * 1024).contains(&n),
            "{n}"
        );
        assert!(!bomb.pending.is_empty());
        // Garbage is an error, not a panic.
        let mut bad = pair();
        bad.pending = vec![0xff; 64];
        assert!(bad.inflate(&mut Vec::new()).is_err());
    }
}
