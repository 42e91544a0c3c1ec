//! `cargo xtask conformance`: runs the transcripts in conformance/ against
//! a live server (through the `conformance` test target) and prints, per
//! RFC in spec/, how many requirements are covered by a test and how many
//! of those pass.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Deserialize;

use crate::{cargo, logged, root};

#[derive(Deserialize)]
struct Spec {
    rfc: u32,
    title: String,
    #[serde(default, rename = "req")]
    reqs: Vec<Req>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Req {
    id: String,
    section: String,
    level: String,
    text: String,
    #[serde(default)]
    tests: Vec<String>,
}

pub fn test_log() -> PathBuf {
    root().join("target/xtask/test-output.log")
}

fn results_file() -> PathBuf {
    root().join("target/conformance/results.json")
}

/// Test outcomes from libtest output: "binary::test::path" -> passed.
fn parse_test_log(log: &str) -> HashMap<String, bool> {
    let mut out = HashMap::new();
    let mut binary = String::from("?");
    for line in log.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Running ") {
            // "Running tests/smtp.rs (target/debug/deps/smtp-…)" or
            // "Running unittests src/lib.rs (…)"
            let src = rest
                .split_whitespace()
                .find(|w| w.ends_with(".rs"))
                .unwrap_or("?");
            binary = if src == "src/lib.rs" {
                "lib".into()
            } else {
                src.rsplit('/')
                    .next()
                    .unwrap_or(src)
                    .trim_end_matches(".rs")
                    .to_string()
            };
            // Test targets whose file name differs from the target name.
            match binary.as_str() {
                "smtp_imap" => binary = "stress".into(),
                "imap_clients" => binary = "stress_imap".into(),
                _ => {}
            }
            continue;
        }
        if let Some(rest) = l.strip_prefix("test ") {
            if let Some((name, result)) = rest.rsplit_once(" ... ") {
                out.insert(format!("{binary}::{name}"), result.trim() == "ok");
            }
        }
    }
    out
}

pub fn run(from_ci: bool) -> Result<(), String> {
    let _ = std::fs::remove_file(results_file());
    if !from_ci {
        let _ = std::fs::remove_file(test_log());
        // Outcomes of the tests the matrices name.
        let _ = logged(cargo().args([
            "test",
            "--workspace",
            "--lib",
            "--tests",
            "--",
            "--test-threads",
            "2",
        ]));
    }
    let transcripts = logged(cargo().args(["test", "--test", "conformance"]));
    let log = std::fs::read_to_string(test_log()).unwrap_or_default();
    let tests = parse_test_log(&log);
    let transcript_results: BTreeMap<String, bool> = std::fs::read_to_string(results_file())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();

    let mut specs = Vec::new();
    let spec_dir = root().join("spec");
    let mut entries: Vec<_> = std::fs::read_dir(&spec_dir)
        .map_err(|e| format!("cannot read {}: {e}", spec_dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let spec: Spec = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        specs.push(spec);
    }

    let mut unknown = Vec::new();
    println!(
        "\n{:<10} {:<44} {:>6} {:>8} {:>8} {:>6}",
        "RFC", "title", "reqs", "covered", "passing", "MUST"
    );
    let mut all_ok = true;
    for spec in &specs {
        let (mut covered, mut passing, mut must, mut must_pass) = (0, 0, 0, 0);
        for r in &spec.reqs {
            let is_must = r.level.starts_with("MUST")
                || r.level.starts_with("SHALL")
                || r.level == "REQUIRED";
            if is_must {
                must += 1;
            }
            if r.tests.is_empty() {
                continue;
            }
            covered += 1;
            let ok = r.tests.iter().all(|t| {
                let res = match t.strip_prefix("transcript:") {
                    Some(name) => transcript_results.get(name).copied(),
                    None => tests.get(t).copied(),
                };
                if res.is_none() {
                    unknown.push(format!("{} {}: {t}", spec.rfc, r.id));
                }
                res == Some(true)
            });
            if ok {
                passing += 1;
                if is_must {
                    must_pass += 1;
                }
            } else {
                all_ok = false;
            }
        }
        println!(
            "{:<10} {:<44} {:>6} {:>8} {:>8} {:>3}/{:<3}",
            format!("RFC {}", spec.rfc),
            spec.title.chars().take(44).collect::<String>(),
            spec.reqs.len(),
            covered,
            passing,
            must_pass,
            must
        );
    }
    println!("(MUST column: MUST/SHALL requirements covered and passing / all of them)");
    sentence_figures(&specs);
    if !unknown.is_empty() {
        println!("\nRequirements naming tests that did not run or do not exist:");
        for u in &unknown {
            println!("  {u}");
        }
        all_ok = false;
    }
    transcripts?;
    if all_ok {
        Ok(())
    } else {
        Err("some covered requirements are not passing".into())
    }
}

/// The RFC's own normative sentences against each matrix's `covers` and
/// `[not_applicable]` (../shared/tools/rfc-requirements, where present):
/// MUST and SHOULD sentences claimed / all of them.
fn sentence_figures(specs: &[Spec]) {
    let tool = root().join("../shared/tools/rfc-requirements");
    if !tool.exists() {
        println!("(sentence-level figures need ../shared/tools/rfc-requirements; not present)");
        return;
    }
    println!(
        "\n{:<10} {:>20} {:>20}",
        "RFC", "MUST sentences", "SHOULD sentences"
    );
    for spec in specs {
        let path = root().join(format!("spec/rfc{}.toml", spec.rfc));
        let Ok(out) = std::process::Command::new(&tool)
            .arg(spec.rfc.to_string())
            .arg("--spec")
            .arg(&path)
            .args(["--missing", "0"])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        // "RFC 9051 MUST: 247 sentences, 3 covered, 1 not applicable, 243 missing"
        let figure = |level: &str| -> String {
            text.lines()
                .find(|l| l.starts_with(&format!("RFC {} {level}:", spec.rfc)))
                .and_then(|l| {
                    let n: Vec<u32> = l
                        .split(|c: char| !c.is_ascii_digit())
                        .filter_map(|w| w.parse().ok())
                        .collect();
                    // [rfc, total, covered, n/a, missing]
                    (n.len() >= 5).then(|| format!("{}/{} ({} missing)", n[2] + n[3], n[1], n[4]))
                })
                .unwrap_or_else(|| "?".into())
        };
        println!(
            "{:<10} {:>20} {:>20}",
            format!("RFC {}", spec.rfc),
            figure("MUST"),
            figure("SHOULD")
        );
    }
    println!("(claimed by a test in `covers`, or not applicable with a reason / all; RFC texts in ../shared/rfc)");
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_libtest_output() {
        let log = "     Running unittests src/lib.rs (target/debug/deps/petrel-1)\ntest smtp::proto::tests::basic ... ok\n     Running tests/smtp.rs (target/debug/deps/smtp-2)\ntest ehlo ... FAILED\n";
        let m = super::parse_test_log(log);
        assert_eq!(m.get("lib::smtp::proto::tests::basic"), Some(&true));
        assert_eq!(m.get("smtp::ehlo"), Some(&false));
    }
}
