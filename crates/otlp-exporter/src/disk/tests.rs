//! The log format against a real directory: write, read back, acknowledge, roll over,
//! recover from torn and damaged files, and restart.

use super::*;

use rand::{Rng, SeedableRng};

fn batch(tag: u8, len: usize, spans: usize) -> Batch {
    Batch::traces(Bytes::from(vec![tag; len]), spans)
}

fn open(dir: &Path, segment_bytes: u64, cache: u64) -> (DiskLog, Recovery) {
    DiskLog::open(dir, false, segment_bytes, cache, "test").expect("opens")
}

/// Pops every unread record: (seq, bytes, spans).
fn drain(log: &mut DiskLog) -> Vec<(u64, Bytes, usize)> {
    let mut out = Vec::new();
    while let Some(p) = log.pop() {
        match p {
            Pop::Batch { seq, batch } => out.push((seq, batch.raw, batch.items)),
            Pop::Lost { reason, .. } => panic!("lost a record: {reason}"),
        }
    }
    out
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    names.sort();
    names
}

fn last_segment(dir: &Path) -> PathBuf {
    let names = segment_files(dir);
    dir.join(names.last().expect("a segment"))
}

#[test]
fn records_read_back_identical_with_and_without_the_cache() {
    for cache in [0, 1 << 20] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (mut log, rec) = open(tmp.path(), 1 << 20, cache);
        assert_eq!(rec.pending, Totals::default());
        let sent: Vec<Batch> = (0..5u8)
            .map(|i| batch(i, 100 + i as usize, i as usize))
            .collect();
        for b in &sent {
            log.append(b).expect("appends");
        }
        assert_eq!(
            log.pending(),
            Totals {
                batches: 5,
                spans: 10,
                bytes: 510
            }
        );
        assert_eq!(log.peek(), Some((100, 0)));
        let got = drain(&mut log);
        assert_eq!(got.len(), 5);
        for ((seq, raw, spans), b) in got.iter().zip(&sent) {
            assert_eq!(raw, &b.raw, "record {seq} (cache {cache})");
            assert_eq!(*spans, b.items);
        }
        assert_eq!(log.in_flight(), 5);
        for (seq, ..) in &got {
            log.ack(*seq).expect("acks");
        }
        assert_eq!(log.pending(), Totals::default());
    }
}

#[test]
fn a_restart_resends_what_was_not_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 1 << 20);
        for i in 0..5 {
            log.append(&batch(i, 50, 1)).expect("appends");
        }
        let got = drain(&mut log);
        log.ack(got[0].0).expect("acks");
        // Dropped without a shutdown record: a crash.
    }
    let (mut log, rec) = open(tmp.path(), 1 << 20, 1 << 20);
    assert!(!rec.clean);
    assert_eq!(rec.pending.batches, 4);
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(
        tags,
        vec![1, 2, 3, 4],
        "in order, the acknowledged one not again"
    );
}

#[test]
fn a_clean_stop_remembers_out_of_order_acks_and_in_flight_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 1 << 20);
        for i in 0..4 {
            log.append(&batch(i, 50, 2)).expect("appends");
        }
        let got = drain(&mut log);
        // Record 0 is still being sent; 1 and 2 were delivered; 3 is in flight too.
        log.ack(got[1].0).expect("acks");
        log.ack(got[2].0).expect("acks");
        log.write_shutdown_record().expect("writes");
    }
    let (mut log, rec) = open(tmp.path(), 1 << 20, 1 << 20);
    assert!(rec.clean);
    assert_eq!(rec.skipped_delivered, 2);
    assert_eq!(rec.possibly_delivered, 2);
    assert_eq!(rec.pending.batches, 2);
    assert_eq!(rec.pending.spans, 4);
    let got = drain(&mut log);
    let tags: Vec<u8> = got.iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![0, 3]);
    for (seq, ..) in got {
        log.ack(seq).expect("acks");
    }
    drop(log);
    let (_, rec) = open(tmp.path(), 1 << 20, 1 << 20);
    assert!(!rec.clean, "the shutdown record is used once");
    assert_eq!(rec.pending.batches, 0);
}

