//! The Sendmail milter protocol, version 6, as an MTA speaks it: the
//! packets Petrel sends (`encode`) and those it reads back (`decode`),
//! with no I/O (the client in `client.rs` moves the bytes).
//!
//! Every packet is a 32-bit big-endian length, then one command octet,
//! then `length - 1` octets of data. Strings are NUL-terminated. The
//! codes and flag values are those of Sendmail's libmilter (mfdef.h),
//! which every milter implementation shares.

/// The protocol version Petrel negotiates.
pub const VERSION: u32 = 6;

/// What Petrel lets a milter do (SMFIF_*): every action, so that a
/// milter asking for any of them is not refused at negotiation; what
/// Petrel does with each is in `super::Changes`.
pub mod action {
    pub const ADD_HEADERS: u32 = 0x01;
    pub const CHANGE_BODY: u32 = 0x02;
    pub const ADD_RCPT: u32 = 0x04;
    pub const DEL_RCPT: u32 = 0x08;
    pub const CHANGE_HEADERS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    pub const CHANGE_FROM: u32 = 0x40;
    pub const ADD_RCPT_PAR: u32 = 0x80;
    pub const SET_SYMLIST: u32 = 0x100;
    pub const ALL: u32 = 0x1ff;
}

/// Protocol steps a milter may ask to skip (SMFIP_NO*) or to leave
/// unanswered (SMFIP_NR_*).
pub mod step {
    pub const NO_CONNECT: u32 = 0x01;
    pub const NO_HELO: u32 = 0x02;
    pub const NO_MAIL: u32 = 0x04;
    pub const NO_RCPT: u32 = 0x08;
    pub const NO_BODY: u32 = 0x10;
    pub const NO_HEADERS: u32 = 0x20;
    pub const NO_EOH: u32 = 0x40;
    pub const NR_HEADER: u32 = 0x80;
    pub const NO_UNKNOWN: u32 = 0x100;
    pub const NO_DATA: u32 = 0x200;
    /// The MTA understands SMFIR_SKIP (no more body chunks).
    pub const SKIP: u32 = 0x400;
    pub const RCPT_REJ: u32 = 0x800;
    pub const NR_CONNECT: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x1_0000;
    pub const NR_UNKNOWN: u32 = 0x2_0000;
    pub const NR_EOH: u32 = 0x4_0000;
    pub const NR_BODY: u32 = 0x8_0000;
    /// Everything Petrel can honour. Not SMFIP_HDR_LEADSPC (header
    /// values go without the space after the colon) nor the larger data
    /// sizes (body chunks stay at 65,535 octets). RCPT_REJ is honoured
    /// trivially: no refused recipient ever reaches a milter.
    pub const OFFERED: u32 = 0xf_ffff;
}

/// The largest body chunk (MILTER_CHUNK_SIZE).
pub const CHUNK: usize = 65_535;

