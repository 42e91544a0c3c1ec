//! An account's Sieve scripts: records in the mail store (kind
//! `SieveScript`, one per script, by name) and one `SieveActive` record
//! naming the active one by record id, so that activating is one write
//! and renaming keeps a script active. What ManageSieve (RFC 5804) and
//! the management API (`petrel sieve`) do to them.

use serde::{Deserialize, Serialize};

use crate::config::SieveConfig;
use crate::mail::records::Kind;
use crate::mail::{MailError, MailStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Script {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Active {
    id: u64,
}

/// The one `SieveActive` record's id.
const ACTIVE: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    /// The script does not compile, or needs what is not offered.
    #[error("{0}")]
    Invalid(String),
    #[error("no script named `{0}`")]
    NotFound(String),
    #[error("a script named `{0}` exists already")]
    Exists(String),
    #[error("`{0}` is the active script: activate another (or none) first")]
    Active(String),
    /// Named by the configuration (a global script at an SMTP stage).
    #[error("{0}")]
    InUse(String),
    /// Over `sieve.max-scripts` or `sieve.max-script-size`.
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Store(#[from] MailError),
}

pub type Result<T> = std::result::Result<T, SieveError>;

/// RFC 5804 §1.6: a script name is Net-Unicode (RFC 5198: UTF-8 in
/// NFC), without control characters (nor U+2028, U+2029), 1 to 512
/// octets (128 characters of any size fit); longer names are refused,
/// never cut.
pub fn valid_name(name: &str) -> Result<()> {
    let bad = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if name.is_empty()
        || name.len() > 512
        || name.chars().any(bad)
        || !unicode_normalization::is_nfc(name)
    {
        return Err(SieveError::Invalid(format!(
            "`{}` is not a script name: 1 to 512 octets of UTF-8 in NFC, no control characters",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// Compiles `text` and checks that it requires only the extensions
/// offered ([`super::EXTENSIONS`]): the compiled script, or why not (a
/// compile error names its line and column).
pub fn check(cfg: &SieveConfig, text: &str) -> Result<::sieve::Sieve> {
    check_as(cfg, text, super::Trust::User)
}

/// [`check`] for a user's script or an administrator's ([`super::Trust`]).
pub fn check_as(cfg: &SieveConfig, text: &str, trust: super::Trust) -> Result<::sieve::Sieve> {
    // RFC 5804 §2.6: a script of zero length is refused.
    if text.trim().is_empty() {
        return Err(SieveError::Invalid("the script is empty".into()));
    }
    if text.len() > cfg.max_script_size {
        return Err(SieveError::Quota(format!(
            "the script is {} octets, more than sieve.max-script-size ({})",
            text.len(),
            cfg.max_script_size
        )));
    }
    let script = super::compiler_for(cfg, trust)
        .compile(text.as_bytes())
        .map_err(|e| {
            SieveError::Invalid(format!(
                "line {}, column {}: {e}",
                e.line_num(),
                e.line_pos()
            ))
        })?;
    // Petrel's checks of what sieve-rs takes, over one scan of the words.
    let all = words(text);
    if let Some(line) = late_require(&all) {
        return Err(SieveError::Invalid(format!(
            "line {line}: require comes before every other command (RFC 5228 §3.2)"
        )));
    }
    if let Some(line) = last_without_index(&all) {
        return Err(SieveError::Invalid(format!(
            "line {line}: deleteheader :last needs :index (RFC 5293 §5)"
        )));
    }
    if let Some(line) = flag_variable_without_variables(&all) {
        return Err(SieveError::Invalid(format!(
            "line {line}: a variable naming the flags needs `require \"variables\"` (RFC 5232 §1)"
        )));
    }
    if let Some((line, ns)) = namespace_not_required(&all) {
        return Err(SieveError::Invalid(format!(
            "line {line}: the variable namespace `{ns}` needs its extension required (RFC 5229 §3; `global` needs \"include\")"
        )));
    }
    if let Some((line, name)) = unknown_comparator(&all) {
        return Err(SieveError::Invalid(format!(
            "line {line}: the comparator `{name}` is not offered, or not required as \"comparator-{name}\" (RFC 5228 §2.7.3, RFC 4790)"
        )));
    }
    if let Some((line, name)) = bad_variable_name(&all) {
        return Err(SieveError::Invalid(format!(
            "line {line}: `{name}` is not a variable name (RFC 5229 §4)"
        )));
    }
    // `require` runs first: a run on an empty message stops at the first
    // extension that is not offered, before any action.
    let rt = super::runtime_for(cfg, "localhost", trust);
    let mut run = rt.filter(b"From: check@localhost\r\n\r\n");
    if let Some(Err(e)) = run.run(::sieve::Input::script("check", script.clone())) {
        use ::sieve::runtime::RuntimeError as E;
        if let E::CapabilityNotAllowed(c) = &e {
            return Err(SieveError::Invalid(format!(
                "the extension `{c}` is not offered by this server"
            )));
        }
        if let E::CapabilityNotSupported(c) = &e {
            return Err(SieveError::Invalid(format!(
                "the extension `{c}` is not known"
            )));
        }
    }
    Ok(script)
}

/// A word of a script outside comments and strings, as [`words`] finds
/// them: a command or test name, a `:tag`, or one of `;`, `{`, `}`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Word<'a> {
    line: usize,
    text: &'a str,
    /// First of its command.
    start: bool,
    /// A quoted string (its text without the quotes, escapes as written).
    string: bool,
}

/// The words of `text` (comments, strings and numbers skipped): enough
/// of the grammar for the checks sieve-rs does not make.
fn words(text: &str) -> Vec<Word<'_>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let mut start = true;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    line += usize::from(b[i] == b'\n');
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                let (from, at) = (i + 1, line);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    line += usize::from(b[i] == b'\n');
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                out.push(Word {
                    line: at,
                    text: text.get(from..i.min(b.len())).unwrap_or_default(),
                    start: false,
                    string: true,
                });
                i += 1;
                start = false;
            }
            b'[' | b']' | b'(' | b')' | b',' => {
                out.push(Word {
                    line,
                    text: &text[i..i + 1],
                    start: false,
                    string: false,
                });
                i += 1;
            }
            b';' | b'{' | b'}' => {
                out.push(Word {
                    line,
                    text: &text[i..i + 1],
                    start: false,
                    string: false,
                });
                start = true;
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let from = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &text[from..i];
                if word.eq_ignore_ascii_case("text") && b.get(i) == Some(&b':') {
                    // A multi-line string: through a line of one ".".
                    let rest = &text[i..];
                    let end = rest
                        .find("\n.\r\n")
                        .map(|p| p + 4)
                        .or_else(|| rest.find("\n.\n").map(|p| p + 3))
                        .unwrap_or(rest.len());
                    line += rest[..end].matches('\n').count();
                    i += end;
                    start = false;
                    continue;
                }
                out.push(Word {
                    line,
                    text: word,
                    start,
                    string: false,
                });
                start = false;
            }
            _ => i += 1,
        }
    }
    out
}

/// RFC 5228 §3.2: `require` only before any other command (sieve-rs
/// takes it anywhere): the line of the first `require` that follows
/// another command.
fn late_require(all: &[Word<'_>]) -> Option<usize> {
    let mut other = false;
    for w in all.iter().filter(|w| w.start) {
        if !w.text.eq_ignore_ascii_case("require") {
            other = true;
        } else if other {
            return Some(w.line);
        }
    }
    None
}

/// RFC 5293 §5: `deleteheader :last` without `:index` is an error
/// (sieve-rs takes it as no index): the line of the first.
fn last_without_index(all: &[Word<'_>]) -> Option<usize> {
    let mut i = 0;
    while i < all.len() {
        let w = all[i];
        i += 1;
        if !(w.start && w.text.eq_ignore_ascii_case("deleteheader")) {
            continue;
        }
        let args: Vec<&str> = all[i..]
            .iter()
            .take_while(|a| a.string || !matches!(a.text, ";" | "{" | "}"))
            .filter(|a| !a.string)
            .map(|a| a.text)
            .collect();
        let has = |t: &str| args.iter().any(|a| a.eq_ignore_ascii_case(t));
        if has(":last") && !has(":index") {
            return Some(w.line);
        }
    }
    None
}

/// RFC 5229 §4, RFC 6609 §3.4.1: the name `set` and `global` take must
/// be a variable name (identifiers joined by dots; sieve-rs takes
/// others): the line and name of the first that is not.
fn bad_variable_name<'a>(all: &[Word<'a>]) -> Option<(usize, &'a str)> {
    let ident = |s: &str| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
    };
    let valid = |n: &str| n.split('.').all(ident);
    for (i, w) in all.iter().enumerate() {
        if !w.start {
            continue;
        }
        let args = all[i + 1..]
            .iter()
            .take_while(|a| a.string || !matches!(a.text, ";" | "{" | "}"));
        if w.text.eq_ignore_ascii_case("set") {
            if let Some(n) = args.clone().find(|a| a.string) {
                if !valid(n.text) {
                    return Some((n.line, n.text));
                }
            }
        } else if w.text.eq_ignore_ascii_case("global") {
            if let Some(n) = args.filter(|a| a.string).find(|a| !valid(a.text)) {
                return Some((n.line, n.text));
            }
        }
    }
    None
}

/// RFC 5228 §2.7.3, RFC 4790 §3.1: `:comparator` names i;octet,
/// i;ascii-casemap, or one required as "comparator-NAME" (sieve-rs takes
/// any name, "default" and wildcards too): the line and name of the
/// first that is not.
fn unknown_comparator<'a>(all: &[Word<'a>]) -> Option<(usize, &'a str)> {
    let req = required(all);
    let mut next_is_name = false;
    for w in all {
        if next_is_name && w.string {
            let known = ["i;octet", "i;ascii-casemap"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(w.text))
                || req.iter().any(|r| {
                    r.strip_prefix("comparator-")
                        .is_some_and(|c| c.eq_ignore_ascii_case(w.text))
                });
            if !known {
                return Some((w.line, w.text));
            }
        }
        next_is_name = !w.string && w.text.eq_ignore_ascii_case(":comparator");
    }
    None
}

