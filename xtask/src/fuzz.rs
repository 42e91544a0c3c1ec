//! `cargo xtask fuzz --seconds N`: builds the cargo-fuzz targets in fuzz/
//! with libFuzzer's coverage instrumentation on the *stable* toolchain and
//! runs each for N seconds.
//!
//! cargo-fuzz itself passes nightly-only `-Z` flags (sanitizers). What
//! libFuzzer needs for coverage guidance is SanitizerCoverage, which stable
//! rustc exposes through `-C passes=sancov-module` and LLVM arguments; the
//! `--cfg fuzzing` flag is what `libfuzzer-sys` and cargo-fuzz set. The
//! result is a coverage-guided fuzzer without AddressSanitizer (Rust's own
//! bounds and overflow checks, kept on here, catch what matters in safe
//! code). New inputs that grow coverage go to fuzz/target/corpus/<target>;
//! crashes to fuzz/artifacts/<target>, and a crash input worth keeping is
//! committed to fuzz/corpus/<target> so the seed replay test keeps it fixed.

use std::process::Command;

use crate::{cargo, root};

pub const TARGETS: &[&str] = &[
    "smtp_command",
    "smtp_data",
    "smtp_bdat",
    "smtp_reply",
    "sasl",
    "spf_record",
    "imap_command",
    "pop3_command",
    "managesieve_command",
    "message",
    "autodiscover",
    "jmap_request",
    "jmap_email",
    "spam_tokens",
    "milter_reply",
];

const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";
// Debug assertions and overflow checks come from fuzz/Cargo.toml's
// release profile, so that one dependency can be exempted (mail-parser,
// see there).

/// The host triple: passing it as `--target` keeps RUSTFLAGS (and so the
/// instrumentation) off build scripts and proc macros, as cargo-fuzz does.
fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "cannot find the host triple in `rustc -vV`".into())
}

pub fn run(seconds: u64) -> Result<(), String> {
    let fuzz = root().join("fuzz");
    let triple = host_triple()?;
    crate::run(
        cargo()
            .current_dir(&fuzz)
            .env("RUSTFLAGS", RUSTFLAGS)
            .args([
                "build",
                "--release",
                "--bins",
                "--target",
                &triple,
                "--target-dir",
            ])
            .arg(fuzz.join("target")),
    )?;
    let mut failed = Vec::new();
    for t in TARGETS {
        let bin = fuzz.join("target").join(&triple).join("release").join(t);
        // New inputs go to a working corpus under target/; the committed
        // seeds in fuzz/corpus/<target> are read but not written.
        let seeds = fuzz.join("corpus").join(t);
        let corpus = fuzz.join("target/corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        let artifacts = fuzz.join("artifacts").join(t);
        std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
        println!("xtask fuzz: {t} for {seconds} s");
        let status = Command::new(&bin)
            .arg(&corpus)
            .arg(&seeds)
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-max_len=65536")
            .arg("-print_final_stats=1")
            .status()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if !status.success() {
            failed.push(*t);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz targets found crashes: {failed:?} (inputs in fuzz/artifacts/)"
        ))
    }
}
