//! RFC 6376 (DKIM), the verifier's side, sentence by sentence: messages
//! signed by dkimpy's signing core with chosen tags (so that malformed
//! and unusual signatures can be made), keys published by dnsmasq with
//! chosen records, delivered to a running Petrel over SMTP; the
//! Authentication-Results header of each stored message is checked.
//! DMARC for the signing domain is `p=none` and SPF fails, so `dmarc=pass`
//! means a signature counted and `dmarc=fail` that the mail was treated as
//! unsigned.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::dns::{Dns, Rec};
use common::*;

/// The spam filter is off: failing signatures would send messages to
/// Junk, and these tests read every case's results in the Inbox.
const OPEN: &str = "[imap]\nauth-without-tls = true\n[spam]\nenable = false\n";

/// Signs with dkimpy's header generator, bypassing its own checks: the
/// tags are exactly `fields` (`{bh}` is replaced by the body hash), in
/// that order, then `b=`; `h` lists the header fields hashed.
fn raw_sign(
    key: &Path,
    msg: &str,
    alg: &str,
    canon: &str,
    fields: &[(&str, &str)],
    h: &[&str],
) -> String {
    let spec = serde_json::json!({ "a": alg, "c": canon, "fields": fields, "h": h });
    let script = r#"
import sys, json, base64, dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import parse_pem_private_key
spec = json.loads(sys.argv[2])
key = parse_pem_private_key(open(sys.argv[1], "rb").read())
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
alg = spec["a"].encode()
d.signature_algorithm = alg
d.hasher = dkim.HASH_ALGORITHMS[alg]
cp = CanonicalizationPolicy.from_c_value(spec["c"].encode())
body = cp.canonicalize_body(d.body)
bh = base64.b64encode(d.hasher(body).digest()).decode()
fields = [(k.encode(), v.replace("{bh}", bh).encode()) for k, v in spec["fields"]]
fields.append((b"b", b"0" * 60))
inc = tuple(x.encode().lower() for x in spec["h"])
res = d.gen_header(fields, inc, cp, b"DKIM-Signature", key)
sys.stdout.buffer.write(b"DKIM-Signature: " + res + msg)
"#;
    let spec = spec.to_string();
    common::dkimpy::python_filter(script, &[key.as_os_str(), spec.as_ref()], msg)
}

/// The usual tags for selector `s` of d.test.
fn tags<'a>(s: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut t = vec![
        ("v", "1"),
        ("a", "rsa-sha256"),
        ("c", "relaxed/relaxed"),
        ("d", "d.test"),
        ("s", s),
        ("h", "from:to:subject"),
        ("bh", "{bh}"),
    ];
    for (k, v) in extra {
        match t.iter_mut().find(|(tk, _)| tk == k) {
            Some(slot) => slot.1 = v,
            None => t.push((k, v)),
        }
    }
    t
}

fn message(case: &str) -> String {
    format!("From: ann@d.test\r\nTo: joe@example.org\r\nSubject: case {case}\r\n\r\nHello from case {case}.\r\n")
}