#[test]
fn segments_roll_over_and_are_deleted_once_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(tmp.path(), 8 + 2 * (12 + 40), 0);
    for i in 0..10 {
        log.append(&batch(i, 40, 1)).expect("appends");
    }
    // The segment opened at start, then one per two records.
    assert_eq!(segment_files(tmp.path()).len(), 5);
    let got = drain(&mut log);
    // Acknowledging out of order frees nothing until the first record is done.
    for (seq, ..) in got.iter().skip(1) {
        log.ack(*seq).expect("acks");
    }
    assert_eq!(segment_files(tmp.path()).len(), 5);
    log.ack(got[0].0).expect("acks");
    assert_eq!(
        segment_files(tmp.path()).len(),
        1,
        "only the current segment is left"
    );
    drop(log);
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(rec.pending.batches, 0);
    assert!(drain(&mut log).is_empty());
    assert_eq!(
        segment_files(tmp.path()).len(),
        1,
        "the fully acknowledged one went too"
    );
}

#[test]
fn a_torn_tail_is_truncated_and_the_rest_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 0);
        for i in 0..3 {
            log.append(&batch(i, 100, 1)).expect("appends");
        }
    }
    let seg = last_segment(tmp.path());
    let full = std::fs::metadata(&seg).expect("stat").len();
    assert_eq!(full, 8 + 3 * 112);
    // A crash mid-write of the third record.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("opens")
        .set_len(full - 30)
        .expect("cuts");
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(rec.pending.batches, 2);
    assert_eq!(rec.truncated_bytes, 112 - 30);
    assert_eq!(std::fs::metadata(&seg).expect("stat").len(), 8 + 2 * 112);
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![0, 1]);
}

#[test]
fn a_damaged_record_is_never_loaded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 0);
        for i in 0..3 {
            log.append(&batch(i, 100, 1)).expect("appends");
        }
    }
    let seg = last_segment(tmp.path());
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .expect("opens");
    // One bit of the second record's data flipped.
    f.write_all_at(&[1 ^ 0x40], 8 + 112 + 12 + 50)
        .expect("writes");
    drop(f);
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(
        rec.pending.batches, 1,
        "the CRC stops the load at the damage"
    );
    assert_eq!(rec.truncated_bytes, 2 * 112);
    let got = drain(&mut log);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, Bytes::from(vec![0u8; 100]));
}

#[test]
fn a_file_that_is_not_a_segment_is_set_aside() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join(segment_name(1)),
        b"not a redline segment at all",
    )
    .expect("writes");
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(rec.set_aside.len(), 1);
    assert!(rec.set_aside[0].to_string_lossy().ends_with(".corrupt"));
    assert_eq!(rec.pending.batches, 0);
    log.append(&batch(7, 10, 1)).expect("still usable");
    assert_eq!(drain(&mut log).len(), 1);
}

#[test]
fn random_garbage_after_the_magic_loads_nothing_and_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..400 {
        let tmp = tempfile::tempdir().expect("tempdir");
        let magic = if round % 2 == 0 {
            SEGMENT_MAGIC
        } else {
            SEGMENT_MAGIC_V1
        };
        let mut bytes = magic.to_vec();
        let n = rng.random_range(0..300);
        bytes.extend((0..n).map(|_| rng.random::<u8>()));
        std::fs::write(tmp.path().join(segment_name(1)), &bytes).expect("writes");
        let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
        // A random record passes a CRC-32 with odds of 1 in 4 billion: none here.
        assert_eq!(rec.pending.batches, 0, "round {round}");
        assert!(drain(&mut log).is_empty());
    }
}

#[test]
fn a_torn_ack_slot_falls_back_to_the_other() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 0);
        for i in 0..3 {
            log.append(&batch(i, 10, 1)).expect("appends");
        }
        let got = drain(&mut log);
        log.ack(got[0].0).expect("acks"); // generation 1, slot 1
        log.ack(got[1].0).expect("acks"); // generation 2, slot 0
    }
    let ack = OpenOptions::new()
        .write(true)
        .open(tmp.path().join(ACK_FILE))
        .expect("opens");
    ack.write_all_at(&[0xff; 8], 8).expect("tears slot 0");
    drop(ack);
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(
        rec.pending.batches, 2,
        "back to the older position: one record again"
    );
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![1, 2]);
}

