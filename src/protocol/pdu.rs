//! The Modbus request/response model shared by every envelope (RTU in V5, Modbus TCP).
//!
//! A PDU is the function code and its data, without slave id, CRC or MBAP header:
//!
//! ```text
//! read request   (FC 0x03/0x04): fc | addr hi lo | count hi lo
//! read response  (FC 0x03/0x04): fc | byte count | 2·count bytes, big-endian registers
//! write request  (FC 0x10):      fc | addr hi lo | count hi lo | byte count | values
//! write response (FC 0x10):      fc | addr hi lo | count hi lo
//! exception:                     fc | 0x80, code
//! ```
//! Source: Modbus Application Protocol v1.1b3 §6.3, §6.4, §6.12; docs/protocol.md §2.7.

use bytes::{BufMut, BytesMut};

use super::{Answer, Error, Exception, ExceptionCode};

/// FC 0x03, read holding registers: what every Deye profile reads.
pub(crate) const READ_HOLDING: u8 = 0x03;
/// FC 0x04, read input registers.
pub(crate) const READ_INPUT: u8 = 0x04;
/// FC 0x10, write multiple registers: how Deye accepts writes.
pub(crate) const WRITE_MULTIPLE: u8 = 0x10;
/// The largest read Modbus allows (0x7D).
pub(crate) const MAX_READ: usize = 125;
/// The largest write Modbus allows (0x7B).
pub(crate) const MAX_WRITE: usize = 123;

/// One Modbus request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Read `count` holding registers from `addr` (FC 0x03).
    ReadHolding {
        /// First register address.
        addr: u16,
        /// Number of registers, 1..=125.
        count: u16,
    },
    /// Read `count` input registers from `addr` (FC 0x04).
    ReadInput {
        /// First register address.
        addr: u16,
        /// Number of registers, 1..=125.
        count: u16,
    },
    /// Write `values` to consecutive holding registers from `addr` (FC 0x10).
    WriteMultiple {
        /// First register address.
        addr: u16,
        /// Values, 1..=123 of them.
        values: Vec<u16>,
    },
}

/// One Modbus response that is not an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The registers a read returned, in address order.
    Registers(Vec<u16>),
    /// A write was accepted for `count` registers from `addr`.
    Written {
        /// First register written.
        addr: u16,
        /// Number of registers written.
        count: u16,
    },
}

impl Request {
    /// The function code of this request.
    pub fn function(&self) -> u8 {
        match self {
            Self::ReadHolding { .. } => READ_HOLDING,
            Self::ReadInput { .. } => READ_INPUT,
            Self::WriteMultiple { .. } => WRITE_MULTIPLE,
        }
    }

    /// Checks the counts Modbus allows.
    ///
    /// # Errors
    /// [`Error::Count`] when a read asks for 0 or more than 125 registers, or a write carries 0
    /// or more than 123 values.
    pub fn validate(&self) -> Result<(), Error> {
        let (count, max) = match self {
            Self::ReadHolding { count, .. } | Self::ReadInput { count, .. } => {
                (usize::from(*count), MAX_READ)
            }
            Self::WriteMultiple { values, .. } => (values.len(), MAX_WRITE),
        };
        if count == 0 || count > max {
            return Err(Error::Count { count, max });
        }
        Ok(())
    }

    /// Appends the PDU to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.function());
        match self {
            Self::ReadHolding { addr, count } | Self::ReadInput { addr, count } => {
                buf.put_u16(*addr);
                buf.put_u16(*count);
            }
            Self::WriteMultiple { addr, values } => {
                buf.put_u16(*addr);
                buf.put_u16(values.len() as u16);
                buf.put_u8((values.len() * 2) as u8);
                values.iter().for_each(|v| buf.put_u16(*v));
            }
        }
    }

    /// The length in bytes of a normal answer's PDU to this request.
    pub fn response_len(&self) -> usize {
        match self {
            Self::ReadHolding { count, .. } | Self::ReadInput { count, .. } => 2 + 2 * usize::from(*count),
            Self::WriteMultiple { .. } => 5,
        }
    }

    /// Reads a request PDU: what the simulator receives.
    ///
    /// # Errors
    /// [`Error::ModbusLength`] when the PDU is cut short, [`Error::UnsupportedFunction`] for
    /// function codes other than 0x03, 0x04 and 0x10, [`Error::Count`] for counts Modbus forbids.
    pub fn decode(pdu: &[u8]) -> Result<Self, Error> {
        let need = |expected: usize| {
            if pdu.len() < expected { Err(Error::ModbusLength { len: pdu.len(), expected }) } else { Ok(()) }
        };
        need(5)?;
        let addr = u16::from_be_bytes([pdu[1], pdu[2]]);
        let count = u16::from_be_bytes([pdu[3], pdu[4]]);
        let request = match pdu[0] {
            READ_HOLDING => Self::ReadHolding { addr, count },
            READ_INPUT => Self::ReadInput { addr, count },
            WRITE_MULTIPLE => {
                need(6 + 2 * usize::from(count))?;
                let values = registers(&pdu[6..6 + 2 * usize::from(count)]);
                Self::WriteMultiple { addr, values }
            }
            other => return Err(Error::UnsupportedFunction(other)),
        };
        request.validate()?;
        Ok(request)
    }

    /// Reads the answer PDU to this request, checking function code, byte count and echo.
    ///
    /// `pdu` must hold exactly the answer (callers strip envelopes and CRCs first).
    ///
    /// # Errors
    /// A mismatch of function code, byte count, length or write echo.
    pub fn decode_answer(&self, pdu: &[u8]) -> Result<Answer, Error> {
        let function = self.function();
        let Some(&actual) = pdu.first() else {
            return Err(Error::ModbusLength { len: 0, expected: 2 });
        };
        if actual == function | 0x80 {
            return match pdu {
                [_, code] => Ok(Err(Exception::Modbus(ExceptionCode::from(*code)))),
                _ => Err(Error::ModbusLength { len: pdu.len(), expected: 2 }),
            };
        }
        if actual != function {
            return Err(Error::FunctionMismatch { expected: function, actual });
        }
        if pdu.len() != self.response_len() {
            return Err(Error::ModbusLength { len: pdu.len(), expected: self.response_len() });
        }
        match self {
            Self::ReadHolding { count, .. } | Self::ReadInput { count, .. } => {
                let expected = 2 * usize::from(*count);
                let actual = usize::from(pdu[1]);
                if actual != expected {
                    return Err(Error::ByteCount { expected, actual });
                }
                Ok(Ok(Response::Registers(registers(&pdu[2..]))))
            }
            Self::WriteMultiple { addr, values } => {
                let expected = (*addr, values.len() as u16);
                let echoed = (u16::from_be_bytes([pdu[1], pdu[2]]), u16::from_be_bytes([pdu[3], pdu[4]]));
                if echoed != expected {
                    return Err(Error::WriteEcho { expected, actual: echoed });
                }
                Ok(Ok(Response::Written { addr: echoed.0, count: echoed.1 }))
            }
        }
    }

    /// Appends the PDU of `answer` to this request: what the simulator sends.
    pub fn encode_answer(&self, answer: &Answer, buf: &mut BytesMut) {
        match answer {
            Ok(Response::Registers(values)) => {
                buf.put_u8(self.function());
                buf.put_u8((values.len() * 2) as u8);
                values.iter().for_each(|v| buf.put_u16(*v));
            }
            Ok(Response::Written { addr, count }) => {
                buf.put_u8(self.function());
                buf.put_u16(*addr);
                buf.put_u16(*count);
            }
            Err(Exception::Modbus(code)) => {
                buf.put_u8(self.function() | 0x80);
                buf.put_u8(code.code());
            }
            // A logger error replaces the whole Modbus frame; envelopes that carry one encode it.
            Err(Exception::Logger(_)) => {}
        }
    }
}

