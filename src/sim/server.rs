//! The simulator's wire side: accept TCP connections (or serve a pseudo-terminal), answer
//! requests, misbehave on purpose.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::faults::{AT_BANNER, JUNK, Plan};
use super::fleet::Fleet;
use super::{SimWire, Simulator};
use crate::protocol::codec::{Inbound, MbapCodec, RtuRequestCodec, V5Codec};
use crate::protocol::v5::{Frame, LoggerTimes, control};
use crate::protocol::{Answer, Exception, ExceptionCode, LoggerError, Request, Response, mbap, rtu};

/// Serves `sim` on `listener` until `cancel`; each connection runs in its own task.
///
/// # Errors
/// Only an accept error the listener cannot recover from.
pub async fn serve(
    listener: TcpListener,
    sim: Arc<Simulator>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    serve_stack(listener, vec![sim], cancel).await
}

/// Serves a parallel stack on `listener` until `cancel`: one logger, several inverters, each
/// answering its own slave id. The first plays the logger: its wire, serial and faults apply
/// to every connection. A request for a slave nobody answers gets what a real logger or
/// gateway sends then.
///
/// # Errors
/// Only an accept error the listener cannot recover from.
pub async fn serve_stack(
    listener: TcpListener,
    units: Vec<Arc<Simulator>>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    serve_units(listener, units, None, cancel).await
}

/// Serves a fleet of V5 loggers on `listener` until `cancel`: each request is answered as the
/// member its frame's logger serial names (see [`Fleet`]); a serial outside the fleet gets the
/// serial-mismatch answer a real logger sends. One task per connection, none per logger.
///
/// # Errors
/// Only an accept error the listener cannot recover from.
pub async fn serve_fleet(
    listener: TcpListener,
    fleet: Arc<Fleet>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let units = vec![fleet.simulator().clone()];
    serve_units(listener, units, Some(fleet), cancel).await
}

async fn serve_units(
    listener: TcpListener,
    units: Vec<Arc<Simulator>>,
    fleet: Option<Arc<Fleet>>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let units: Arc<[Arc<Simulator>]> = units.into();
    if units.is_empty() {
        return Ok(());
    }
    loop {
        let (stream, peer) = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        tracing::debug!(%peer, "simulator: client connected");
        let _ = stream.set_nodelay(true);
        let (units, fleet) = (units.clone(), fleet.clone());
        let cancel = cancel.child_token();
        tokio::spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                result = connection(stream, &units, fleet.as_deref()) => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "simulator: connection ended: {e}");
                    }
                }
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    units: &[Arc<Simulator>],
    fleet: Option<&Fleet>,
) -> std::io::Result<()> {
    let sim = &units[0];
    let (read, mut write) = stream.into_split();
    match sim.config.wire {
        SimWire::Solarman => {
            // A request is 36 bytes: 8 KiB per connection (`FramedRead::new`) would make a
            // fleet of 10,000 loggers 80 MiB of read buffers.
            let mut frames = FramedRead::with_capacity(read, V5Codec, 512);
            let mut logger_seq = 0u8;
            while let Some(inbound) = frames.next().await {
                let Inbound::Frame(frame) = inbound? else { continue };
                if frame.control != control::REQUEST {
                    continue;
                }
                logger_seq = logger_seq.wrapping_add(1);
                if !answer_v5(units, fleet, &frame, logger_seq, &mut write).await? {
                    return Ok(());
                }
            }
        }
        SimWire::ModbusTcp => {
            let mut frames = FramedRead::new(read, MbapCodec);
            while let Some(frame) = frames.next().await {
                if !answer_mbap(units, &frame?, &mut write).await? {
                    return Ok(());
                }
            }
        }
        SimWire::RtuOverTcp => serve_rtu(read, &mut write, sim).await?,
    }
    Ok(())
}

