//! The persistent sending queue's on-disk log.
//!
//! A directory holds:
//! - segment files `seg-<id, 16 hex digits>.log`: an 8-byte magic, then records
//!   `[len u32][crc32 u32][span_count u32][len bytes]` (little-endian; the CRC covers the span
//!   count and the bytes, so a torn or flipped header is caught too). Records are appended at
//!   the segment's known length with positional writes, so a failed write is overwritten by
//!   the next one instead of leaving garbage in the middle of the log.
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
//! the durable position is read and checked; the first bad one (a crash mid-write) and
//! everything after it in that segment is cut off with a warning, a segment whose magic is
//! wrong is renamed aside, and nothing that fails its CRC is ever handed out.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use redline_pipeline::Batch;

const SEGMENT_MAGIC: &[u8; 8] = b"RLQSEG01";
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

#[derive(Clone, Copy, Debug)]
struct Meta {
    seq: u64,
    pos: Pos,
    len: u32,
    spans: u32,
}

impl Meta {
    fn end(&self) -> Pos {
        Pos {
            seg: self.pos.seg,
            off: self.pos.off + HEADER + u64::from(self.len),
        }
    }
}

struct Segment {
    file: File,
    /// Bytes of valid data: where the next record of this segment goes.
    len: u64,
}

/// Counts of records not yet acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub batches: u64,
    pub spans: u64,
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, m: &Meta) {
        self.batches += 1;
        self.spans += u64::from(m.spans);
        self.bytes += u64::from(m.len);
    }

    fn sub(&mut self, m: &Meta) {
        self.batches = self.batches.saturating_sub(1);
        self.spans = self.spans.saturating_sub(u64::from(m.spans));
        self.bytes = self.bytes.saturating_sub(u64::from(m.len));
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

pub(crate) struct DiskLog {
    dir: PathBuf,
    fsync: bool,
    segment_bytes: u64,
    /// By id; the last one is written to.
    segments: BTreeMap<u64, Segment>,
    ack_file: File,
    ack_gen: u64,
    /// Durable: every record before it is acknowledged.
    acked: Pos,
    next_seq: u64,
    /// First sequence number not acknowledged.
    ack_seq: u64,
    unread: VecDeque<Meta>,
    in_flight: BTreeMap<u64, Meta>,
    /// Acknowledged after `ack_seq`, waiting for the records before them.
    done: BTreeMap<u64, Meta>,
    /// Bytes of records appended by this process, newest last, so that a healthy exporter
    /// never reads back what it just wrote.
    cache: VecDeque<(u64, Bytes)>,
    cache_bytes: u64,
    cache_limit: u64,
    pending: Totals,
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

fn record_crc(spans: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&spans.to_le_bytes());
    h.update(data);
    h.finalize()
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

        let mut log = Self {
            dir: dir.to_owned(),
            fsync,
            segment_bytes: segment_bytes.max(MAGIC_LEN + HEADER),
            segments: BTreeMap::new(),
            ack_file,
            ack_gen,
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
        };
        for &id in &ids {
            log.load_segment(id, &prior_done, &prior_in_flight, &mut recovery, label)?;
        }
        let next_id = ids.last().copied().unwrap_or(0).max(acked.seg) + 1;
        log.roll_to(next_id)?;
        log.advance_ack()?;
        log.collect_garbage();
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
        let path = self.dir.join(segment_name(id));
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
        if &magic != SEGMENT_MAGIC {
            let aside = self.dir.join(format!("{}.corrupt", segment_name(id)));
            std::fs::rename(&path, &aside)?;
            tracing::warn!(
                exporter = %label,
                file = %path.display(),
                moved_to = %aside.display(),
                "sending queue: segment does not start with Redline's magic; set aside, not loaded"
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
            start,
            file_len,
            prior_done,
            prior_in_flight,
            recovery,
        )?;
        if valid_end < file_len {
            file.set_len(valid_end)?;
            if self.fsync {
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
        self.segments.insert(
            id,
            Segment {
                file,
                len: valid_end,
            },
        );
        Ok(())
    }

    /// Reads records from `start`; returns where the valid ones end and, if they end before
    /// the file does, why.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &mut self,
        file: &File,
        seg: u64,
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
            let (len, crc, spans) = (u32_at(&header, 0), u32_at(&header, 4), u32_at(&header, 8));
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
            if record_crc(spans, &data) != crc {
                return Ok((off, Some("CRC mismatch".to_owned())));
            }
            let pos = Pos { seg, off };
            let meta = Meta {
                seq: self.next_seq,
                pos,
                len,
                spans,
            };
            self.next_seq += 1;
            if prior_done.contains(&pos) {
                recovery.skipped_delivered += 1;
                self.done.insert(meta.seq, meta);
            } else {
                if prior_in_flight.contains(&pos) {
                    recovery.possibly_delivered += 1;
                }
                self.pending.add(&meta);
                self.unread.push_back(meta);
            }
            off = meta.end().off;
        }
    }

    /// Starts segment `id` and makes it the one written to.
    fn roll_to(&mut self, id: u64) -> io::Result<()> {
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
        self.segments.insert(
            id,
            Segment {
                file,
                len: MAGIC_LEN,
            },
        );
        Ok(())
    }

    /// Appends `batch`; once this returns Ok the record is on disk (and synced when `fsync`).
    pub fn append(&mut self, batch: &Batch) -> io::Result<()> {
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "record too large");
        let len = u32::try_from(batch.raw.len()).map_err(|_| too_big())?;
        let spans = u32::try_from(batch.items).map_err(|_| too_big())?;
        let need = HEADER + u64::from(len);
        let (&id, current) = self
            .segments
            .last_key_value()
            .ok_or_else(|| io::Error::other("no segment open"))?;
        if current.len > MAGIC_LEN && current.len + need > self.segment_bytes {
            self.roll_to(id + 1)?;
        }
        let (&id, seg) = self
            .segments
            .last_key_value()
            .ok_or_else(|| io::Error::other("no segment open"))?;
        let off = seg.len;
        let mut header = [0u8; HEADER as usize];
        header[0..4].copy_from_slice(&len.to_le_bytes());
        header[4..8].copy_from_slice(&record_crc(spans, &batch.raw).to_le_bytes());
        header[8..12].copy_from_slice(&spans.to_le_bytes());
        let written = seg
            .file
            .write_all_at(&header, off)
            .and_then(|()| seg.file.write_all_at(&batch.raw, off + HEADER))
            .and_then(|()| {
                if self.fsync {
                    seg.file.sync_data()
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            // The next record goes at `off` again, over whatever part of this one landed.
            let _ = seg.file.set_len(off);
            return Err(e);
        }
        if let Some(seg) = self.segments.get_mut(&id) {
            seg.len = off + need;
        }
        let meta = Meta {
            seq: self.next_seq,
            pos: Pos { seg: id, off },
            len,
            spans,
        };
        self.next_seq += 1;
        self.pending.add(&meta);
        self.unread.push_back(meta);
        if u64::from(len) <= self.cache_limit {
            self.cache.push_back((meta.seq, batch.raw.clone()));
            self.cache_bytes += u64::from(len);
            while self.cache_bytes > self.cache_limit {
                let Some((_, old)) = self.cache.pop_front() else {
                    break;
                };
                self.cache_bytes -= old.len() as u64;
            }
        }
        Ok(())
    }

    /// Size of the next record to send: (bytes, spans).
    pub fn peek(&self) -> Option<(u64, u64)> {
        self.unread
            .front()
            .map(|m| (u64::from(m.len), u64::from(m.spans)))
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
        self.in_flight.insert(meta.seq, meta);
        while self.cache.front().is_some_and(|(s, _)| *s < meta.seq) {
            if let Some((_, old)) = self.cache.pop_front() {
                self.cache_bytes -= old.len() as u64;
            }
        }
        if self.cache.front().is_some_and(|(s, _)| *s == meta.seq) {
            if let Some((_, raw)) = self.cache.pop_front() {
                self.cache_bytes -= raw.len() as u64;
                let batch = Batch::traces(raw, meta.spans as usize);
                return Some(Pop::Batch {
                    seq: meta.seq,
                    batch,
                });
            }
        }
        Some(match self.read(&meta) {
            Ok(raw) => Pop::Batch {
                seq: meta.seq,
                batch: Batch::traces(raw, meta.spans as usize),
            },
            Err(reason) => Pop::Lost {
                seq: meta.seq,
                spans: u64::from(meta.spans),
                reason,
            },
        })
    }

    fn read(&self, meta: &Meta) -> Result<Bytes, String> {
        let seg = self
            .segments
            .get(&meta.pos.seg)
            .ok_or_else(|| format!("segment {} is gone", meta.pos.seg))?;
        let mut header = [0u8; HEADER as usize];
        seg.file
            .read_exact_at(&mut header, meta.pos.off)
            .map_err(|e| e.to_string())?;
        if u32_at(&header, 0) != meta.len || u32_at(&header, 8) != meta.spans {
            return Err("record header changed on disk".to_owned());
        }
        let mut data = vec![0u8; meta.len as usize];
        seg.file
            .read_exact_at(&mut data, meta.pos.off + HEADER)
            .map_err(|e| e.to_string())?;
        if record_crc(meta.spans, &data) != u32_at(&header, 4) {
            return Err("CRC mismatch on read back".to_owned());
        }
        Ok(Bytes::from(data))
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
    pub fn ack(&mut self, seq: u64) -> io::Result<()> {
        let Some(meta) = self.in_flight.remove(&seq) else {
            return Ok(());
        };
        self.pending.sub(&meta);
        self.done.insert(seq, meta);
        self.advance_ack()?;
        self.collect_garbage();
        Ok(())
    }

    /// Moves the durable position over the acknowledged prefix.
    fn advance_ack(&mut self) -> io::Result<()> {
        let mut moved = None;
        while let Some(meta) = self.done.remove(&self.ack_seq) {
            moved = Some(meta.end());
            self.ack_seq += 1;
        }
        let Some(end) = moved else {
            return Ok(());
        };
        self.acked = end;
        self.ack_gen += 1;
        let mut slot = [0u8; ACK_SLOT as usize];
        slot[0..8].copy_from_slice(&self.ack_gen.to_le_bytes());
        slot[8..16].copy_from_slice(&end.seg.to_le_bytes());
        slot[16..24].copy_from_slice(&end.off.to_le_bytes());
        let crc = crc32fast::hash(&slot[..24]);
        slot[24..28].copy_from_slice(&crc.to_le_bytes());
        self.ack_file
            .write_all_at(&slot, (self.ack_gen % 2) * ACK_SLOT)?;
        if self.fsync {
            self.ack_file.sync_data()?;
        }
        Ok(())
    }

    /// Deletes the segments before the one holding the first unacknowledged record.
    fn collect_garbage(&mut self) {
        let Some((&current, _)) = self.segments.last_key_value() else {
            return;
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
        let old: Vec<u64> = self
            .segments
            .range(..first_unacked.min(current))
            .map(|(&id, _)| id)
            .collect();
        for id in old {
            self.segments.remove(&id);
            let path = self.dir.join(segment_name(id));
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "sending queue: cannot delete an acknowledged segment");
            }
        }
    }

    /// Records what the next start needs to avoid and explain duplicates. Records in flight
    /// stay unacknowledged: they are sent again.
    pub fn write_shutdown_record(&mut self) -> io::Result<()> {
        let done: Vec<Pos> = self.done.values().map(|m| m.pos).collect();
        let in_flight: Vec<Pos> = self.in_flight.values().map(|m| m.pos).collect();
        let mut buf = SHUTDOWN_MAGIC.to_vec();
        encode_positions(&mut buf, &done);
        encode_positions(&mut buf, &in_flight);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join(format!("{SHUTDOWN_FILE}.tmp"));
        {
            let f = File::create(&tmp)?;
            f.write_all_at(&buf, 0)?;
            if self.fsync {
                f.sync_all()?;
            }
        }
        std::fs::rename(&tmp, self.dir.join(SHUTDOWN_FILE))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Records in flight now.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
