//! Sentence by sentence, the extensions' rules (RFC 5229 variables, 5232
//! imap4flags, 6609 include, 7352 duplicate, 5231 relational, 5173 body,
//! 5183 environment, 6131 vacation-seconds, 5260 date) as a run through
//! Petrel's glue sees them: the extensions offered, the limits
//! configured. The spec/rfcN.toml matrices name these tests.

use super::*;
use crate::sieve::scripts::Script;

const NOW: i64 = 1_000_000;

const MSG: &str = "From: Ann <ann@remote.test>\r\nTo: joe@example.org\r\n\
    Subject: Coffee break\r\nDate: Tue, 1 Dec 2026 10:20:30 +0100\r\n\
    Message-ID: <m1@remote.test>\r\nX-Id: First\r\nX-Id: second\r\n\r\nbody\r\n";

/// A run of `script` with the account's other scripts `all` and the ids
/// earlier runs saw.
fn run_in(
    script: &str,
    raw: &str,
    all: &[(u64, Script)],
    seen: &HashMap<u64, i64>,
) -> Result<Run, String> {
    let cfg = crate::config::SieveConfig::default();
    let compiled = super::super::compile_cached(&cfg, script, super::super::Trust::User)
        .map_err(|e| format!("compile: {e}"))?;
    let rt = super::super::runtime(&cfg, "mx.test");
    let ctx = rt
        .filter(raw.as_bytes())
        .with_user_address("joe@example.org")
        .with_envelope(::sieve::Envelope::From, "ann@remote.test")
        .with_envelope(::sieve::Envelope::To, "joe+lists@example.org");
    let known = Known {
        all,
        globals: &[],
        boxes: &[],
        seen,
        now: NOW,
        no_response: None,
    };
    interpret(ctx, "main", compiled, &known, &cfg)
}

/// The mailboxes a run files into (`keep` for the Inbox), with flags.
fn filed(script: &str) -> Vec<String> {
    filed_in(script, MSG, &[])
}

fn filed_in(script: &str, raw: &str, all: &[(u64, Script)]) -> Vec<String> {
    let run = run_in(script, raw, all, &HashMap::new()).unwrap_or_else(|e| panic!("{e}: {script}"));
    run.files
        .iter()
        .map(|f| {
            let name = f.folder.clone().unwrap_or_else(|| "keep".into());
            if f.flags.is_empty() {
                name
            } else {
                format!("{name} {}", f.flags.join(" "))
            }
        })
        .collect()
}

fn script(name: &str, text: &str) -> (u64, Script) {
    (
        name.len() as u64,
        Script {
            name: name.into(),
            text: text.into(),
        },
    )
}

const V: &str = "require [\"fileinto\", \"variables\"];\n";

