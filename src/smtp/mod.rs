//! SMTP: the sans-IO codec ([`proto`], [`data`]) and the inbound session.

pub mod client;
pub mod data;
mod dkim_rules;
pub mod proto;
pub mod session;
pub mod spool;
mod submission;
mod txlog;
pub mod verify;
