//! `petrel serve`: data directory set-up, listeners, graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::config::Config;
use crate::core::{Core, SharedCore};
use crate::directory::{NewAccount, Role};
use crate::mail::MailStore;
use crate::net::{tls, Conn, Shutdown, ShutdownController, Stream};
use crate::store::{BlobStore, KvBackend, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Smtp,
    Submission,
    Submissions,
    Lmtp,
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    ManageSieve,
    Http,
    Https,
    HttpRedirect,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Smtp => "smtp",
            Proto::Submission => "submission",
            Proto::Submissions => "submissions",
            Proto::Lmtp => "lmtp",
            Proto::Imap => "imap",
            Proto::Imaps => "imaps",
            Proto::Pop3 => "pop3",
            Proto::Pop3s => "pop3s",
            Proto::ManageSieve => "managesieve",
            Proto::Http => "http",
            Proto::Https => "https",
            Proto::HttpRedirect => "http-redirect",
        }
    }
}

pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
}

/// Creates the data directory with a commented config on first use.
/// Returns the config path and whether the directory is new.
pub fn prepare_data_dir(data_dir: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let cfg = data_dir.join("config.toml");
    let fresh = !cfg.exists();
    if fresh {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data directory {}: {e}", data_dir.display())
        })?;
        std::fs::write(&cfg, crate::config::DEFAULT_TEMPLATE)?;
    }
    Ok((cfg, fresh))
}

// Without storage features (fuzz builds) only the error arm remains.
#[cfg_attr(
    not(all(feature = "rocksdb", feature = "sqlite")),
    allow(unreachable_code, unused_variables)
)]
pub fn open_store(cfg: &Config, data_dir: &Path) -> anyhow::Result<Store> {
    use crate::config::StoreType;
    let path = Config::resolve(data_dir, &cfg.store.path);
    std::fs::create_dir_all(&path)?;
    let backend: Arc<dyn KvBackend> = match cfg.store.kind {
        #[cfg(feature = "rocksdb")]
        StoreType::Rocksdb => Arc::new(crate::store::rocks::RocksBackend::open(&path)?),
        #[cfg(feature = "sqlite")]
        StoreType::Sqlite => Arc::new(crate::store::sqlite::SqliteBackend::open(
            &path.join("petrel.sqlite3"),
        )?),
        #[allow(unreachable_patterns)]
        other => {
            anyhow::bail!("this build of petrel has no {other:?} store (cargo feature missing)")
        }
    };
    Ok(Store::new(backend))
}

/// Writes `text` to a new file readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// `petrel admin reset-password`: on a stopped server's data directory,
/// gives `admin` the password `secret` (or a new one, returned) and
/// enables it; creates the account if it is gone.
pub async fn reset_admin_password(
    data_dir: &Path,
    config: Option<&Path>,
    secret: Option<String>,
) -> anyhow::Result<String> {
    let cfg_path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join("config.toml"));
    if !cfg_path.exists() {
        anyhow::bail!(
            "no configuration at {}: give the data directory with --data-dir (or the file with --config)",
            cfg_path.display()
        );
    }
    let cfg = Config::load(&cfg_path)?;
    let store = open_store(&cfg, data_dir).map_err(|e| {
        anyhow::anyhow!("cannot open the store ({e}); if the server is running, stop it first: this command works on a stopped server")
    })?;
    let dir = crate::directory::Directory::new(store.clone(), &cfg.auth, &cfg.passwords);
    let pw = secret.unwrap_or_else(generate_password);
    let res = match dir.get_account("admin").await? {
        Some(_) => dir
            .update_account(
                "admin",
                crate::directory::AccountPatch {
                    secret: Some(pw.clone()),
                    enabled: Some(true),
                    role: Some(Role::Admin),
                    ..Default::default()
                },
            )
            .await
            .map(|_| ()),
        None => dir.create_account(admin_account(&pw)).await.map(|_| ()),
    };
    store.close();
    res?;
    Ok(pw)
}

