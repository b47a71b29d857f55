//! Raw registers as read from the inverter: a few blocks of consecutive addresses.

/// Consecutive registers starting at `start`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterBlock {
    /// Address of `values[0]`.
    pub start: u16,
    /// Register values in address order.
    pub values: Vec<u16>,
}

impl RegisterBlock {
    /// The register at `addr`, if this block holds it.
    pub fn get(&self, addr: u16) -> Option<u16> {
        let offset = usize::from(addr.checked_sub(self.start)?);
        self.values.get(offset).copied()
    }
}

/// The blocks of one poll, sorted by start address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterSet {
    blocks: Vec<RegisterBlock>,
}

impl RegisterSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block, keeping the blocks sorted.
    pub fn insert(&mut self, block: RegisterBlock) {
        let at = self.blocks.partition_point(|b| b.start < block.start);
        self.blocks.insert(at, block);
    }

    /// The register at `addr`, if a block holds it.
    pub fn get(&self, addr: u16) -> Option<u16> {
        let after = self.blocks.partition_point(|b| b.start <= addr);
        self.blocks[..after].iter().rev().find_map(|b| b.get(addr))
    }

    /// The blocks, sorted by start address.
    pub fn blocks(&self) -> &[RegisterBlock] {
        &self.blocks
    }

    /// The blocks, sorted by start address, given away (a recording keeps them).
    pub fn into_blocks(self) -> Vec<RegisterBlock> {
        self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_the_right_block() {
        let mut set = RegisterSet::new();
        set.insert(RegisterBlock { start: 150, values: vec![1, 2, 3] });
        set.insert(RegisterBlock { start: 59, values: vec![7, 8] });
        assert_eq!(set.get(59), Some(7));
        assert_eq!(set.get(60), Some(8));
        assert_eq!(set.get(61), None);
        assert_eq!(set.get(152), Some(3));
        assert_eq!(set.get(153), None);
        assert_eq!(set.get(0), None);
        assert_eq!(set.blocks()[0].start, 59);
    }
}