/// One packet from Petrel to a milter.
#[derive(Debug, Clone, PartialEq)]
pub enum Command<'a> {
    OptNeg {
        version: u32,
        actions: u32,
        steps: u32,
    },
    /// Macros for the command that follows (`stage` is its code).
    Macro {
        stage: u8,
        pairs: &'a [(&'a str, String)],
    },
    Connect {
        host: &'a str,
        /// `4`, `6` or `U` (unknown).
        family: u8,
        port: u16,
        address: &'a str,
    },
    Helo(&'a str),
    /// The address in angle brackets, then ESMTP parameters.
    Mail(&'a [String]),
    Rcpt(&'a [String]),
    Data,
    Header {
        name: &'a str,
        value: &'a str,
    },
    EndOfHeaders,
    Body(&'a [u8]),
    EndOfBody,
    Abort,
    Quit,
}

impl Command<'_> {
    /// The command's code octet.
    pub fn code(&self) -> u8 {
        match self {
            Command::OptNeg { .. } => b'O',
            Command::Macro { .. } => b'D',
            Command::Connect { .. } => b'C',
            Command::Helo(_) => b'H',
            Command::Mail(_) => b'M',
            Command::Rcpt(_) => b'R',
            Command::Data => b'T',
            Command::Header { .. } => b'L',
            Command::EndOfHeaders => b'N',
            Command::Body(_) => b'B',
            Command::EndOfBody => b'E',
            Command::Abort => b'A',
            Command::Quit => b'Q',
        }
    }
}

/// The packet for `cmd`, length prefix included.
pub fn encode(cmd: &Command) -> Vec<u8> {
    let mut data = Vec::new();
    let cstr = |d: &mut Vec<u8>, s: &[u8]| {
        // A NUL inside would end the string early on the other side.
        d.extend(s.iter().copied().filter(|&b| b != 0));
        d.push(0);
    };
    match cmd {
        Command::OptNeg {
            version,
            actions,
            steps,
        } => {
            data.extend_from_slice(&version.to_be_bytes());
            data.extend_from_slice(&actions.to_be_bytes());
            data.extend_from_slice(&steps.to_be_bytes());
        }
        Command::Macro { stage, pairs } => {
            data.push(*stage);
            for (k, v) in pairs.iter() {
                cstr(&mut data, k.as_bytes());
                cstr(&mut data, v.as_bytes());
            }
        }
        Command::Connect {
            host,
            family,
            port,
            address,
        } => {
            cstr(&mut data, host.as_bytes());
            data.push(*family);
            if *family != b'U' {
                data.extend_from_slice(&port.to_be_bytes());
                cstr(&mut data, address.as_bytes());
            }
        }
        Command::Helo(h) => cstr(&mut data, h.as_bytes()),
        Command::Mail(args) | Command::Rcpt(args) => {
            for a in args.iter() {
                cstr(&mut data, a.as_bytes());
            }
        }
        Command::Header { name, value } => {
            cstr(&mut data, name.as_bytes());
            cstr(&mut data, value.as_bytes());
        }
        Command::Body(b) => data.extend_from_slice(b),
        Command::Data
        | Command::EndOfHeaders
        | Command::EndOfBody
        | Command::Abort
        | Command::Quit => {}
    }
    let mut out = Vec::with_capacity(data.len() + 5);
    out.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
    out.push(cmd.code());
    out.extend_from_slice(&data);
    out
}

/// One packet from a milter.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    OptNeg {
        version: u32,
        actions: u32,
        steps: u32,
    },
    Continue,
    /// Accept the message with no more filtering.
    Accept,
    Reject,
    TempFail,
    Discard,
    /// An SMTP reply of the milter's own ("550 5.7.1 text").
    ReplyCode(String),
    /// No more body chunks, please.
    Skip,
    /// Still working: wait on.
    Progress,
    Quarantine(String),
    AddHeader {
        name: String,
        value: String,
    },
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Change the `index`-th (from 1) field called `name`; an empty value
    /// removes it.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    ReplaceBody(Vec<u8>),
    AddRcpt(String),
    DelRcpt(String),
    ChangeFrom(String),
    /// A code Petrel does not know.
    Unknown(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A length of zero or above the limit.
    BadLength(u32),
    /// The packet's data does not fit its code.
    Malformed(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::BadLength(n) => write!(f, "packet length {n} out of bounds"),
            DecodeError::Malformed(c) => {
                write!(f, "malformed packet '{}'", char::from(*c).escape_default())
            }
        }
    }
}

/// The first whole packet in `buf` and the octets it took, `None` when
/// more are needed. Packets longer than `max` are an error.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(Reply, usize)>, DecodeError> {
    let Some(len) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    if len == 0 || len as usize > max {
        return Err(DecodeError::BadLength(len));
    }
    let end = 4 + len as usize;
    let Some(packet) = buf.get(4..end) else {
        return Ok(None);
    };
    let (code, data) = (packet[0], &packet[1..]);
    let bad = DecodeError::Malformed(code);
    let reply = match code {
        b'O' => {
            if data.len() < 12 {
                return Err(bad);
            }
            let n = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            // Stage macro lists may follow; Petrel sends what it has.
            Reply::OptNeg {
                version: n(0),
                actions: n(4),
                steps: n(8),
            }
        }
        b'c' => Reply::Continue,
        b'a' => Reply::Accept,
        b'r' => Reply::Reject,
        b't' => Reply::TempFail,
        b'd' => Reply::Discard,
        b's' => Reply::Skip,
        b'p' => Reply::Progress,
        b'y' => Reply::ReplyCode(one_string(data).ok_or(bad)?),
        b'q' => Reply::Quarantine(one_string(data).unwrap_or_default()),
        b'h' => {
            let (name, value) = two_strings(data).ok_or(bad)?;
            Reply::AddHeader { name, value }
        }
        b'i' | b'm' => {
            let Some(index) = data.get(..4) else {
                return Err(bad);
            };
            let index = u32::from_be_bytes([index[0], index[1], index[2], index[3]]);
            let (name, value) = two_strings(&data[4..]).ok_or(bad)?;
            if code == b'i' {
                Reply::InsertHeader { index, name, value }
            } else {
                Reply::ChangeHeader { index, name, value }
            }
        }
        b'b' => Reply::ReplaceBody(data.to_vec()),
        b'+' | b'2' => Reply::AddRcpt(one_string(data).ok_or(bad)?),
        b'-' => Reply::DelRcpt(one_string(data).ok_or(bad)?),
        b'e' => Reply::ChangeFrom(one_string(data).ok_or(bad)?),
        other => Reply::Unknown(other),
    };
    Ok(Some((reply, end)))
}