#[test]
fn a_record_damaged_after_it_was_written_is_reported_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(tmp.path(), 1 << 20, 0);
    log.append(&batch(1, 100, 3)).expect("appends");
    log.append(&batch(2, 100, 4)).expect("appends");
    let seg = last_segment(tmp.path());
    let f = OpenOptions::new().write(true).open(&seg).expect("opens");
    f.write_all_at(&[0xee], 8 + 12 + 5).expect("writes");
    drop(f);
    match log.pop() {
        Some(Pop::Lost { seq, spans, .. }) => {
            assert_eq!(spans, 3);
            log.ack(seq).expect("acks");
        }
        _ => panic!("the damaged record must not be handed out"),
    }
    let got = drain(&mut log);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1[0], 2);
}

#[test]
fn a_damaged_shutdown_record_is_ignored() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 0);
        log.append(&batch(1, 10, 1)).expect("appends");
        log.write_shutdown_record().expect("writes");
    }
    let path = tmp.path().join(SHUTDOWN_FILE);
    let mut bytes = std::fs::read(&path).expect("reads");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).expect("writes");
    let (_, rec) = open(tmp.path(), 1 << 20, 0);
    assert!(!rec.clean);
    assert_eq!(rec.pending.batches, 1);
    assert!(!path.exists());
}

#[test]
fn records_put_back_are_sent_again_in_order_and_not_reported_in_flight() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 1 << 20);
        for i in 0..4 {
            log.append(&batch(i, 20, 1)).expect("appends");
        }
        let got = drain(&mut log);
        log.unpop(got[2].0);
        log.unpop(got[0].0);
        assert_eq!(log.in_flight(), 2);
        let again: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
        assert_eq!(again, vec![0, 2], "back in sequence order");
        log.unpop(got[0].0);
        log.unpop(got[2].0);
        log.write_shutdown_record().expect("writes");
    }
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(
        rec.possibly_delivered, 2,
        "only records 1 and 3 were still in flight"
    );
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![0, 1, 2, 3]);
}

#[test]
fn fsync_mode_writes_the_same_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = DiskLog::open(tmp.path(), true, 8 + 2 * 32, 0, "test").expect("opens");
        for i in 0..5 {
            log.append(&batch(i, 20, 1)).expect("appends");
        }
        let got = drain(&mut log);
        log.ack(got[0].0).expect("acks");
        log.unpop(got[1].0);
        log.write_shutdown_record().expect("writes");
    }
    let (mut log, rec) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("opens");
    assert!(rec.clean);
    assert_eq!(rec.possibly_delivered, 3);
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![1, 2, 3, 4]);
}

/// A batch whose bytes name its writer and its place in that writer's sequence.
fn tagged(writer: u8, n: u16, len: usize) -> Batch {
    let mut raw = vec![writer; len];
    raw[1..3].copy_from_slice(&n.to_le_bytes());
    Batch::traces(Bytes::from(raw), 1 + n as usize % 5)
}

#[test]
fn concurrent_fsync_appends_share_syncs_and_each_returns_once_durable() {
    const WRITERS: u8 = 16;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = DiskLog::open(tmp.path(), true, 1 << 20, 1 << 20, "test").expect("opens");
    let files = log.files();
    files.hold_first_sync(u64::from(WRITERS), false);
    let barrier = Arc::new(std::sync::Barrier::new(usize::from(WRITERS)));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (files, barrier) = (files.clone(), barrier.clone());
            std::thread::spawn(move || {
                let b = tagged(w, 0, 300);
                barrier.wait();
                let pos = files.append(&b).expect("appends");
                let end = Pos {
                    seg: pos.seg,
                    off: pos.off + HEADER + 300,
                };
                // Returned: a sync that completed covered this record's last byte.
                assert!(
                    files.synced_end() >= end,
                    "writer {w} returned before its record was synced"
                );
                (w, pos)
            })
        })
        .collect();
    let mut written: Vec<(u8, Pos)> = threads
        .into_iter()
        .map(|t| t.join().expect("writer"))
        .collect();
    let stats = files.stats();
    assert_eq!(stats.appends, u64::from(WRITERS));
    // The first sync covered what was written before it started; one more covered the rest.
    assert!(
        (1..=2).contains(&stats.data_syncs),
        "{} appends cost {} syncs",
        WRITERS,
        stats.data_syncs
    );

    // The index sees them in log order, each once, byte for byte.
    log.absorb();
    written.sort_by_key(|&(_, pos)| pos);
    let got = drain(&mut log);
    assert_eq!(got.len(), written.len());
    for ((_, raw, _), (w, _)) in got.iter().zip(&written) {
        assert_eq!(raw, &tagged(*w, 0, 300).raw);
    }
    drop(log);
    let (mut log, rec) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("reopens");
    assert_eq!(rec.pending.batches, u64::from(WRITERS));
    let again: Vec<Bytes> = drain(&mut log).into_iter().map(|(_, raw, _)| raw).collect();
    let expected: Vec<Bytes> = written
        .iter()
        .map(|(w, _)| tagged(*w, 0, 300).raw)
        .collect();
    assert_eq!(
        again, expected,
        "after a crash, every durable record once, in log order"
    );
}

