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
    for round in 0..200 {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut bytes = SEGMENT_MAGIC.to_vec();
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