/// The extensions a script requires.
fn required<'a>(all: &[Word<'a>]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut in_require = false;
    for w in all {
        if w.start {
            in_require = w.text.eq_ignore_ascii_case("require");
        }
        if in_require && w.string {
            out.push(w.text);
        }
    }
    out
}

/// RFC 5229 §3, RFC 6609 §3.4.2: a namespaced variable (`${ns.name}`,
/// or `set "ns.name"`) needs the extension of its namespace required;
/// the namespaces offered are `global` (include), `envelope` and `env`
/// (environment). sieve-rs takes others as empty. The line and namespace of the first that fails.
fn namespace_not_required<'a>(all: &[Word<'a>]) -> Option<(usize, &'a str)> {
    let req = required(all);
    let has = |e: &str| req.iter().any(|r| r.eq_ignore_ascii_case(e));
    // sieve-rs's own: `envelope.` (envelope) and `env.` (environment
    // items); the administrators' expressions have more.
    let allowed = |ns: &str| {
        has("vnd.stalwart.expressions")
            || (ns.eq_ignore_ascii_case("global") && has("include"))
            || (ns.eq_ignore_ascii_case("envelope") && has("envelope"))
            || (ns.eq_ignore_ascii_case("env") && has("environment"))
    };
    let mut last_start = "";
    // Strings since the command began: `set`'s first names a variable,
    // its second is a value like any other.
    let mut nth = 0;
    for w in all {
        if w.start {
            last_start = w.text;
            nth = 0;
        }
        if !w.string || last_start.eq_ignore_ascii_case("require") {
            continue;
        }
        nth += 1;
        let mut names: Vec<&str> = Vec::new();
        let mut rest = w.text;
        while let Some(p) = rest.find("${") {
            rest = &rest[p + 2..];
            let end = rest.find('}').unwrap_or(rest.len());
            names.push(&rest[..end]);
            rest = &rest[end..];
        }
        if last_start.eq_ignore_ascii_case("set") && nth == 1 {
            names.push(w.text);
        }
        for n in names {
            let Some((ns, _)) = n.split_once('.') else {
                continue;
            };
            let variable = ns
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if variable && !allowed(ns) {
                return Some((w.line, ns));
            }
        }
    }
    None
}

