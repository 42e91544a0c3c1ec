use clap::Parser;
use petrel::cli::{run_admin, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve { data_dir, config } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("PETREL_LOG")
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .init();
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
        Command::Init { hostname, data_dir } => petrel::server::init(data_dir, hostname).map(|p| {
            println!(
                "Wrote {}. Start the server with: petrel serve --data-dir {}",
                p.display(),
                data_dir.display()
            );
        }),
        _ => run_admin(&cli),
    };
    if let Err(e) = result {
        eprintln!("petrel: {e}");
        std::process::exit(1);
    }
}
