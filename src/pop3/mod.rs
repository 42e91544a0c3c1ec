//! POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), SASL (RFC 5034)
//! and response codes, over the same store and Inbox as IMAP.

pub mod proto;
pub mod session;
