//! `discover` against the simulator's UDP responder on 127.0.0.1: never a broadcast.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use inverter_monitor::discover::{self, AnswerError, Logger, PROBE};
use inverter_monitor::sim::{answer_discovery, finder};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::helpers::SERIAL;
use crate::process::{output, spawn_logged, stop, wait_for_port};

/// The simulator's responder on a free loopback UDP port; cancelled on drop of the token.
async fn responder() -> (SocketAddr, CancellationToken) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(answer_discovery(socket, SERIAL, stop.clone()));
    (addr, stop)
}

fn the_simulator() -> Logger {
    Logger { ip: Ipv4Addr::LOCALHOST, mac: finder::MAC.into(), serial: SERIAL }
}

#[tokio::test]
async fn discover_finds_the_simulated_logger() {
    let (addr, stop) = responder().await;
    let found = discover::discover(addr, Duration::from_millis(1500)).await.unwrap();
    stop.cancel();
    assert_eq!(found.loggers, [the_simulator()], "listed once, though the probe went out twice");
    assert!(found.malformed.is_empty());
}

#[tokio::test]
async fn the_responder_answers_only_the_exact_probe() {
    let (addr, stop) = responder().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 128];
    client.send_to(b"WIFIKIT-214028-read", addr).await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(300), client.recv_from(&mut buf)).await;
    assert!(silent.is_err(), "a wrong probe gets no answer");
    client.send_to(PROBE, addr).await.unwrap();
    let (len, _) = client.recv_from(&mut buf).await.unwrap();
    stop.cancel();
    assert_eq!(&buf[..len], format!("127.0.0.1,{},{SERIAL}", finder::MAC).as_bytes());
}

#[tokio::test]
async fn a_junk_answer_is_counted_and_never_listed() {
    // A peer that answers the probe with junk first, then a logger's answer.
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = peer.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let (_, from) = peer.recv_from(&mut buf).await.unwrap();
        peer.send_to(b"+ok", from).await.unwrap();
        peer.send_to(b"127.0.0.1,02AB5C000001,D2521224150A0", from).await.unwrap();
        peer.send_to(finder::answer(Ipv4Addr::LOCALHOST, SERIAL).as_bytes(), from).await.unwrap();
    });
    let found = discover::discover(addr, Duration::from_millis(500)).await.unwrap();
    assert_eq!(found.loggers, [the_simulator()]);
    let reasons: Vec<&AnswerError> = found.malformed.iter().map(|m| &m.reason).collect();
    assert_eq!(reasons, [&AnswerError::Fields(1), &AnswerError::Serial("D2521224150A0".into())]);
    assert_eq!(found.malformed[0].from, addr);
}

/// A UDP port on loopback that was free a moment ago.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn the_cli_finds_simulate_and_prints_a_block_to_paste() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = format!("127.0.0.1:{}", crate::process::free_port());
    let udp = free_udp_port().to_string();
    let sim = spawn_logged(&dir, &["simulate", "--listen", &tcp, "--discovery-port", &udp], &[]);
    wait_for_port(&tcp);
    let target = format!("127.0.0.1:{udp}");
    let (ok, stdout, stderr) = output(&["discover", "--target", &target, "--timeout", "1500ms"]).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("waiting 1s 500ms for loggers…"), "{stderr}");
    assert!(stdout.contains("127.0.0.1        MAC 02:AB:5C:00:00:01  serial 2712345678"), "{stdout}");
    let block = &stdout[stdout.find("[[inverter]]").unwrap()..];
    assert_eq!(
        block,
        "[[inverter]]\nname = \"inverter\"\nhost = \"127.0.0.1\"\nserial = 2712345678\nprofile = \"auto\"\n"
    );
    let (ok, stdout, stderr) = output(&["discover", "--target", &target, "--timeout", "1s", "--json"]).await;
    assert!(ok, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json, serde_json::json!([{"ip": "127.0.0.1", "mac": "02AB5C000001", "serial": SERIAL}]));
    stop(sim, &dir).await;
}

#[tokio::test]
async fn the_cli_fails_with_a_hint_when_nothing_answers() {
    let target = format!("127.0.0.1:{}", free_udp_port());
    let (ok, stdout, stderr) =
        output(&["discover", "--target", &target, "--timeout", "300ms", "--json"]).await;
    assert!(!ok);
    assert_eq!(stdout.trim(), "[]");
    assert!(stderr.contains("error: no logger answered within 300ms"), "{stderr}");
    assert!(stderr.contains("same network") && stderr.contains("--target"), "{stderr}");
}
