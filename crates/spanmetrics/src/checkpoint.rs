//! Counters that survive a restart: the series state written to a file and read back.
//!
//! With `storage: <file_storage id>` the connector writes every series (labels, counts,
//! buckets, sum, start time, exemplar) and the overflow series to one file at an interval and
//! when it stops, and reads it when it starts, so a graceful restart continues each counter
//! where it stood, with its original start time: Prometheus sees no reset.
//!
//! After a crash the file may be older than what a scrape already showed; continuing from it
//! would make a counter go backwards with no reset Prometheus can detect. So the file only
//! stays while every reader has seen no more than it holds: each shard counts the spans it
//! records (`version`), the file remembers those counts, and the first read of the state that
//! finds a shard past them deletes the file before the values leave the process. A crash
//! then starts from zero with new start times, a reset Prometheus sees.
//!
//! Format (little endian): magic, format version, a SHA-256 of the settings that shape the
//! series (namespace, labels, dimensions, buckets, exemplars), the record size, the overflow
//! series, then per series its label strings and record words; a SHA-256 of all of it last.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::aggregate::key::Key;
use crate::aggregate::SpanMetrics;
use crate::series::{kind, status, words_mut, W_CREATED, W_META};

const MAGIC: &[u8; 8] = b"RLSPNMTR";
const FORMAT: u32 = 1;
const ABSENT: u32 = u32::MAX;
const DIGEST: usize = 32;

/// Why a checkpoint was not used. The connector then starts from zero and says why.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not a span-metrics state file or is damaged: {what}", path.display())]
    Corrupt { path: PathBuf, what: &'static str },
    #[error("`{}` has format version {found}; this Redline reads version {FORMAT}", path.display())]
    Format { path: PathBuf, found: u32 },
    #[error(
        "`{}` was written with other labels, dimensions, buckets or exemplar settings than \
         this config has; its counters cannot continue",
        path.display()
    )]
    ConfigChanged { path: PathBuf },
}

/// The file on disk and the shard versions it holds.
pub(crate) struct Persisted {
    path: PathBuf,
    shards: Vec<u64>,
    overflow: u64,
    /// Series held when written: expiry removes some without counting a span.
    series: usize,
}

/// A series key read from a checkpoint.
struct RestoredKey<'a> {
    labels: &'a [Option<&'a str>],
    words: &'a [u64],
}

impl Key for RestoredKey<'_> {
    fn service(&self) -> Option<&str> {
        self.labels.first().copied().flatten()
    }
    fn name(&self) -> Option<&str> {
        self.labels.get(1).copied().flatten()
    }
    fn kind(&self) -> u8 {
        kind(self.words)
    }
    fn status(&self) -> u8 {
        status(self.words)
    }
    fn dim(&self, i: usize) -> Option<&str> {
        self.labels.get(2 + i).copied().flatten()
    }
}

/// Reads a checkpoint front to back; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CheckpointError> {
        if self.buf.len() < n {
            return Err(CheckpointError::Corrupt {
                path: self.path.to_owned(),
                what,
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, CheckpointError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, CheckpointError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn words(&mut self, n: usize, out: &mut Vec<u64>) -> Result<(), CheckpointError> {
        out.clear();
        for _ in 0..n {
            out.push(self.u64("a series record is cut short")?);
        }
        Ok(())
    }
    fn label(&mut self) -> Result<Option<&'a str>, CheckpointError> {
        let len = self.u32("a label is cut short")?;
        if len == ABSENT {
            return Ok(None);
        }
        let bytes = self.take(len as usize, "a label is cut short")?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| CheckpointError::Corrupt {
                path: self.path.to_owned(),
                what: "a label is not UTF-8",
            })
    }
}

fn put_label(out: &mut Vec<u8>, label: Option<&str>) {
    match label {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&ABSENT.to_le_bytes()),
    }
}

impl SpanMetrics {
    /// What a checkpoint must have been written with for its records to mean the same here.
    fn fingerprint(&self) -> [u8; DIGEST] {
        let s = &self.settings;
        let mut h = Sha256::new();
        h.update(s.namespace.as_bytes());
        h.update(format!(
            "\n{:?}\n{:?}\n{:?}\n{}\n{}\n{}",
            s.include,
            s.histogram,
            s.exponential_max_size,
            s.unit.as_str(),
            s.exemplars,
            self.layout.stride
        ));
        for d in &s.dimensions {
            h.update(format!("\n{}={:?}", d.name, d.default));
        }
        h.finalize().into()
    }

