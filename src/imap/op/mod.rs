//! IMAP command execution, one file per command group.

pub mod auth;
pub mod fetch;
pub mod mailbox;
pub mod store;