/// RFC 5229 §3: one pass of substitution with the values current at
/// each statement; §3.2 tests short-circuit, left to right (the match
/// variables are the last matching test's); §4 names and modifiers
/// checked at compile time; §5 `string` does not strip; §6 the limits:
/// 128 variables, names of 32, values of 4,000, ${1}..${9}, a longer
/// value at run time cut without an error, ${10}+ refused.
#[test]
fn variables_rfc5229() {
    assert_eq!(
        filed(&format!(
            "{V}set \"dollar\" \"$\";\nset \"t\" \"${{dollar}}{{dollar}}\";\nfileinto \"${{t}}\";"
        )),
        ["${dollar}"]
    );
    assert_eq!(
        filed(&format!(
            "{V}set \"a\" \"1\";\nfileinto \"${{a}}\";\nset \"a\" \"2\";\nfileinto \"${{a}}\";"
        )),
        ["1", "2"]
    );
    assert_eq!(
        filed(&format!("{V}if anyof (header :matches \"Subject\" \"Coffee *\", header :matches \"From\" \"* <*\") {{ fileinto \"${{1}}\"; }}")),
        ["break"],
        "anyof stops at its first true test"
    );
    assert_eq!(
        filed(&format!("{V}if allof (header :matches \"Subject\" \"Coffee *\", header :matches \"From\" \"* <*\") {{ fileinto \"${{1}}\"; }}")),
        ["Ann"],
        "left to right: the last test set the match variables"
    );
    // Names and modifiers are checked when the script is stored.
    let cfg = crate::config::SieveConfig::default();
    for bad in [
        "set \"1a\" \"x\";",
        "set \"a-b\" \"x\";",
        "set :lower \"a b\" \"x\";",
        "set :bogus \"a\" \"x\";",
    ] {
        let e = crate::sieve::scripts::check(&cfg, &format!("{V}{bad}")).unwrap_err();
        assert!(e.to_string().starts_with("line 2"), "{bad}: {e}");
    }
    let ok = crate::sieve::scripts::check(&cfg, &format!("{V}set :lower \"a_b\" \"x\";"));
    assert!(ok.is_ok(), "{:?}", ok.err());
    // §3: a namespace not required is an error (RFC 6609 §3.4.2: global.).
    for bad in [
        "set \"a\" \"${global.x}\";",
        "fileinto \"${global.x}\";",
        "set \"global.x\" \"1\";",
    ] {
        let e = crate::sieve::scripts::check(&cfg, &format!("{V}{bad}"));
        assert!(e.is_err(), "{bad}");
    }
    // A value with a dot in it is no variable's name (Pigeonhole's
    // editheader "Addheader - folded" found this refused).
    let ok = crate::sieve::scripts::check(
        &cfg,
        &format!("{V}set \"before\"\n  \"Long content. Folded.\";\nset :lower \"x\" \"a.b\";"),
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    // sieve-rs has match variables past ${9}: ${10} is one, empty here.
    assert_eq!(filed(&format!("{V}fileinto \"${{10}}x\";")), ["x"]);
    assert_eq!(
        filed(&format!("{V}if string :is \" a \" \"a\" {{ fileinto \"stripped\"; }}\nif string :is \" a \" \" a \" {{ fileinto \"kept\"; }}")),
        ["kept"]
    );
    let many: String = (0..130)
        .map(|i| format!("set \"v{i}\" \"{i}\";\n"))
        .collect();
    assert_eq!(
        filed(&format!("{V}{many}fileinto \"${{v0}}-${{v129}}\";")),
        ["0-129"]
    );
    let long_name = "n".repeat(32);
    let value = "x".repeat(4000);
    let got = filed(&format!(
        "{V}set \"{long_name}\" \"{value}\";\nfileinto \"${{{long_name}}}\";"
    ));
    assert_eq!(got[0].len(), 4000);
    let nine = "if header :matches \"X-Nine\" \"*-*-*-*-*-*-*-*-*\" { fileinto \"${9}${8}${7}${6}${5}${4}${3}${2}${1}\"; }";
    assert_eq!(
        filed_in(
            &format!("{V}{nine}"),
            "X-Nine: a-b-c-d-e-f-g-h-i\r\n\r\nx",
            &[]
        ),
        ["ihgfedcba"]
    );
    // Built at run time past the limit: cut, not an error.
    let doubling: String = (0..20).map(|_| "set \"big\" \"${big}${big}\";\n").collect();
    let run = run_in(
        &format!("{V}set \"big\" \"x\";\n{doubling}if string :matches \"${{big}}\" \"xx*\" {{ fileinto \"done\"; }}"),
        MSG,
        &[],
        &HashMap::new(),
    );
    let run = run.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.files[0].folder.as_deref(), Some("done"));
}

const FL: &str = "require [\"fileinto\", \"imap4flags\", \"variables\"];\n";

