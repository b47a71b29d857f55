//! The spool's promises: first in, first out across segments and restarts; a cap that drops the
//! oldest, counted; and a crash at any byte never yields a damaged record or loses more than the
//! record being written.

use proptest::prelude::*;

use super::*;

fn tiny() -> Limits {
    Limits { max_bytes: 1 << 20, segment_bytes: 100 }
}

fn line(i: usize) -> Vec<u8> {
    format!("m,i={i} v={i} {i}").into_bytes()
}

fn push(spool: &mut Spool, from: usize, to: usize) {
    for i in from..to {
        spool.append(&[(i as i64, &line(i))]).unwrap();
    }
}

/// Every unacknowledged record's index, oldest first.
fn pending(spool: &mut Spool) -> Vec<i64> {
    spool.peek(usize::MAX, usize::MAX).unwrap().records.iter().map(|r| r.time_ms).collect()
}

fn segment_files(dir: &Path) -> usize {
    segment::list(dir).unwrap().len()
}

#[test]
fn first_in_first_out_across_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 20);
    assert!(segment_files(dir.path()) > 3, "small segments roll");
    let batch = spool.peek(7, usize::MAX).unwrap();
    assert_eq!(batch.records.iter().map(|r| r.time_ms).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
    assert_eq!(batch.records[3].payload, line(3));
    spool.commit(batch.end).unwrap();
    assert_eq!(spool.depth().records, 13);
    assert_eq!(spool.depth().oldest_ms, Some(7));
    drop(spool);

    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    assert_eq!(pending(&mut spool), (7..20).collect::<Vec<_>>(), "resumes at the committed record");
    push(&mut spool, 20, 22);
    assert_eq!(pending(&mut spool), (7..22).collect::<Vec<_>>(), "new records queue behind old ones");
}

#[test]
fn committing_everything_empties_the_spool_and_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 10);
    let batch = spool.peek(usize::MAX, usize::MAX).unwrap();
    spool.commit(batch.end).unwrap();
    assert_eq!(spool.depth(), Depth { records: 0, bytes: 0, oldest_ms: None });
    assert_eq!(segment_files(dir.path()), 1, "only the segment being appended to stays");
    assert!(spool.peek(10, 10).unwrap().records.is_empty());
    drop(spool);
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    assert!(pending(&mut spool).is_empty(), "nothing is sent twice after a clean restart");
}

#[test]
fn a_caught_up_drain_is_served_from_memory_and_its_position_still_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let roomy = Limits { max_bytes: 1 << 20, segment_bytes: 1 << 16 };
    let mut spool = Spool::open(dir.path(), roomy).unwrap();
    // No store falls due while this part runs, however slow the machine.
    spool.store_every = Duration::from_secs(3600);
    push(&mut spool, 0, 2);
    let all = spool.peek(usize::MAX, usize::MAX).unwrap();
    spool.commit(all.end).unwrap();
    let stored = committed::load(dir.path());

    spool.append(&[(2, &line(2)), (3, &line(3))]).unwrap();
    assert_eq!(spool.depth().oldest_ms, Some(2), "the oldest is the first record just written");
    let fresh = spool.peek_fresh(usize::MAX, usize::MAX).expect("only the last append waits");
    let read = spool.peek(usize::MAX, usize::MAX).unwrap();
    assert_eq!((&fresh.records, fresh.end), (&read.records, read.end), "memory and disk agree");
    assert_eq!(spool.peek_fresh(1, usize::MAX).unwrap().records, read.records[..1], "limits hold");

    assert!(spool.commit_in_memory(fresh.end), "acknowledging everything needs no disk");
    assert_eq!(spool.depth(), Depth { records: 0, bytes: 0, oldest_ms: None });
    assert_eq!(committed::load(dir.path()), stored, "not stored yet: within STORE_EVERY");
    assert!(spool.peek_fresh(usize::MAX, usize::MAX).is_none(), "nothing waits");
    drop(spool);
    assert_eq!(committed::load(dir.path()), Some(fresh.end.position), "a clean stop stores it");
    let mut spool = Spool::open(dir.path(), roomy).unwrap();
    assert!(pending(&mut spool).is_empty(), "nothing is sent twice after a clean restart");

    // A store due does not send the commit to the disk: the next append, there anyway,
    // stores the position it acknowledged.
    let reopened = committed::load(dir.path());
    spool.store_every = Duration::ZERO;
    push(&mut spool, 4, 5);
    let batch = spool.peek_fresh(usize::MAX, usize::MAX).unwrap();
    assert!(spool.commit_in_memory(batch.end), "a store due still needs no disk here");
    assert_eq!(committed::load(dir.path()), reopened, "in memory until the next append");
    push(&mut spool, 5, 6);
    let stored = batch.end.position;
    assert_eq!(committed::load(dir.path()), Some(stored), "the append stored the acknowledged position");
    // Not due: the append leaves the file alone.
    spool.store_every = Duration::from_secs(3600);
    let batch = spool.peek_fresh(usize::MAX, usize::MAX).unwrap();
    assert!(spool.commit_in_memory(batch.end));
    push(&mut spool, 6, 7);
    assert_eq!(committed::load(dir.path()), Some(stored), "stored a moment ago: nothing is due");
}

