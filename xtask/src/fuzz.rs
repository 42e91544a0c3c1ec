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
//! code). New inputs that grow coverage are written to fuzz/corpus/<target>.

use std::process::Command;

use crate::{cargo, root};

pub const TARGETS: &[&str] = &["smtp_command", "smtp_data", "imap_command", "message"];

const RUSTFLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Cdebug-assertions -Coverflow-checks";

pub fn run(seconds: u64) -> Result<(), String> {
    let fuzz = root().join("fuzz");
    crate::run(
        cargo()
            .current_dir(&fuzz)
            .env("RUSTFLAGS", RUSTFLAGS)
            .args(["build", "--release", "--bins", "--target-dir"])
            .arg(fuzz.join("target")),
    )?;
    let mut failed = Vec::new();
    for t in TARGETS {
        let bin = fuzz.join("target/release").join(t);
        let corpus = fuzz.join("corpus").join(t);
        let artifacts = fuzz.join("artifacts").join(t);
        std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
        println!("xtask fuzz: {t} for {seconds} s");
        let status = Command::new(&bin)
            .arg(&corpus)
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
