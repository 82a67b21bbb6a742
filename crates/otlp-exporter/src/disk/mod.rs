//! The persistent sending queue's on-disk log.
//!
//! A directory holds:
//! - segment files `seg-<id, 16 hex digits>.log`: the 8-byte magic `RLQSEG02`, then records
//!   `[len u32][crc32 u32][span_count u32][len bytes]` (little-endian; the CRC covers the span
//!   count field as written and the `len` bytes, so a torn or flipped header is caught too).
//!   When the batch carries client metadata (otelcol's `client.Info.Metadata`, which
//!   `headers_setter` turns into the tenant's header), the top bit (`1 << 31`) of
//!   `span_count` is set and the `len` bytes are
//!   `[meta_len u32][meta_len bytes of ClientMetadata::encode][the request]`; otherwise they
//!   are the request alone. A batch of 2^31 spans or more is refused, as its count would read
//!   as the flag. Segments with the magic `RLQSEG01` (Redline before client metadata) hold
//!   records `[len u32][crc32 u32][span_count u32][len bytes of the request]`, without the
//!   flag: they are still read, never appended to (every start writes into a new segment).
//!   An older Redline finds a `RLQSEG02` segment's magic unknown and sets it aside
//!   (`.corrupt`, see below) rather than sending its metadata as part of a request.
//!   Records are appended at the segment's known length with positional writes, so a failed
//!   write is overwritten by the next one instead of leaving garbage in the middle of the log.
//! - `ack`: two 32-byte slots `[generation u64][segment u64][offset u64][crc32 u32][pad]`
//!   written alternately; the valid slot with the higher generation is the position before
//!   which every record has been acknowledged. A torn write damages one slot only.
//! - `shutdown`, written by a clean stop: records acknowledged out of order (sent, but after a
//!   record still unacknowledged) and records in flight, so the next start neither sends the
//!   former again nor leaves duplicates of the latter unexplained. Removed when read.
//!
//! Senders finish out of order (`num_consumers` of them), so acknowledgements are tracked by
//! sequence number and the durable position moves over the longest acknowledged prefix.
//! A segment is deleted once no unacknowledged record lives in it. On open, every record after
//! the durable position is read and checked; the first bad one (a crash mid-write, or client
//! metadata that does not decode) and everything after it in that segment is cut off with a
//! warning, a segment whose magic is unknown is renamed aside, and nothing that fails its CRC
//! is ever handed out. The client metadata of every record not yet acknowledged is kept in
//! memory, so the queue compares it (only batches of one client share a request) without
//! reading the disk; records of one client share one copy.
//!
//! Two halves, so that no disk I/O happens under the sending queue's lock:
//! - [`LogFiles`], shared, does the writing: appends (serialized by their own lock, positional
//!   writes into the current segment), syncs, the ack file and segment deletion.
//! - [`DiskLog`], under the queue's lock, is the index: what is unread, in flight and
//!   acknowledged. It takes the records [`LogFiles`] made durable, in log order, and turns an
//!   acknowledgement into an [`AckWork`] that the caller hands to [`LogFiles`] after unlocking.
//!
//! With `fsync`, appends are committed in groups: a writer appends its record, then either
//! becomes the syncer (one `fdatasync` covering every record written so far) or waits for the
//! sync in progress and, when that one started before its record was written, for the next.
//! [`LogFiles::append`] returns only once a completed sync covers the record, so the client is
//! still answered after its request is on disk, and N concurrent requests cost far fewer than
//! N syncs. A record is handed to senders only once durable. When a sync fails, every record
//! not yet covered by a successful sync fails with it and the segments are cut back to where
//! the first of them started, so a record whose writer was told "failed" never comes back.
//! Acknowledgements are written to the ack file at once and synced by whoever finds no ack sync
//! in progress: a sender never waits for another's, and an ack that a crash loses only means a
//! batch is sent again (at-least-once).

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};
use redline_pipeline::{Batch, ClientMetadata};

/// The magic of segments written now: records may carry client metadata.
const SEGMENT_MAGIC: &[u8; 8] = b"RLQSEG02";
/// The magic of segments written before client metadata was kept: still read.
const SEGMENT_MAGIC_V1: &[u8; 8] = b"RLQSEG01";
/// In a `RLQSEG02` record's span_count field: its data starts with client metadata.
const HAS_CLIENT: u32 = 1 << 31;
/// Distinct client metadata values remembered to share one copy between records.
const RECENT_CLIENTS: usize = 8;
const SHUTDOWN_MAGIC: &[u8; 8] = b"RLQSHUT1";
const HEADER: u64 = 12;
const MAGIC_LEN: u64 = SEGMENT_MAGIC.len() as u64;
const ACK_FILE: &str = "ack";
const ACK_SLOT: u64 = 32;
const SHUTDOWN_FILE: &str = "shutdown";

/// Where a record starts (or a position between records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub seg: u64,
    pub off: u64,
}

#[derive(Clone, Debug)]
struct Meta {
    seq: u64,
    pos: Pos,
    /// Data bytes on disk: the client metadata prefix, if any, and the request.
    len: u32,
    /// Bytes of the request alone: what the queue reserved for the batch
    /// (`Batch::byte_len`) and releases once it is done.
    raw_len: u32,
    /// Without the [`HAS_CLIENT`] flag.
    spans: u32,
    /// Kept until the record is acknowledged: a record put back is sent with it again.
    client: Option<ClientMetadata>,
}

impl Meta {
    fn end(&self) -> Pos {
        Pos {
            seg: self.pos.seg,
            off: self.pos.off + HEADER + u64::from(self.len),
        }
    }

    /// The span_count field as written.
    fn span_field(&self) -> u32 {
        if self.client.is_some() {
            self.spans | HAS_CLIENT
        } else {
            self.spans
        }
    }