/// The administrator account `admin` with password `secret`.
fn admin_account(secret: &str) -> NewAccount {
    NewAccount {
        address: "admin".into(),
        secret: secret.to_string(),
        role: Some(Role::Admin),
        ..Default::default()
    }
}

fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// What a start created, so that a start which fails before it is ready
/// leaves nothing half-made behind (a store without its administrator's
/// password, a directory a retry takes for a used one).
#[derive(Default)]
struct Undo {
    created: Vec<PathBuf>,
    ready: bool,
}

impl Undo {
    /// Remembers `path` if it does not exist yet (it is about to be made).
    fn note(&mut self, path: &Path) {
        if !path.exists() {
            self.created.push(path.to_path_buf());
        }
    }

    /// Removes what was made, newest first.
    fn remove(&self) {
        for p in self.created.iter().rev() {
            let r = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            match r {
                Ok(()) => eprintln!(
                    "petrel: removed {} (made by this failed start)",
                    p.display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => eprintln!("petrel: could not remove {}: {e}", p.display()),
            }
        }
    }
}

pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let mut undo = Undo::default();
    let res = serve_undoable(opts, &mut undo).await;
    if res.is_err() && !undo.ready {
        undo.remove();
    }
    // The log's writer thread writes out what it holds.
    crate::observe::log::flush();
    res
}

