//! Replays every fuzz seed (fuzz/corpus/<target>/*) through the fuzz
//! targets' entry functions as ordinary tests: no sanitizer build needed,
//! and a crash found by fuzzing stays fixed once its input is committed.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| entry(&data));
            assert!(r.is_ok(), "{target}: {} panics", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "no seeds for {target}");
}

#[test]
fn smtp_command_seeds() {
    replay("smtp_command", petrel::fuzz_entry::smtp_command);
}

#[test]
fn smtp_data_seeds() {
    replay("smtp_data", petrel::fuzz_entry::smtp_data);
}

#[test]
fn imap_command_seeds() {
    replay("imap_command", petrel::fuzz_entry::imap_command);
}

#[test]
fn milter_reply_seeds() {
    replay("milter_reply", petrel::fuzz_entry::milter_reply);
}

#[test]
fn spam_tokens_seeds() {
    replay("spam_tokens", petrel::fuzz_entry::spam_tokens);
}

#[test]
fn message_seeds() {
    replay("message", petrel::fuzz_entry::message);
}

#[test]
fn smtp_reply_seeds() {
    replay("smtp_reply", petrel::fuzz_entry::smtp_reply);
}

#[test]
fn smtp_bdat_seeds() {
    replay("smtp_bdat", petrel::fuzz_entry::smtp_bdat);
}

#[test]
fn sasl_seeds() {
    replay("sasl", petrel::fuzz_entry::sasl);
}

#[test]
fn spf_record_seeds() {
    replay("spf_record", petrel::fuzz_entry::spf_record);
}

#[test]
fn jmap_request_seeds() {
    replay("jmap_request", petrel::fuzz_entry::jmap_request);
}

#[test]
fn autodiscover_seeds() {
    replay("autodiscover", petrel::fuzz_entry::autodiscover);
}

#[test]
fn managesieve_command_seeds() {
    replay(
        "managesieve_command",
        petrel::fuzz_entry::managesieve_command,
    );
}

#[test]
fn pop3_command_seeds() {
    replay("pop3_command", petrel::fuzz_entry::pop3_command);
}

#[test]
fn jmap_email_seeds() {
    replay("jmap_email", petrel::fuzz_entry::jmap_email);
}