#[test]
fn a_crash_amid_concurrent_fsync_appends_and_acks_loses_and_repeats_nothing() {
    const WRITERS: u8 = 4;
    const EACH: u16 = 60;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut acked: Vec<Bytes> = Vec::new();
    let mut durable: Vec<Vec<Bytes>> = Vec::new();
    {
        // Small segments: records roll over segments and acknowledged ones get deleted while
        // writers append.
        let (mut log, _) = DiskLog::open(tmp.path(), true, 8 + 8 * 212, 0, "test").expect("opens");
        let files = log.files();
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let files = files.clone();
                std::thread::spawn(move || {
                    (0..EACH)
                        .map(|n| {
                            let b = tagged(w, n, 200);
                            files.append(&b).expect("appends");
                            b.raw
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A sender meanwhile: takes what is durable and acknowledges it, in order.
        while acked.len() < 100 {
            log.absorb();
            while let Some(p) = log.pop() {
                let Pop::Batch { seq, batch } = p else {
                    panic!("lost a record");
                };
                acked.push(batch.raw);
                files.persist(log.ack_deferred(seq)).expect("acks");
            }
            std::thread::yield_now();
        }
        for t in threads {
            durable.push(t.join().expect("writer"));
        }
        // Dropped without a shutdown record: a crash.
    }
    let (mut log, rec) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("reopens");
    assert!(!rec.clean);
    let left: Vec<Bytes> = drain(&mut log).into_iter().map(|(_, raw, _)| raw).collect();
    let mut all: Vec<Bytes> = acked.iter().chain(&left).cloned().collect();
    assert_eq!(
        all.len(),
        usize::from(WRITERS) * usize::from(EACH),
        "every record acknowledged or left, none twice"
    );
    for w in 0..WRITERS {
        let mine: Vec<&Bytes> = all.iter().filter(|r| r[0] == w).collect();
        let expected: Vec<&Bytes> = durable[usize::from(w)].iter().collect();
        assert_eq!(mine, expected, "writer {w}: each record once, in its order");
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), usize::from(WRITERS) * usize::from(EACH));
}

#[test]
fn a_failed_sync_fails_every_record_it_covered_and_none_comes_back() {
    const WRITERS: u8 = 6;
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("opens");
        let files = log.files();
        files.hold_first_sync(u64::from(WRITERS), true);
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let files = files.clone();
                std::thread::spawn(move || files.append(&tagged(w, 0, 100)))
            })
            .collect();
        for t in threads {
            let err = t
                .join()
                .expect("writer")
                .expect_err("its group's sync failed");
            assert!(err.to_string().contains("injected"), "{err}");
        }
        log.absorb();
        assert_eq!(log.pending(), Totals::default(), "nothing failed is queued");
        assert!(log.pop().is_none());
        // The segment was cut back: the next record goes where the first failed one was.
        let pos = files
            .append(&tagged(9, 1, 100))
            .expect("the disk works again");
        assert_eq!(pos.off, MAGIC_LEN);
        log.absorb();
        let got = drain(&mut log);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, tagged(9, 1, 100).raw);
    }
    let (mut log, rec) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("reopens");
    assert_eq!(rec.truncated_bytes, 0);
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![9], "no record whose writer was told it failed");
}