async fn serve_undoable(opts: ServeOptions, undo: &mut Undo) -> anyhow::Result<()> {
    let started = Instant::now();
    // Handlers first: a signal that arrives once "ready" is printed must
    // take the graceful path.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let data_dir = opts.data_dir;
    undo.note(&data_dir);
    undo.note(&data_dir.join("config.toml"));
    let (default_cfg, fresh) = prepare_data_dir(&data_dir)?;
    let cfg_path = opts.config.unwrap_or(default_cfg);
    let cfg = Config::load(&cfg_path)?;
    let log_file = crate::observe::log::init(&cfg.log, &data_dir)?;
    if cfg.metrics.enable {
        crate::observe::metrics::install();
    }
    // Other servers find this one (MX records, HELO, certificates) by its
    // name: a bare name like `localhost` only works on this machine.
    if !cfg.hostname.contains('.') {
        let warning = format!(
            "hostname `{}` is not a fully qualified domain name: other mail servers cannot reach this one by it (MX records, certificates); set `hostname` in {}",
            cfg.hostname,
            cfg_path.display()
        );
        tracing::warn!("{warning}");
        println!("petrel: warning: {warning}");
    }

    let cert = Config::resolve(&data_dir, &cfg.tls.certificate);
    let key = Config::resolve(&data_dir, &cfg.tls.private_key);
    for p in [&cert, &key] {
        if let Some(dir) = p.parent() {
            undo.note(dir);
        }
        undo.note(p);
    }
    tls::ensure_self_signed(&cert, &key, &cfg.hostname)?;
    let (acceptor, certificates) = tls::acceptor(&cert, &key, &sni_certs(&cfg, &data_dir))?;

    undo.note(&Config::resolve(&data_dir, &cfg.store.path));
    undo.note(&Config::resolve(&data_dir, &cfg.blob.path));
    undo.note(&Config::resolve(&data_dir, &cfg.search.path));
    let store = open_store(&cfg, &data_dir)?;
    let blobs = BlobStore::new(
        &Config::resolve(&data_dir, &cfg.blob.path),
        cfg.blob.inline_max,
    )?;
    let mut mail = MailStore::new(store.clone(), blobs);
    mail.set_facts_limit(cfg.jmap.facts_cache_messages);
    let fts_dir = Config::resolve(&data_dir, &cfg.search.path);
    if cfg.search.index {
        match crate::mail::fts::FtsIndex::open(&fts_dir, 32 << 20) {
            Ok(ix) => mail = mail.with_fts(Arc::new(ix)),
            Err(e) => tracing::error!(
                "{e}: SEARCH reads every message; remove {} to rebuild the index",
                fts_dir.display()
            ),
        }
    } else if fts_dir.exists() {
        // Mail stored while the index is off is not in it: enabling it
        // again must start from an empty index, which is then filled.
        std::fs::remove_dir_all(&fts_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot remove the disabled index {}: {e}",
                fts_dir.display()
            )
        })?;
    }
    let core: SharedCore = Arc::new(Core::new(cfg.clone(), store, mail, Some(acceptor))?);

    // First start: the administrator account.
    let mut admin_password = None;
    if !core
        .directory
        .list_accounts()
        .await?
        .iter()
        .any(|a| a.role == Role::Admin)
    {
        let (pw, generated) = match std::env::var("PETREL_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (generate_password(), true),
        };
        core.directory
            .create_account(admin_account(&pw))
            .await
            .map_err(|e| anyhow::anyhow!("PETREL_ADMIN_PASSWORD: {e}"))?;
        // A made-up password is also kept in a file only the owner reads,
        // so a first start that fails later (a port in use) loses nothing.
        if generated {
            undo.note(&data_dir.join("admin-password"));
            write_private(&data_dir.join("admin-password"), &format!("{pw}\n"))?;
        }
        admin_password = Some((pw, generated));
    }

    let controller = ShutdownController::new();
    let mut bound = Vec::new();
    let l = &cfg.listeners;
    let groups = [
        (Proto::Smtp, &l.smtp),
        (Proto::Submission, &l.submission),
        (Proto::Submissions, &l.submissions),
        (Proto::Lmtp, &l.lmtp),
        (Proto::Imap, &l.imap),
        (Proto::Imaps, &l.imaps),
        (Proto::Pop3, &l.pop3),
        (Proto::Pop3s, &l.pop3s),
        (Proto::ManageSieve, &l.managesieve),
        (Proto::Http, &l.http),
        (Proto::Https, &l.https),
        (Proto::HttpRedirect, &l.http_redirect),
    ];
    for (proto, addrs) in groups {
        for addr in addrs.iter() {
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {addr} for {}: {e}", proto.name())
            })?;
            let local = listener.local_addr()?;
            bound.push((proto, local));
            spawn_listener(proto, listener, core.clone(), controller.handle());
        }
    }

    let _ = core
        .listeners
        .set(bound.iter().map(|(p, a)| (p.name(), *a)).collect());
    let lmtp_socket = if cfg.listeners.lmtp_socket.as_os_str().is_empty() {
        None
    } else {
        let path = Config::resolve(&data_dir, &cfg.listeners.lmtp_socket);
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on unix socket {} for lmtp: {e}",
                path.display()
            )
        })?;
        spawn_unix_lmtp(listener, core.clone(), controller.handle());
        Some(path)
    };
    crate::queue::deliver::spawn(core.clone(), controller.handle());
    crate::acme::spawn(
        core.clone(),
        crate::acme::Files {
            certificates: certificates.clone(),
            data_dir: data_dir.clone(),
        },
        controller.handle(),
    );
    spawn_upkeep(
        log_file,
        Reload {
            certificates,
            cfg: cfg.clone(),
            data_dir: data_dir.clone(),
        },
        controller.handle(),
    );
    core.mail.spawn_indexer(
        controller.handle(),
        crate::mail::fts::Pace {
            defer_above: cfg.search.defer_above,
            max_defer: std::time::Duration::from_secs(cfg.search.max_defer),
        },
    );
    crate::jmap::pusher::spawn(core.clone(), controller.handle());
    crate::spam::learn::spawn(core.mail.clone(), core.spam.clone(), controller.handle());
    // https feeds are checked like MTA-STS policies: the system's roots
    // and tls.extra-ca.
    let feed_tls = crate::queue::mta_sts::verified_tls(&core)
        .map_err(|e| tracing::warn!("phishing feeds over https cannot be checked: {e}"))
        .ok();
    crate::spam::feeds::spawn(core.spam.clone(), feed_tls, controller.handle());
    // Greylisting triplets and other script state past their expiry.
    crate::sieve::kv::spawn_sweeper(
        core.store.clone(),
        Duration::from_secs(3600),
        controller.handle(),
    );

    println!(
        "Petrel {} is running. Data directory: {}{}",
        env!("CARGO_PKG_VERSION"),
        data_dir.display(),
        if fresh { " (new)" } else { "" }
    );
    println!(
        "Store: {} at {}",
        core.store.backend_name(),
        Config::resolve(&data_dir, &cfg.store.path).display()
    );
    for (proto, addr) in &bound {
        let note = match proto {
            Proto::Smtp => "SMTP, STARTTLS offered",
            Proto::Submission => "submission, STARTTLS then AUTH",
            Proto::Submissions => "submission over TLS, AUTH",
            Proto::Lmtp => "LMTP",
            Proto::Imap => "IMAP, STARTTLS",
            Proto::Imaps => "IMAP over TLS",
            Proto::Pop3 => "POP3, STLS",
            Proto::Pop3s => "POP3 over TLS",
            Proto::ManageSieve => "ManageSieve, STARTTLS",
            Proto::Http => "management API at /api",
            Proto::Https => "management API at /api, TLS",
            Proto::HttpRedirect => "plain HTTP, redirects to https",
        };
        // Stable, machine-readable line (tests and scripts read it).
        println!("petrel: listening {} {addr} ({note})", proto.name());
    }
    if let Some(p) = &lmtp_socket {
        println!("petrel: listening lmtp-socket {} (LMTP)", p.display());
    }
    if let Some((pw, generated)) = &admin_password {
        let http = bound
            .iter()
            .find(|(p, _)| *p == Proto::Http)
            .map(|(_, a)| format!("http://{a}"))
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        if *generated {
            println!("\nCreated the administrator account `admin` with the password:\n\n    {pw}\n\nIt is also in {}, readable only by you: delete that file once you have noted it. Lost? `petrel admin reset-password` on the stopped server.", data_dir.join("admin-password").display());
        } else {
            println!("\nCreated the administrator account `admin` with the password from PETREL_ADMIN_PASSWORD.");
        }
        let smtp = bound
            .iter()
            .find(|(p, _)| *p == Proto::Smtp)
            .map(|(_, a)| a.to_string())
            .unwrap_or_default();
        let shown = if *generated {
            pw.as_str()
        } else {
            "$PETREL_ADMIN_PASSWORD"
        };
        println!(
            "\nNext steps, in another terminal (with `cargo run --release --` in place of `petrel` from a checkout):\n\n    export PETREL_CREDENTIALS='admin:{shown}'\n    petrel --url {http} domain create example.org\n    petrel --url {http} account create joe@example.org --secret 'choose-a-password'\n    swaks --server {smtp} --to joe@example.org --from you@example.net\n\nthen read the message with any IMAP client as joe@example.org."
        );
    }
    undo.ready = true;
    println!("petrel: ready in {} ms", started.elapsed().as_millis());

    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    println!("petrel: shutting down");
    let clean = controller
        .shutdown(Duration::from_secs(cfg.shutdown.grace_period))
        .await;
    if !clean {
        eprintln!(
            "petrel: some sessions did not finish within {} s",
            cfg.shutdown.grace_period
        );
    }
    core.store.close();
    println!("petrel: stopped");
    Ok(())
}