    /// Bytes of data before the request.
    fn prefix_len(&self) -> usize {
        (self.len - self.raw_len) as usize
    }

    fn batch(&self, raw: Bytes) -> Batch {
        let mut batch = Batch::traces(raw, self.spans as usize);
        batch.set_client(self.client.clone());
        batch
    }
}

/// Counts of records not yet acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub batches: u64,
    pub spans: u64,
    /// Of the requests alone, as the queue counts batches (`Batch::byte_len`): client
    /// metadata is not counted.
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, m: &Meta) {
        self.batches += 1;
        self.spans += u64::from(m.spans);
        self.bytes += u64::from(m.raw_len);
    }

    fn sub(&mut self, m: &Meta) {
        self.batches = self.batches.saturating_sub(1);
        self.spans = self.spans.saturating_sub(u64::from(m.spans));
        self.bytes = self.bytes.saturating_sub(u64::from(m.raw_len));
    }
}

/// What opening found.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Records left by a previous run, to be sent.
    pub pending: Totals,
    /// The previous run wrote its shutdown record.
    pub clean: bool,
    /// Records that were being sent when the previous (clean) run stopped: if Tempo took them
    /// before the stop, they arrive twice.
    pub possibly_delivered: u64,
    /// Records acknowledged out of order by the previous run: not sent again.
    pub skipped_delivered: u64,
    /// Bytes cut off damaged segment tails.
    pub truncated_bytes: u64,
    /// Files renamed aside because they are not Redline queue segments.
    pub set_aside: Vec<PathBuf>,
}

/// The next record, taken for sending.
pub(crate) enum Pop {
    Batch {
        seq: u64,
        batch: Batch,
    },
    /// Written and checked, but unreadable now (the disk changed under us): it cannot be sent.
    Lost {
        seq: u64,
        spans: u64,
        reason: String,
    },
}

/// What acknowledgements leave to do on disk, done by [`LogFiles::persist`] once the queue's
/// lock is released.
#[derive(Debug, Default)]
pub(crate) struct AckWork {
    /// The new durable position, when it moved.
    position: Option<Pos>,
    /// Segments no unacknowledged record lives in any more.
    delete: Vec<u64>,
}

impl AckWork {
    pub fn merge(&mut self, other: AckWork) {
        self.position = self.position.max(other.position);
        self.delete.extend(other.delete);
    }

    pub fn is_empty(&self) -> bool {
        self.position.is_none() && self.delete.is_empty()
    }
}

/// Disk writes of one run, for the log line at shutdown and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WriteStats {
    /// Records appended.
    pub appends: u64,
    /// `fdatasync` calls on segments for appended records (one per group commit and segment).
    pub data_syncs: u64,
    /// `fdatasync` calls on the ack file.
    pub ack_syncs: u64,
}

/// A record written by this process, not yet taken by the index.
struct Staged {
    /// Order of writing; tells a writer whether a completed sync covered its record.
    ticket: u64,
    pos: Pos,
    /// Data bytes on disk, client metadata included.
    len: u32,
    /// Without the [`HAS_CLIENT`] flag.
    spans: u32,
    /// The request alone.
    raw: Bytes,
    client: Option<ClientMetadata>,
    file: Arc<File>,
}

impl Staged {
    fn end(&self) -> Pos {
        Pos {
            seg: self.pos.seg,
            off: self.pos.off + HEADER + u64::from(self.len),
        }
    }
}

/// The segment written to.
struct Current {
    id: u64,
    file: Arc<File>,
    /// Bytes of valid data: where the next record goes.
    len: u64,
}

struct Writer {
    /// `None` only while the log is being opened.
    current: Option<Current>,
    next_ticket: u64,
}

/// Group commit's state.
#[derive(Default)]
struct Commit {
    /// Written, not yet covered by a completed sync; in log order.
    unsynced: VecDeque<Staged>,
    /// Durable (with `fsync`) or written (without), waiting for the index; in log order.
    durable: VecDeque<Staged>,
    /// A writer is syncing, with this lock released.
    syncing: bool,
    /// Every ticket below this one is settled: durable, or failed.
    settled: u64,
    /// Syncs that failed, for writers that have not looked at their outcome yet.
    failures: Vec<Failure>,
    /// End of the last record a completed sync covered.
    synced_end: Pos,
}

struct Failure {
    tickets: Range<u64>,
    /// Writers of these tickets that have not been told yet; dropped at zero.
    untold: u64,
    reason: String,
}

impl Commit {
    /// Whether the settled record `ticket` is durable; its writer is told once.
    fn outcome(&mut self, ticket: u64) -> io::Result<()> {
        let Some(i) = self
            .failures
            .iter()
            .position(|f| f.tickets.contains(&ticket))
        else {
            return Ok(());
        };
        let f = &mut self.failures[i];
        f.untold = f.untold.saturating_sub(1);
        let err = io::Error::other(format!("sync failed: {}", f.reason));
        if f.untold == 0 {
            self.failures.swap_remove(i);
        }
        Err(err)
    }
}

struct AckState {
    generation: u64,
    /// The position last written to a slot.
    written: Pos,
    /// A sender is syncing the ack file, with this lock released.
    syncing: bool,
}

/// What a sync is for, as the test hook sees it.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncOf {
    Segments,
    Acks,
}

/// Runs before each `fdatasync` (an error simulates a failing disk), for tests.
#[cfg(test)]
type SyncHook = Box<dyn FnMut(SyncOf) -> io::Result<()> + Send>;

/// The files of a log: appends, group commit, the ack file and segment deletion, shared by
/// every writer and used without the sending queue's lock.
pub(crate) struct LogFiles {
    dir: PathBuf,
    fsync: bool,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    commit: Mutex<Commit>,
    /// Signalled when a sync completes or fails.
    settled: Condvar,
    ack_file: File,
    ack: Mutex<AckState>,
    appends: AtomicU64,
    data_syncs: AtomicU64,
    ack_syncs: AtomicU64,
    #[cfg(test)]
    sync_hook: Mutex<Option<SyncHook>>,
}