/// RFC 5232: setflag, addflag, removeflag, hasflag and :flags (§1); a
/// variable as the flags' holder only with "variables" (§1); empty
/// strings and extra spaces ignored (§2, §3.3); removeflag takes every
/// occurrence (§3.3); flags no mailbox can keep (not an IMAP flag) are
/// dropped without an error (§2, §5).
#[test]
fn imap4flags_rfc5232() {
    let got = filed(&format!(
        "{FL}setflag \"\\\\Seen  $a \";\naddflag [\"\", \"$b\", \"$a\"];\nremoveflag \"$a\";\n\
         if hasflag \"$b\" {{ fileinto :flags \"\\\\Flagged  $c\" \"x\"; }}\n\
         addflag \"own\" \"$d\";\nif hasflag \"own\" \"$d\" {{ fileinto :flags \"${{own}}\" \"y\"; }}\nkeep;"
    ));
    assert_eq!(got, ["x \\Flagged $c", "y $d", "keep \\Seen $b"]);
    let cfg = crate::config::SieveConfig::default();
    for bad in [
        "addflag \"own\" \"$d\";",
        "setflag \"own\" [\"$d\", \"$e\"];",
        "if hasflag :comparator \"i;octet\" \"own\" \"$d\" { keep; }",
    ] {
        let e = crate::sieve::scripts::check(&cfg, &format!("require \"imap4flags\";\n{bad}"))
            .unwrap_err();
        assert!(e.to_string().contains("RFC 5232"), "{bad}: {e}");
    }
    let ok = "require \"imap4flags\";\naddflag [\"$d\", \"$e\"];\nif hasflag :comparator \"i;octet\" \"$d\" { keep; }";
    assert!(crate::sieve::scripts::check(&cfg, ok).is_ok());
    // A relation is no variable (Pigeonhole's imap4flags "flagstore"
    // found this refused).
    let ok = "require [\"imap4flags\", \"relational\", \"comparator-i;ascii-numeric\"];\nif hasflag :comparator \"i;ascii-numeric\" :count \"ge\" \"1\" { keep; }";
    assert!(crate::sieve::scripts::check(&cfg, ok).is_ok());
    let got = filed(&format!(
        "{FL}addflag [\"\\\\Recent\", \"a(b\", \"ok\", \"\\\\Bogus\", \"\\\\Answered\"];\nkeep;"
    ));
    assert_eq!(got, ["keep ok \\Answered"]);
}

const I: &str = "require [\"include\", \"fileinto\", \"variables\"];\n";