#[tokio::test]
async fn signatures_and_keys_sentence_by_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let (k2048, p2048) = common::dkimpy::rsa_key(tmp.path(), 2048);
    let (k1024, p1024) = common::dkimpy::rsa_key(tmp.path(), 1024);
    let (k4096, p4096) = common::dkimpy::rsa_key(tmp.path(), 4096);
    let (k512, p512) = common::dkimpy::rsa_key(tmp.path(), 512);
    let key = |sel: &str, record: String| Rec::Txt(format!("{sel}._domainkey.d.test"), record);
    let half = p2048.len() / 2;
    let dns = Dns::start(&[
        Rec::Txt("d.test".into(), "v=spf1 -all".into()),
        Rec::Txt("_dmarc.d.test".into(), "v=DMARC1; p=none".into()),
        key("ok", format!("v=DKIM1; k=rsa; p={p2048}")),
        key("k1024", format!("v=DKIM1; k=rsa; p={p1024}")),
        key("k4096", format!("v=DKIM1; k=rsa; p={p4096}")),
        key("k512", format!("v=DKIM1; k=rsa; p={p512}")),
        key("revoked", "v=DKIM1; k=rsa; p=".into()),
        key("v2", format!("v=DKIM2; k=rsa; p={p2048}")),
        key(
            "unknowntags",
            format!("v=DKIM1; zz=yes; k=rsa; n=a note; g=old; p={p2048}"),
        ),
        key("badk", format!("v=DKIM1; k=foo; p={p2048}")),
        key("sha1only", format!("v=DKIM1; h=sha1; k=rsa; p={p2048}")),
        key("strict", format!("v=DKIM1; t=s; k=rsa; p={p2048}")),
        key("testing", format!("v=DKIM1; t=y; k=rsa; p={p2048}")),
        key("email", format!("v=DKIM1; s=email; k=rsa; p={p2048}")),
        key(
            "otherservice",
            format!("v=DKIM1; s=tlsrpt; k=rsa; p={p2048}"),
        ),
        key("flags", format!("v=DKIM1; t=zz; k=rsa; p={p2048}")),
        key("vnotfirst", format!("k=rsa; v=DKIM1; p={p2048}")),
        key(
            "hashes",
            format!("v=DKIM1; h=sha256:future; k=rsa; p={p2048}"),
        ),
        Rec::TxtParts(
            "split._domainkey.d.test".into(),
            vec![
                format!("v=DKIM1; k=rsa; p={}", &p2048[..half]),
                p2048[half..].to_string(),
            ],
        ),
    ]);
    let s = TestServer::start_with(&format!("{OPEN}{}", dns.resolver_toml()));
    s.account("joe@example.org");

    // (case, signed message, what the AR must say)
    let mut cases: Vec<(&str, String, &[&str], &[&str])> = Vec::new();
    let sign = |case: &str, key: &Path, alg: &str, canon: &str, fields: &[(&str, &str)]| {
        let h: Vec<&str> = fields
            .iter()
            .find(|(k, _)| *k == "h")
            .map(|(_, v)| v.split(':').collect())
            .unwrap_or_default();
        raw_sign(key, &message(case), alg, canon, fields, &h)
    };
    const PASS: &[&str] = &["dkim=pass", "dmarc=pass"];
    const NOT: &[&str] = &["dmarc=fail"];
    // §3.3, §3.4: rsa-sha256 with both canonicalizations.
    cases.push((
        "relaxed",
        sign(
            "relaxed",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "simple",
        sign(
            "simple",
            &k2048,
            "rsa-sha256",
            "simple/simple",
            &tags("ok", &[("c", "simple/simple")]),
        ),
        PASS,
        &[],
    ));
    // §3.3.3 with RFC 8301 §3.2: 1024 to 4096 bits verify, 512 never.
    cases.push((
        "k1024",
        sign(
            "k1024",
            &k1024,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("k1024", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "k4096",
        sign(
            "k4096",
            &k4096,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("k4096", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "k512",
        sign(
            "k512",
            &k512,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("k512", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    // RFC 8301 §3.1: rsa-sha1 is not verified.
    cases.push((
        "sha1",
        sign(
            "sha1",
            &k2048,
            "rsa-sha1",
            "relaxed/relaxed",
            &tags("ok", &[("a", "rsa-sha1")]),
        ),
        &["dkim=neutral", "dmarc=fail"],
        &["dkim=pass"],
    ));
    // §3.5 and §6.1.1: malformed or unacceptable signatures count for nothing.
    cases.push((
        "nofrom",
        sign(
            "nofrom",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("h", "to:subject")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "foreign-i",
        sign(
            "foreign-i",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("i", "ann@other.test")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    let mut no_bh = tags("ok", &[]);
    no_bh.retain(|(k, _)| *k != "bh");
    cases.push((
        "no-bh",
        sign("no-bh", &k2048, "rsa-sha256", "relaxed/relaxed", &no_bh),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "v2",
        sign(
            "v2",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("v", "2")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "canon",
        sign(
            "canon",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("c", "foo/bar")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "alg",
        sign(
            "alg",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("a", "rsa-sha512")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "expired",
        sign(
            "expired",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("t", "1000"), ("x", "2000")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "x-before-t",
        sign(
            "x-before-t",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("t", "9999999999"), ("x", "9999999990")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    let mut dup = tags("ok", &[]);
    dup.push(("d", "d.test"));
    cases.push((
        "dup-tag",
        sign("dup-tag", &k2048, "rsa-sha256", "relaxed/relaxed", &dup),
        NOT,
        &["dkim=pass"],
    ));
    // §3.5: unknown tags are hashed and otherwise ignored; a far-future t= is fine.
    cases.push((
        "unknown-tag",
        sign(
            "unknown-tag",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("zz", "future"), ("t", "999999999999")]),
        ),
        PASS,
        &[],
    ));
    // §3.5: q= lists mechanisms in order, unknown ones ignored.
    cases.push((
        "query",
        sign(
            "query",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("q", "dns/txt:future/x")]),
        ),
        PASS,
        &[],
    ));
    // §3.10: i= in a subdomain of d= unless the key says t=s.
    cases.push((
        "sub-i",
        sign(
            "sub-i",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("ok", &[("i", "ann@sub.d.test")]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "strict-i",
        sign(
            "strict-i",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("strict", &[("i", "ann@sub.d.test")]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    // §3.6.1 and §6.1.2: key records.
    cases.push((
        "revoked",
        sign(
            "revoked",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("revoked", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-v2",
        sign(
            "key-v2",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("v2", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-unknown-tags",
        sign(
            "key-unknown-tags",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("unknowntags", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "key-k",
        sign(
            "key-k",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("badk", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-h",
        sign(
            "key-h",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("sha1only", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-missing",
        sign(
            "key-missing",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("nothere", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-service",
        sign(
            "key-service",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("email", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "key-other-service",
        sign(
            "key-other-service",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("otherservice", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-flags",
        sign(
            "key-flags",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("flags", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "key-v-not-first",
        sign(
            "key-v-not-first",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("vnotfirst", &[]),
        ),
        NOT,
        &["dkim=pass"],
    ));
    cases.push((
        "key-hashes",
        sign(
            "key-hashes",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("hashes", &[]),
        ),
        PASS,
        &[],
    ));
    cases.push((
        "key-split",
        sign(
            "key-split",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("split", &[]),
        ),
        PASS,
        &[],
    ));
    // §3.6.1 t=y: reported, but the mail counts as unsigned.
    cases.push((
        "testing",
        sign(
            "testing",
            &k2048,
            "rsa-sha256",
            "relaxed/relaxed",
            &tags("testing", &[]),
        ),
        &["dkim=pass", "dmarc=fail"],
        &[],
    ));
    // §3.5 l= (and §8.2): a signature covering only part of the body is
    // not trusted, deliberately: text added after the signed length could
    // be anything. It is reported neutral and counts for nothing.
    let body_len = "Hello from case length.\r\n".len().to_string();
    let length = sign(
        "length",
        &k2048,
        "rsa-sha256",
        "simple/simple",
        &tags("ok", &[("c", "simple/simple"), ("l", &body_len)]),
    );
    cases.push((
        "length",
        format!("{length}Added by a list.\r\n"),
        &["dkim=neutral", "dmarc=fail"],
        &["dkim=pass"],
    ));
    // §6.1.3: header names are matched case-insensitively.
    let upper = sign(
        "upper",
        &k2048,
        "rsa-sha256",
        "relaxed/relaxed",
        &tags("ok", &[]),
    );
    cases.push((
        "upper",
        upper.replace("\r\nSubject: case upper", "\r\nSUBJECT: case upper"),
        PASS,
        &[],
    ));
    // §4.2, §6.1: a bad signature beside a good one: both reported, the
    // good one counts.
    let good = sign(
        "two",
        &k2048,
        "rsa-sha256",
        "relaxed/relaxed",
        &tags("ok", &[]),
    );
    let two = raw_sign(
        &k2048,
        &good,
        "rsa-sha256",
        "relaxed/relaxed",
        &tags("revoked", &[]),
        &["from", "to", "subject"],
    );
    cases.push((
        "two",
        two,
        &["dkim=pass", "dmarc=pass", "header.s=revoked"],
        &[],
    ));

    for (case, msg, _, _) in &cases {
        let r = smtp_send(s.addr("smtp"), "ann@d.test", &["joe@example.org"], msg).await;
        // §6.3: a signature that does not verify never causes a 4xx.
        assert!(r.starts_with("250"), "case {case}: {r}");
    }
    let got = wait_for_mail(s.addr("imap"), "joe@example.org", cases.len()).await;
    let by_case: HashMap<String, String> = got
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            let case = text
                .split("\r\n")
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("subject: case ")
                        .map(String::from)
                })
                .unwrap();
            (case, auth_results(m))
        })
        .collect();
    let mut wrong = Vec::new();
    for (case, _, must, must_not) in &cases {
        let ar = &by_case[*case];
        if must.iter().any(|m| !ar.contains(m)) || must_not.iter().any(|m| ar.contains(m)) {
            wrong.push(format!(
                "{case}: must {must:?}, must not {must_not:?}:\n{ar}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
