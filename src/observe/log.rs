//! The server log: a level filter, text or JSON lines, standard error or a
//! file that is reopened on SIGHUP (README: Logs and metrics).

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// A log file that can be opened again under its name, after a rotation
/// moved the old one away.
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl LogFile {
    pub fn open(path: &Path) -> anyhow::Result<Arc<LogFile>> {
        let file = open_append(path)
            .map_err(|e| anyhow::anyhow!("log.file: cannot open {}: {e}", path.display()))?;
        Ok(Arc::new(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        }))
    }

    /// Opens the file under its name again (SIGHUP). On failure the old
    /// handle stays in use.
    pub fn reopen(&self) -> std::io::Result<()> {
        let new = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One event's bytes go to the file in one `write_all` under the lock:
/// lines from different threads never interleave.
pub struct FileWriter(Arc<LogFile>);

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer thread's guard: dropping it writes out what is queued.
static GUARD: Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> = Mutex::new(None);

/// Bytes the writer thread gathers before a write: it writes when the
/// queue is empty or this is full, so under load one write carries many
/// lines.
const BUFFER: usize = 64 * 1024;

/// Hands formatted lines to a writer thread (never dropping any: a full
/// queue makes the logging thread wait), so sessions do not wait on the
/// disk or a pipe.
fn off_thread<W: Write + Send + 'static>(w: W) -> tracing_appender::non_blocking::NonBlocking {
    let (nb, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("petrel-log")
        .finish(w);
    let mut g = GUARD.lock().unwrap_or_else(|e| e.into_inner());
    // A second init (tests) keeps the first writer; this one is unused.
    if g.is_none() {
        *g = Some(guard);
    }
    nb
}

/// Writes out every queued line; call before the process ends.
pub fn flush() {
    drop(GUARD.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// The filter: `PETREL_LOG` when set, else `log.level`.
fn filter(cfg: &LogConfig) -> EnvFilter {
    match std::env::var("PETREL_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("petrel: PETREL_LOG={v:?} is not a filter ({e}); using log.level");
            EnvFilter::new(&cfg.level)
        }),
        _ => EnvFilter::new(&cfg.level),
    }
}

type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// A formatting layer writing to `w`; `colour` and `time` for text.
fn layer<W>(format: LogFormat, w: W, colour: bool, time: bool) -> BoxedLayer
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_writer(w)
        .with_ansi(colour);
    match (format, time) {
        (LogFormat::Json, _) => base.json().boxed(),
        (LogFormat::Text, true) => base.boxed(),
        (LogFormat::Text, false) => base.without_time().boxed(),
    }
}

/// Installs the process's log. Returns the file when `log.file` is set
/// (the caller reopens it on SIGHUP). A second call (tests that start
/// several servers in one process) keeps the first subscriber.
pub fn init(cfg: &LogConfig, data_dir: &Path) -> anyhow::Result<Option<Arc<LogFile>>> {
    let (layer, file) = if cfg.file.as_os_str().is_empty() {
        // Colours only for a person at a terminal; under systemd the
        // journal stamps each line itself (JOURNAL_STREAM is set there).
        let colour = std::io::stderr().is_terminal();
        let time = std::env::var_os("JOURNAL_STREAM").is_none();
        (
            layer(
                cfg.format,
                off_thread(std::io::BufWriter::with_capacity(BUFFER, std::io::stderr())),
                colour,
                time,
            ),
            None,
        )
    } else {
        let path = crate::config::Config::resolve(data_dir, &cfg.file);
        let file = LogFile::open(&path)?;
        (
            layer(
                cfg.format,
                off_thread(std::io::BufWriter::with_capacity(
                    BUFFER,
                    FileWriter(file.clone()),
                )),
                false,
                true,
            ),
            Some(file),
        )
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter(cfg)))
        .try_init();
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_follows_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("petrel.log");
        let log = LogFile::open(&path).unwrap();
        FileWriter(log.clone()).write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.path().join("petrel.log.1")).unwrap();
        FileWriter(log.clone()).write_all(b"two\n").unwrap();
        log.reopen().unwrap();
        FileWriter(log.clone()).write_all(b"three\n").unwrap();
        let old = std::fs::read_to_string(dir.path().join("petrel.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(old, "one\ntwo\n");
        assert_eq!(new, "three\n");
    }
}
