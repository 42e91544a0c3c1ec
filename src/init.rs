//! `petrel init`: a production configuration on the standard ports and a
//! hardened systemd unit next to it.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// What `petrel init` wrote.
pub struct Written {
    pub config: PathBuf,
    pub unit: PathBuf,
}

/// `petrel init`: a production configuration on the standard ports.
pub fn init(data_dir: &Path, hostname: &str) -> anyhow::Result<Written> {
    let cfg_path = data_dir.join("config.toml");
    if cfg_path.exists() {
        anyhow::bail!(
            "{} exists already; remove it first to start over",
            cfg_path.display()
        );
    }
    std::fs::create_dir_all(data_dir)?;
    let text = production_config(hostname);
    // Check what we write before writing it.
    Config::parse(&text, &cfg_path)?;
    std::fs::write(&cfg_path, text)?;
    let data = std::fs::canonicalize(data_dir)?;
    let exe = std::env::current_exe()?;
    let unit = data.join("petrel.service");
    std::fs::write(&unit, systemd_unit(&exe, &data))?;
    Ok(Written {
        config: cfg_path,
        unit,
    })
}

/// A systemd unit for `petrel serve` as the `petrel` user: may bind ports
/// below 1024 and nothing more, writes only its data directory, reloads
/// its log file on `systemctl reload`.
pub fn systemd_unit(exe: &Path, data_dir: &Path) -> String {
    let exe = exe.display();
    let data = data_dir.display();
    format!(
        "[Unit]
Description=Petrel mail server
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=petrel
Group=petrel
ExecStart={exe} serve --data-dir {data}
# SIGHUP reopens log.file (after logrotate).
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# shutdown.grace-period (30 s) plus a margin.
TimeoutStopSec=45
LimitNOFILE=65536
UMask=0027

# Ports 25, 465, 587, 143, 993, 110, 995, 80 and 443 without root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths={data}
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=true
RestrictRealtime=true
RestrictSUIDSGID=true
LockPersonality=true
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"
    )
}

pub fn production_config(hostname: &str) -> String {
    let tpl = crate::config::DEFAULT_TEMPLATE;
    let mut out = String::new();
    for line in tpl.lines() {
        let replaced = match line.split_once(" = ").map(|(k, _)| k.trim()) {
            Some("hostname") if !line.starts_with(' ') => format!("hostname = \"{hostname}\""),
            Some("smtp") if line.starts_with("smtp =") => {
                "smtp = [\"[::]:25\"]                # SMTP (MTA, RFC 5321)".into()
            }
            Some("submission") => {
                "submission = [\"[::]:587\"]         # message submission with STARTTLS (RFC 6409)".into()
            }
            Some("submissions") => {
                "submissions = [\"[::]:465\"]        # message submission over implicit TLS (RFC 8314)".into()
            }
            Some("imap") if line.starts_with("imap =") => {
                "imap = [\"[::]:143\"]               # IMAP with STARTTLS".into()
            }
            Some("imaps") => "imaps = [\"[::]:993\"]              # IMAP over implicit TLS".into(),
            Some("pop3") if line.starts_with("pop3 =") => {
                "pop3 = [\"[::]:110\"]               # POP3 with STLS".into()
            }
            Some("pop3s") => "pop3s = [\"[::]:995\"]              # POP3 over implicit TLS".into(),
            Some("managesieve") => {
                "managesieve = [\"[::]:4190\"]       # ManageSieve (RFC 5804) with STARTTLS".into()
            }
            Some("http") => {
                "http = [\"127.0.0.1:8080\"]          # management API (/api), plain HTTP: this machine only (the CLI)".into()
            }
            Some("https") => {
                "https = [\"[::]:443\"]              # management API, metrics, autoconfig, MTA-STS policy over TLS".into()
            }
            Some("http-redirect") => {
                "http-redirect = [\"[::]:80\"]       # port 80: redirects to https (and ACME challenges)".into()
            }
            _ => line.to_string(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out.replace(
        "# Petrel configuration.",
        "# Petrel production configuration: standard ports on every interface\n# (\"[::]\" also accepts IPv4 on Linux). Replace tls/*.pem with a certificate\n# for the host name from your CA.\n#\n# Petrel configuration.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn production_config_uses_standard_ports() {
        let text = production_config("mail.example.org");
        let cfg = Config::parse(&text, Path::new("x")).unwrap();
        assert_eq!(cfg.hostname, "mail.example.org");
        assert_eq!(cfg.listeners.smtp[0].port(), 25);
        assert_eq!(cfg.listeners.imap[0].port(), 143);
        assert_eq!(cfg.listeners.submission[0].port(), 587);
        assert_eq!(cfg.listeners.submissions[0].port(), 465);
        assert_eq!(cfg.listeners.imaps[0].port(), 993);
        assert_eq!(cfg.listeners.pop3[0].port(), 110);
        assert_eq!(cfg.listeners.pop3s[0].port(), 995);
        assert_eq!(cfg.listeners.managesieve[0].port(), 4190);
        // The management API is plain HTTP on loopback only; port 80 of
        // every interface only redirects.
        assert_eq!(cfg.listeners.http[0].port(), 8080);
        assert!(cfg.listeners.http[0].ip().is_loopback());
        assert_eq!(cfg.listeners.https[0].port(), 443);
        assert_eq!(cfg.listeners.http_redirect[0].port(), 80);
        assert!(cfg.listeners.smtp[0].ip().is_unspecified());
    }
}