/// The `tls.sni` entries of `cfg`, their paths resolved.
pub(crate) fn sni_certs<'a>(cfg: &'a Config, data_dir: &Path) -> Vec<tls::SniCert<'a>> {
    cfg.tls
        .sni
        .iter()
        .map(|e| tls::SniCert {
            names: &e.names,
            certificate: Config::resolve(data_dir, &e.certificate),
            private_key: Config::resolve(data_dir, &e.private_key),
        })
        .collect()
}

/// What SIGHUP reads again: the certificate files.
struct Reload {
    certificates: Arc<tls::Certificates>,
    cfg: Config,
    data_dir: PathBuf,
}

impl Reload {
    fn certificates(&self) {
        let cert = Config::resolve(&self.data_dir, &self.cfg.tls.certificate);
        let key = Config::resolve(&self.data_dir, &self.cfg.tls.private_key);
        match self
            .certificates
            .reload(&cert, &key, &sni_certs(&self.cfg, &self.data_dir))
        {
            Ok(()) => {
                tracing::info!(certificate = %cert.display(), "TLS certificates reloaded (SIGHUP)")
            }
            Err(e) => tracing::error!(
                "SIGHUP: TLS certificates not reloaded, the old ones stay in use: {e}"
            ),
        }
    }
}

/// SIGHUP reopens the log file and reloads the TLS certificates;
/// histograms are drained into their buckets every few seconds (the
/// exporter keeps raw samples until then).
fn spawn_upkeep(
    log_file: Option<Arc<crate::observe::log::LogFile>>,
    reload: Reload,
    mut shutdown: Shutdown,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("SIGHUP handler: {e}; the log file is not reopened on SIGHUP");
            return;
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    match &log_file {
                        Some(f) => match f.reopen() {
                            Ok(()) => tracing::info!(file = %f.path().display(), "log file reopened (SIGHUP)"),
                            Err(e) => tracing::error!(file = %f.path().display(), "SIGHUP: cannot reopen the log file, still writing to the old one: {e}"),
                        },
                        None => tracing::info!("SIGHUP: no log file to reopen (log.file is not set)"),
                    }
                    reload.certificates();
                }
                _ = tick.tick() => {
                    if let Some(h) = crate::observe::metrics::handle() {
                        h.run_upkeep();
                    }
                }
                _ = shutdown.wait() => return,
            }
        }
    });
}