/// RFC 6609: include needs its require (§3.1); three levels nest, a
/// fourth is a run-time error that keeps the message (§3.1); recursion
/// and a missing script are run-time errors, never upload errors
/// (§3.1, §3.2), :optional skips a missing one, :once a repeated one,
/// :personal is the default and a location once only (§3.2); each
/// script has its own requires (§3.2); stop in an included script stops
/// all (§3.2); variables are private unless global, and global ones are
/// shared, also as global.NAME (§3.4); editheader changes cross both
/// ways (§3.5).
#[test]
fn include_rfc6609() {
    let cfg = crate::config::SieveConfig::default();
    let check = |t: &str| crate::sieve::scripts::check(&cfg, t);
    assert!(
        check("include \"a\";").is_err(),
        "include needs its require"
    );
    assert!(check("require [\"include\", \"variables\"];\nglobal \"a\";").is_ok());
    assert!(
        check("require \"include\";\nglobal \"a\";").is_err(),
        "global needs both"
    );
    assert!(check("require [\"include\", \"variables\"];\nglobal \"1a\";").is_err());
    assert!(check("require \"include\";\ninclude :personal :global \"a\";").is_err());
    // Missing or recursive: stored without an error, failing when run.
    assert!(check("require \"include\";\ninclude \"not-yet\";\ninclude \"main\";").is_ok());

    let lib = |n: &str, t: &str| script(n, &format!("{I}{t}"));
    let all = [
        lib("l1", "include \"l2\";"),
        lib("l2", "include \"l3\";"),
        lib("l3", "fileinto \"deep\";"),
        lib("l4", "include \"l1\";"),
        lib("loop", "include \"main\";"),
        lib("stopper", "fileinto \"stopped\";\nstop;"),
        lib("vars", "global \"shared\";\nset \"shared\" \"${shared}+lib\";\nset \"own\" \"lib\";\nfileinto \"${global.shared}/${own}\";"),
        script("needs", "fileinto \"x\";"),
        lib("once", "fileinto \"once\";"),
        lib("main-once", "include :once \"main\";\nfileinto \"no-loop\";"),
        lib("g-own", "global \"own\";\nset \"own\" \"g\";\nfileinto \"${global.unset}-${own}\";"),
        lib("breaks", "break;"),
        lib("part", "require \"mime\";\nif header :mime :type \"Content-Type\" \"text\" { fileinto \"text-part\"; }"),
    ];
    assert_eq!(
        filed_in(&format!("{I}include :once \"main-once\";"), MSG, &all),
        ["no-loop"],
        ":once on a recursive include is no error"
    );
    assert_eq!(
        filed_in(
            &format!("{I}set \"own\" \"main\";\ninclude \"g-own\";\nfileinto \"${{own}}\";"),
            MSG,
            &all
        ),
        ["-g", "main"],
        "a global and a private variable of one name do not meet; a global never set is empty"
    );
    assert!(run_in(
        &format!("{I}include \"breaks\";"),
        MSG,
        &all,
        &HashMap::new()
    )
    .is_err());
    assert!(run_in(
        &format!("{I}include \"../../etc/passwd\";"),
        MSG,
        &all,
        &HashMap::new()
    )
    .is_err());
    let mixed = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: image/png\r\n\r\nx\r\n--b\r\nContent-Type: text/plain\r\n\r\ny\r\n--b--\r\n";
    assert_eq!(
        filed_in(
            "require [\"include\", \"foreverypart\", \"mime\", \"fileinto\"];\nforeverypart { include \"part\"; }",
            mixed,
            &all
        ),
        ["text-part"],
        "the included script sees the current part"
    );
    assert!(check("require [\"include\", \"variables\"];\nset \"global.12\" \"v\";").is_err());
    let set_then_global = "require [\"include\", \"variables\"];\nset \"a\" \"1\";\nglobal \"a\";";
    assert!(
        check(set_then_global).is_err()
            || run_in(set_then_global, MSG, &[], &HashMap::new()).is_err()
    );
    assert_eq!(
        filed_in(&format!("{I}include \"l2\";"), MSG, &all),
        ["deep"],
        "three levels"
    );
    let four = run_in(&format!("{I}include \"l1\";"), MSG, &all, &HashMap::new());
    assert!(
        four.is_err(),
        "a fourth level is an error (the message is then kept)"
    );
    assert!(run_in(&format!("{I}include \"loop\";"), MSG, &all, &HashMap::new()).is_err());
    assert!(run_in(&format!("{I}include \"gone\";"), MSG, &all, &HashMap::new()).is_err());
    assert_eq!(
        filed_in(
            &format!("{I}include :optional \"gone\";\nfileinto \"on\";"),
            MSG,
            &all
        ),
        ["on"]
    );
    assert_eq!(
        filed_in(
            &format!("{I}include :once \"once\";\ninclude :once \"once\";"),
            MSG,
            &all
        ),
        ["once"]
    );
    assert!(
        run_in(
            &format!("{I}include \"needs\";"),
            MSG,
            &all,
            &HashMap::new()
        )
        .is_err(),
        "an included script needs its own require"
    );
    assert_eq!(
        filed_in(
            &format!("{I}include \"stopper\";\nfileinto \"after\";"),
            MSG,
            &all
        ),
        ["stopped"]
    );
    assert_eq!(
        filed_in(
            &format!("{I}global \"shared\";\nset \"shared\" \"main\";\nset \"own\" \"main\";\ninclude \"vars\";\nfileinto \"${{shared}}/${{own}}\";"),
            MSG,
            &all
        ),
        ["main+lib/lib", "main+lib/main"]
    );
    let edit = [script(
        "edit",
        "require \"editheader\";\nif exists \"X-Main\" { addheader \"X-Lib\" \"1\"; }",
    )];
    assert_eq!(
        filed_in(
            "require [\"include\", \"fileinto\", \"editheader\"];\naddheader \"X-Main\" \"1\";\ninclude \"edit\";\nif exists \"X-Lib\" { fileinto \"both\"; }",
            MSG,
            &edit
        ),
        ["both"]
    );
}

/// The key a run tracks `id` under.
fn key(id: &str) -> u64 {
    u64::from_be_bytes(sha2::Sha256::digest(id.as_bytes())[..8].try_into().unwrap())
}

const D: &str = "require [\"duplicate\", \"fileinto\", \"variables\"];\n";

