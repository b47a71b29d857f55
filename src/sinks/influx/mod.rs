//! InfluxDB: every reading, through a durable on-disk spool, written when the database is up.

pub mod line;
pub mod spool;