pub(crate) struct DiskLog {
    files: Arc<LogFiles>,
    /// By id: the segments the index knows of, the newest last. The writer's current segment
    /// is always at or after the last one, so deleting below it never touches a write.
    segments: BTreeMap<u64, Arc<File>>,
    /// Durable: every record before it is acknowledged.
    acked: Pos,
    next_seq: u64,
    /// First sequence number not acknowledged.
    ack_seq: u64,
    unread: VecDeque<Meta>,
    in_flight: BTreeMap<u64, Meta>,
    /// Acknowledged after `ack_seq`, waiting for the records before them.
    done: BTreeMap<u64, Meta>,
    /// Requests of records appended by this process (without their client metadata, which
    /// their [`Meta`] holds), newest last, so that a healthy exporter never reads back what
    /// it just wrote.
    cache: VecDeque<(u64, Bytes)>,
    cache_bytes: u64,
    cache_limit: u64,
    pending: Totals,
    /// Reused to take durable records from [`LogFiles`] without allocating each time.
    taken: VecDeque<Staged>,
    /// The client metadata last taken into the index, most recent first: records of one
    /// client share one copy, so a backlog costs memory per client rather than per record,
    /// and comparing two of its records is a pointer comparison.
    recent_clients: VecDeque<ClientMetadata>,
}

