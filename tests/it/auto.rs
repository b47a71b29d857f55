//! `protocol = "auto"`: the link tells V5, Modbus TCP and raw RTU apart by a read of register 0,
//! against the simulator speaking each over real TCP, and remembers what answered.

use std::path::Path;
use std::time::Duration;

use inverter_monitor::protocol::Request;
use inverter_monitor::sim::{SimConfig, SimWire};
use inverter_monitor::transport::{Link, LinkSettings, LoggerBook, Target, Transport, Wire};

use crate::helpers::*;

const DEVICE_TYPE: Request = Request::ReadHolding { addr: 0, count: 1 };

/// Short timeouts: a wrong guess costs one read timeout.
fn probing() -> LinkSettings {
    LinkSettings { read_timeout: Duration::from_millis(300), ..fast_settings() }
}

/// An auto link that keeps what it learns in `data_dir`, as the service's do.
fn auto_link(port: u16, serial: Option<u32>, data_dir: &Path) -> Link {
    let target = Target { host: "127.0.0.1".into(), port, wire: Wire::Auto { serial }, slave: 1 };
    Link::new(target, probing()).with_book(LoggerBook::new(data_dir))
}

#[tokio::test]
async fn auto_finds_each_protocol_and_the_next_start_does_not_probe() {
    let cases = [
        (SimWire::Solarman, Some(SERIAL), Wire::Solarman { serial: SERIAL }, "solarman"),
        (SimWire::ModbusTcp, Some(SERIAL), Wire::ModbusTcp, "modbus-tcp"),
        (SimWire::RtuOverTcp, Some(SERIAL), Wire::RtuOverTcp, "rtu-over-tcp"),
        (SimWire::RtuOverTcp, None, Wire::RtuOverTcp, "rtu-over-tcp"),
    ];
    for (sim_wire, serial, expected, name) in cases {
        let data_dir = tempfile::tempdir().unwrap();
        let handle = spawn_sim(SimConfig { wire: sim_wire, ..SimConfig::new(SERIAL) }, profile()).await;
        let port = handle.addr.port();
        let mut first = auto_link(port, serial, data_dir.path());
        assert!(first.call(&DEVICE_TYPE).await.unwrap().is_ok(), "{name}");
        assert_eq!(first.target().wire, expected, "{name}");
        let remembered: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data_dir.path().join("loggers.json")).unwrap()).unwrap();
        assert_eq!(remembered[format!("127.0.0.1:{port}")]["protocol"], name);

        let before = handle.sim.requests();
        let mut second = auto_link(port, serial, data_dir.path());
        assert!(second.call(&DEVICE_TYPE).await.unwrap().is_ok(), "{name}");
        assert_eq!(second.target().wire, expected, "{name}");
        assert_eq!(handle.sim.requests() - before, 1, "{name}: the remembered protocol, no probe");
    }
}

#[tokio::test]
async fn auto_finds_a_v5_logger_without_its_serial_and_learns_it() {
    let data_dir = tempfile::tempdir().unwrap();
    let handle = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let port = handle.addr.port();
    let mut link = auto_link(port, None, data_dir.path());
    assert!(link.call(&DEVICE_TYPE).await.unwrap().is_ok());
    assert_eq!(link.target().wire, Wire::Solarman { serial: 0 }, "V5, its serial learned, not pinned");
    assert_eq!(link.learned_serial(), Some(SERIAL));

    // The next start knows both: no probe, no refusal.
    let before = handle.sim.requests();
    let mut second = auto_link(port, None, data_dir.path());
    assert!(second.call(&DEVICE_TYPE).await.unwrap().is_ok());
    assert_eq!(handle.sim.requests() - before, 1, "one request: the remembered protocol and serial");
}

#[tokio::test]
async fn a_logger_that_answers_nothing_is_named_with_what_was_tried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let data_dir = tempfile::tempdir().unwrap();
    let mut link = auto_link(port, None, data_dir.path());
    let error = link.call(&DEVICE_TYPE).await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "127.0.0.1:{port} answered none of solarman, modbus-tcp, rtu-over-tcp to a read of register 0; \
             set `protocol` (and `port`), see docs/configuration.md"
        )
    );
    assert!(!data_dir.path().join("loggers.json").exists(), "nothing found, nothing kept");
}

#[tokio::test]
async fn a_logger_speaking_the_at_text_protocol_is_named_with_what_to_do() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // What such a logger sends back to a V5 request on 8899 (and to anything else).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 64];
                while socket.read(&mut request).await.is_ok_and(|n| n > 0) {
                    let _ = socket.write_all(b"AT+YZCMPVER=MW3_16U_5408_5.0B-S\r\n\r\n").await;
                }
            });
        }
    });
    let data_dir = tempfile::tempdir().unwrap();
    let mut link = auto_link(port, Some(SERIAL), data_dir.path());
    let error = link.call(&DEVICE_TYPE).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "the logger at 127.0.0.1:{port} answers the AT text protocol, not Solarman V5 or Modbus (it said `AT+YZCMPVER=MW3_16U_5408_5.0B-S`)"
        )),
        "{error}"
    );
    assert!(error.contains("RS485 port to a gateway or a USB RS485 adapter"), "{error}");
}
