//! Password strength (RFC 9051 §11.7: "Accounts with passwords that match
//! well-known passwords from spraying attacks MUST be blocked"; "Only a
//! password with significant strength SHOULD be accepted").
//!
//! Strength is zxcvbn's estimate (a score from 0 to 4); a password is
//! *well-known* when it is, as a whole, one entry of zxcvbn's list of the
//! most common leaked passwords (any letter case), which is what spraying
//! attacks try first. The rules, and their keys:
//! - `passwords.min-score` (default 3): a new password (account creation,
//!   password change, the first administrator's) must reach it;
//! - `passwords.block-well-known` (default true): a well-known password is
//!   refused when set and, for accounts that have one from before, at
//!   login, with a message asking for a new one.

use zxcvbn::matching::patterns::MatchPattern;

/// Whether `password` is, as a whole, one of the common leaked passwords.
pub fn well_known(password: &str) -> bool {
    if password.is_empty() {
        return false;
    }
    let e = zxcvbn::zxcvbn(password, &[]);
    match e.sequence() {
        // zxcvbn does not export its dictionary type; its Debug name is
        // stable ("Passwords" is the list of leaked passwords).
        [m] => matches!(
            &m.pattern,
            MatchPattern::Dictionary(d)
                if format!("{:?}", d.dictionary_name) == "Passwords" && !d.reversed && !d.l33t
        ),
        _ => false,
    }
}

/// Checks a new password for `address` (and display `name`): `Err` says
/// why it is refused and what to do.
pub fn check_new(
    password: &str,
    address: &str,
    name: &str,
    policy: &crate::config::PasswordsConfig,
) -> Result<(), String> {
    rate(password, address, name, policy).map(|_| ())
}

/// The verdict on a new password: `Ok(well_known)` or why it is refused.
pub type Verdict = Result<bool, String>;

/// [`check_new`] and [`well_known`] in a short-lived child process (this
/// binary, `__password-strength`): zxcvbn's dictionaries take about 7 MB
/// that would otherwise stay in the server for good. The password goes
/// through a pipe, never the command line. Where the child cannot run
/// (a test binary), the check runs here.
pub async fn rate_isolated(
    password: &str,
    address: &str,
    name: &str,
    policy: &crate::config::PasswordsConfig,
) -> Verdict {
    match rate_in_child(password, address, name, policy).await {
        Some(v) => v,
        None => rate(password, address, name, policy),
    }
}

/// What the child computes: whether `password` is well-known, or why it
/// is refused (the rules of the module docs).
pub fn rate(
    password: &str,
    address: &str,
    name: &str,
    policy: &crate::config::PasswordsConfig,
) -> Verdict {
    let known = well_known(password);
    if policy.block_well_known && known {
        return Err(
            "this password is on the list of well-known passwords that attackers try first; choose another"
                .into(),
        );
    }
    if policy.min_score == 0 {
        return Ok(known);
    }
    // The account's own words count as guessable.
    let mut inputs: Vec<&str> = address
        .split(['@', '.'])
        .filter(|s| !s.is_empty())
        .collect();
    inputs.extend(name.split_whitespace());
    let e = zxcvbn::zxcvbn(password, &inputs);
    let score = u8::from(e.score());
    if score >= policy.min_score {
        return Ok(known);
    }
    let hint = e
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    Err(format!(
        "the password is too weak: strength {score} of 4, at least {} required (passwords.min-score){hint}; a passphrase of four or more unrelated words is strong",
        policy.min_score
    ))
}

/// The child's side: reads password, address, name, min-score and
/// block-well-known, one per line, from standard input; writes `ok 0`,
/// `ok 1` (well-known) or `err <why>`.
pub fn child_main() -> i32 {
    use std::io::BufRead;
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .collect();
    let [password, address, name, min, block] = lines.as_slice() else {
        println!("err bad input");
        return 2;
    };
    let policy = crate::config::PasswordsConfig {
        min_score: min.parse().unwrap_or(3),
        block_well_known: block == "1",
    };
    match rate(password, address, name, &policy) {
        Ok(w) => println!("ok {}", u8::from(w)),
        Err(e) => println!("err {e}"),
    }
    0
}

async fn rate_in_child(
    password: &str,
    address: &str,
    name: &str,
    policy: &crate::config::PasswordsConfig,
) -> Option<Verdict> {
    use tokio::io::AsyncWriteExt;
    if [password, address, name]
        .iter()
        .any(|s| s.contains(['\n', '\r']))
    {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let mut child = tokio::process::Command::new(exe)
        .arg(CHILD_ARG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let input = format!(
        "{password}\n{address}\n{name}\n{}\n{}\n",
        policy.min_score,
        u8::from(policy.block_well_known)
    );
    let mut stdin = child.stdin.take()?;
    stdin.write_all(input.as_bytes()).await.ok()?;
    drop(stdin);
    let out = child.wait_with_output().await.ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?;
    if let Some(w) = line.strip_prefix("ok ") {
        return Some(Ok(w == "1"));
    }
    line.strip_prefix("err ").map(|e| Err(e.to_string()))
}

/// The first argument that makes this binary the rating child.
pub const CHILD_ARG: &str = "__password-strength";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PasswordsConfig;

    #[test]
    fn common_passwords_are_well_known_in_any_case() {
        for p in [
            "123456", "password", "Password", "qwerty", "letmein", "iloveyou",
        ] {
            assert!(well_known(p), "{p}");
        }
        // "pw", "bench" and "test-admin-secret" are what the tests and
        // benchmarks use.
        for p in [
            "",
            "correct horse battery staple",
            "Tr0ub4dor&3x!",
            "pw",
            "bench",
            "test-admin-secret",
        ] {
            assert!(!well_known(p), "{p}");
        }
    }

    #[test]
    fn new_passwords_need_the_configured_strength() {
        let policy = PasswordsConfig::default();
        assert_eq!(policy.min_score, 3);
        let weak = check_new("summer2024", "joe@example.org", "Joe", &policy).unwrap_err();
        assert!(
            weak.contains("too weak") || weak.contains("well-known"),
            "{weak}"
        );
        assert!(check_new("joe-example", "joe@example.org", "", &policy).is_err());
        assert!(check_new("choose-a-password", "joe@example.org", "", &policy).is_ok());
        assert!(check_new(
            "plum vortex tangerine sleeps",
            "joe@example.org",
            "",
            &policy
        )
        .is_ok());
        let known = check_new("letmein", "joe@example.org", "", &policy).unwrap_err();
        assert!(known.contains("well-known"), "{known}");
        // min-score 0 accepts anything but the well-known list.
        let lax = PasswordsConfig {
            min_score: 0,
            block_well_known: true,
        };
        assert!(check_new("pw", "joe@example.org", "", &lax).is_ok());
        assert!(check_new("123456", "joe@example.org", "", &lax).is_err());
        let off = PasswordsConfig {
            min_score: 0,
            block_well_known: false,
        };
        assert!(check_new("123456", "joe@example.org", "", &off).is_ok());
    }
}
