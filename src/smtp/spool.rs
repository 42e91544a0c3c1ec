//! Message data while it arrives: at most `limits.spool-above` bytes of
//! it in memory (and only while the memory budget has room), the rest in
//! a temporary file that has no name (created and unlinked at once, so a
//! crash leaves nothing behind). When the message is complete it is read
//! into memory under a charge of the memory budget, waiting for room up
//! to `limits.memory-wait` seconds.

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::core::Core;
use crate::net::budget::Charge;

/// A receiver whose output can be taken as it grows.
pub trait Held {
    fn body_len(&self) -> usize;
    fn take_body(&mut self) -> Vec<u8>;
}

impl Held for super::data::DataReceiver {
    fn body_len(&self) -> usize {
        self.body_len()
    }
    fn take_body(&mut self) -> Vec<u8> {
        self.take_body()
    }
}

impl Held for super::data::ChunkReceiver {
    fn body_len(&self) -> usize {
        self.body_len()
    }
    fn take_body(&mut self) -> Vec<u8> {
        self.take_body()
    }
}

#[derive(Default)]
pub struct Spool {
    file: Option<tokio::fs::File>,
    spooled: usize,
    /// Covers the bytes the receiver holds in memory.
    charge: Charge,
    /// Writing the file failed: the rest of the message is read and
    /// dropped, and the message refused for now.
    failed: Option<std::io::Error>,
}

/// Why a complete message could not be had in memory.
#[derive(Debug)]
pub enum SpoolError {
    /// No room in the memory budget within `limits.memory-wait`.
    Busy,
    Io(std::io::Error),
}

impl Spool {
    /// Called after each piece of input: keeps what the receiver holds
    /// under `limits.spool-above` and covered by the memory budget, moving
    /// it to the file otherwise. After a write error it drops what
    /// arrives (see [`Spool::failure`]).
    pub async fn absorb(&mut self, core: &Core, rx: &mut impl Held) {
        if self.failed.is_some() {
            rx.take_body();
            return;
        }
        if let Err(e) = self.spill(core, rx).await {
            self.failed = Some(e);
        }
    }

    async fn spill(&mut self, core: &Core, rx: &mut impl Held) -> std::io::Result<()> {
        let len = rx.body_len();
        if len <= core.config.limits.spool_above && core.budget.grow(&mut self.charge, len) {
            return Ok(());
        }
        let data = rx.take_body();
        self.charge = Charge::default();
        if self.file.is_none() {
            self.file = Some(anonymous_file(core).await?);
        }
        let f = self.file.as_mut().expect("just made");
        f.write_all(&data).await?;
        self.spooled += data.len();
        Ok(())
    }

    /// The write error that made the spool drop the message, if any.
    pub fn failure(&self) -> Option<&std::io::Error> {
        self.failed.as_ref()
    }

    /// The whole message in memory, with a charge that covers it.
    pub async fn finish(self, core: &Core, rest: Vec<u8>) -> Result<(Vec<u8>, Charge), SpoolError> {
        let total = self.spooled + rest.len();
        drop(self.charge);
        let charge = core.budget.take(total).await.ok_or(SpoolError::Busy)?;
        let Some(mut f) = self.file else {
            return Ok((rest, charge));
        };
        let mut msg = Vec::with_capacity(total);
        f.rewind().await.map_err(SpoolError::Io)?;
        f.read_to_end(&mut msg).await.map_err(SpoolError::Io)?;
        msg.extend_from_slice(&rest);
        Ok((msg, charge))
    }
}

async fn anonymous_file(core: &Core) -> std::io::Result<tokio::fs::File> {
    let dir = core.mail.blobs.spool_dir();
    tokio::fs::create_dir_all(&dir).await?;
    let path = dir.join(format!("{:016x}", rand::random::<u64>()));
    let f = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .await?;
    tokio::fs::remove_file(&path).await?;
    Ok(f)
}
