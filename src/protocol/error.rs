//! Typed protocol errors and the exceptions that travel inside valid frames.

use std::fmt;

/// A frame that could not be trusted. Never a panic, never a decoded reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The first byte was not the V5 start byte 0xA5.
    #[error("frame does not start with 0xA5 (got {actual:#04x})")]
    StartByte {
        /// The byte found instead.
        actual: u8,
    },
    /// The control code is not one the V5 protocol defines.
    #[error("unknown V5 control code {actual:#06x}")]
    UnknownControlCode {
        /// The code read (little-endian on the wire).
        actual: u16,
    },
    /// The length field is larger than any frame a logger sends.
    #[error("V5 length field {length} exceeds the maximum of {max}")]
    LengthTooLarge {
        /// The payload length read.
        length: usize,
        /// The largest accepted payload length.
        max: usize,
    },
    /// The byte where the frame should end was not 0x15.
    #[error("V5 frame does not end with 0x15 (got {actual:#04x})")]
    EndByte {
        /// The byte found instead.
        actual: u8,
    },
    /// The V5 sum checksum did not match.
    #[error("V5 checksum mismatch: expected {expected:#04x}, got {actual:#04x}")]
    Checksum {
        /// The checksum computed over the frame.
        expected: u8,
        /// The checksum carried by the frame.
        actual: u8,
    },
    /// The frame came from another logger than the one configured.
    #[error(
        "logger serial mismatch: expected {expected}, the logger says it is {actual} (set serial = {actual})"
    )]
    SerialMismatch {
        /// The serial configured.
        expected: u32,
        /// The serial in the frame.
        actual: u32,
    },
    /// A V5 response payload was shorter than its fixed prefix.
    #[error("V5 response payload is {len} bytes, shorter than the {min}-byte prefix")]
    ShortPayload {
        /// The payload length.
        len: usize,
        /// The minimum length.
        min: usize,
    },
    /// A response whose frame type is not 0x02 (solar inverter): a logger or keep-alive frame
    /// answering in place of the inverter.
    #[error("V5 response has frame type {actual:#04x}, expected 0x02 (inverter)")]
    FrameType {
        /// The frame type received.
        actual: u8,
    },
    /// The Modbus CRC-16 did not match.
    #[error("Modbus CRC mismatch: expected {expected:#06x}, got {actual:#06x}")]
    Crc {
        /// The CRC computed over the frame.
        expected: u16,
        /// The CRC carried by the frame.
        actual: u16,
    },
    /// The Modbus frame is shorter than its own header says it must be.
    #[error("Modbus frame is {len} bytes, expected {expected}")]
    ModbusLength {
        /// The length received.
        len: usize,
        /// The length the header implies.
        expected: usize,
    },
    /// The answer came from another slave id than the one asked.
    #[error("Modbus slave mismatch: expected {expected}, got {actual}")]
    SlaveMismatch {
        /// The slave id asked.
        expected: u8,
        /// The slave id answering.
        actual: u8,
    },
    /// The answer's function code does not belong to the request.
    #[error("Modbus function mismatch: expected {expected:#04x}, got {actual:#04x}")]
    FunctionMismatch {
        /// The function code of the request.
        expected: u8,
        /// The function code of the answer.
        actual: u8,
    },
    /// A read answer's byte count does not fit the number of registers asked for.
    #[error("Modbus byte count mismatch: expected {expected}, got {actual}")]
    ByteCount {
        /// Twice the number of registers requested.
        expected: usize,
        /// The byte count in the answer.
        actual: usize,
    },
    /// A write answer echoed another address or count than the request.
    #[error("Modbus write echo mismatch: expected {expected:?}, got {actual:?}")]
    WriteEcho {
        /// (address, count) of the request.
        expected: (u16, u16),
        /// (address, count) echoed.
        actual: (u16, u16),
    },
    /// A request asked for a register count Modbus does not allow.
    #[error("invalid register count {count} (allowed 1..={max})")]
    Count {
        /// The count asked for.
        count: usize,
        /// The largest allowed count.
        max: usize,
    },
    /// A function code this crate does not speak.
    #[error("unsupported Modbus function {0:#04x}")]
    UnsupportedFunction(u8),
    /// The Modbus TCP header names a protocol other than Modbus (0).
    #[error("MBAP protocol id {0} is not Modbus (0)")]
    MbapProtocol(u16),
    /// Bytes arrived on a raw RTU line while no request was in flight.
    #[error("unexpected bytes on the line (first {first:#04x}) while no request was in flight")]
    UnexpectedBytes {
        /// The first byte.
        first: u8,
    },
    /// The Modbus TCP length field is outside 2..=254.
    #[error("MBAP length {0} is outside 2..=254")]
    MbapLength(u16),
}