/// RFC 7352: only earlier runs count, so two tests of one run agree
/// (§3); :header and :uniqueid exclude each other (§3.1); an absent
/// header is never a duplicate, the first of several is used, ids are
/// compared case-sensitively (§3.1); :seconds 0 is never a duplicate,
/// a period past sieve.max-tracking is cut to it without an error, and
/// :last renews the period (§3.3). A failed run tracks nothing (§3):
/// the caller keeps `seen` only after a run that succeeded.
#[test]
fn duplicate_rfc7352() {
    let none = HashMap::new();
    let run = run_in(
        &format!("{D}if duplicate {{ fileinto \"a\"; }}\nif duplicate {{ fileinto \"b\"; }}"),
        MSG,
        &[],
        &none,
    )
    .unwrap();
    assert_eq!(run.files.len(), 1, "neither test is a duplicate: keep");
    assert_eq!(run.seen, [(key("m1@remote.test"), NOW + 7 * 86400); 2]);
    assert!(crate::sieve::scripts::check(
        &Default::default(),
        &format!("{D}if duplicate :header \"x-id\" :uniqueid \"a\" {{ keep; }}")
    )
    .is_err());
    let seen: HashMap<u64, i64> =
        [(key("First"), NOW + 10), (key("m1@remote.test"), NOW + 10)].into();
    let dup = |t: &str| {
        let r = run_in(
            &format!("{D}if {t} {{ fileinto \"dup\"; }}"),
            MSG,
            &[],
            &seen,
        )
        .unwrap();
        r.files.iter().any(|f| f.folder.as_deref() == Some("dup"))
    };
    assert!(dup("duplicate"));
    assert!(dup("duplicate :header \"X-Id\""), "the first X-Id");
    assert!(!dup("duplicate :header \"X-None\""));
    assert!(!dup("duplicate :uniqueid \"first\""), "case-sensitive");
    assert!(dup("duplicate :uniqueid \"First\""));
    assert!(
        dup("duplicate :uniqueid \"m1@remote.test\""),
        "one id, whatever its source"
    );
    let spaced = "X-Sp:   First  \r\n\r\nx";
    let r = run_in(
        &format!("{D}if duplicate :header \"X-Sp\" {{ fileinto \"dup\"; }}"),
        spaced,
        &[],
        &seen,
    )
    .unwrap();
    assert_eq!(
        r.files[0].folder.as_deref(),
        Some("dup"),
        "trimmed before the check"
    );
    assert!(!dup("duplicate :seconds 0"));
    let r = run_in(
        &format!("{D}if duplicate :seconds 2147483647 {{ keep; }}"),
        MSG,
        &[],
        &none,
    )
    .unwrap();
    assert_eq!(r.seen[0].1, NOW + 90 * 86400, "cut to sieve.max-tracking");
    let r = run_in(
        &format!("{D}if duplicate :seconds 60 {{ keep; }}"),
        MSG,
        &[],
        &seen,
    )
    .unwrap();
    assert!(r.seen.is_empty(), "without :last the first period stands");
    let r = run_in(
        &format!("{D}if duplicate :seconds 60 :last {{ keep; }}"),
        MSG,
        &[],
        &seen,
    )
    .unwrap();
    assert_eq!(r.seen, [(key("m1@remote.test"), NOW + 60)], ":last renews");
}

