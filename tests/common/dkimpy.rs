//! dkimpy (Python, installed by `cargo xtask setup`) as the independent
//! verifier of Petrel's DKIM signatures and ARC seals, looking keys up in
//! a test DNS server.

use super::dns::Dns;

/// Runs `expr` (a Python expression over `msg` and `dnsfunc`) and returns
/// what it printed, or None when the script failed.
fn run(dns: &Dns, msg: &[u8], expr: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("msg.eml");
    std::fs::write(&path, msg).unwrap();
    let script = format!(
        r#"
import sys, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = {port}
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    ans = r.resolve(name.rstrip("."), "TXT")
    return b"".join(b"".join(x.strings) for x in ans)
msg = open(sys.argv[1], "rb").read()
print({expr})
"#,
        port = dns.addr.port()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 with dkimpy (cargo xtask setup)");
    if !out.status.success() {
        eprintln!("dkimpy: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Does dkimpy accept the (first) DKIM signature?
pub fn verify(dns: &Dns, msg: &[u8]) -> bool {
    run(dns, msg, "dkim.verify(msg, dnsfunc=dnsfunc)").as_deref() == Some("True")
}

/// dkimpy's verdict on the ARC chain: "pass", "fail" or "none".
pub fn arc_verify(dns: &Dns, msg: &[u8]) -> String {
    run(
        dns,
        msg,
        "dkim.arc_verify(msg, dnsfunc=dnsfunc)[0].decode()",
    )
    .unwrap_or_default()
}

/// An RSA key of `bits` from openssl, in `dir`: (private PEM file, public
/// SPKI in base64, as a DKIM key record's p=).
pub fn rsa_key(dir: &std::path::Path, bits: u32) -> (std::path::PathBuf, String) {
    use std::process::Command;
    let key = dir.join(format!("key{bits}.pem"));
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key)
        .arg(bits.to_string())
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl genrsa {bits}");
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    use base64::Engine;
    (
        key,
        base64::engine::general_purpose::STANDARD.encode(out.stdout),
    )
}

/// Runs a Python script that reads a message on stdin and writes the
/// message with the headers it adds (dkimpy signing, ARC sealing).
pub fn python_filter(script: &str, args: &[&std::ffi::OsStr], msg: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(msg.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python (dkimpy) failed");
    String::from_utf8(out.stdout).unwrap()
}