#[test]
fn an_ack_written_during_another_senders_sync_does_not_wait_and_is_synced_by_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("opens");
        for i in 0..3 {
            log.append(&batch(i, 10, 1)).expect("appends");
        }
        let got = drain(&mut log);
        let files = log.files();
        // Sender A's ack sync waits until sender B has written its ack.
        let (in_sync, in_sync_rx) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        let mut first = true;
        files.set_sync_hook(move |of| {
            if of == SyncOf::Acks && std::mem::take(&mut first) {
                let _ = in_sync.send(());
                let _ = go_rx.lock().recv();
            }
            Ok(())
        });
        let first_ack = log.ack_deferred(got[0].0);
        let second_ack = log.ack_deferred(got[1].0);
        let a = {
            let files = files.clone();
            std::thread::spawn(move || files.persist(first_ack))
        };
        in_sync_rx.recv().expect("A is syncing");
        files
            .persist(second_ack)
            .expect("B writes its ack and returns while A syncs");
        assert_eq!(files.stats().ack_syncs, 0, "B did not sync");
        go.send(()).expect("A resumes");
        a.join().expect("sender A").expect("acks");
        assert_eq!(
            files.stats().ack_syncs,
            2,
            "A synced again for B's newer slot"
        );
    }
    let (mut log, rec) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("reopens");
    assert_eq!(rec.pending.batches, 1, "both acknowledgements held");
    let tags: Vec<u8> = drain(&mut log).iter().map(|(_, raw, _)| raw[0]).collect();
    assert_eq!(tags, vec![2]);
}

fn tenant(org: &str) -> ClientMetadata {
    ClientMetadata::from_pairs([
        ("x-scope-orgid", org),
        ("content-type", "application/x-protobuf"),
    ])
}

fn of_client(tag: u8, len: usize, spans: usize, client: Option<&ClientMetadata>) -> Batch {
    let b = batch(tag, len, spans);
    match client {
        Some(c) => b.with_client(c.clone()),
        None => b,
    }
}

/// Bytes a record takes in a segment: header, metadata prefix, request.
fn record_size(raw: usize, client: Option<&ClientMetadata>) -> u64 {
    let prefix = client.map_or(0, |c| {
        let mut encoded = Vec::new();
        c.encode(&mut encoded);
        4 + encoded.len()
    });
    HEADER + (prefix + raw) as u64
}

/// Pops every unread record, checking before each that the queue's view of it (`peek`,
/// `front_client`) is the batch handed out: (first byte, spans, client).
fn drain_clients(log: &mut DiskLog) -> Vec<(u8, usize, Option<ClientMetadata>)> {
    let mut out = Vec::new();
    loop {
        let peeked = log.peek();
        let front = log.front_client().cloned();
        let Some(p) = log.pop() else {
            assert_eq!(peeked, None);
            return out;
        };
        let Pop::Batch { batch, .. } = p else {
            panic!("lost a record");
        };
        assert_eq!(
            peeked,
            Some((batch.byte_len() as u64, batch.items as u64)),
            "peek counts the request alone, as reserve did"
        );
        assert_eq!(front.as_ref(), batch.client());
        out.push((batch.raw[0], batch.items, batch.client().cloned()));
    }
}

#[test]
fn client_metadata_survives_a_restart_from_the_cache_and_from_disk() {
    let (a, b) = (tenant("acme"), tenant("globex"));
    let clients = [Some(&a), Some(&b), None, Some(&a), Some(&b)];
    let expected: Vec<(u8, usize, Option<ClientMetadata>)> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u8, i + 1, c.cloned()))
        .collect();
    for cache in [0, 1 << 20] {
        let tmp = tempfile::tempdir().expect("tempdir");
        {
            let (mut log, _) = open(tmp.path(), 1 << 20, cache);
            for (i, c) in clients.iter().enumerate() {
                log.append(&of_client(i as u8, 50 + i, i + 1, *c))
                    .expect("appends");
            }
            let got = drain_clients(&mut log);
            assert_eq!(got, expected, "this run (cache {cache})");
            // Put back, as a stopping sender does: sent again with the same client.
            for seq in (0..5).rev() {
                log.unpop(seq);
            }
            assert_eq!(log.front_client(), Some(&a));
            // Dropped without a shutdown record: a crash.
        }
        let (mut log, rec) = open(tmp.path(), 1 << 20, cache);
        assert_eq!(rec.pending.batches, 5);
        assert_eq!(log.front_client(), Some(&a));
        assert_eq!(drain_clients(&mut log), expected, "after a restart");
    }
}