/// RFC 5231: i;ascii-numeric handles 32-bit unsigned numbers (and
/// more); :count counts. RFC 5183: an unknown environment item is
/// false, not an error; vendor items are vnd.-named. RFC 6131:
/// :seconds from 0 to 2^31-1, not with :days. RFC 5260: dates at the
/// end of a field after a semicolon; :zone offsets, :originalzone;
/// currentdate (sieve-rs reads the clock once, when a run starts, so
/// every currentdate of a run is one instant). RFC 5173: body transfer-decoded, ISO-8859-1 as
/// UTF-8, parts apart, no MIME headers, no match variables.
#[test]
fn small_extensions() {
    let r =
        "require [\"fileinto\", \"relational\", \"comparator-i;ascii-numeric\", \"variables\"];\n";
    assert_eq!(
        filed(&format!("{r}if string :value \"gt\" :comparator \"i;ascii-numeric\" \"4294967295\" \"4294967294\" {{ fileinto \"big\"; }}\n\
            if header :count \"eq\" :comparator \"i;ascii-numeric\" \"X-Id\" \"2\" {{ fileinto \"two\"; }}")),
        ["big", "two"]
    );
    let env = "require [\"fileinto\", \"environment\"];\n";
    assert_eq!(
        filed(&format!(
            "{env}if environment :is \"no-such-item\" \"\" {{ fileinto \"x\"; }}\n\
            if environment :is \"vnd.petrel.none\" \"\" {{ fileinto \"y\"; }}\n\
            if environment :is \"name\" \"Petrel\" {{ fileinto \"petrel\"; }}\n\
            if environment :is \"location\" \"MDA\" {{ fileinto \"mda\"; }}\n\
            if environment :is \"phase\" \"during\" {{ fileinto \"during\"; }}\n\
            if environment :is \"host\" \"mx.test\" {{ fileinto \"host\"; }}"
        )),
        ["petrel", "mda", "during", "host"]
    );
    let cfg = crate::config::SieveConfig::default();
    let vs = "require [\"vacation\", \"vacation-seconds\"];\n";
    for ok in ["0", "86400", "2147483647"] {
        let t = format!("{vs}vacation :seconds {ok} \"away\";");
        assert!(crate::sieve::scripts::check(&cfg, &t).is_ok(), "{ok}");
    }
    assert!(crate::sieve::scripts::check(
        &cfg,
        &format!("{vs}vacation :days 1 :seconds 5 \"away\";")
    )
    .is_err());
    assert!(crate::sieve::scripts::check(
        &cfg,
        "require \"vacation-seconds\";\nvacation :seconds 5 \"away\";"
    )
    .is_err());
    let d = "require [\"fileinto\", \"date\", \"variables\", \"relational\"];\n";
    let raw = "Received: from a by b; Tue, 1 Dec 2026 08:00:00 -0500\r\nDate: Tue, 1 Dec 2026 10:20:30 +0100\r\n\
        X-Two: Mon, 30 Nov 2026 01:00:00 +0000; Tue, 1 Dec 2026 02:00:00 +0000\r\n\r\nx";
    assert_eq!(
        filed_in(&format!("{d}if date :originalzone :is \"received\" \"hour\" \"08\" {{ fileinto \"after-semicolon\"; }}\n\
            if date :zone \"+0000\" :is \"date\" \"iso8601\" \"2026-12-01T09:20:30Z\" {{ fileinto \"utc\"; }}\n\
            if currentdate :value \"ge\" \"date\" \"2026-01-01\" {{ fileinto \"now\"; }}\n\
            if date :is \"date\" \"hour\" \"09\" {{ fileinto \"local-is-utc\"; }}\n\
            if date :originalzone :is \"x-two\" \"hour\" \"02\" {{ fileinto \"last-date\"; }}"), raw, &[]),
        ["after-semicolon", "utc", "now", "local-is-utc", "last-date"]
    );
    let b = "require [\"fileinto\", \"body\", \"variables\"];\n";
    let raw = "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 au lait\r\n--b\r\nContent-Type: text/plain\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nc2Vjb25kIHBhcnQ=\r\n--b\r\nContent-Type: text/plain\r\n\r\nnul\0 then more\r\n--b--\r\n";
    assert_eq!(
        filed_in(
            &format!(
                "{b}if body :text :contains \"café\" {{ fileinto \"qp\"; }}\n\
            if body :text :contains \"second part\" {{ fileinto \"b64\"; }}\n\
            if body :text :contains \"lait second\" {{ fileinto \"across\"; }}\n\
            if body :text :contains \"Content-Transfer\" {{ fileinto \"headers\"; }}\n\
            if body :text :matches \"caf* *\" {{ fileinto \"vars-${{1}}\"; }}\n\
            if body :text :contains \"then more\" {{ fileinto \"past-nul\"; }}"
            ),
            raw,
            &[]
        ),
        ["qp", "b64", "vars-", "past-nul"]
    );
}

