//! Loggers that want no configured serial, and loggers that do not speak V5 at all: the link
//! against the simulator over real TCP.

use std::time::Duration;

use inverter_monitor::sim::{Faults, SimConfig};
use inverter_monitor::transport::{Error, Event, Link, LoggerBook, Target, Transport, Wire};

use crate::helpers::*;
use crate::process::output;

/// A V5 link to `addr` with `serial` configured (0: none), keeping what it learns in `book`.
fn link_with(addr: std::net::SocketAddr, serial: u32, book: &LoggerBook) -> Link {
    let target =
        Target { host: addr.ip().to_string(), port: addr.port(), wire: Wire::Solarman { serial }, slave: 1 };
    Link::new(target, fast_settings()).with_book(book.clone())
}

#[tokio::test]
async fn without_a_serial_the_link_learns_it_keeps_it_across_reconnects_and_restarts() {
    let faults = Faults { drop_every: Some(2), ..Faults::default() };
    let handle = spawn_sim(SimConfig { faults, ..SimConfig::new(SERIAL) }, profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let book = LoggerBook::new(dir.path());
    let mut link = link_with(handle.addr, 0, &book);
    let mut poller = poller(profile());
    let snapshot = poll(&mut poller, &mut link, &handle.sim).await;
    assert_matches_model(&snapshot, &handle.sim);
    assert_eq!(link.learned_serial(), Some(SERIAL));
    assert!(link.counters().get(Event::Connect) > 1, "the simulator hung up in between");
    assert_eq!(link.counters().get(Event::SerialMismatch), 1, "learned once, kept across reconnects");
    assert_eq!(book.serial(&handle.addr.to_string()).unwrap(), Some(SERIAL));

    // The next start finds it in the book and never sends a wrong serial.
    let mut restarted = link_with(handle.addr, 0, &book);
    assert_eq!(restarted.learned_serial(), Some(SERIAL));
    let snapshot = poll(&mut poller, &mut restarted, &handle.sim).await;
    assert_matches_model(&snapshot, &handle.sim);
    assert_eq!(restarted.counters().get(Event::SerialMismatch), 0);
}

#[tokio::test]
async fn a_learned_serial_follows_a_replaced_logger() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let book = LoggerBook::new(dir.path());
    book.remember_serial(&handle.addr.to_string(), SERIAL - 1).unwrap();
    let mut link = link_with(handle.addr, 0, &book);
    let snapshot = poll(&mut poller(profile()), &mut link, &handle.sim).await;
    assert_matches_model(&snapshot, &handle.sim);
    assert_eq!(book.serial(&handle.addr.to_string()).unwrap(), Some(SERIAL));
}

#[tokio::test]
async fn a_wrong_configured_serial_is_refused_naming_both_and_never_replaced() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let book = LoggerBook::new(dir.path());
    // Even a book that knows the right serial does not override the configured one.
    book.remember_serial(&handle.addr.to_string(), SERIAL).unwrap();
    let mut link = link_with(handle.addr, SERIAL + 1, &book);
    let request = inverter_monitor::protocol::Request::ReadHolding { addr: 0, count: 1 };
    let error = link.call(&request).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("expected 2712345679, the logger says it is 2712345678"), "{message}");
    assert_eq!(link.counters().get(Event::Retry), 0, "a pinned serial is a config error: no retry");
    assert_eq!(link.learned_serial(), None);
}

#[tokio::test]
async fn a_logger_that_speaks_at_text_gets_an_error_that_says_so() {
    let faults = Faults { at_text: true, ..Faults::default() };
    let handle = spawn_sim(SimConfig { faults, ..SimConfig::new(SERIAL) }, profile()).await;
    let mut settings = fast_settings();
    settings.read_timeout = Duration::from_millis(300);
    let mut link = link(handle.addr, settings);
    let request = inverter_monitor::protocol::Request::ReadHolding { addr: 0, count: 1 };
    let error = link.call(&request).await.unwrap_err();
    assert!(
        matches!(&error, Error::AtText { text, .. } if text == "AT+YZCMPVER=MW3_16U_5408_5.0B-S"),
        "{error}"
    );
    let message = error.to_string();
    let addr = handle.addr;
    assert!(
        message.starts_with(&format!("the logger at {addr} answers the AT text protocol, not Solarman V5"))
    );
    assert!(message.contains("modbus-tcp") && message.contains("firmware"), "{message}");
    let counters = link.counters();
    assert_eq!((counters.get(Event::Malformed), counters.get(Event::Retry)), (1, 0), "counted, not retried");
    assert!(counters.get(Event::JunkBytes) > 0);
}

#[tokio::test]
async fn at_text_before_v5_answers_is_only_junk() {
    let faults = Faults { garbage_every: Some(1), ..Faults::default() };
    let handle = spawn_sim(SimConfig { faults, ..SimConfig::new(SERIAL) }, profile()).await;
    let mut link = link(handle.addr, fast_settings());
    let snapshot = poll(&mut poller(profile()), &mut link, &handle.sim).await;
    assert_matches_model(&snapshot, &handle.sim);
}

#[tokio::test]
async fn read_without_a_serial_learns_it_and_says_how_to_pin_it() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let (ok, stdout, stderr) = output(&["read", "--logger", &handle.addr.to_string()]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("battery_soc"), "{stdout}");
    assert_eq!(stderr.matches("the logger's serial is 2712345678; using it").count(), 1, "{stderr}");
}

#[tokio::test]
async fn read_of_an_at_text_logger_fails_clearly() {
    let faults = Faults { at_text: true, ..Faults::default() };
    let handle = spawn_sim(SimConfig { faults, ..SimConfig::new(SERIAL) }, profile()).await;
    let logger = handle.addr.to_string();
    let args = ["read", "--logger", &logger, "--profile", "deye_sg01lp1", "--timeout", "300ms"];
    let (ok, _, stderr) = output(&args).await;
    assert!(!ok);
    let expected =
        format!("error: reading {logger} failed: the logger at {logger} answers the AT text protocol");
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[tokio::test]
async fn the_service_keeps_a_learned_serial_in_its_data_dir() {
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut inverter =
        inverter_monitor::config::InverterConfig::new("house", "127.0.0.1", handle.addr.port(), 0);
    inverter.serial = None;
    inverter.interval = Duration::from_millis(20);
    inverter.request_pause = Duration::from_millis(1);
    let mut config = inverter_monitor::config::Config::new(vec![inverter]);
    config.data_dir = dir.path().to_path_buf();
    let cancel = tokio_util::sync::CancellationToken::new();
    let service = tokio::spawn(inverter_monitor::service::run(
        config,
        inverter_monitor::service::Console::Quiet,
        cancel.clone(),
    ));
    let book = LoggerBook::new(dir.path());
    let addr = handle.addr.to_string();
    until("the learned serial in loggers.json", || book.serial(&addr).ok().flatten() == Some(SERIAL)).await;
    cancel.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(6), service).await;
    stopped.expect("the service stops within its deadline").unwrap().unwrap();
}