#[test]
fn memory_serves_only_when_the_last_append_is_all_that_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 2);
    assert!(spool.peek_fresh(usize::MAX, usize::MAX).is_none(), "an older record waits too");
    let first = spool.peek(1, usize::MAX).unwrap();
    assert!(!spool.commit_in_memory(first.end), "a record would still wait: its time is on disk");
    spool.commit(first.end).unwrap();
    let fresh = spool.peek_fresh(usize::MAX, usize::MAX).expect("now only the last append waits");
    assert_eq!(fresh.records.iter().map(|r| r.time_ms).collect::<Vec<_>>(), [1]);
    // Small segments roll: after many appends the spool spans segments and goes to the disk.
    push(&mut spool, 2, 20);
    assert!(spool.peek_fresh(usize::MAX, usize::MAX).is_none(), "records of earlier appends wait");
    let all = spool.peek(usize::MAX, usize::MAX).unwrap();
    assert!(spool.segments.len() > 1);
    assert!(!spool.commit_in_memory(all.end), "deleting segments needs the disk");
    spool.commit(all.end).unwrap();
    assert_eq!(committed::load(dir.path()), Some(all.end.position), "stored before segments go");
    // After a roll the head may sit at the end of the segment before: still served from memory.
    while spool.segments.len() == 1 {
        push(&mut spool, 20, 21);
        let batch = spool.peek(usize::MAX, usize::MAX).unwrap();
        if spool.segments.len() == 1 {
            spool.commit(batch.end).unwrap();
        }
    }
    let fresh = spool.peek_fresh(usize::MAX, usize::MAX).expect("only the last append waits");
    assert_eq!(fresh.records, spool.peek(usize::MAX, usize::MAX).unwrap().records);
    assert_eq!(fresh.end, spool.peek(usize::MAX, usize::MAX).unwrap().end);
}

#[test]
fn batches_respect_the_byte_limit_but_always_take_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 5);
    let one = line(0).len();
    assert_eq!(spool.peek(100, one * 2).unwrap().records.len(), 2);
    assert_eq!(spool.peek(100, 1).unwrap().records.len(), 1, "a record larger than the limit still goes");
}

#[test]
fn the_cap_drops_the_oldest_whole_segments_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_bytes: 1000, segment_bytes: 200 };
    let mut spool = Spool::open(dir.path(), limits).unwrap();
    push(&mut spool, 0, 100);
    let left = pending(&mut spool);
    assert_eq!(*left.last().unwrap(), 99, "the newest is kept");
    assert_eq!(spool.dropped() + left.len() as u64, 100, "every record is either kept or counted");
    assert!(spool.dropped() > 0);
    assert_eq!(left, (left[0]..100).collect::<Vec<_>>(), "what is kept is a contiguous tail");
    assert!(spool.total_bytes() <= limits.max_bytes);
    assert_eq!(spool.depth().oldest_ms, Some(left[0]));
}

#[test]
fn a_commit_of_evicted_records_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits { max_bytes: 1000, segment_bytes: 200 }).unwrap();
    push(&mut spool, 0, 3);
    let stale = spool.peek(2, usize::MAX).unwrap();
    push(&mut spool, 3, 100);
    let before = pending(&mut spool);
    spool.commit(stale.end).unwrap();
    assert_eq!(pending(&mut spool), before);
}

#[test]
fn a_record_larger_than_the_cap_is_dropped_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits { max_bytes: 100, segment_bytes: 4096 }).unwrap();
    spool.append(&[(1, b"small"), (2, &[b'x'; 200]), (3, b"also small")]).unwrap();
    assert_eq!(pending(&mut spool), [1, 3]);
    assert_eq!(spool.dropped(), 1);
}

#[test]
fn damage_found_while_reading_drops_the_rest_of_that_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 12);
    let first = spool.segments[0];
    let mut bytes = std::fs::read(segment::path(dir.path(), first.id)).unwrap();
    let second_record = record::frame_len(line(0).len());
    bytes[second_record + record::HEADER] ^= 0xff;
    std::fs::write(segment::path(dir.path(), first.id), bytes).unwrap();
    let got = pending(&mut spool);
    assert_eq!(got[0], 0);
    assert_eq!(got[1] as u64, first.records, "the next segment follows the damage");
    assert_eq!(spool.dropped(), first.records - 1);
    assert_eq!(pending(&mut spool), got, "the cut is remembered");
}