/// RFC 5232 §1: setflag, addflag, removeflag and hasflag take a
/// variable's name before the flags only when "variables" is required
/// (sieve-rs takes it anyway): the line of the first that does.
fn flag_variable_without_variables(all: &[Word<'_>]) -> Option<usize> {
    if required(all)
        .iter()
        .any(|r| r.eq_ignore_ascii_case("variables"))
    {
        return None;
    }
    for (i, w) in all.iter().enumerate() {
        let cmd = ["setflag", "addflag", "removeflag", "hasflag"];
        if w.string || !cmd.iter().any(|c| w.text.eq_ignore_ascii_case(c)) {
            continue;
        }
        // Arguments: a string or a [list] each, tags (and the strings
        // of :comparator, :count and :value) left out.
        let (mut args, mut depth, mut skip) = (0, 0, false);
        for a in &all[i + 1..] {
            match a.text {
                _ if a.string => {
                    if skip {
                        skip = false;
                    } else if depth == 0 {
                        args += 1;
                    }
                }
                "[" => {
                    depth += 1;
                    if depth == 1 {
                        args += 1;
                    }
                }
                "]" => depth -= 1,
                ";" | "{" | "}" | ")" | "," if depth == 0 => break,
                // RFC 5231: `:count`/`:value` take the relation as a
                // string too.
                t if [":comparator", ":count", ":value"]
                    .iter()
                    .any(|x| t.eq_ignore_ascii_case(x)) =>
                {
                    skip = true
                }
                _ => {}
            }
        }
        if args >= 2 {
            return Some(w.line);
        }
    }
    None
}

/// The record id of the active script, if one is marked active.
pub async fn active_id(mail: &MailStore, acct: u32) -> Result<Option<u64>> {
    Ok(mail
        .record::<Active>(acct, Kind::SieveActive, ACTIVE)
        .await?
        .map(|a| a.id))
}

/// Every script of the account with its record id, and the active one's
/// id.
pub async fn list(mail: &MailStore, acct: u32) -> Result<(Vec<(u64, Script)>, Option<u64>)> {
    let all = mail.records::<Script>(acct, Kind::SieveScript).await?;
    let active = active_id(mail, acct)
        .await?
        .filter(|id| all.iter().any(|(n, _)| n == id));
    Ok((all, active))
}

async fn find(mail: &MailStore, acct: u32, name: &str) -> Result<Option<(u64, Script)>> {
    Ok(list(mail, acct)
        .await?
        .0
        .into_iter()
        .find(|(_, s)| s.name == name))
}

pub async fn get(mail: &MailStore, acct: u32, name: &str) -> Result<Script> {
    find(mail, acct, name)
        .await?
        .map(|(_, s)| s)
        .ok_or_else(|| SieveError::NotFound(name.into()))
}

/// The active script, if any.
pub async fn active(mail: &MailStore, acct: u32) -> Result<Option<Script>> {
    let (all, active) = list(mail, acct).await?;
    Ok(active.and_then(|a| all.into_iter().find(|(n, _)| *n == a).map(|(_, s)| s)))
}

/// Stores a script (replacing one of the same name) once it compiles
/// and uses only what is offered; within `sieve.max-scripts`. Returns
/// the script's record id.
pub async fn put(
    mail: &MailStore,
    cfg: &SieveConfig,
    acct: u32,
    name: &str,
    text: &str,
) -> Result<u64> {
    valid_name(name)?;
    check(cfg, text)?;
    let script = Script {
        name: name.to_string(),
        text: text.to_string(),
    };
    let (all, _) = list(mail, acct).await?;
    match all.iter().find(|(_, s)| s.name == name) {
        Some((id, _)) => {
            mail.put_record(acct, Kind::SieveScript, *id, &script)
                .await?;
            Ok(*id)
        }
        None if all.len() >= cfg.max_scripts => Err(SieveError::Quota(format!(
            "the account has {} scripts, the most sieve.max-scripts allows",
            all.len()
        ))),
        None => Ok(mail.create_record(acct, Kind::SieveScript, &script).await?),
    }
}

/// Whether one more script of `size` octets fits (ManageSieve HAVESPACE):
/// an existing name is replaced, a new one counts.
pub async fn has_space(
    mail: &MailStore,
    cfg: &SieveConfig,
    acct: u32,
    name: &str,
    size: usize,
) -> Result<()> {
    valid_name(name)?;
    if size > cfg.max_script_size {
        return Err(SieveError::Quota(format!(
            "{size} octets is more than sieve.max-script-size ({})",
            cfg.max_script_size
        )));
    }
    let (all, _) = list(mail, acct).await?;
    if !all.iter().any(|(_, s)| s.name == name) && all.len() >= cfg.max_scripts {
        return Err(SieveError::Quota(format!(
            "the account has {} scripts, the most sieve.max-scripts allows",
            all.len()
        )));
    }
    Ok(())
}

/// Makes `name` the active script; `None` deactivates all (RFC 5804
/// §2.8: the empty name).
pub async fn activate(mail: &MailStore, acct: u32, name: Option<&str>) -> Result<()> {
    match name {
        None => {
            mail.delete_record(acct, Kind::SieveActive, ACTIVE).await?;
        }
        Some(name) => {
            let (id, _) = find(mail, acct, name)
                .await?
                .ok_or_else(|| SieveError::NotFound(name.into()))?;
            mail.put_record(acct, Kind::SieveActive, ACTIVE, &Active { id })
                .await?;
        }
    }
    Ok(())
}

/// Deletes a script that is not active (RFC 5804 §2.10).
pub async fn delete(mail: &MailStore, acct: u32, name: &str) -> Result<()> {
    let (all, active) = list(mail, acct).await?;
    let (id, _) = all
        .iter()
        .find(|(_, s)| s.name == name)
        .ok_or_else(|| SieveError::NotFound(name.into()))?;
    if active == Some(*id) {
        return Err(SieveError::Active(name.into()));
    }
    mail.delete_record(acct, Kind::SieveScript, *id).await?;
    Ok(())
}

/// Renames a script; an active one stays active (RFC 5804 §2.11.1).
pub async fn rename(mail: &MailStore, acct: u32, old: &str, new: &str) -> Result<()> {
    valid_name(new)?;
    let (all, _) = list(mail, acct).await?;
    if all.iter().any(|(_, s)| s.name == new) {
        return Err(SieveError::Exists(new.into()));
    }
    let (id, mut script) = all
        .into_iter()
        .find(|(_, s)| s.name == old)
        .ok_or_else(|| SieveError::NotFound(old.into()))?;
    script.name = new.to_string();
    mail.put_record(acct, Kind::SieveScript, id, &script)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc5804() {
        assert!(valid_name("vacation rules").is_ok());
        assert!(valid_name("héllo").is_ok());
        assert!(valid_name("").is_err());
        assert!(valid_name("a\nb").is_err());
        assert!(valid_name("a\u{2028}b").is_err());
        assert!(
            valid_name(&"\u{10348}".repeat(128)).is_ok(),
            "128 four-octet characters"
        );
        assert!(valid_name(&"x".repeat(513)).is_err());
        assert!(valid_name("e\u{301}").is_err(), "not NFC");
        assert!(valid_name("\u{e9}").is_ok());
    }

    #[test]
    fn require_comes_first() {
        assert_eq!(
            late_require(&words("require \"a\";\nrequire [\"b\"];\nkeep;")),
            None
        );
        assert_eq!(
            late_require(&words("keep;\nrequire \"fileinto\";")),
            Some(2)
        );
        assert_eq!(
            late_require(&words("if true {\n  require \"x\";\n}")),
            Some(2)
        );
        assert_eq!(
            late_require(&words(
                "# require\n/* require */ keep;\nfileinto text:\r\nrequire\r\n.\r\n;"
            )),
            None
        );
        assert_eq!(late_require(&words("keep; \"require\"; ")), None);
        let e = check(&SieveConfig::default(), "keep;\nrequire \"fileinto\";\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    /// RFC 5293 §5: `:last` without `:index` is an error, found past
    /// comments and strings.
    #[test]
    fn deleteheader_last_needs_index() {
        let cfg = SieveConfig::default();
        let r = "require \"editheader\";\n";
        let e = check(&cfg, &format!("{r}deleteheader :last \"X-A\";\n")).unwrap_err();
        assert!(e.to_string().contains("line 2: deleteheader :last"), "{e}");
        for ok in [
            "deleteheader :index 1 :last \"X-A\";",
            "deleteheader :last :index 2 \"X-A\";",
            "deleteheader \"X-A\" \":last\"; # :last\naddheader :last \"X-B\" \"c\";",
        ] {
            assert!(check(&cfg, &format!("{r}{ok}\n")).is_ok(), "{ok}");
        }
    }

    #[test]
    fn check_refuses_what_is_not_offered() {
        let cfg = SieveConfig::default();
        assert!(check(&cfg, "require \"fileinto\";\nfileinto \"Lists\";\n").is_ok());
        let e = check(
            &cfg,
            "require \"convert\";\nconvert \"image/png\" \"image/jpeg\" [\"pix-x=10\"];\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("convert"), "{e}");
        let e = check(&cfg, "if header :is \"x\" {\n  fileinto \"y\";\n").unwrap_err();
        assert!(e.to_string().starts_with("line "), "{e}");
        let small = SieveConfig {
            max_script_size: 10,
            ..SieveConfig::default()
        };
        assert!(matches!(
            check(&small, "keep; keep; keep;"),
            Err(SieveError::Quota(_))
        ));
    }
}