#[test]
fn records_of_one_client_share_its_metadata() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = open(tmp.path(), 1 << 20, 0);
        for i in 0..6 {
            let org = if i % 2 == 0 { "acme" } else { "globex" };
            // A new value per batch, as each request's headers are.
            log.append(&of_client(i, 10, 1, Some(&tenant(org))))
                .expect("appends");
        }
    }
    let (log, _) = open(tmp.path(), 1 << 20, 0);
    let shared = |x: &Meta, y: &Meta| {
        let (x, y) = (x.client.as_ref().expect("x"), y.client.as_ref().expect("y"));
        x.iter()
            .zip(y.iter())
            .all(|((kx, _), (ky, _))| std::ptr::eq(kx, ky))
    };
    assert!(shared(&log.unread[0], &log.unread[2]));
    assert!(shared(&log.unread[1], &log.unread[5]));
    assert_ne!(log.unread[0].client, log.unread[1].client);
}

#[test]
fn byte_accounting_counts_the_requests_without_their_metadata() {
    let a = tenant("acme");
    let sizes = [100usize, 37, 250, 1];
    let total: usize = sizes.iter().sum();
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        // A cache of exactly the requests' bytes holds them all.
        let (mut log, _) = open(tmp.path(), 1 << 20, total as u64);
        for (i, &len) in sizes.iter().enumerate() {
            let client = (i != 2).then_some(&a);
            log.append(&of_client(i as u8, len, 1, client))
                .expect("appends");
        }
        assert_eq!(log.pending().bytes, total as u64);
        assert_eq!(log.cache.len(), sizes.len(), "nothing evicted");
        assert_eq!(log.cache_bytes, total as u64);
        let popped: usize = (0..2)
            .map(|_| match log.pop() {
                Some(Pop::Batch { batch, .. }) => batch.byte_len(),
                _ => panic!("a batch"),
            })
            .sum();
        assert_eq!(popped, sizes[0] + sizes[1]);
        assert_eq!(log.cache_bytes, (sizes[2] + sizes[3]) as u64);
        log.ack(0).expect("acks");
        assert_eq!(log.pending().bytes, (total - sizes[0]) as u64);
    }
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(rec.pending.bytes, (total - sizes[0]) as u64);
    let got = drain_clients(&mut log);
    assert_eq!(got.len(), 3);
    for seq in 0..3 {
        log.ack(seq).expect("acks");
    }
    assert_eq!(log.pending(), Totals::default());
}

/// Bytes of a `RLQSEG01` segment as Redline wrote it before client metadata, built here by
/// hand so that the old format stays pinned whatever the writer does now.
fn first_format_segment(records: &[(&[u8], u32)]) -> Vec<u8> {
    let mut out = b"RLQSEG01".to_vec();
    for &(data, spans) in records {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&spans.to_le_bytes());
        crc.update(data);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&spans.to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

#[test]
fn a_segment_of_the_first_format_is_still_read_without_metadata() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The second count has the top bit set, which in the first format is a count: no flag.
    let records: [(&[u8], u32); 2] = [(&[1; 40], 3), (&[2; 24], (1 << 31) | 5)];
    std::fs::write(
        tmp.path().join(segment_name(1)),
        first_format_segment(&records),
    )
    .expect("writes");
    let a = tenant("acme");
    {
        let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
        assert!(rec.set_aside.is_empty());
        assert_eq!(rec.truncated_bytes, 0);
        assert_eq!(
            rec.pending,
            Totals {
                batches: 2,
                spans: 3 + (1 << 31) + 5,
                bytes: 64
            }
        );
        // New records go to a new segment, in the new format; the old one is not touched.
        log.append(&of_client(3, 10, 1, Some(&a))).expect("appends");
        let mut magic = [0u8; 8];
        File::open(last_segment(tmp.path()))
            .expect("opens")
            .read_exact_at(&mut magic, 0)
            .expect("reads");
        assert_eq!(&magic, SEGMENT_MAGIC);
        // Crash.
    }
    let (mut log, _) = open(tmp.path(), 1 << 20, 0);
    let got = drain_clients(&mut log);
    assert_eq!(
        got,
        vec![
            (1, 3, None),
            (2, (1 << 31) + 5, None),
            (3, 1, Some(a.clone()))
        ]
    );
    for seq in 0..3 {
        log.ack(seq).expect("acks");
    }
    assert_eq!(
        segment_files(tmp.path()).len(),
        1,
        "the old segment is deleted once acknowledged"
    );
}

