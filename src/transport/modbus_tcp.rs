//! The Modbus TCP client for Ethernet loggers (LSE-3) and inverters with port 502.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::{Counters, Error, Event};
use crate::protocol::codec::MbapCodec;
use crate::protocol::{Answer, Request, mbap};

/// A Modbus TCP client over any byte stream.
#[derive(Debug)]
pub(crate) struct MbapClient<S> {
    framed: Framed<S, MbapCodec>,
    unit: u8,
    transaction: u16,
}

impl<S: AsyncRead + AsyncWrite + Unpin> MbapClient<S> {
    /// Wraps `stream`, addressing unit `unit`; `first_transaction` is random in service.
    pub(crate) fn new(stream: S, unit: u8, first_transaction: u16) -> Self {
        Self { framed: Framed::new(stream, MbapCodec), unit, transaction: first_transaction }
    }

    /// Addresses unit `unit` from the next request on (an inverter of a stack).
    pub(crate) fn set_slave(&mut self, unit: u8) {
        self.unit = unit;
    }

    /// The stream back, for a probe that looks at what came (`probe`).
    pub(crate) fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// Sends `request` and waits for the answer with its transaction id.
    ///
    /// # Errors
    /// I/O errors, a closed connection, a header out of step, or an answer that does not fit.
    pub(crate) async fn call(&mut self, request: &Request, counters: &mut Counters) -> Result<Answer, Error> {
        request.validate()?;
        self.framed.read_buffer_mut().clear();
        self.transaction = self.transaction.wrapping_add(1);
        let mut pdu = BytesMut::new();
        request.encode(&mut pdu);
        let frame = mbap::Frame { transaction: self.transaction, unit: self.unit, pdu: pdu.freeze() };
        self.framed.send(frame).await?;
        loop {
            let frame = self.framed.next().await.ok_or(Error::Closed)??;
            if frame.transaction != self.transaction {
                counters.add(Event::StaleFrame);
                continue;
            }
            if frame.unit != self.unit {
                return Err(crate::protocol::Error::SlaveMismatch {
                    expected: self.unit,
                    actual: frame.unit,
                }
                .into());
            }
            return Ok(request.decode_answer(&frame.pdu)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;
    use crate::protocol::{Exception, ExceptionCode, Response};

    #[tokio::test]
    async fn matches_transaction_ids_and_skips_stale_answers() {
        let (client_side, mut server) = duplex(1024);
        let mut client = MbapClient::new(client_side, 1, 0x0100);
        let peer = tokio::spawn(async move {
            let mut request = [0u8; 12];
            server.read_exact(&mut request).await.unwrap();
            assert_eq!(request, [0x01, 0x01, 0, 0, 0, 6, 1, 0x03, 0x00, 0xb8, 0x00, 0x01]);
            // A stale answer for transaction 0x0100, then ours.
            server.write_all(&[0x01, 0x00, 0, 0, 0, 5, 1, 0x03, 0x02, 0x00, 0x07]).await.unwrap();
            server.write_all(&[0x01, 0x01, 0, 0, 0, 5, 1, 0x03, 0x02, 0x00, 0x41]).await.unwrap();
            let mut second = [0u8; 12];
            server.read_exact(&mut second).await.unwrap();
            server.write_all(&[0x01, 0x02, 0, 0, 0, 3, 1, 0x83, 0x02]).await.unwrap();
        });
        let mut counters = Counters::default();
        let request = Request::ReadHolding { addr: 0xb8, count: 1 };
        let first = client.call(&request, &mut counters).await.unwrap();
        assert_eq!(first, Ok(Response::Registers(vec![65])));
        assert_eq!(counters.get(Event::StaleFrame), 1);
        let second = client.call(&request, &mut counters).await.unwrap();
        assert_eq!(second, Err(Exception::Modbus(ExceptionCode::IllegalDataAddress)));
        peer.await.unwrap();
    }
}
