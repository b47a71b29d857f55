//! One spooled record as bytes: a length and checksum frame around the point's time and line.
//! Pure: bytes in, records out.
//!
//! ```text
//! offset  size  field
//! 0       4     n: payload length, u32 little-endian
//! 4       4     CRC-32 (IEEE) of bytes 0..4 and 8..16+n: a torn or zero-filled tail never passes
//! 8       8     time of the point, Unix milliseconds, i64 little-endian (for the oldest-point age)
//! 16      n     payload: one line of line protocol, without its newline
//! ```

/// Bytes before the payload.
pub(super) const HEADER: usize = 16;

/// The largest payload accepted: far above any point, small enough that a garbage length
/// read from a damaged file cannot make us allocate gigabytes.
pub(super) const MAX_PAYLOAD: usize = 16 << 20;

/// A record read back from the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Time of the point, Unix milliseconds.
    pub time_ms: i64,
    /// The line.
    pub payload: Vec<u8>,
}

/// What the bytes at some offset hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoded<'a> {
    /// A whole, intact record `len` bytes long.
    Record {
        /// Time of the point, Unix milliseconds.
        time_ms: i64,
        /// The line.
        payload: &'a [u8],
        /// Bytes the frame takes, header included.
        len: usize,
    },
    /// Fewer bytes than the frame needs: a torn tail, or simply the end.
    Incomplete,
    /// A frame whose checksum or length is wrong.
    Corrupt,
}

/// The frame size of a payload of `payload_len` bytes.
pub(super) fn frame_len(payload_len: usize) -> usize {
    HEADER + payload_len
}

/// Appends the frame of (`time_ms`, `payload`) to `out`.
///
/// # Panics
/// When `payload` is longer than [`MAX_PAYLOAD`]; callers check first.
pub(super) fn encode(time_ms: i64, payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() <= MAX_PAYLOAD, "a spool record of {} bytes", payload.len());
    let len = (payload.len() as u32).to_le_bytes();
    let time = time_ms.to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(&len, &time, payload).to_le_bytes());
    out.extend_from_slice(&time);
    out.extend_from_slice(payload);
}

/// The record at the start of `buf`.
pub(super) fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(header) = buf.get(..HEADER) else { return Decoded::Incomplete };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt;
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else { return Decoded::Incomplete };
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let time: [u8; 8] = header[8..16].try_into().expect("eight bytes");
    if crc != checksum(&header[..4], &time, payload) {
        return Decoded::Corrupt;
    }
    Decoded::Record { time_ms: i64::from_le_bytes(time), payload, len: HEADER + len }
}

/// How much of a buffer is whole, intact records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Scan {
    /// Intact records from the start.
    pub records: u64,
    /// Bytes they take: everything after is a torn or damaged tail.
    pub valid: usize,
}

/// Walks `buf` from the start up to the first incomplete or damaged frame.
pub(super) fn scan(buf: &[u8]) -> Scan {
    let mut scan = Scan::default();
    while let Decoded::Record { len, .. } = decode(&buf[scan.valid..]) {
        scan.valid += len;
        scan.records += 1;
    }
    scan
}

/// The time field of a frame `header` (at least [`HEADER`] bytes).
pub(super) fn time_of(header: &[u8]) -> i64 {
    i64::from_le_bytes(header[8..16].try_into().expect("a whole header"))
}

fn checksum(len: &[u8], time: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(time);
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_frame_is_length_checksum_time_payload() {
        let mut out = Vec::new();
        encode(1_795_773_600_000, b"m x=1 0", &mut out);
        assert_eq!(&out[..4], &[7, 0, 0, 0], "length");
        assert_eq!(&out[8..16], &1_795_773_600_000i64.to_le_bytes(), "time");
        assert_eq!(&out[16..], b"m x=1 0");
        assert_eq!(
            decode(&out),
            Decoded::Record { time_ms: 1_795_773_600_000, payload: b"m x=1 0", len: 23 }
        );
    }

    #[test]
    fn short_input_is_incomplete_and_damage_is_corrupt() {
        let mut out = Vec::new();
        encode(5, b"abc", &mut out);
        assert_eq!(decode(&[]), Decoded::Incomplete);
        assert_eq!(decode(&out[..1]), Decoded::Incomplete);
        assert_eq!(decode(&out[..out.len() - 1]), Decoded::Incomplete);
        let mut flipped = out.clone();
        flipped[17] ^= 1;
        assert_eq!(decode(&flipped), Decoded::Corrupt);
        assert_eq!(decode(&[0; 32]), Decoded::Corrupt, "a zero-filled tail is not an empty record");
        assert_eq!(decode(&[0xff; 32]), Decoded::Corrupt, "a huge length is refused, not awaited");
    }

    proptest! {
        #[test]
        fn any_prefix_scans_to_the_whole_records_in_it(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut out = Vec::new();
            let mut ends = vec![0];
            for (i, p) in payloads.iter().enumerate() {
                encode(i as i64, p, &mut out);
                ends.push(out.len());
            }
            let cut = cut.index(out.len() + 1);
            let scan = scan(&out[..cut]);
            let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
            prop_assert_eq!(scan.records, whole as u64);
            prop_assert_eq!(scan.valid, ends[whole]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let scan = scan(&bytes);
            prop_assert!(scan.valid <= bytes.len());
        }
    }
}
