//! IMAP (RFC 9051 / RFC 3501): [`proto`] receives and tokenises commands
//! without I/O; [`session`] holds connection state; [`op`] has one file per
//! command group, executed against the mail store.

pub mod op;
pub mod proto;
pub mod session;