/// The first NUL-terminated string of `data` (a missing final NUL is
/// forgiven).
fn one_string(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    Some(String::from_utf8_lossy(data.get(..end)?).into_owned())
}

fn two_strings(data: &[u8]) -> Option<(String, String)> {
    let cut = data.iter().position(|&b| b == 0)?;
    let name = String::from_utf8_lossy(&data[..cut]).into_owned();
    let value = one_string(&data[cut + 1..])?;
    if name.is_empty() {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut p = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        p.push(code);
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn option_negotiation_packet() {
        let p = encode(&Command::OptNeg {
            version: 6,
            actions: action::ALL,
            steps: step::OFFERED,
        });
        assert_eq!(&p[..5], &[0, 0, 0, 13, b'O']);
        assert_eq!(&p[5..9], &6u32.to_be_bytes());
        assert_eq!(&p[9..13], &0x1ffu32.to_be_bytes());
    }

    #[test]
    fn connect_and_strings() {
        let p = encode(&Command::Connect {
            host: "mx.example",
            family: b'4',
            port: 25,
            address: "192.0.2.1",
        });
        assert_eq!(&p[4..], b"Cmx.example\x004\x00\x19192.0.2.1\x00");
        // A NUL inside a value cannot cut the string short.
        let p = encode(&Command::Header {
            name: "Subject",
            value: "a\0b",
        });
        assert_eq!(&p[4..], b"LSubject\0ab\0");
    }

    #[test]
    fn replies() {
        let mut buf = packet(b'h', b"X-Spam\0Yes\0");
        buf.extend(packet(b'y', b"554 5.7.1 Spam\0"));
        let (r, n) = decode(&buf, 1 << 20).unwrap().unwrap();
        assert_eq!(
            r,
            Reply::AddHeader {
                name: "X-Spam".into(),
                value: "Yes".into()
            }
        );
        let (r, m) = decode(&buf[n..], 1 << 20).unwrap().unwrap();
        assert_eq!(r, Reply::ReplyCode("554 5.7.1 Spam".into()));
        assert_eq!(n + m, buf.len());
        let change = packet(b'm', b"\0\0\0\x02Subject\0\0");
        assert_eq!(
            decode(&change, 1 << 20).unwrap().unwrap().0,
            Reply::ChangeHeader {
                index: 2,
                name: "Subject".into(),
                value: String::new()
            }
        );
        assert_eq!(
            decode(&packet(b'a', b""), 99).unwrap().unwrap().0,
            Reply::Accept
        );
        assert_eq!(
            decode(&packet(b'p', b""), 99).unwrap().unwrap().0,
            Reply::Progress
        );
    }

    #[test]
    fn bad_packets() {
        assert_eq!(decode(&[0, 0, 0, 0], 99), Err(DecodeError::BadLength(0)));
        assert_eq!(
            decode(&[0, 0, 1, 0, b'c'], 99),
            Err(DecodeError::BadLength(256))
        );
        assert_eq!(
            decode(&packet(b'm', b"\0\0"), 99),
            Err(DecodeError::Malformed(b'm'))
        );
        assert_eq!(
            decode(&packet(b'h', b"\0v\0"), 99),
            Err(DecodeError::Malformed(b'h'))
        );
        assert_eq!(
            decode(&packet(b'O', b"123"), 99),
            Err(DecodeError::Malformed(b'O'))
        );
        // Incomplete input asks for more.
        assert_eq!(decode(&[0, 0], 99), Ok(None));
        assert_eq!(decode(&[0, 0, 0, 5, b'y'], 99), Ok(None));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_stays_in_bounds(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, n))) = decode(&buf, 256) {
                prop_assert!(n <= buf.len());
                prop_assert!(n >= 5);
            }
        }

        #[test]
        fn header_replies_round_trip(name in "[A-Za-z-]{1,20}", value in "[ -~]{0,40}") {
            let mut data = name.as_bytes().to_vec();
            data.push(0);
            data.extend_from_slice(value.as_bytes());
            data.push(0);
            let p = packet(b'h', &data);
            let (r, n) = decode(&p, 1 << 16).unwrap().unwrap();
            prop_assert_eq!(n, p.len());
            prop_assert_eq!(r, Reply::AddHeader { name, value });
        }
    }
}
