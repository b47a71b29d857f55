//! inverter-monitor: a Deye/Sunsynk inverter as a first-class Home Assistant citizen.
//!
//! Data flows one way: logger → frames → registers → readings → snapshot → sinks.
//!
//! - [`protocol`]: Solarman V5, Modbus RTU and Modbus TCP wire formats, sans I/O.
//! - [`transport`]: one persistent, self-healing connection per logger.
//! - [`profile`]: register definitions as data, request planning, decoding.
//! - [`quality`]: plausibility rules; rejected readings are dropped, never zeroed.
pub mod profile;
pub mod protocol;
pub mod quality;
pub mod transport;
