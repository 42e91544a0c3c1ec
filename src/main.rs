use clap::Parser;
use petrel::cli::{run_admin, Cli, Command};

/// glibc raises its mmap threshold to the size of the largest block freed
/// (up to 32 MiB). After one argon2id verification (19 MiB) such blocks
/// come from the per-thread arenas and stay there: under load the
/// process grew by gigabytes while its live heap stayed under 50 MB
/// (measured with heaptrack). A fixed threshold keeps large blocks in
/// mmap, returned on free, and trimming returns the rest.
fn tune_malloc() {
    // SAFETY: mallopt only changes allocator parameters; called before any
    // thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// `petrel admin reset-password` (offline).
fn reset_password(
    data_dir: &std::path::Path,
    config: Option<&std::path::Path>,
    secret_stdin: bool,
) -> anyhow::Result<()> {
    let secret = if secret_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let s = line.trim_end_matches(['\r', '\n']).to_string();
        anyhow::ensure!(
            !s.is_empty(),
            "--secret-stdin: standard input held no password"
        );
        Some(s)
    } else {
        None
    };
    let given = secret.is_some();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pw = rt.block_on(petrel::server::reset_admin_password(
        data_dir, config, secret,
    ))?;
    if given {
        println!("The administrator account `admin` has the password from standard input.");
    } else {
        println!("The administrator account `admin` has a new password: {pw}");
    }
    println!(
        "Start the server again: petrel serve --data-dir {}",
        data_dir.display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // As after serve: leave without RocksDB's static destructors.
    // SAFETY: _exit ends the process at once; the store is closed.
    unsafe { libc::_exit(0) };
}

fn main() {
    // The password-strength child (see directory::strength::rate_isolated).
    if std::env::args().nth(1).as_deref() == Some(petrel::directory::strength::CHILD_ARG) {
        std::process::exit(petrel::directory::strength::child_main());
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve { data_dir, config } => {
            tune_malloc();
            // The log is set up by serve once the configuration is read.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let res = rt.block_on(petrel::server::serve(petrel::server::ServeOptions {
                data_dir: data_dir.clone(),
                config: config.clone(),
            }));
            if res.is_ok() {
                // The store is flushed and its background work stopped
                // (Store::close). Leave without running C++ static
                // destructors: RocksDB 7.8 aborts in them ("pthread lock:
                // Invalid argument") while its handle is still referenced
                // by the committer thread.
                use std::io::Write;
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                // SAFETY: _exit ends the process immediately; nothing runs
                // after it and all acknowledged data is already synced.
                unsafe { libc::_exit(0) };
            }
            res
        }
        Command::Init { hostname, data_dir } => petrel::init::init(data_dir, hostname).map(|w| {
            println!(
                "Wrote {} and {}.\n\nStart the server by hand with:\n\n    petrel serve --data-dir {}\n\nor under systemd, as its own user:\n\n    sudo useradd --system --home-dir {dir} --shell /usr/sbin/nologin petrel\n    sudo chown -R petrel:petrel {dir}\n    sudo cp {} /etc/systemd/system/petrel.service\n    sudo systemctl daemon-reload && sudo systemctl enable --now petrel\n\nThen `petrel dns records DOMAIN` prints what to publish in DNS (README: Running in production).",
                w.config.display(),
                w.unit.display(),
                data_dir.display(),
                w.unit.display(),
                dir = w.unit.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            );
        }),
        Command::Admin {
            action:
                petrel::cli::AdminCmd::ResetPassword {
                    data_dir,
                    config,
                    secret_stdin,
                },
        } => reset_password(data_dir, config.as_deref(), *secret_stdin),
        Command::Spam { action } => petrel::spam::cli::run(&cli, action),
        _ => run_admin(&cli),
    };
    if let Err(e) = result {
        eprintln!("petrel: {e}");
        std::process::exit(1);
    }
}
