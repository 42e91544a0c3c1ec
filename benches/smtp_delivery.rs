//! SMTP delivery end to end over loopback: 20 concurrent senders, 4 KB
//! messages, into one account's Inbox on a real `petrel serve` with its
//! default (RocksDB) store. Each 250 means the message is synced.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SENDERS: usize = 20;
const PER_SENDER: usize = 25;

struct Server {
    child: std::process::Child,
    smtp: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[listeners]\nsmtp = [\"127.0.0.1:0\"]\nimap = []\nimaps = []\nhttp = [\"127.0.0.1:0\"]\nsubmission = []\nsubmissions = []\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_petrel"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("PETREL_ADMIN_PASSWORD", "bench")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut smtp, mut http) = (None, None);
    loop {
        let mut l = String::new();
        assert!(out.read_line(&mut l).unwrap() > 0, "server exited");
        let parts: Vec<&str> = l.split_whitespace().collect();
        if l.starts_with("petrel: listening smtp") {
            smtp = Some(parts[3].parse().unwrap());
        }
        if l.starts_with("petrel: listening http") {
            http = Some(parts[3].to_string());
        }
        if l.starts_with("petrel: ready") {
            break;
        }
    }
    std::thread::spawn(move || for _ in out.lines() {});
    let url = format!("http://{}", http.unwrap());
    for args in [
        vec!["domain", "create", "bench.test"],
        vec!["account", "create", "sink@bench.test", "--secret", "pw"],
    ] {
        let st = Command::new(env!("CARGO_BIN_EXE_petrel"))
            .args(["--url", &url, "--credentials", "admin:bench"])
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    Server {
        child,
        smtp: smtp.unwrap(),
        _dir: dir,
    }
}

async fn sender(addr: SocketAddr, n: usize, body: &'static str) {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (r, mut w) = tokio::io::split(s);
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    w.write_all(b"EHLO bench.test\r\n").await.unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    for _ in 0..n {
        // Pipelined envelope (RFC 2920), then the data.
        w.write_all(b"MAIL FROM:<load@bench.test>\r\nRCPT TO:<sink@bench.test>\r\nDATA\r\n")
            .await
            .unwrap();
        for _ in 0..3 {
            line.clear();
            r.read_line(&mut line).await.unwrap();
        }
        assert!(line.starts_with("354"), "{line}");
        w.write_all(body.as_bytes()).await.unwrap();
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("250"), "{line}");
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
}

fn delivery(c: &mut Criterion) {
    let server = start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let body: &'static str = Box::leak(
        format!(
            "From: load@bench.test\r\nTo: sink@bench.test\r\nSubject: load\r\n\r\n{}\r\n.\r\n",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".repeat(62)
        )
        .into_boxed_str(),
    );
    let mut group = c.benchmark_group("smtp_delivery");
    group.throughput(Throughput::Elements((SENDERS * PER_SENDER) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("20_senders_4KB", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let tasks: Vec<_> = (0..SENDERS)
                        .map(|_| tokio::spawn(sender(server.smtp, PER_SENDER, body)))
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                }
                t.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);
