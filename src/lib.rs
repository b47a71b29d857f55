//! inverter-monitor: a Deye/Sunsynk inverter as a first-class Home Assistant citizen.
//!
//! Data flows one way: logger → frames → registers → readings → snapshot → sinks.
//!
//! - [`protocol`]: Solarman V5, Modbus RTU and Modbus TCP wire formats, sans I/O.
pub mod protocol;
