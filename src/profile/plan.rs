//! The request planner: every mapped register in the fewest Modbus reads.
//!
//! A read costs a round trip (the request pause plus 0.1–0.5 s of logger latency, docs/protocol.md
//! Q15), while one more register in a read costs two bytes on the inverter's RS485 line, about
//! 2 ms at 9600 baud. So bridging an unmapped gap is cheaper than another read for gaps up to
//! a few dozen registers: the profile's `max_gap`. Reads stay within `max_read` (Modbus allows
//! 125; some loggers want fewer, docs/protocol.md Q6).
//!
//! Greedy is optimal here: any sub-run of a feasible read is feasible, so extending each read as
//! far as the limits allow never needs more reads than any other partition.

/// One Modbus read: `count` registers from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBlock {
    /// First register.
    pub start: u16,
    /// Number of registers.
    pub count: u16,
}

impl ReadBlock {
    /// The last register of the read.
    pub fn end(&self) -> u16 {
        self.start + (self.count - 1)
    }

    /// True when `addr` lies in this read.
    pub fn contains(&self, addr: u16) -> bool {
        (self.start..=self.end()).contains(&addr)
    }
}

/// The reads that cover `addresses`, each at most `max_read` long, bridging gaps of at most
/// `max_gap` unmapped registers.
pub(crate) fn plan(addresses: impl IntoIterator<Item = u16>, max_read: u16, max_gap: u16) -> Vec<ReadBlock> {
    let mut addresses: Vec<u16> = addresses.into_iter().collect();
    addresses.sort_unstable();
    addresses.dedup();
    let max_read = max_read.max(1);
    let mut blocks: Vec<ReadBlock> = Vec::new();
    for addr in addresses {
        match blocks.last_mut() {
            Some(block)
                if u32::from(addr) - u32::from(block.end()) <= u32::from(max_gap) + 1
                    && u32::from(addr) - u32::from(block.start) < u32::from(max_read) =>
            {
                block.count = addr - block.start + 1;
            }
            _ => blocks.push(ReadBlock { start: addr, count: 1 }),
        }
    }
    blocks
}

#[cfg(test)]
/// The maximal runs of consecutive addresses: the reads a planner without gap bridging needs
/// at least (before the `max_read` limit).
pub(crate) fn contiguous_runs(addresses: impl IntoIterator<Item = u16>) -> Vec<ReadBlock> {
    plan(addresses, u16::MAX, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn adjacent_and_bridged_registers_share_a_read() {
        let blocks = plan([3, 4, 5, 7, 59, 60], 125, 1);
        assert_eq!(blocks, vec![ReadBlock { start: 3, count: 5 }, ReadBlock { start: 59, count: 2 }]);
        assert_eq!(plan([3, 4, 5, 7, 59, 60], 125, 60), vec![ReadBlock { start: 3, count: 58 }]);
    }

    #[test]
    fn reads_never_exceed_max_read() {
        let blocks = plan(0..300, 125, 40);
        assert_eq!(blocks.iter().map(|b| b.count).collect::<Vec<_>>(), vec![125, 125, 50]);
    }

    #[test]
    fn nothing_to_read_means_no_reads() {
        assert!(plan([], 125, 40).is_empty());
    }

    /// The fewest reads any partition can manage, by dynamic programming over sorted addresses.
    fn optimum(addresses: &[u16], max_read: u16, max_gap: u16) -> usize {
        let mut a = addresses.to_vec();
        a.sort_unstable();
        a.dedup();
        let mut best = vec![usize::MAX; a.len() + 1];
        best[0] = 0;
        for end in 1..=a.len() {
            for start in (0..end).rev() {
                let span_ok = a[end - 1] - a[start] < max_read;
                let gaps_ok = a[start..end].windows(2).all(|w| w[1] - w[0] <= max_gap + 1);
                if !(span_ok && gaps_ok) {
                    break;
                }
                best[end] = best[end].min(best[start] + 1);
            }
        }
        best[a.len()]
    }

    proptest! {
        #[test]
        fn greedy_is_optimal_and_covers_everything(
            addresses in proptest::collection::vec(0u16..600, 0..80),
            max_read in 1u16..=125,
            max_gap in 0u16..50,
        ) {
            let blocks = plan(addresses.iter().copied(), max_read, max_gap);
            prop_assert_eq!(blocks.len(), optimum(&addresses, max_read, max_gap));
            for addr in &addresses {
                prop_assert!(blocks.iter().any(|b| b.contains(*addr)));
            }
            for block in &blocks {
                prop_assert!(block.count <= max_read);
            }
        }
    }
}
