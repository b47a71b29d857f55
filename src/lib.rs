//! inverter-monitor: a Deye/Sunsynk inverter as a first-class Home Assistant citizen.
//!
//! Data flows one way: logger → frames → registers → readings → snapshot → sinks.
//!
//! - [`backoff`]: exponential backoff with jitter, shared by every retry loop.
//! - [`markup`]: text made safe for HTML and SVG.
//! - [`config`]: the typed configuration, layered file → environment.
//! - [`protocol`]: Solarman V5, Modbus RTU and Modbus TCP wire formats, sans I/O.
//! - [`transport`]: one persistent, self-healing connection per logger.
//! - [`discover`]: finding Solarman loggers on the LAN by their UDP discovery.
//! - [`profile`]: register definitions as data, request planning, decoding.
//! - [`http_client`]: the one way HTTP clients are built (rustls with ring).
//! - [`mqtt`]: Home Assistant discovery, state, availability and switch commands over MQTT.
//! - [`poller`]: the per-inverter schedule: read plan → decode → plausibility → snapshot.
//! - [`quality`]: plausibility rules; rejected readings are dropped, never zeroed.
//! - [`report`]: snapshots as text for people.
//! - [`record`]: recordings of raw polls, one JSON line each, for replay and bug reports.
//! - [`replay`]: a recording through the poller and the configured sinks, with a report.
//! - [`panics`]: panics as Sentry events, with their message and source line.
//! - [`service`]: wiring of pollers, bus and sinks, with a clean shutdown.
//! - [`state_file`]: small JSON files in the data dir that must survive restarts, written
//!   atomically.
//! - [`timer`]: deadlines on the runtime timer's 64 ms grid, so a sleep wakes the thread once.
//! - [`sinks`]: InfluxDB with a durable spool, Prometheus metrics, health-check pings, and the
//!   latest state the web pages show.
//! - [`weather`]: cloud cover from a provider, the sun's position, and a clear-sky PV estimate.
//! - [`control`]: load control: which consumer loads run, decided from the battery, the sun and
//!   the weather, each decision with its reason.
//! - [`web`]: `/metrics`, `/healthz`, `/api/snapshot` and the status page.
//! - [`sim`]: a logger simulator with a house model and fault injection.
#![warn(missing_docs)]
// Items public only inside the crate say so, so rustc can report the ones nothing uses.
#![warn(unreachable_pub)]

pub(crate) mod backoff;
pub mod config;
pub mod control;
pub mod demo_broker;
pub mod discover;
pub mod http_client;
pub(crate) mod markup;
pub mod mqtt;
pub mod panics;
pub mod poller;
pub mod profile;
pub mod protocol;
pub mod quality;
pub mod record;
pub mod replay;
pub mod report;
pub mod service;
pub mod sim;
pub mod sinks;
pub(crate) mod state_file;
pub mod timer;
pub mod transport;
pub mod weather;
pub mod web;
pub mod writes;
