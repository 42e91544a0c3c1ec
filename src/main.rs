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
            rt.block_on(petrel::server::serve(petrel::server::ServeOptions {
                data_dir: data_dir.clone(),
                config: config.clone(),
            }))
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