/// Big-endian register values from an even number of bytes.
fn registers(bytes: &[u8]) -> Vec<u16> {
    bytes.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(request: &Request) -> Vec<u8> {
        let mut buf = BytesMut::new();
        request.encode(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn read_request_is_function_address_count() {
        let request = Request::ReadHolding { addr: 0x00b8, count: 1 };
        assert_eq!(encoded(&request), [0x03, 0x00, 0xb8, 0x00, 0x01]);
        assert_eq!(Request::decode(&encoded(&request)), Ok(request));
    }

    #[test]
    fn write_request_carries_byte_count_and_values() {
        // docs/protocol.md §2.6: write 4200 (0x1068) to register 245 (0xf5).
        let request = Request::WriteMultiple { addr: 245, values: vec![4200] };
        assert_eq!(encoded(&request), [0x10, 0x00, 0xf5, 0x00, 0x01, 0x02, 0x10, 0x68]);
        assert_eq!(Request::decode(&encoded(&request)), Ok(request));
    }

    #[test]
    fn counts_outside_modbus_limits_are_refused() {
        let too_many = Request::ReadHolding { addr: 0, count: 126 };
        assert_eq!(too_many.validate(), Err(Error::Count { count: 126, max: 125 }));
        let none = Request::WriteMultiple { addr: 0, values: vec![] };
        assert_eq!(none.validate(), Err(Error::Count { count: 0, max: 123 }));
        assert!(Request::decode(&[0x03, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn read_answer_yields_registers() {
        let request = Request::ReadHolding { addr: 0xb8, count: 2 };
        let answer = request.decode_answer(&[0x03, 0x04, 0x00, 0x41, 0xff, 0xfe]);
        assert_eq!(answer, Ok(Ok(Response::Registers(vec![0x41, 0xfffe]))));
    }

    #[test]
    fn exception_is_an_answer_not_an_error() {
        let request = Request::ReadHolding { addr: 0xb8, count: 1 };
        let answer = request.decode_answer(&[0x83, 0x02]);
        assert_eq!(answer, Ok(Err(Exception::Modbus(ExceptionCode::IllegalDataAddress))));
    }

    #[test]
    fn mismatches_are_typed_errors() {
        let request = Request::ReadHolding { addr: 0xb8, count: 1 };
        assert_eq!(
            request.decode_answer(&[0x04, 0x02, 0, 0]),
            Err(Error::FunctionMismatch { expected: 3, actual: 4 })
        );
        assert_eq!(
            request.decode_answer(&[0x03, 0x04, 0, 0]),
            Err(Error::ByteCount { expected: 2, actual: 4 })
        );
        assert_eq!(request.decode_answer(&[0x03, 0x02, 0]), Err(Error::ModbusLength { len: 3, expected: 4 }));
        let write = Request::WriteMultiple { addr: 245, values: vec![1] };
        assert_eq!(
            write.decode_answer(&[0x10, 0x00, 0xf6, 0x00, 0x01]),
            Err(Error::WriteEcho { expected: (245, 1), actual: (246, 1) })
        );
    }

    #[test]
    fn answers_round_trip() {
        let request = Request::ReadInput { addr: 10, count: 3 };
        for answer in [
            Ok(Response::Registers(vec![1, 2, 0xffff])),
            Err(Exception::Modbus(ExceptionCode::ServerDeviceBusy)),
        ] {
            let mut buf = BytesMut::new();
            request.encode_answer(&answer, &mut buf);
            assert_eq!(request.decode_answer(&buf), Ok(answer));
        }
    }
}
