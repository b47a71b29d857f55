use super::*;
use crate::protocol::LoggerError;
use crate::record::{Block, Refused};

fn poll() -> Poll {
    Poll {
        time: "2026-06-01T12:00:00Z".parse().unwrap(),
        local: "2026-06-01T14:00:00".parse().unwrap(),
        inverter: "house".into(),
        profile: "deye_sg01lp1".into(),
        identity: "1".into(),
        blocks: vec![Block { start: 10, values: vec![1, 2, 3] }],
        refused: vec![Refused { start: 600, count: 8, modbus: None, logger: Some([5, 0]) }],
        failed: None,
    }
}

#[tokio::test]
async fn the_recording_answers_what_it_holds_and_refuses_the_rest() {
    let mut transport = Recorded::default();
    let read = |addr, count| Request::ReadHolding { addr, count };
    assert!(transport.call(&read(10, 1)).await.unwrap().is_err(), "nothing served before a poll");
    transport.serve(poll());
    assert_eq!(transport.call(&read(11, 2)).await.unwrap(), Ok(Response::Registers(vec![2, 3])));
    let refused = Err(Exception::Logger(LoggerError::NoInverterResponse));
    assert_eq!(transport.call(&read(600, 8)).await.unwrap(), refused, "the recorded refusal");
    let unknown = Err(Exception::Modbus(ExceptionCode::IllegalDataAddress));
    assert_eq!(transport.call(&read(12, 2)).await.unwrap(), unknown, "never recorded");
    let write = Request::WriteMultiple { addr: 10, values: vec![9] };
    assert_eq!(transport.call(&write).await.unwrap(), unknown, "a replay never writes");
}

#[test]
fn the_report_names_each_rule_and_what_reached_home_assistant() {
    let report = Report {
        polls: 3,
        failed: 1,
        night: 0,
        rejected: BTreeMap::from([("max_change", 2)]),
        counters_checked: 30,
        state_messages: 2,
        values_published: 300,
        elapsed: Duration::from_millis(5),
    };
    let text = report.to_string();
    assert!(text.contains("polls replayed:    3 (1 without a snapshot)"), "{text}");
    assert!(text.contains("rejected max_change"), "{text}");
    assert!(text.contains("to Home Assistant: 2 state messages, 300 values"), "{text}");
    let asleep = Report { failed: 2, night: 2, ..report }.to_string();
    assert!(asleep.contains("(2 without a snapshot, 2 of them published by the night rule)"), "{asleep}");
}

#[tokio::test]
async fn a_poll_the_logger_did_not_answer_fails_again_with_the_recorded_reason() {
    let mut transport = Recorded::default();
    transport.serve(Poll {
        blocks: vec![],
        refused: vec![],
        failed: Some("no answer within 5s".into()),
        ..poll()
    });
    let error = transport.call(&Request::ReadHolding { addr: 10, count: 1 }).await.unwrap_err();
    assert_eq!(error.to_string(), "I/O error: recorded: no answer within 5s");
}