fn spawn_listener(proto: Proto, listener: TcpListener, core: SharedCore, shutdown: Shutdown) {
    if matches!(proto, Proto::Http | Proto::HttpRedirect) {
        let router = if proto == Proto::Http {
            crate::http::router(core)
        } else {
            crate::http::redirect_router(core)
        };
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            let _guard = shutdown;
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { sd.wait().await })
            .await;
        });
        return;
    }
    tokio::spawn(async move {
        let mut sd = shutdown.clone();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = sd.wait() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed on {}: {e}", proto.name());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let core = core.clone();
            let handle = shutdown.clone();
            tokio::spawn(async move { handle_connection(proto, tcp, peer, core, handle).await });
        }
    });
}

fn spawn_unix_lmtp(listener: tokio::net::UnixListener, core: SharedCore, shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut sd = shutdown.clone();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = sd.wait() => break,
            };
            let Ok((unix, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let core = core.clone();
            let handle = shutdown.clone();
            // A unix peer has no IP; log it as the loopback address.
            let peer = SocketAddr::from(([127, 0, 0, 1], 0));
            tokio::spawn(async move {
                crate::smtp::session::Session::new(
                    core,
                    Conn::new(Stream::Unix(unix)),
                    peer,
                    handle,
                    crate::smtp::session::Mode::Lmtp,
                )
                .run()
                .await
            });
        }
    });
}