    /// The state as checkpoint bytes, with the shard versions they hold.
    fn encode_state(&self) -> (Vec<u8>, Persisted) {
        let now_ms = self.now_ms();
        let (snaps, overflow) = self.snapshot(now_ms);
        let stride = self.layout.stride;
        let mut out =
            Vec::with_capacity(64 + snaps.iter().map(|s| s.rows.len() * 10).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&self.fingerprint());
        out.extend_from_slice(&(stride as u64).to_le_bytes());
        out.push(u8::from(overflow.active));
        out.extend_from_slice(&overflow.errors.to_le_bytes());
        let overflow_words = if overflow.active {
            overflow.words.clone()
        } else {
            vec![0; stride]
        };
        for w in overflow_words
            .iter()
            .chain(std::iter::repeat(&0))
            .take(stride)
        {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let count: usize = snaps.iter().map(|s| s.rows.len() / stride.max(1)).sum();
        out.extend_from_slice(&(count as u64).to_le_bytes());
        for snap in &snaps {
            for words in snap.rows.chunks_exact(stride.max(1)) {
                let (service, name) = crate::series::ids(words);
                put_label(&mut out, snap.get(service));
                put_label(&mut out, snap.get(name));
                for i in 0..self.layout.n_dims {
                    put_label(&mut out, snap.get(self.layout.dim_id(words, i)));
                }
                for w in words {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
        let digest: [u8; DIGEST] = Sha256::digest(&out).into();
        out.extend_from_slice(&digest);
        let persisted = Persisted {
            path: PathBuf::new(),
            shards: snaps.iter().map(|s| s.version).collect(),
            overflow: overflow.version,
            series: count,
        };
        (out, persisted)
    }

    /// Writes the state to `path` (through a temporary file and a rename, so a crash while
    /// writing leaves the previous file or none, never half of one). Returns the series
    /// written.
    pub fn write_checkpoint(&self, path: &Path, fsync: bool) -> std::io::Result<usize> {
        // Held throughout: a read that copies the state meanwhile compares against the file
        // this write leaves, never against one it replaces.
        let mut persisted = self.persisted.lock();
        if persisted
            .as_ref()
            .is_some_and(|p| p.path == path && self.unchanged_since(p))
        {
            // Nothing counted or expired since the file was written: it is still exact.
            return Ok(self.series_count());
        }
        let (bytes, mut fresh) = self.encode_state();
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            if fsync {
                f.sync_all()?;
            }
        }
        std::fs::rename(&tmp, path)?;
        if fsync {
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        fresh.path = path.to_owned();
        let series = self.series_count();
        *persisted = Some(fresh);
        Ok(series)
    }

    fn unchanged_since(&self, p: &Persisted) -> bool {
        p.series == self.series_count()
            && self.overflow.lock().version == p.overflow
            && self
                .shards
                .iter()
                .zip(&p.shards)
                .all(|(shard, held)| shard.0.lock().version == *held)
    }

    /// Continues the counters of the checkpoint at `path`, if there is one. Returns the
    /// series restored, `Ok(None)` when there is no file. On an error nothing was restored.
    pub fn load_checkpoint(&self, path: &Path) -> Result<Option<usize>, CheckpointError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let restored = self.restore(&bytes, path)?;
        // The file holds what this process now serves: it stays valid until a read shows
        // more (every shard version is 0 again, and counting a span raises one).
        *self.persisted.lock() = Some(Persisted {
            path: path.to_owned(),
            shards: vec![0; self.shards.len()],
            overflow: 0,
            series: self.series_count(),
        });
        Ok(Some(restored))
    }

    fn restore(&self, bytes: &[u8], path: &Path) -> Result<usize, CheckpointError> {
        let corrupt = |what| CheckpointError::Corrupt {
            path: path.to_owned(),
            what,
        };
        if bytes.len() < MAGIC.len() + 4 + DIGEST || !bytes.starts_with(MAGIC) {
            return Err(corrupt("no span-metrics header"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - DIGEST);
        let mut r = Reader {
            buf: &body[MAGIC.len()..],
            path,
        };
        let format = r.u32("no format version")?;
        if format != FORMAT {
            return Err(CheckpointError::Format {
                path: path.to_owned(),
                found: format,
            });
        }
        if Sha256::digest(body).as_slice() != digest {
            return Err(corrupt("the checksum does not match"));
        }
        if r.take(DIGEST, "no settings digest")? != self.fingerprint() {
            return Err(CheckpointError::ConfigChanged {
                path: path.to_owned(),
            });
        }
        let stride = self.layout.stride;
        if r.u64("no record size")? != stride as u64 {
            return Err(CheckpointError::ConfigChanged {
                path: path.to_owned(),
            });
        }
        // Everything is read before anything is restored: a file that fails halfway leaves
        // the state empty, not half restored.
        let overflow_active = r.take(1, "no overflow series")?[0] != 0;
        let overflow_errors = r.u64("no overflow series")?;
        let mut overflow_words = Vec::with_capacity(stride);
        r.words(stride, &mut overflow_words)?;
        let count = r.u64("no series count")?;
        let per_series = 2 + self.layout.n_dims;
        let mut labels: Vec<Option<&str>> = Vec::new();
        let mut records: Vec<u64> = Vec::new();
        let mut words = Vec::with_capacity(stride);
        for _ in 0..count {
            for _ in 0..per_series {
                labels.push(r.label()?);
            }
            r.words(stride, &mut words)?;
            records.extend_from_slice(&words);
        }
        if !r.buf.is_empty() {
            return Err(corrupt("bytes after the last series"));
        }

        let now_ms = self.now_ms();
        if overflow_active {
            let mut o = self.overflow.lock();
            o.active = true;
            o.errors = overflow_errors;
            o.words = overflow_words;
            touch(&mut o.words, now_ms);
        }
        let mut restored = 0;
        for (labels, words) in labels
            .chunks_exact(per_series)
            .zip(records.chunks_exact(stride.max(1)))
        {
            if self.restore_series(&RestoredKey { labels, words }, now_ms) {
                restored += 1;
            }
        }
        Ok(restored)
    }

    /// Adds one series of a checkpoint with its counts; false when the cardinality limit
    /// leaves no room for it.
    fn restore_series(&self, key: &RestoredKey<'_>, now_ms: u64) -> bool {
        let (group, hash) = self.hash_key(key);
        let Some(shard) = self.shards.get(((group >> 32) as usize) & self.shard_mask) else {
            return false;
        };
        if !self.admit() {
            return false;
        }
        let mut guard = shard.0.lock();
        let created = key.words.get(W_CREATED).copied().unwrap_or(0);
        let slot = self.insert_series(&mut guard, hash, key, created);
        let stride = self.layout.stride;
        let words = words_mut(&mut guard.chunks, stride, slot);
        let from = self.layout.counts.min(stride);
        if let (Some(dst), Some(src)) = (words.get_mut(from..), key.words.get(from..)) {
            dst.copy_from_slice(src);
        }
        touch(words, now_ms);
        true
    }

    /// Forgets the checkpoint when a reader copied more than it holds: deletes the file
    /// before the values leave the process.
    pub(crate) fn note_read(&self, shard_versions: impl Iterator<Item = u64>, overflow: u64) {
        let mut persisted = self.persisted.lock();
        let Some(p) = persisted.as_ref() else {
            return;
        };
        let newer = overflow > p.overflow
            || shard_versions
                .zip(p.shards.iter())
                .any(|(seen, held)| seen > *held);
        if !newer {
            return;
        }
        match std::fs::remove_file(&p.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                path = %p.path.display(), error = %e,
                "spanmetrics: cannot remove the state file a scrape has outgrown; a crash now \
                 could continue from it"
            ),
        }
        *persisted = None;
    }
}

/// Marks a restored record as just seen, so idle-series expiry counts from the restart.
fn touch(words: &mut [u64], now_ms: u64) {
    if let Some(w) = words.get_mut(W_META) {
        *w = (*w & 0xffff) | (now_ms << 16);
    }
}