/// RFC 4790 through Sieve's comparators (i;octet, i;ascii-casemap,
/// i;ascii-numeric, chosen with :comparator): equality is reflexive,
/// symmetric and transitive; ordering (relational :value) reflexive,
/// transitive and trichotomous, and consistent with equality; substring
/// consistent with equality; "default" and wildcards name no comparator.
#[test]
fn comparators_rfc4790() {
    let words = ["", "a", "A", "ab", "b", "10", "9", "010", "x1", "é"];
    for cmp in ["i;octet", "i;ascii-casemap", "i;ascii-numeric"] {
        let mut text = String::from(
            "require [\"fileinto\", \"relational\", \"comparator-i;ascii-numeric\", \"variables\"];\n",
        );
        for (i, a) in words.iter().enumerate() {
            for (j, b) in words.iter().enumerate() {
                for (op, test) in [
                    ("eq", ":is".to_string()),
                    ("lt", ":value \"lt\"".to_string()),
                    ("gt", ":value \"gt\"".to_string()),
                    ("sub", ":contains".to_string()),
                ] {
                    text.push_str(&format!(
                        "if string :comparator \"{cmp}\" {test} \"{a}\" \"{b}\" {{ fileinto \"{i} {j} {op}\"; }}\n"
                    ));
                }
            }
        }
        let got = filed(&text);
        let has = |i: usize, j: usize, op: &str| got.contains(&format!("{i} {j} {op}"));
        let n = words.len();
        for i in 0..n {
            assert!(
                has(i, i, "eq") && !has(i, i, "lt"),
                "{cmp}: reflexive at {i}"
            );
            if cmp != "i;ascii-numeric" {
                assert!(has(i, i, "sub"), "{cmp}: a string contains itself");
            }
            for j in 0..n {
                assert_eq!(has(i, j, "eq"), has(j, i, "eq"), "{cmp}: symmetric {i} {j}");
                let count = ["eq", "lt", "gt"].iter().filter(|o| has(i, j, o)).count();
                assert_eq!(count, 1, "{cmp}: trichotomous {i} {j}");
                assert_eq!(has(i, j, "lt"), has(j, i, "gt"), "{cmp}: converse {i} {j}");
                if has(i, j, "eq") && cmp != "i;ascii-numeric" {
                    assert!(
                        has(i, j, "sub"),
                        "{cmp}: substring agrees with equality {i} {j}"
                    );
                }
                for k in 0..n {
                    if has(i, j, "eq") && has(j, k, "eq") {
                        assert!(has(i, k, "eq"), "{cmp}: transitive eq {i} {j} {k}");
                    }
                    if has(i, j, "lt") && has(j, k, "lt") {
                        assert!(has(i, k, "lt"), "{cmp}: transitive lt {i} {j} {k}");
                    }
                }
            }
        }
    }
    // Case folds under i;ascii-casemap only; 010 equals 10 under
    // i;ascii-numeric, and strings without a leading digit are equal
    // there (positive infinity, above every number).
    let f =
        "require [\"fileinto\", \"comparator-i;ascii-numeric\", \"relational\", \"variables\"];\n";
    assert_eq!(
        filed(&format!(
            "{f}if string :comparator \"i;ascii-casemap\" :is \"a\" \"A\" {{ fileinto \"casemap\"; }}\n\
             if string :comparator \"i;octet\" :is \"a\" \"A\" {{ fileinto \"octet\"; }}\n\
             if string :comparator \"i;ascii-numeric\" :is \"010\" \"10\" {{ fileinto \"numeric\"; }}\n\
             if string :comparator \"i;ascii-numeric\" :value \"gt\" \"x\" \"99999999999\" {{ fileinto \"infinity\"; }}"
        )),
        ["casemap", "numeric", "infinity"]
    );
    let cfg = crate::config::SieveConfig::default();
    for name in ["default", "i;*", "*"] {
        let t = format!("if header :comparator \"{name}\" :is \"Subject\" \"x\" {{ keep; }}");
        assert!(crate::sieve::scripts::check(&cfg, &t).is_err(), "{name}");
    }
}

/// RFC 8580: :fcc takes fileinto's options, each once, and needs the
/// extensions they come from; a response with 8-bit text says how it
/// is encoded (what is filed is what is sent).
#[test]
fn fcc_rfc8580() {
    let cfg = crate::config::SieveConfig::default();
    let check = |t: &str| crate::sieve::scripts::check(&cfg, t);
    let r = "require [\"vacation\", \"fcc\", \"mailbox\", \"imap4flags\", \"special-use\"];\n";
    assert!(check(&format!(
        "{r}vacation :fcc \"Sent\" :create :flags \"\\\\Seen\" :specialuse \"\\\\Sent\" \"away\";"
    ))
    .is_ok());
    assert!(check(&format!(
        "{r}vacation :fcc \"Sent\" :create :create \"away\";"
    ))
    .is_err());
    assert!(
        check("require [\"vacation\", \"fcc\"];\nvacation :fcc \"Sent\" :create \"away\";")
            .is_err()
    );
    assert!(check("require \"vacation\";\nvacation :fcc \"Sent\" \"away\";").is_err());
    assert!(check("require [\"reject\", \"fcc\"];\nreject :fcc \"Sent\" \"no\";").is_err());
    let run = run_in(
        "require [\"vacation\", \"fcc\"];\nvacation :fcc \"Sent\" \"Café fermé.\";",
        MSG,
        &[],
        &HashMap::new(),
    )
    .unwrap();
    let (to, m) = run.vacation().expect("a response");
    let m = String::from_utf8_lossy(&response(to, m).raw).into_owned();
    assert!(m.contains("Content-Transfer-Encoding: "), "{m}");
    assert_eq!(
        run.files
            .iter()
            .filter(|f| f.folder.as_deref() == Some("Sent"))
            .count(),
        1
    );
}