/// Answers raw RTU requests read from `read` until the stream ends or the fault plan hangs up.
///
/// # Errors
/// I/O errors of the stream.
pub(super) async fn serve_rtu(
    read: impl AsyncRead + Unpin,
    write: &mut (impl AsyncWrite + Unpin),
    sim: &Simulator,
) -> std::io::Result<()> {
    let mut frames = FramedRead::new(read, RtuRequestCodec);
    while let Some(inbound) = frames.next().await {
        // Junk and damaged requests get no answer, as on a real bus.
        let Inbound::Frame(frame) = inbound? else { continue };
        if !answer_rtu(sim, &frame, write).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Answers one raw RTU request; `false` when the fault plan says to hang up.
async fn answer_rtu(
    sim: &Simulator,
    frame: &[u8],
    write: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<bool> {
    let plan = sim.config.faults.plan(sim.next_request());
    if plan.drop {
        return Ok(false);
    }
    // A slave that is not addressed, or cannot read the request, stays silent.
    let Ok((slave, request)) = rtu::decode_request(frame) else { return Ok(true) };
    if slave != sim.config.slave {
        return Ok(true);
    }
    let mut out = BytesMut::new();
    if plan.garbage {
        out.extend_from_slice(JUNK);
    }
    out.extend_from_slice(&modbus_answer(sim, slave, &request, plan, None));
    send(sim, &out, plan, write).await?;
    Ok(true)
}

/// Answers one V5 request, as the fleet member it names when there is a fleet; `false` when
/// the fault plan says to hang up.
async fn answer_v5(
    units: &[Arc<Simulator>],
    fleet: Option<&Fleet>,
    frame: &Frame,
    logger_seq: u8,
    write: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<bool> {
    let sim = &units[0];
    let plan = sim.config.faults.plan(sim.next_request());
    if plan.drop {
        return Ok(false);
    }
    if sim.config.faults.at_text {
        send(sim, AT_BANNER, plan, write).await?;
        return Ok(true);
    }
    let seq = [frame.seq_client, logger_seq];
    let ours = fleet.map_or(frame.serial == sim.config.serial, |f| f.has(frame.serial));
    let serial = if ours { frame.serial } else { sim.config.serial };
    let stamp = fleet.filter(|_| ours).map(|f| (f, serial));
    let modbus = match (ours, frame.request_rtu().map(rtu::decode_request)) {
        // A real logger answers a foreign serial with `06 00` and its own serial (docs/protocol.md Q9).
        (false, _) => LoggerError::SerialNotMatched.to_bytes().to_vec(),
        (true, Ok(Ok((slave, request)))) => match unit(units, slave) {
            Some(inverter) => modbus_answer(inverter, slave, &request, plan, stamp),
            None => LoggerError::NoInverterResponse.to_bytes().to_vec(),
        },
        (true, _) => LoggerError::NoInverterResponse.to_bytes().to_vec(),
    };
    let mut out = BytesMut::new();
    if plan.heartbeat {
        Frame::heartbeat(seq, serial).encode(&mut out);
    }
    if plan.garbage {
        out.extend_from_slice(JUNK);
    }
    let times = LoggerTimes { total_working: 8_012_345, power_on: 12_345, offset: 1_742_495_655 };
    Frame::response(seq, serial, times, &modbus).encode(&mut out);
    send(sim, &out, plan, write).await?;
    Ok(true)
}

/// The inverter of `units` that answers `slave`.
fn unit(units: &[Arc<Simulator>], slave: u8) -> Option<&Simulator> {
    units.iter().find(|u| u.config.slave == slave).map(AsRef::as_ref)
}

/// A fleet member's answer: the fleet, and the member's logger serial.
type Stamp<'a> = Option<(&'a Fleet, u32)>;

/// The RTU answer to `request`, with the planned CRC faults; a fleet member's with its own
/// inverter serial.
fn modbus_answer(sim: &Simulator, slave: u8, request: &Request, plan: Plan, stamp: Stamp<'_>) -> Vec<u8> {
    let answer = execute(sim, request, stamp);
    let mut buf = BytesMut::new();
    rtu::encode_answer(slave, request, &answer, plan.double_crc, &mut buf);
    if plan.bad_crc {
        let crc_at = buf.len() - if plan.double_crc { 4 } else { 2 };
        buf[crc_at] ^= 0x5a;
    }
    buf.to_vec()
}

/// Answers one Modbus TCP request; `false` when the fault plan says to hang up.
async fn answer_mbap(
    units: &[Arc<Simulator>],
    frame: &mbap::Frame,
    write: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<bool> {
    let sim = &units[0];
    let plan = sim.config.faults.plan(sim.next_request());
    if plan.drop {
        return Ok(false);
    }
    let mut pdu = BytesMut::new();
    match (Request::decode(&frame.pdu), unit(units, frame.unit)) {
        (Ok(request), Some(inverter)) => request.encode_answer(&execute(inverter, &request, None), &mut pdu),
        // A gateway's "target device failed to respond" (Modbus exception 0x0B).
        (Ok(request), None) => {
            request.encode_answer(&Err(Exception::Modbus(ExceptionCode::Other(0x0b))), &mut pdu);
        }
        (Err(_), _) => {
            pdu.extend_from_slice(&[
                frame.pdu.first().copied().unwrap_or(0) | 0x80,
                ExceptionCode::IllegalFunction.code(),
            ]);
        }
    }
    let mut out = BytesMut::new();
    mbap::Frame { transaction: frame.transaction, unit: frame.unit, pdu: pdu.freeze() }.encode(&mut out);
    send(sim, &out, Plan { split: plan.split, ..Plan::default() }, write).await?;
    Ok(true)
}

/// What the simulated inverter does with a request; a fleet member reads its own serial.
fn execute(sim: &Simulator, request: &Request, stamp: Stamp<'_>) -> Answer {
    let refused = |start: u16, count: usize| {
        let end = usize::from(start) + count;
        end > sim.size()
            || sim.config.refuse.iter().any(|a| (usize::from(start)..end).contains(&usize::from(*a)))
    };
    match request {
        Request::ReadHolding { addr, count } | Request::ReadInput { addr, count } => {
            if refused(*addr, usize::from(*count)) {
                return Err(Exception::Modbus(ExceptionCode::IllegalDataAddress));
            }
            let mut image = sim.image();
            if let Some((fleet, serial)) = stamp {
                fleet.stamp(serial, &mut image);
            }
            let from = usize::from(*addr);
            Ok(Response::Registers(image[from..from + usize::from(*count)].to_vec()))
        }
        Request::WriteMultiple { addr, values } => {
            if refused(*addr, values.len()) {
                return Err(Exception::Modbus(ExceptionCode::IllegalDataAddress));
            }
            sim.write(*addr, values);
            Ok(Response::Written { addr: *addr, count: values.len() as u16 })
        }
    }
}

/// Writes `bytes` after the planned delay, in two writes when the plan says split.
async fn send(
    sim: &Simulator,
    bytes: &[u8],
    plan: Plan,
    write: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    if !sim.config.faults.delay.is_zero() {
        tokio::time::sleep(sim.config.faults.delay).await;
    }
    if plan.split && bytes.len() > 1 {
        let (first, second) = bytes.split_at(bytes.len() / 2);
        write.write_all(first).await?;
        write.flush().await?;
        // Long enough for the client to read the first half alone.
        tokio::time::sleep(Duration::from_millis(15)).await;
        write.write_all(second).await?;
    } else {
        write.write_all(bytes).await?;
    }
    write.flush().await
}