#[test]
fn a_batch_of_too_many_spans_to_flag_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(tmp.path(), 1 << 20, 0);
    for client in [None, Some(tenant("acme"))] {
        let b = of_client(1, 10, 1 << 31, client.as_ref());
        let err = log.append(&b).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
    log.append(&batch(2, 10, (1 << 31) - 1))
        .expect("the largest count that fits");
    assert_eq!(drain(&mut log).len(), 1);
}

/// Writes three records (acme, globex, none) and returns the segment, the offset of the
/// second record and the length of its metadata.
fn three_tenants(dir: &Path) -> (PathBuf, u64, usize) {
    let (a, b) = (tenant("acme"), tenant("globex"));
    {
        let (mut log, _) = open(dir, 1 << 20, 0);
        log.append(&of_client(0, 30, 1, Some(&a))).expect("appends");
        log.append(&of_client(1, 30, 1, Some(&b))).expect("appends");
        log.append(&of_client(2, 30, 1, None)).expect("appends");
    }
    let mut encoded = Vec::new();
    b.encode(&mut encoded);
    (
        last_segment(dir),
        MAGIC_LEN + record_size(30, Some(&a)),
        encoded.len(),
    )
}

#[test]
fn damaged_client_metadata_is_cut_off_like_a_crc_failure() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (seg, second, _) = three_tenants(tmp.path());
    let full = std::fs::metadata(&seg).expect("stat").len();
    // One byte of the second record's metadata prefix (inside the tenant's name) flipped,
    // the CRC left as it was.
    let f = OpenOptions::new().write(true).open(&seg).expect("opens");
    let at = second + HEADER + 4 + 10;
    let mut byte = [0u8; 1];
    File::open(&seg)
        .expect("opens")
        .read_exact_at(&mut byte, at)
        .expect("reads");
    f.write_all_at(&[byte[0] ^ 0x01], at).expect("writes");
    drop(f);
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(rec.pending.batches, 1, "the load stops at the damage");
    assert_eq!(rec.truncated_bytes, full - second);
    assert_eq!(std::fs::metadata(&seg).expect("stat").len(), second);
    assert_eq!(
        drain_clients(&mut log),
        vec![(0, 1, Some(tenant("acme")))],
        "nothing after it in the segment"
    );
}

#[test]
fn metadata_that_does_not_decode_is_cut_off_even_with_a_matching_crc() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (seg, second, meta_len) = three_tenants(tmp.path());
    let full = std::fs::metadata(&seg).expect("stat").len();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .expect("opens");
    let mut header = [0u8; HEADER as usize];
    f.read_exact_at(&mut header, second).expect("reads");
    let len = u32_at(&header, 0) as usize;
    let mut data = vec![0u8; len];
    f.read_exact_at(&mut data, second + HEADER).expect("reads");
    assert_eq!(u32_at(&data, 0) as usize, meta_len);
    // A length one byte longer than the metadata: the request's first byte is read as part
    // of it. The CRC is made to match, so only decoding can tell.
    data[0..4].copy_from_slice(&(meta_len as u32 + 1).to_le_bytes());
    let crc = record_crc(u32_at(&header, 8), &[&data]);
    f.write_all_at(&crc.to_le_bytes(), second + 4)
        .expect("writes");
    f.write_all_at(&data, second + HEADER).expect("writes");
    drop(f);
    let (mut log, rec) = open(tmp.path(), 1 << 20, 0);
    assert_eq!(rec.pending.batches, 1);
    assert_eq!(rec.truncated_bytes, full - second);
    assert_eq!(drain_clients(&mut log), vec![(0, 1, Some(tenant("acme")))]);
}

