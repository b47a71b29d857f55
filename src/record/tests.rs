use super::*;
use crate::profile::Profiles;

fn poll(profile: &str, blocks: Vec<Block>) -> Poll {
    Poll {
        time: "2026-06-01T12:00:00Z".parse().unwrap(),
        local: "2026-06-01T14:00:00".parse().unwrap(),
        inverter: "house".into(),
        profile: profile.into(),
        identity: "2305178010".into(),
        blocks,
        refused: vec![
            Refused::of(
                ReadBlock { start: 600, count: 8 },
                Exception::Modbus(ExceptionCode::IllegalDataAddress),
            ),
            Refused::of(
                ReadBlock { start: 700, count: 2 },
                Exception::Logger(LoggerError::NoInverterResponse),
            ),
        ],
        failed: None,
    }
}

#[test]
fn a_line_reads_back_as_the_poll_it_was() {
    let original = poll("deye_sg01lp1", vec![Block { start: 3, values: vec![0, 1, 65535] }]);
    let line = original.to_line();
    assert!(!line.contains('\n'), "one poll, one line");
    let back = Poll::parse(&line, 1).unwrap();
    assert_eq!(back, original);
    assert_eq!(back.refused[0].exception(), Exception::Modbus(ExceptionCode::IllegalDataAddress));
    assert_eq!(back.refused[1].exception(), Exception::Logger(LoggerError::NoInverterResponse));
    assert!(matches!(Poll::parse("{\"time\": 1}", 7), Err(RecordError::Line { line: 7, .. })));
}

#[test]
fn registers_are_served_from_the_block_that_holds_them_all() {
    let p =
        poll("x", vec![Block { start: 10, values: vec![1, 2, 3, 4] }, Block { start: 20, values: vec![9] }]);
    assert_eq!(p.registers(11, 2), Some(&[2, 3][..]));
    assert_eq!(p.registers(20, 1), Some(&[9][..]));
    assert_eq!(p.registers(12, 3), None, "past the block's end");
    assert_eq!(p.registers(5, 1), None);
}

#[test]
fn rotation_names_a_file_per_utc_day() {
    let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    assert_eq!(file_for(Path::new("/d/rec.jsonl"), day, true), PathBuf::from("/d/rec.jsonl.2026-06-01"));
    assert_eq!(file_for(Path::new("/d/rec.jsonl"), day, false), PathBuf::from("/d/rec.jsonl"));
}

/// A day at 60 s of the SG01LP1's whole plan, every register at its widest (65535), stays
/// under 5 MB, so a user can attach it to a bug report.
#[test]
fn a_day_of_the_sg01lp1_at_60_s_is_under_5_mb() {
    let profile = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let blocks: Vec<Block> = profile
        .plan()
        .iter()
        .map(|b| Block { start: b.start, values: vec![65535; usize::from(b.count)] })
        .collect();
    let line = poll(profile.id(), blocks).to_line();
    let day = (line.len() + 1) * 1440;
    assert!(day < 5_000_000, "a day is {day} bytes");
    assert!(day > 500_000, "the plan was not read whole: {day} bytes");
}

#[tokio::test]
async fn the_writer_rotates_and_writes_what_is_queued_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    let (tap, polls) = Tap::new();
    let cancel = CancellationToken::new();
    let first = poll("x", vec![Block { start: 0, values: vec![1] }]);
    let next_day = Poll { time: "2026-06-02T00:00:30Z".parse().unwrap(), ..first.clone() };
    tap.offer(first.clone());
    tap.offer(next_day.clone());
    cancel.cancel();
    // Cancelled before it ran: what was handed over is still written.
    write(path.clone(), true, polls, cancel).await.unwrap();
    assert_eq!(read(&path.with_extension("jsonl.2026-06-01")).unwrap(), vec![first]);
    assert_eq!(read(&path.with_extension("jsonl.2026-06-02")).unwrap(), vec![next_day]);
}

#[test]
fn a_poll_the_logger_did_not_answer_is_recorded_with_why_and_old_lines_still_read() {
    let failed = Poll {
        blocks: vec![],
        refused: vec![],
        failed: Some("no answer within 5s".into()),
        ..poll("deye_micro", vec![])
    };
    let line = failed.to_line();
    assert!(line.contains(r#""blocks":[],"failed":"no answer within 5s""#), "{line}");
    assert_eq!(Poll::parse(&line, 1).unwrap(), failed);
    let answered = poll("deye_micro", vec![Block { start: 3, values: vec![1] }]).to_line();
    assert!(!answered.contains("failed"), "a poll that read something says nothing of failing: {answered}");
    // A line written before failed polls were recorded.
    let old = r#"{"time":"2026-06-01T12:00:00Z","local":"2026-06-01T14:00:00","inverter":"house","profile":"deye_micro","identity":"1","blocks":[{"start":3,"values":[1]}]}"#;
    assert_eq!(Poll::parse(old, 1).unwrap().failed, None);
}
