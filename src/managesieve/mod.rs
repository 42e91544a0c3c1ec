//! ManageSieve (RFC 5804): users upload, list, activate and delete their
//! Sieve scripts. `proto` is the command syntax without I/O; `session`
//! one connection.

pub mod proto;
pub mod session;
