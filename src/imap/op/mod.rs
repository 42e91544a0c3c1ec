//! IMAP command execution, one file per command group.

pub mod acl;
pub mod append;
pub mod auth;
pub mod compress;
pub mod copy;
pub mod enable;
pub mod fetch;
pub mod idle;
pub mod mailbox;
pub mod manage;
pub mod metadata;
pub mod notify;
pub mod quota;
pub mod search;
pub mod sort;
pub mod store;
pub mod thread;

/// The tagged OK of a command that also has a UID form.
pub(crate) fn completed(name: &str, uid: bool) -> crate::imap::session::Reply {
    if uid {
        format!("OK UID {name} completed")
    } else {
        format!("OK {name} completed")
    }
}
