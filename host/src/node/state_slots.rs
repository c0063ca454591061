//! Two checksummed slots in one preallocated file, written in turn: a save
//! is one write and one `fdatasync`.
//!
//! The file is [`FILE_BYTES`] long, written with zeros once when it is
//! created (then synced, with its directory), so its blocks are allocated
//! and its size never changes again: a save's `fdatasync` flushes the data
//! alone, no directory entry, no rename, no metadata. Slot `k` starts at
//! `k × SLOT_BYTES`:
//!
//! | bytes | what |
//! |---|---|
//! | 0..4 | magic `TNS1` |
//! | 4..12 | sequence number, little-endian: the newest slot's plus one |
//! | 12..16 | payload length, little-endian |
//! | 16..20 | CRC-32 of bytes 0..16 and the payload |
//! | 20.. | payload |
//!
//! A save writes the slot that does *not* hold the newest state. A crash
//! in the middle of it tears only that slot, whose checksum then fails,
//! and the other slot — the state before the save — is read instead. The
//! torn save never returned, so no message that depended on it was sent.
//! On a copy-on-write filesystem (btrfs, zfs) overwrites allocate, so a
//! full disk can still fail a save there; the node then goes quiet as for
//! any failed save (`node/durability.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The size of one slot.
pub const SLOT_BYTES: usize = 32 * 1024;
/// The size of the file: two slots.
pub const FILE_BYTES: u64 = 2 * SLOT_BYTES as u64;
/// The header before each payload.
const HEADER_BYTES: usize = 20;
/// The largest payload a slot holds.
pub const MAX_PAYLOAD: usize = SLOT_BYTES - HEADER_BYTES;
/// Marks a written slot (and the format's version).
const MAGIC: &[u8; 4] = b"TNS1";

/// What reading the slots found.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotsRead {
    /// No file: nothing was ever saved here.
    Missing,
    /// A file whose slots were never written (a crash right after it was
    /// created): nothing was saved.
    Blank,
    /// The newest valid slot's payload; `damaged` names a slot that failed
    /// its checks (a torn write, most likely), which is why an older
    /// state may be the newest valid one.
    Newest {
        /// The payload.
        payload: Vec<u8>,
        /// Its sequence number.
        sequence: u64,
        /// A slot (0 or 1) that is neither blank nor valid.
        damaged: Option<usize>,
    },
    /// Neither slot is valid, and not both are blank: the state is lost.
    Damaged,
}

/// The two-slot file at one path.
#[derive(Debug)]
pub struct Slots {
    path: PathBuf,
    dir: PathBuf,
    open: Mutex<Open>,
}

/// The slots file once read or created.
#[derive(Debug, Default)]
struct Open {
    file: Option<File>,
    /// The newest sequence number on disk (0: none).
    newest: u64,
    /// The file was shorter than two slots (truncated): extend it before
    /// the next write.
    short: bool,
}

impl Slots {
    /// The slots at `path` (in directory `dir`); nothing is touched yet.
    pub fn new(path: PathBuf, dir: PathBuf) -> Slots {
        Slots {
            path,
            dir,
            open: Mutex::new(Open::default()),
        }
    }

    /// Reads both slots and returns the newest valid one. Later writes go
    /// to the other slot.
    pub fn read(&self) -> io::Result<SlotsRead> {
        let file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SlotsRead::Missing),
            Err(e) => return Err(e),
        };
        let mut valid = Vec::new();
        let mut damaged = None;
        let mut blank = 0;
        for slot in 0..2 {
            let mut bytes = vec![0u8; SLOT_BYTES];
            let read = read_at_most(&file, &mut bytes, slot as u64 * SLOT_BYTES as u64)?;
            bytes.truncate(read);
            match decode(&bytes) {
                Decoded::Blank => blank += 1,
                Decoded::Valid { sequence, payload } => valid.push((sequence, payload)),
                Decoded::Damaged => damaged = Some(slot),
            }
        }
        valid.sort_by_key(|(sequence, _)| *sequence);
        let outcome = match valid.pop() {
            Some((sequence, payload)) => SlotsRead::Newest {
                payload,
                sequence,
                damaged,
            },
            None if blank == 2 => SlotsRead::Blank,
            None => SlotsRead::Damaged,
        };
        let newest = match &outcome {
            SlotsRead::Newest { sequence, .. } => *sequence,
            _ => 0,
        };
        let short = file.metadata()?.len() < FILE_BYTES;
        *self.lock() = Open {
            file: Some(file),
            newest,
            short,
        };
        Ok(outcome)
    }

    /// Saves `payload` (at most [`MAX_PAYLOAD`] bytes) durably: one write
    /// of the older slot, then `fdatasync`. Creates the file first if it
    /// does not exist.
    pub fn write(&self, payload: &[u8]) -> io::Result<()> {
        if payload.len() > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the state takes {} bytes, more than a slot's {MAX_PAYLOAD}",
                    payload.len()
                ),
            ));
        }
        if self.lock().file.is_none() {
            // A save before any read: learn which slot holds the newest.
            self.read()?;
        }
        let mut open = self.lock();
        if open.file.is_none() {
            open.file = Some(self.create()?);
        }
        let short = std::mem::take(&mut open.short);
        let sequence = open.newest + 1;
        let Some(file) = &open.file else {
            return Err(io::Error::other("the state file is not open"));
        };
        if short {
            extend(file, &self.dir)?;
        }
        let slot = sequence % 2;
        file.write_all_at(&encode(sequence, payload), slot * SLOT_BYTES as u64)?;
        file.sync_data()?;
        open.newest = sequence;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the file, preallocated: zeros over both slots, synced with
    /// its directory entry.
    fn create(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            // Owner-only: the vote and the membership are this node's alone.
            .mode(0o600)
            .open(&self.path)?;
        extend(&file, &self.dir)?;
        Ok(file)
    }
}

/// Writes zeros from the end of `file` to [`FILE_BYTES`] (allocating the
/// blocks every later save overwrites), then syncs it and its directory.
fn extend(file: &File, dir: &Path) -> io::Result<()> {
    let length = file.metadata()?.len();
    if length < FILE_BYTES {
        let zeros = vec![0u8; (FILE_BYTES - length) as usize];
        file.write_all_at(&zeros, length)?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What one slot's bytes hold.
enum Decoded {
    Blank,
    Valid { sequence: u64, payload: Vec<u8> },
    Damaged,
}

fn decode(bytes: &[u8]) -> Decoded {
    if bytes.iter().all(|&b| b == 0) {
        return Decoded::Blank;
    }
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
        return Decoded::Damaged;
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let mut sequence = [0u8; 8];
    sequence.copy_from_slice(&bytes[4..12]);
    let sequence = u64::from_le_bytes(sequence);
    let length = word(12) as usize;
    let Some(payload) = bytes.get(HEADER_BYTES..HEADER_BYTES + length) else {
        return Decoded::Damaged;
    };
    if length > MAX_PAYLOAD || checksum(&bytes[..16], payload) != word(16) {
        return Decoded::Damaged;
    }
    Decoded::Valid {
        sequence,
        payload: payload.to_vec(),
    }
}

fn encode(sequence: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&sequence.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = checksum(&bytes, payload);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Reads into `buf` from `offset` until it is full or the file ends;
/// returns how much was read.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
