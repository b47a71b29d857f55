//! Sinks that take poll updates off the bus: InfluxDB with a durable spool, Prometheus metrics,
//! and health pings to an outside watcher.
//! A sink must never block the bus: it keeps up or skips, and it buffers what must not be lost.

pub mod influx;
pub mod metrics;
pub(crate) mod pings;
