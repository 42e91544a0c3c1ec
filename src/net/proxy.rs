//! PROXY protocol v1 and v2 (HAProxy's specification), parsed by the `ppp`
//! crate: a load balancer in front of Petrel tells it the real client
//! address before the protocol starts. Only peers in
//! `proxy.trusted-networks` may send the header; on listeners that enable
//! it the header is required.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ppp::{HeaderResult, PartialResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest v1 header is 107 bytes; v2 headers with TLVs may be longer.
const MAX_HEADER: usize = 1024;

/// What the header says about the client.
pub fn source_of(res: &HeaderResult<'_>) -> Result<(usize, Option<SocketAddr>), String> {
    match res {
        HeaderResult::V1(Ok(h)) => {
            let src = match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                ppp::v1::Addresses::Unknown => None,
            };
            Ok((h.header.len(), src))
        }
        HeaderResult::V2(Ok(h)) => {
            let src = match (h.command, h.addresses) {
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                // LOCAL (health checks) and other families: the socket's peer.
                _ => None,
            };
            Ok((h.header.len(), src))
        }
        HeaderResult::V1(Err(e)) => Err(format!("bad PROXY v1 header: {e:?}")),
        HeaderResult::V2(Err(e)) => Err(format!("bad PROXY v2 header: {e:?}")),
    }
}

/// Reads the header from `tcp` without taking any byte after it (a TLS
/// handshake or client data may follow at once). Returns the client
/// address it names, or the socket's peer for LOCAL / UNKNOWN headers.
pub async fn read_header(
    tcp: &mut TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_HEADER];
    loop {
        let n = tokio::time::timeout_at(deadline.into(), tcp.peek(&mut buf))
            .await
            .map_err(|_| "no PROXY header in time".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the PROXY header".into());
        }
        let res = HeaderResult::parse(&buf[..n]);
        if res.is_incomplete() {
            if n >= MAX_HEADER {
                return Err("PROXY header too long".into());
            }
            // peek returns what is there; wait for more to arrive.
            if Instant::now() >= deadline {
                return Err("no complete PROXY header in time".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let (len, src) = source_of(&res)?;
        let mut skip = vec![0u8; len];
        tcp.read_exact(&mut skip).await.map_err(|e| e.to_string())?;
        return Ok(src.unwrap_or(peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_sources() {
        let v1 = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 25\r\nEHLO x\r\n";
        let (len, src) = source_of(&HeaderResult::parse(v1)).unwrap();
        assert_eq!(&v1[len..], b"EHLO x\r\n");
        assert_eq!(src, Some("203.0.113.7:51000".parse().unwrap()));
        let unknown = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            source_of(&HeaderResult::parse(unknown)).unwrap(),
            (15, None)
        );
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 198, 51, 100, 9, 192, 0, 2, 1, 0x1f, 0x90, 0, 25,
        ]);
        v2.extend_from_slice(b"tail");
        let (len, src) = source_of(&HeaderResult::parse(&v2)).unwrap();
        assert_eq!(&v2[len..], b"tail");
        assert_eq!(src, Some("198.51.100.9:8080".parse().unwrap()));
        assert!(source_of(&HeaderResult::parse(b"PROXY TCP4 x y z\r\n")).is_err());
        assert!(HeaderResult::parse(b"PROXY TCP4 1.2.").is_incomplete());
    }
}