fn segment_name(id: u64) -> String {
    format!("seg-{id:016x}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn record_crc(span_field: u32, data: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&span_field.to_le_bytes());
    for part in data {
        h.update(part);
    }
    h.finalize()
}

/// A checked record's span count, client metadata and the length of its metadata prefix,
/// from its span_count field and data. `with_clients`: the record is in a `RLQSEG02`
/// segment, where the field may carry the [`HAS_CLIENT`] flag.
fn split_record(
    with_clients: bool,
    span_field: u32,
    data: &[u8],
) -> Result<(u32, Option<ClientMetadata>, u32), String> {
    if !with_clients || span_field & HAS_CLIENT == 0 {
        return Ok((span_field, None, 0));
    }
    let (head, rest) = data
        .split_first_chunk::<4>()
        .ok_or("client metadata flagged, but the record is shorter than its length")?;
    let meta_len = u32::from_le_bytes(*head);
    let encoded = rest.get(..meta_len as usize).ok_or_else(|| {
        format!(
            "client metadata of {meta_len} bytes, only {} left",
            rest.len()
        )
    })?;
    let client = ClientMetadata::decode(encoded).map_err(|e| e.to_string())?;
    if client.is_empty() {
        // Never written (a batch keeps no empty metadata), so not a record of ours.
        return Err("client metadata flagged, but empty".to_owned());
    }
    Ok((span_field & !HAS_CLIENT, Some(client), 4 + meta_len))
}

/// `client`, or an equal value already in `recent` (which then shares its copy).
fn intern(recent: &mut VecDeque<ClientMetadata>, client: ClientMetadata) -> ClientMetadata {
    if let Some(i) = recent.iter().position(|c| *c == client) {
        let found = recent.remove(i).unwrap_or(client);
        recent.push_front(found.clone());
        return found;
    }
    recent.push_front(client.clone());
    recent.truncate(RECENT_CLIENTS);
    client
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Runs `f`, which waits for the disk, on this thread while the async runtime moves the
/// worker's other tasks to another thread: a request waiting for its group's sync must not
/// hold back the requests that would join the next group. Outside a multi-threaded runtime
/// (tests, the current-thread runtime) it simply runs `f`.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Reads the ack file: the valid slot with the higher generation, or none.
fn read_ack(file: &File) -> io::Result<Option<(u64, Pos)>> {
    let mut buf = vec![0u8; 2 * ACK_SLOT as usize];
    let n = file.read_at(&mut buf, 0)?;
    buf.truncate(n);
    let mut best: Option<(u64, Pos)> = None;
    for slot in buf.chunks_exact(ACK_SLOT as usize) {
        if crc32fast::hash(&slot[..24]) != u32_at(slot, 24) {
            continue;
        }
        let gen = u64_at(slot, 0);
        let pos = Pos {
            seg: u64_at(slot, 8),
            off: u64_at(slot, 16),
        };
        if best.is_none_or(|(g, _)| gen > g) {
            best = Some((gen, pos));
        }
    }
    Ok(best)
}

/// Positions listed by a clean shutdown: (acknowledged out of order, in flight).
type ShutdownRecord = (BTreeSet<Pos>, BTreeSet<Pos>);

fn encode_positions(out: &mut Vec<u8>, positions: &[Pos]) {
    out.extend_from_slice(&(positions.len() as u64).to_le_bytes());
    for p in positions {
        out.extend_from_slice(&p.seg.to_le_bytes());
        out.extend_from_slice(&p.off.to_le_bytes());
    }
}

fn decode_shutdown(b: &[u8]) -> Option<ShutdownRecord> {
    let body_len = b.len().checked_sub(4)?;
    if b.get(..8)? != SHUTDOWN_MAGIC || crc32fast::hash(&b[..body_len]) != u32_at(b, body_len) {
        return None;
    }
    let mut at = 8;
    let mut lists = [BTreeSet::new(), BTreeSet::new()];
    for list in &mut lists {
        let n = u64_at(b.get(..at + 8)?, at);
        at += 8;
        // A count larger than the bytes present is garbage, whatever the CRC said.
        if n > (body_len.saturating_sub(at) / 16) as u64 {
            return None;
        }
        for _ in 0..n {
            list.insert(Pos {
                seg: u64_at(b, at),
                off: u64_at(b, at + 8),
            });
            at += 16;
        }
    }
    let [done, in_flight] = lists;
    Some((done, in_flight))
}

impl LogFiles {
    pub fn fsync(&self) -> bool {
        self.fsync
    }

    pub fn stats(&self) -> WriteStats {
        WriteStats {
            appends: self.appends.load(Ordering::Relaxed),
            data_syncs: self.data_syncs.load(Ordering::Relaxed),
            ack_syncs: self.ack_syncs.load(Ordering::Relaxed),
        }
    }

    /// Creates segment `id` with its magic, durable (file and directory entry) when `fsync`.
    fn create_segment(&self, id: u64) -> io::Result<Current> {
        let path = self.dir.join(segment_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all_at(SEGMENT_MAGIC, 0)?;
        if self.fsync {
            file.sync_all()?;
            sync_dir(&self.dir)?;
        }
        Ok(Current {
            id,
            file: Arc::new(file),
            len: MAGIC_LEN,
        })
    }

    /// Appends `batch`; once this returns Ok the record is on disk, synced when `fsync` (by
    /// this call or by another writer's sync that covered it). Returns where it was written.
    /// The index sees it at its next [`DiskLog::absorb`].
    pub fn append(&self, batch: &Batch) -> io::Result<Pos> {
        if !self.fsync {
            return self.write(batch).map(|(_, pos)| pos);
        }
        // The write may wait too: for another writer's segment roll, which syncs.
        blocking(|| {
            let (ticket, pos) = self.write(batch)?;
            self.wait_durable(ticket)?;
            Ok(pos)
        })
    }

    /// Writes `batch` at the end of the log and queues it for the index (`fsync`: for a
    /// sync first): its ticket and position.
    fn write(&self, batch: &Batch) -> io::Result<(u64, Pos)> {
        let too_big = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("record too large: {what}"),
            )
        };
        // Any batch, flagged or not: an unflagged count this high would read as the flag.
        let spans = u32::try_from(batch.items)
            .ok()
            .filter(|s| s & HAS_CLIENT == 0)
            .ok_or_else(|| too_big("2^31 spans or more"))?;
        // Outside the writer's lock: only the writes are serialized. The header, then the
        // client metadata prefix, if any.
        let mut head = vec![0u8; HEADER as usize];
        let span_field = match batch.client() {
            Some(client) => {
                head.extend_from_slice(&[0; 4]);
                client.encode(&mut head);
                let meta_len = u32::try_from(head.len() - HEADER as usize - 4)
                    .map_err(|_| too_big("client metadata"))?;
                head[12..16].copy_from_slice(&meta_len.to_le_bytes());
                spans | HAS_CLIENT
            }
            None => spans,
        };
        let len = u32::try_from(head.len() - HEADER as usize + batch.raw.len())
            .map_err(|_| too_big("4 GiB or more"))?;
        let need = HEADER + u64::from(len);
        let crc = record_crc(span_field, &[&head[HEADER as usize..], &batch.raw]);
        let client = batch.client().cloned();
        head[0..4].copy_from_slice(&len.to_le_bytes());
        head[4..8].copy_from_slice(&crc.to_le_bytes());
        head[8..12].copy_from_slice(&span_field.to_le_bytes());
        let (ticket, pos) = {
            let mut guard = self.writer.lock();
            let writer = &mut *guard;
            let current = writer
                .current
                .as_mut()
                .ok_or_else(|| io::Error::other("no segment open"))?;
            if current.len > MAGIC_LEN && current.len + need > self.segment_bytes {
                // Records still unsynced in the old segment are synced by their group's sync,
                // which covers every segment they live in.
                *current = self.create_segment(current.id + 1)?;
            }
            let off = current.len;
            let written = current.file.write_all_at(&head, off).and_then(|()| {
                current
                    .file
                    .write_all_at(&batch.raw, off + head.len() as u64)
            });
            if let Err(e) = written {
                // The next record goes at `off` again, over whatever part of this one landed.
                let _ = current.file.set_len(off);
                return Err(e);
            }
            current.len = off + need;
            let ticket = writer.next_ticket;
            writer.next_ticket += 1;
            let pos = Pos {
                seg: current.id,
                off,
            };
            let staged = Staged {
                ticket,
                pos,
                len,
                spans,
                raw: batch.raw.clone(),
                client,
                file: current.file.clone(),
            };
            // Queued under the writer's lock, so the queues stay in log order.
            let mut commit = self.commit.lock();
            if self.fsync {
                commit.unsynced.push_back(staged);
            } else {
                commit.settled = ticket + 1;
                commit.durable.push_back(staged);
            }
            (ticket, pos)
        };
        self.appends.fetch_add(1, Ordering::Relaxed);
        Ok((ticket, pos))
    }

    /// Returns once record `ticket` is durable (or its sync failed), syncing it and every
    /// record written before the sync starts when no other writer is syncing.
    fn wait_durable(&self, ticket: u64) -> io::Result<()> {
        let mut commit = self.commit.lock();
        loop {
            if ticket < commit.settled {
                return commit.outcome(ticket);
            }
            if commit.syncing {
                self.settled.wait(&mut commit);
                continue;
            }
            // Every written record from `settled` on is in `unsynced`, ours among them.
            let Some(last) = commit.unsynced.back() else {
                return Err(io::Error::other("record missing from the commit queue"));
            };
            let target = last.ticket + 1;
            let end = last.end();
            let mut files: Vec<(u64, Arc<File>)> = Vec::new();
            for s in &commit.unsynced {
                if files.last().is_none_or(|(seg, _)| *seg != s.pos.seg) {
                    files.push((s.pos.seg, s.file.clone()));
                }
            }
            commit.syncing = true;
            let synced = MutexGuard::unlocked(&mut commit, || self.sync_segments(&files));
            match synced {
                Ok(()) => {
                    while commit.unsynced.front().is_some_and(|s| s.ticket < target) {
                        if let Some(s) = commit.unsynced.pop_front() {
                            commit.durable.push_back(s);
                        }
                    }
                    commit.settled = target;
                    commit.synced_end = end;
                }
                Err(e) => {
                    // The writer's lock comes first: released here, taken back after.
                    drop(commit);
                    self.fail_unsynced(&e);
                    commit = self.commit.lock();
                }
            }
            commit.syncing = false;
            self.settled.notify_all();
        }
    }

    fn sync_segments(&self, files: &[(u64, Arc<File>)]) -> io::Result<()> {
        #[cfg(test)]
        if let Some(hook) = self.sync_hook.lock().as_mut() {
            hook(SyncOf::Segments)?;
        }
        for (_, file) in files {
            self.data_syncs.fetch_add(1, Ordering::Relaxed);
            file.sync_data()?;
        }
        Ok(())
    }

    /// After a failed sync: what it covered may not be on disk (and the kernel may have
    /// dropped the dirty pages), so every record not covered by an earlier successful sync
    /// fails, and each segment is cut back to where the first of them starts. Records after
    /// them went into the same files, so they fail too.
    fn fail_unsynced(&self, error: &io::Error) {
        let mut writer = self.writer.lock();
        let mut commit = self.commit.lock();
        let Some(first) = commit.unsynced.front().map(|s| s.ticket) else {
            return;
        };
        let mut cut: BTreeMap<u64, (Arc<File>, u64)> = BTreeMap::new();
        let count = commit.unsynced.len() as u64;
        for s in commit.unsynced.drain(..) {
            cut.entry(s.pos.seg).or_insert((s.file, s.pos.off));
        }
        for (seg, (file, off)) in cut {
            if let Err(e) = file.set_len(off) {
                tracing::warn!(
                    file = %self.dir.join(segment_name(seg)).display(),
                    error = %e,
                    "sending queue: cannot cut off records whose sync failed; the next record overwrites them"
                );
            }
            if let Some(current) = writer.current.as_mut().filter(|c| c.id == seg) {
                current.len = off;
            }
        }
        // Holding the writer's lock: no ticket beyond these was handed out.
        commit.failures.push(Failure {
            tickets: first..writer.next_ticket,
            untold: count,
            reason: error.to_string(),
        });
        commit.settled = writer.next_ticket;
    }

    /// Writes the acknowledged position `pos` unless a later one was written already, and
    /// with `fsync` syncs the ack file unless another sender is doing so: that one syncs
    /// again when it sees a newer slot, so a sender never waits for another's sync.
    fn write_ack(&self, pos: Pos) -> io::Result<()> {
        let mut ack = self.ack.lock();
        if pos <= ack.written {
            return Ok(());
        }
        ack.generation += 1;
        let mut slot = [0u8; ACK_SLOT as usize];
        slot[0..8].copy_from_slice(&ack.generation.to_le_bytes());
        slot[8..16].copy_from_slice(&pos.seg.to_le_bytes());
        slot[16..24].copy_from_slice(&pos.off.to_le_bytes());
        let crc = crc32fast::hash(&slot[..24]);
        slot[24..28].copy_from_slice(&crc.to_le_bytes());
        // Alternate slots: a torn write (even one racing a sync) damages one slot only, and
        // either slot, once valid, holds a position that was truly acknowledged.
        self.ack_file
            .write_all_at(&slot, (ack.generation % 2) * ACK_SLOT)?;
        ack.written = pos;
        if !self.fsync || ack.syncing {
            return Ok(());
        }
        ack.syncing = true;
        let synced = loop {
            let generation = ack.generation;
            let r = MutexGuard::unlocked(&mut ack, || {
                blocking(|| {
                    #[cfg(test)]
                    if let Some(hook) = self.sync_hook.lock().as_mut() {
                        hook(SyncOf::Acks)?;
                    }
                    self.ack_syncs.fetch_add(1, Ordering::Relaxed);
                    self.ack_file.sync_data()
                })
            });
            if r.is_err() || ack.generation == generation {
                break r;
            }
        };
        ack.syncing = false;
        synced
    }

    /// Does on disk what acknowledgements left to do: the ack position, then the deletion of
    /// segments every record of which is acknowledged.
    pub fn persist(&self, work: AckWork) -> io::Result<()> {
        let written = work.position.map_or(Ok(()), |pos| self.write_ack(pos));
        // Deleted even when the position could not be written: their records are all
        // acknowledged, and an older position on disk only means some are sent again.
        for id in work.delete {
            let path = self.dir.join(segment_name(id));
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "sending queue: cannot delete an acknowledged segment");
            }
        }
        written
    }

    /// The segment of the oldest record written but not yet taken by the index.
    fn first_staged_segment(&self) -> Option<u64> {
        let commit = self.commit.lock();
        commit
            .durable
            .front()
            .or(commit.unsynced.front())
            .map(|s| s.pos.seg)
    }

    /// End of the last record a completed sync covered.
    #[cfg(test)]
    pub(crate) fn synced_end(&self) -> Pos {
        self.commit.lock().synced_end
    }

    /// Runs `hook` before each `fdatasync`: it may wait (to let writers pile up) or fail (a
    /// disk error, and the sync is not done).
    #[cfg(test)]
    pub(crate) fn set_sync_hook(
        &self,
        hook: impl FnMut(SyncOf) -> io::Result<()> + Send + 'static,
    ) {
        *self.sync_hook.lock() = Some(Box::new(hook));
    }

    /// Makes the first segment sync wait until `appends` records are written, so that all of
    /// them wait for a sync at once (and fail with it, with `fail`); later syncs run at once.
    #[cfg(test)]
    pub(crate) fn hold_first_sync(self: &Arc<Self>, appends: u64, fail: bool) {
        let files = Arc::downgrade(self);
        let mut first = true;
        self.set_sync_hook(move |of| {
            if of != SyncOf::Segments || !std::mem::take(&mut first) {
                return Ok(());
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while files.upgrade().is_some_and(|f| f.stats().appends < appends) {
                if std::time::Instant::now() > deadline {
                    // Failing the sync fails the writers: the test sees it instead of hanging.
                    return Err(io::Error::other(format!(
                        "{appends} appends never waited for a sync together"
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if fail {
                Err(io::Error::other("injected sync failure"))
            } else {
                Ok(())
            }
        });
    }
}

impl DiskLog {
    /// Opens (or creates) the log in `dir`, recovering what a previous run left.
    /// `segment_bytes`: a new segment is started once a record would grow the current one past
    /// this. `cache_limit`: bytes of recent records kept in memory.
    pub fn open(
        dir: &Path,
        fsync: bool,
        segment_bytes: u64,
        cache_limit: u64,
        label: &str,
    ) -> io::Result<(Self, Recovery)> {
        let mut recovery = Recovery::default();
        let (prior_done, prior_in_flight) = Self::take_shutdown_record(dir, fsync, label)?;
        recovery.clean = prior_done.is_some();
        let prior_done = prior_done.unwrap_or_default();

        let ack_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(ACK_FILE))?;
        let (ack_gen, acked) = read_ack(&ack_file)?.unwrap_or_default();

        let mut ids: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| parse_segment_name(&e.file_name().to_string_lossy()))
            .collect();
        ids.sort_unstable();

        let files = Arc::new(LogFiles {
            dir: dir.to_owned(),
            fsync,
            segment_bytes: segment_bytes.max(MAGIC_LEN + HEADER),
            writer: Mutex::new(Writer {
                current: None,
                next_ticket: 0,
            }),
            commit: Mutex::new(Commit::default()),
            settled: Condvar::new(),
            ack_file,
            ack: Mutex::new(AckState {
                generation: ack_gen,
                written: acked,
                syncing: false,
            }),
            appends: AtomicU64::new(0),
            data_syncs: AtomicU64::new(0),
            ack_syncs: AtomicU64::new(0),
            #[cfg(test)]
            sync_hook: Mutex::new(None),
        });
        let mut log = Self {
            files: files.clone(),
            segments: BTreeMap::new(),
            acked,
            next_seq: 0,
            ack_seq: 0,
            unread: VecDeque::new(),
            in_flight: BTreeMap::new(),
            done: BTreeMap::new(),
            cache: VecDeque::new(),
            cache_bytes: 0,
            cache_limit,
            pending: Totals::default(),
            taken: VecDeque::new(),
            recent_clients: VecDeque::new(),
        };
        for &id in &ids {
            log.load_segment(id, &prior_done, &prior_in_flight, &mut recovery, label)?;
        }
        let next_id = ids.last().copied().unwrap_or(0).max(acked.seg) + 1;
        let current = files.create_segment(next_id)?;
        log.segments.insert(next_id, current.file.clone());
        files.writer.lock().current = Some(current);
        if let Some(pos) = log.advance_ack() {
            files.write_ack(pos)?;
        }
        let work = AckWork {
            position: None,
            delete: log.collect_garbage(),
        };
        files.persist(work)?;
        recovery.pending = log.pending;
        Ok((log, recovery))
    }

    fn take_shutdown_record(
        dir: &Path,
        fsync: bool,
        label: &str,
    ) -> io::Result<(Option<BTreeSet<Pos>>, BTreeSet<Pos>)> {
        let path = dir.join(SHUTDOWN_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((None, BTreeSet::new())),
            Err(e) => return Err(e),
        };
        // Gone before anything of this run becomes durable: a crash of this run must not be
        // mistaken for a clean stop.
        std::fs::remove_file(&path)?;
        if fsync {
            sync_dir(dir)?;
        }
        match decode_shutdown(&bytes) {
            Some((done, in_flight)) => Ok((Some(done), in_flight)),
            None => {
                tracing::warn!(
                    exporter = %label,
                    file = %path.display(),
                    "sending queue: shutdown record is damaged; ignoring it"
                );
                Ok((None, BTreeSet::new()))
            }
        }
    }

    fn load_segment(
        &mut self,
        id: u64,
        prior_done: &BTreeSet<Pos>,
        prior_in_flight: &BTreeSet<Pos>,
        recovery: &mut Recovery,
        label: &str,
    ) -> io::Result<()> {
        let path = self.files.dir.join(segment_name(id));
        if id < self.acked.seg {
            // Fully acknowledged; the previous run stopped before deleting it.
            return std::fs::remove_file(&path);
        }
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let file_len = file.metadata()?.len();
        let mut magic = [0u8; 8];
        if file_len < MAGIC_LEN {
            // Created, then a crash before its magic was written: it holds nothing.
            return std::fs::remove_file(&path);
        }
        file.read_exact_at(&mut magic, 0)?;
        let with_clients = &magic == SEGMENT_MAGIC;
        if !with_clients && &magic != SEGMENT_MAGIC_V1 {
            let aside = self.files.dir.join(format!("{}.corrupt", segment_name(id)));
            std::fs::rename(&path, &aside)?;
            tracing::warn!(
                exporter = %label,
                file = %path.display(),
                moved_to = %aside.display(),
                "sending queue: segment does not start with a magic this Redline reads (not a queue segment, or one of a newer Redline); set aside, not loaded"
            );
            recovery.set_aside.push(aside);
            return Ok(());
        }
        let start = if id == self.acked.seg {
            self.acked.off.clamp(MAGIC_LEN, file_len)
        } else {
            MAGIC_LEN
        };
        let (valid_end, damage) = self.scan(
            &file,
            id,
            with_clients,
            start,
            file_len,
            prior_done,
            prior_in_flight,
            recovery,
        )?;
        if valid_end < file_len {
            file.set_len(valid_end)?;
            if self.files.fsync {
                file.sync_all()?;
            }
            recovery.truncated_bytes += file_len - valid_end;
            tracing::warn!(
                exporter = %label,
                file = %path.display(),
                offset = valid_end,
                dropped_bytes = file_len - valid_end,
                reason = %damage.unwrap_or_default(),
                "sending queue: damaged record (a write cut short by a crash?); truncated the segment there"
            );
        }
        self.segments.insert(id, Arc::new(file));
        Ok(())
    }

    /// Reads records from `start`; returns where the valid ones end and, if they end before
    /// the file does, why. `with_clients`: a `RLQSEG02` segment.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &mut self,
        file: &File,
        seg: u64,
        with_clients: bool,
        start: u64,
        file_len: u64,
        prior_done: &BTreeSet<Pos>,
        prior_in_flight: &BTreeSet<Pos>,
        recovery: &mut Recovery,
    ) -> io::Result<(u64, Option<String>)> {
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        reader.seek(SeekFrom::Start(start))?;
        let mut off = start;
        let mut data = Vec::new();
        loop {
            let left = file_len - off;
            if left == 0 {
                return Ok((off, None));
            }
            if left < HEADER {
                return Ok((
                    off,
                    Some(format!("{left} bytes left, a record header needs 12")),
                ));
            }
            let mut header = [0u8; HEADER as usize];
            reader.read_exact(&mut header)?;
            let (len, crc, span_field) =
                (u32_at(&header, 0), u32_at(&header, 4), u32_at(&header, 8));
            if u64::from(len) > left - HEADER {
                return Ok((
                    off,
                    Some(format!(
                        "record of {len} bytes, only {} left",
                        left - HEADER
                    )),
                ));
            }
            data.resize(len as usize, 0);
            reader.read_exact(&mut data)?;
            if record_crc(span_field, &[&data]) != crc {
                return Ok((off, Some("CRC mismatch".to_owned())));
            }
            // Metadata that does not decode despite its CRC was never written by us: damage
            // all the same, and the records after it are not trusted either.
            let (spans, client, prefix) = match split_record(with_clients, span_field, &data) {
                Ok(split) => split,
                Err(reason) => return Ok((off, Some(reason))),
            };
            let pos = Pos { seg, off };
            let mut meta = Meta {
                seq: self.next_seq,
                pos,
                len,
                raw_len: len - prefix,
                spans,
                client: None,
            };
            self.next_seq += 1;
            off = meta.end().off;
            if prior_done.contains(&pos) {
                // Never sent again: its metadata is not needed.
                recovery.skipped_delivered += 1;
                self.done.insert(meta.seq, meta);
            } else {
                if prior_in_flight.contains(&pos) {
                    recovery.possibly_delivered += 1;
                }
                meta.client = client.map(|c| intern(&mut self.recent_clients, c));
                self.pending.add(&meta);
                self.unread.push_back(meta);
            }
        }
    }

    /// The shared side, for appends and acknowledgement writes without the queue's lock.
    pub fn files(&self) -> Arc<LogFiles> {
        self.files.clone()
    }

    /// Appends `batch` and takes it into the index; once this returns Ok the record is on
    /// disk (and synced when `fsync`). For a single owner; the queue appends through
    /// [`LogFiles::append`] without its lock.
    #[cfg(test)]
    pub fn append(&mut self, batch: &Batch) -> io::Result<()> {
        self.files.append(batch)?;
        self.absorb();
        Ok(())
    }

    /// Takes the records [`LogFiles`] made durable since the last call, in log order: from
    /// here on they count as pending and can be popped.
    pub fn absorb(&mut self) {
        {
            let mut commit = self.files.commit.lock();
            if commit.durable.is_empty() {
                return;
            }
            std::mem::swap(&mut commit.durable, &mut self.taken);
        }
        while let Some(s) = self.taken.pop_front() {
            self.segments.entry(s.pos.seg).or_insert(s.file);
            let raw_len = s.raw.len() as u64;
            let seq = self.next_seq;
            let meta = Meta {
                seq,
                pos: s.pos,
                len: s.len,
                // The writer checked that the record's length, and so the request's, fits.
                raw_len: raw_len as u32,
                spans: s.spans,
                client: s.client.map(|c| intern(&mut self.recent_clients, c)),
            };
            self.next_seq += 1;
            self.pending.add(&meta);
            self.unread.push_back(meta);
            if raw_len <= self.cache_limit {
                self.cache.push_back((seq, s.raw));
                self.cache_bytes += raw_len;
                while self.cache_bytes > self.cache_limit {
                    let Some((_, old)) = self.cache.pop_front() else {
                        break;
                    };
                    self.cache_bytes -= old.len() as u64;
                }
            }
        }
    }

    /// Size of the next record to send: (bytes of its request, spans), as its batch counts
    /// them (`Batch::byte_len`, `Batch::items`).
    pub fn peek(&self) -> Option<(u64, u64)> {
        self.unread
            .front()
            .map(|m| (u64::from(m.raw_len), u64::from(m.spans)))
    }

    /// The client metadata of the next record to send, the one its batch will carry.
    pub fn front_client(&self) -> Option<&ClientMetadata> {
        self.unread.front().and_then(|m| m.client.as_ref())
    }

    pub fn unread(&self) -> usize {
        self.unread.len()
    }

    /// Records not acknowledged yet (unread and in flight).
    pub fn pending(&self) -> Totals {
        self.pending
    }

    /// Takes the next record for sending; it stays on disk until [`DiskLog::ack`].
    pub fn pop(&mut self) -> Option<Pop> {
        let meta = self.unread.pop_front()?;
        while self.cache.front().is_some_and(|(s, _)| *s < meta.seq) {
            if let Some((_, old)) = self.cache.pop_front() {
                self.cache_bytes -= old.len() as u64;
            }
        }
        let cached = match self.cache.front() {
            Some((s, _)) if *s == meta.seq => self.cache.pop_front().map(|(_, raw)| raw),
            _ => None,
        };
        let popped = match cached {
            Some(raw) => {
                self.cache_bytes -= raw.len() as u64;
                Ok(raw)
            }
            None => self.read(&meta),
        };
        let popped = match popped {
            Ok(raw) => Pop::Batch {
                seq: meta.seq,
                batch: meta.batch(raw),
            },
            Err(reason) => Pop::Lost {
                seq: meta.seq,
                spans: u64::from(meta.spans),
                reason,
            },
        };
        self.in_flight.insert(meta.seq, meta);
        Some(popped)
    }

    /// The request of `meta`'s record, read back and checked: without its client metadata,
    /// which `meta` holds as the scan or the append found it.
    fn read(&self, meta: &Meta) -> Result<Bytes, String> {
        let file = self
            .segments
            .get(&meta.pos.seg)
            .ok_or_else(|| format!("segment {} is gone", meta.pos.seg))?;
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, meta.pos.off)
            .map_err(|e| e.to_string())?;
        if u32_at(&header, 0) != meta.len || u32_at(&header, 8) != meta.span_field() {
            return Err("record header changed on disk".to_owned());
        }
        let mut data = vec![0u8; meta.len as usize];
        file.read_exact_at(&mut data, meta.pos.off + HEADER)
            .map_err(|e| e.to_string())?;
        if record_crc(meta.span_field(), &[&data]) != u32_at(&header, 4) {
            return Err("CRC mismatch on read back".to_owned());
        }
        let prefix = meta.prefix_len();
        // Where the request starts follows from the metadata's length: rewritten with a
        // matching CRC, it must still be the length found before.
        if prefix > 0 && u32_at(&data, 0) as usize != prefix - 4 {
            return Err("client metadata changed on disk".to_owned());
        }
        Ok(Bytes::from(data).slice(prefix..))
    }

    /// Puts a popped record back, unsent: it is known not to have been delivered.
    pub fn unpop(&mut self, seq: u64) {
        let Some(meta) = self.in_flight.remove(&seq) else {
            return;
        };
        let at = self.unread.partition_point(|m| m.seq < seq);
        self.unread.insert(at, meta);
    }

    /// Acknowledges a popped record (delivered, or given up on): it will not be sent again.
    /// For a single owner; the queue uses [`DiskLog::ack_deferred`].
    #[cfg(test)]
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        let work = self.ack_deferred(seq);
        self.files.persist(work)
    }

    /// [`DiskLog::ack`] without the disk: what is left to do goes to [`LogFiles::persist`].
    pub fn ack_deferred(&mut self, seq: u64) -> AckWork {
        let Some(meta) = self.in_flight.remove(&seq) else {
            return AckWork::default();
        };
        self.pending.sub(&meta);
        // Never sent again: its metadata is not needed.
        self.done.insert(
            seq,
            Meta {
                client: None,
                ..meta
            },
        );
        AckWork {
            position: self.advance_ack(),
            delete: self.collect_garbage(),
        }
    }

    /// Moves the durable position over the acknowledged prefix; the new position, if it moved.
    fn advance_ack(&mut self) -> Option<Pos> {
        let mut moved = None;
        while let Some(meta) = self.done.remove(&self.ack_seq) {
            moved = Some(meta.end());
            self.ack_seq += 1;
        }
        let end = moved?;
        self.acked = end;
        Some(end)
    }

    /// Forgets the segments before the one holding the first unacknowledged record (written
    /// records not yet absorbed included) and returns them, to be deleted.
    fn collect_garbage(&mut self) -> Vec<u64> {
        let Some((&current, _)) = self.segments.last_key_value() else {
            return Vec::new();
        };
        let first_unacked = [
            self.in_flight.values().next().map(|m| (m.seq, m.pos.seg)),
            self.unread.front().map(|m| (m.seq, m.pos.seg)),
            self.done.values().next().map(|m| (m.seq, m.pos.seg)),
        ]
        .into_iter()
        .flatten()
        .min()
        .map_or(current, |(_, seg)| seg);
        let keep_from = first_unacked
            .min(current)
            .min(self.files.first_staged_segment().unwrap_or(u64::MAX));
        let old: Vec<u64> = self
            .segments
            .range(..keep_from)
            .map(|(&id, _)| id)
            .collect();
        for id in &old {
            self.segments.remove(id);
        }
        old
    }

    /// Records what the next start needs to avoid and explain duplicates. Records in flight
    /// stay unacknowledged: they are sent again.
    pub fn write_shutdown_record(&mut self) -> io::Result<()> {
        let fsync = self.files.fsync;
        if fsync {
            // Acks written without a sync of their own (another sender's was running) become
            // durable before the record that complements them.
            self.files.ack_file.sync_data()?;
        }
        let done: Vec<Pos> = self.done.values().map(|m| m.pos).collect();
        let in_flight: Vec<Pos> = self.in_flight.values().map(|m| m.pos).collect();
        let mut buf = SHUTDOWN_MAGIC.to_vec();
        encode_positions(&mut buf, &done);
        encode_positions(&mut buf, &in_flight);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let dir = &self.files.dir;
        let tmp = dir.join(format!("{SHUTDOWN_FILE}.tmp"));
        {
            let f = File::create(&tmp)?;
            f.write_all_at(&buf, 0)?;
            if fsync {
                f.sync_all()?;
            }
        }
        std::fs::rename(&tmp, dir.join(SHUTDOWN_FILE))?;
        if fsync {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Records in flight now.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