#[test]
fn a_damaged_or_leftover_position_file_means_sending_again_not_losing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 4);
    let batch = spool.peek(2, usize::MAX).unwrap();
    spool.commit(batch.end).unwrap();
    drop(spool);
    std::fs::write(dir.path().join("committed.tmp"), b"half a rename").unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    assert_eq!(pending(&mut spool), [2, 3], "a leftover temp file is ignored");
    drop(spool);
    std::fs::write(dir.path().join("committed"), b"garbage").unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    assert_eq!(pending(&mut spool), [0, 1, 2, 3]);
}

#[test]
fn a_segment_cut_below_the_committed_position_does_not_hide_later_records() {
    // Found by the crash property: all sent, the disk loses the segment's bytes, a new record
    // lands where the old ones were. The stale position must not make it count as sent.
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 0, 3);
    let batch = spool.peek(usize::MAX, usize::MAX).unwrap();
    spool.commit(batch.end).unwrap();
    let id = spool.segments[0].id;
    drop(spool);
    segment::truncate(dir.path(), id, 0).unwrap();
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    push(&mut spool, 7, 8);
    drop(spool);
    let mut spool = Spool::open(dir.path(), tiny()).unwrap();
    assert_eq!(pending(&mut spool), [7]);
}

/// Where each appended record ended up on disk.
#[derive(Debug, Clone, Copy)]
struct Placed {
    time: i64,
    segment: u64,
    end: u64,
}

/// Appends `sizes.len()` records, commits the first `committed`, and says where each landed.
fn fill(dir: &Path, sizes: &[usize], committed: usize) -> Vec<Placed> {
    let mut spool = Spool::open(dir, Limits { max_bytes: 1 << 20, segment_bytes: 150 }).unwrap();
    let mut placed = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        spool.append(&[(i as i64, &vec![b'a' + (i % 26) as u8; size])]).unwrap();
        let last = spool.segments.back().unwrap();
        placed.push(Placed { time: i as i64, segment: last.id, end: last.bytes });
    }
    if committed > 0 {
        let batch = spool.peek(committed, usize::MAX).unwrap();
        spool.commit(batch.end).unwrap();
    }
    placed
}

/// How a crash left the files.
#[derive(Debug, Clone)]
enum Crash {
    /// A segment cut at a byte offset (power lost before the page cache reached the disk).
    Cut { segment: prop::sample::Index, at: prop::sample::Index },
    /// Bytes of a half-written frame after the last record.
    Garbage(Vec<u8>),
}

fn crash() -> impl Strategy<Value = Crash> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(segment, at)| Crash::Cut { segment, at }),
        prop::collection::vec(any::<u8>(), 1..40).prop_map(Crash::Garbage),
    ]
}

/// Applies `crash` to the files; returns which records must survive it.
fn apply(dir: &Path, placed: &[Placed], crash: &Crash) -> Vec<Placed> {
    let ids = segment::list(dir).unwrap();
    match crash {
        Crash::Cut { segment: which, at } => {
            let id = ids[which.index(ids.len())];
            let len = std::fs::metadata(segment::path(dir, id)).unwrap().len();
            let cut = at.index(len as usize + 1) as u64;
            segment::truncate(dir, id, cut).unwrap();
            placed.iter().copied().filter(|p| p.segment != id || p.end <= cut).collect()
        }
        Crash::Garbage(bytes) => {
            let mut file = segment::open_append(dir, *ids.last().unwrap()).unwrap();
            file.write_all(bytes).unwrap();
            placed.to_vec()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn a_crash_at_any_byte_loses_only_torn_records_and_never_yields_a_damaged_one(
        sizes in prop::collection::vec(0usize..60, 1..25),
        committed in any::<prop::sample::Index>(),
        crash in crash(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let committed = committed.index(sizes.len() + 1);
        let placed = fill(dir.path(), &sizes, committed);
        let survivors = apply(dir.path(), &placed, &crash);

        let mut spool = Spool::open(dir.path(), Limits { max_bytes: 1 << 20, segment_bytes: 150 }).unwrap();
        let batch = spool.peek(usize::MAX, usize::MAX).unwrap();
        let want: Vec<i64> = survivors.iter().map(|p| p.time).filter(|&t| t >= committed as i64).collect();
        let got: Vec<i64> = batch.records.iter().map(|r| r.time_ms).collect();
        prop_assert_eq!(&got, &want);
        for record in &batch.records {
            let i = record.time_ms as usize;
            prop_assert_eq!(&record.payload, &vec![b'a' + (i % 26) as u8; sizes[i]]);
        }
        prop_assert_eq!(spool.depth().records, want.len() as u64);

        // The spool goes on working: a new record lands after the survivors, intact.
        spool.append(&[(1000, b"after the crash")]).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), Limits { max_bytes: 1 << 20, segment_bytes: 150 }).unwrap();
        let again = pending(&mut spool);
        prop_assert_eq!(&again[..again.len() - 1], &want[..]);
        prop_assert_eq!(again.last(), Some(&1000));
    }
}