#[test]
fn a_record_with_metadata_damaged_after_it_was_written_is_reported_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = tenant("acme");
    let (mut log, _) = open(tmp.path(), 1 << 20, 0);
    log.append(&of_client(1, 100, 3, Some(&a)))
        .expect("appends");
    log.append(&of_client(2, 100, 4, Some(&a)))
        .expect("appends");
    let f = OpenOptions::new()
        .write(true)
        .open(last_segment(tmp.path()))
        .expect("opens");
    f.write_all_at(&[0xee], MAGIC_LEN + HEADER + 6)
        .expect("writes");
    drop(f);
    match log.pop() {
        Some(Pop::Lost { seq, spans, .. }) => {
            assert_eq!(spans, 3);
            log.ack(seq).expect("acks");
        }
        _ => panic!("the damaged record must not be handed out"),
    }
    assert_eq!(drain_clients(&mut log), vec![(2, 4, Some(a))]);
}

/// The queue over a disk log: batches of one client share a request, and a batch with
/// metadata releases exactly the bytes it reserved, in the run that wrote it (from the cache)
/// and after a restart (read back).
#[tokio::test]
async fn the_queue_sends_each_clients_batches_apart_and_releases_what_they_reserved() {
    use crate::config::Sizer;
    use crate::queue::{Limits, Queue};
    use redline_pipeline::telemetry::ExporterCounters;

    let limits = Limits {
        sizer: Sizer::Bytes,
        capacity: 500,
        capacity_bytes: 500,
        max_request_bytes: 10_000,
        max_request_items: u64::MAX,
        min_request: 0,
        min_sizer: Sizer::Items,
        flush_timeout: std::time::Duration::from_millis(10),
        retry_after: std::time::Duration::from_secs(1),
    };
    let (a, b) = (tenant("acme"), tenant("globex"));
    let clients = [Some(&a), Some(&a), Some(&b), None, Some(&a)];
    let (cached, tmp) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // Sent in the run that wrote them; stopped before sending; sent after the restart.
    for (dir, cache, stop) in [
        (cached.path(), 1 << 20, false),
        (tmp.path(), 0, true),
        (tmp.path(), 0, false),
    ] {
        let (log, rec) = DiskLog::open(dir, false, 1 << 20, cache, "test").expect("opens");
        let counters = Arc::new(ExporterCounters::default());
        let q = Queue::persistent("otlp".into(), limits.clone(), counters, log);
        let restart = rec.pending.batches > 0;
        if !restart {
            for (i, c) in clients.iter().enumerate() {
                let batch = of_client(i as u8, 100, 1, *c);
                q.reserve(&batch).expect("fits").commit(batch);
            }
        }
        assert!(q.reserve(&batch(9, 1, 1)).is_err(), "all 500 bytes held");
        let mut requests = Vec::new();
        let mut taken = Vec::new();
        for _ in 0..4 {
            let t = q.next_request().await.expect("queued");
            let tags: Vec<u8> = t.entries.iter().map(|e| e.batch.raw[0]).collect();
            requests.push((tags, t.client().cloned()));
            taken.push(t);
        }
        assert_eq!(
            requests,
            vec![
                (vec![0, 1], Some(a.clone())),
                (vec![2], Some(b.clone())),
                (vec![3], None),
                (vec![4], Some(a.clone())),
            ],
            "restarted: {restart}"
        );
        if stop {
            // Stopping: everything stays on disk for the next start.
            for t in taken {
                q.requeue(t);
            }
            q.begin_drain();
            q.close();
            continue;
        }
        let mut taken = taken.into_iter();
        q.complete(taken.next().expect("first request"), 2, 0);
        // Released: exactly the two requests' bytes, their metadata not counted.
        let r = q.reserve(&batch(9, 200, 1)).expect("200 bytes free");
        assert!(q.reserve(&batch(9, 1, 1)).is_err(), "and no more");
        drop(r);
        for t in taken {
            q.complete(t, 1, 0);
        }
        let r = q.reserve(&batch(9, 500, 1)).expect("every byte released");
        assert!(q.reserve(&batch(9, 1, 1)).is_err(), "and no more");
        drop(r);
    }
}