async fn handle_connection(
    proto: Proto,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    core: SharedCore,
    shutdown: Shutdown,
) {
    let mut tcp = tcp;
    let mut peer = peer;
    if core
        .config
        .proxy
        .listeners
        .iter()
        .any(|l| l == proto.name())
    {
        let trusted = core
            .config
            .proxy
            .trusted_networks
            .iter()
            .filter_map(|c| c.parse::<crate::net::limit::Cidr>().ok())
            .any(|c| c.contains(peer.ip()));
        if !trusted {
            tracing::warn!(%peer, "PROXY listener: connection from an untrusted address dropped");
            return;
        }
        match crate::net::proxy::read_header(&mut tcp, peer, Duration::from_secs(10)).await {
            Ok(client) => peer = client,
            Err(e) => {
                tracing::warn!(%peer, "PROXY header: {e}");
                return;
            }
        }
    }
    let implicit_tls = matches!(
        proto,
        Proto::Imaps | Proto::Pop3s | Proto::Https | Proto::Submissions
    );
    let stream = if implicit_tls {
        let Some(acceptor) = core.tls.clone() else {
            return;
        };
        // The ClientHello first: an ACME TLS-ALPN-01 validation (RFC 8737)
        // gets its challenge certificate and nothing else.
        let handshake = async {
            let start =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                    .await?;
            let hello = start.client_hello();
            let acme = hello
                .alpn()
                .is_some_and(|mut p| p.any(|p| p == crate::acme::ACME_TLS_ALPN))
                .then(|| core.acme.alpn_config(hello.server_name()))
                .flatten();
            match acme {
                Some(config) => {
                    let _ = start.into_stream(config).await;
                    tracing::info!(%peer, "ACME: tls-alpn-01 challenge answered");
                    Err(std::io::Error::other("validation handshake"))
                }
                None => start.into_stream(acceptor.config().clone()).await,
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), handshake).await {
            Ok(Ok(s)) => {
                let stream = Stream::Tls(Box::new(s));
                stream.log_tls(peer, proto.name());
                stream
            }
            _ => return,
        }
    } else {
        Stream::Plain(tcp)
    };
    // Connection limits per client address (README: Security).
    let (limiter, refusal): (_, &[u8]) = match proto {
        Proto::Smtp | Proto::Submission | Proto::Submissions | Proto::Lmtp => (
            Some(&core.smtp_conns),
            b"421 4.7.0 Too many connections from your address, try again later\r\n",
        ),
        Proto::Imap | Proto::Imaps => (
            Some(&core.imap_conns),
            b"* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n",
        ),
        Proto::Pop3 | Proto::Pop3s => (
            Some(&core.pop3_conns),
            b"-ERR [SYS/TEMP] Too many connections from your address, try again later\r\n",
        ),
        // Users manage scripts now and then: the IMAP limits do.
        Proto::ManageSieve => (
            Some(&core.imap_conns),
            b"BYE (TRYLATER) \"Too many connections from your address, try again later\"\r\n",
        ),
        _ => (None, b""),
    };
    let _guard = match limiter.map(|l| l.admit(peer.ip())) {
        Some(Err(why)) => {
            use tokio::io::AsyncWriteExt;
            tracing::info!(%peer, ?why, protocol = proto.name(), "connection refused");
            metrics::counter!("petrel_connections_refused_total", "protocol" => proto.name())
                .increment(1);
            let mut stream = stream;
            let _ = stream.write_all(refusal).await;
            let _ = stream.shutdown().await;
            return;
        }
        Some(Ok(g)) => Some(g),
        None => None,
    };
    match proto {
        Proto::Smtp | Proto::Submission | Proto::Submissions | Proto::Lmtp => {
            use crate::smtp::session::{Mode, Session};
            let mode = match proto {
                Proto::Smtp => Mode::Mta,
                Proto::Lmtp => Mode::Lmtp,
                _ => Mode::Submission,
            };
            Session::new(core, Conn::new(stream), peer, shutdown, mode)
                .run()
                .await
        }
        Proto::Imap | Proto::Imaps => {
            crate::imap::session::Session::new(core, Conn::new(stream), peer, shutdown)
                .run()
                .await
        }
        Proto::Pop3 | Proto::Pop3s => {
            crate::pop3::session::Session::new(core, Conn::new(stream), peer, shutdown)
                .run()
                .await
        }
        Proto::ManageSieve => {
            crate::managesieve::session::Session::new(core, Conn::new(stream), peer, shutdown)
                .run()
                .await
        }
        Proto::Https => {
            let router = crate::http::router(core)
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
                .layer(axum::Extension(crate::jmap::OverTls));
            let svc = hyper_util::service::TowerToHyperService::new(router);
            let io = hyper_util::rt::TokioIo::new(stream);
            // Upgrades: JMAP over WebSocket (RFC 8887).
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .with_upgrades()
                .await;
        }
        Proto::Http | Proto::HttpRedirect => {}
    }
}