/// A Modbus exception code (Modbus Application Protocol v1.1b3, section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionCode {
    /// 0x01: the function is not supported.
    IllegalFunction,
    /// 0x02: the register range is not served.
    IllegalDataAddress,
    /// 0x03: a value in the request is not allowed.
    IllegalDataValue,
    /// 0x04: the device failed while answering.
    ServerDeviceFailure,
    /// 0x05: accepted, but it will take long.
    Acknowledge,
    /// 0x06: busy, try later.
    ServerDeviceBusy,
    /// Any other code.
    Other(u8),
}

impl ExceptionCode {
    /// The code as sent on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::IllegalFunction => 1,
            Self::IllegalDataAddress => 2,
            Self::IllegalDataValue => 3,
            Self::ServerDeviceFailure => 4,
            Self::Acknowledge => 5,
            Self::ServerDeviceBusy => 6,
            Self::Other(code) => code,
        }
    }
}

impl From<u8> for ExceptionCode {
    fn from(code: u8) -> Self {
        match code {
            1 => Self::IllegalFunction,
            2 => Self::IllegalDataAddress,
            3 => Self::IllegalDataValue,
            4 => Self::ServerDeviceFailure,
            5 => Self::Acknowledge,
            6 => Self::ServerDeviceBusy,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for ExceptionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::IllegalFunction => "illegal function",
            Self::IllegalDataAddress => "illegal data address",
            Self::IllegalDataValue => "illegal data value",
            Self::ServerDeviceFailure => "server device failure",
            Self::Acknowledge => "acknowledge",
            Self::ServerDeviceBusy => "server device busy",
            Self::Other(_) => "unknown exception",
        };
        write!(f, "{name} ({:#04x})", self.code())
    }
}

/// The two-byte error a Solarman logger sends in place of a Modbus frame (docs/protocol.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    /// `05 00`: the inverter did not answer the logger (wrong slave id, or a range it lacks).
    #[error(
        "the inverter did not answer the logger (05 00: no inverter at this slave id, or registers it lacks)"
    )]
    NoInverterResponse,
    /// `06 00`: the serial in the request is not the logger's.
    #[error("the logger's serial is not the one asked (06 00)")]
    SerialNotMatched,
    /// Any other two bytes.
    #[error("logger error {:02x} {:02x}", .0[0], .0[1])]
    Other([u8; 2]),
}

impl LoggerError {
    /// Reads the two bytes that replace the Modbus frame.
    pub fn from_bytes(bytes: [u8; 2]) -> Self {
        match bytes {
            [0x05, 0x00] => Self::NoInverterResponse,
            [0x06, 0x00] => Self::SerialNotMatched,
            other => Self::Other(other),
        }
    }

    /// The two bytes as sent on the wire.
    pub fn to_bytes(self) -> [u8; 2] {
        match self {
            Self::NoInverterResponse => [0x05, 0x00],
            Self::SerialNotMatched => [0x06, 0x00],
            Self::Other(bytes) => bytes,
        }
    }
}

/// An answer that says "no": the request reached someone who refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exception {
    /// The inverter answered with a Modbus exception.
    #[error("Modbus exception: {0}")]
    Modbus(ExceptionCode),
    /// The logger answered in place of the inverter.
    #[error("logger error: {0}")]
    Logger(LoggerError),
}
