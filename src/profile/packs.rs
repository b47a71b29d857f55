//! Battery-pack readings: optional readings, off unless the inverter reports the pack.
//!
//! A three-phase Deye reports how many battery packs its BMS sees (the header's `pack_count`
//! reading) and each pack's BMS data in a block of its own. A reading with `pack = N` is part of
//! the profile in use only while that count is at least N ([`Profile::with_packs`]), so a house
//! with two packs gets two packs' entities and no reads for the other thirteen slots.
//!
//! This module owns the pack arithmetic over a loaded profile: how many packs it maps, which
//! count a poll read, and the profile narrowed to a count. It must not decide when to re-narrow
//! (the poller does, from what it reads) and must not touch readings of no pack.

use super::{Profile, Reading};

impl Profile {
    /// The highest pack any reading names: the most packs this profile can show. 0 without
    /// pack readings.
    pub fn packs_mapped(&self) -> u8 {
        self.readings.iter().filter_map(|r| r.def.pack).max().unwrap_or(0)
    }

    /// The pack count `readings` (decoded from this profile) hold, when the profile has pack
    /// readings and the poll read its count: a whole number of packs, never negative.
    pub fn pack_count(&self, readings: &[Reading]) -> Option<u32> {
        let key = self.header.pack_count.as_ref()?;
        let index = self.index_of(key)?;
        let value = readings.iter().find(|r| r.index == index)?.value.as_f64()?;
        Some(value.max(0.0).round() as u32)
    }

    /// This profile with the readings of packs 1 to `count` and none beyond; the readings of
    /// no pack all stay.
    pub fn with_packs(&self, count: u8) -> Profile {
        self.narrowed(|spec| spec.def.pack.is_none_or(|pack| pack <= count))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::HEADER;
    use super::super::{RegisterBlock, RegisterSet, load};

    /// A count at 10002 and two packs' voltage at 10040 and 10078.
    fn profile() -> super::Profile {
        let reading = |key: &str, register: u16, pack: Option<u8>| {
            let pack = pack.map_or(String::new(), |p| format!("pack = {p}\n"));
            format!(
                "[[reading]]\nkey = \"{key}\"\nname = \"N\"\ngroup = \"bms\"\nregisters = [{register}]\nkind = \"u16\"\n{pack}"
            )
        };
        let text = format!(
            "{HEADER}pack_count = \"packs\"\n{}{}{}",
            reading("packs", 10002, None),
            reading("pack1_voltage", 10040, Some(1)),
            reading("pack2_voltage", 10078, Some(2))
        );
        load::parse(&text, "t.toml", Some("t")).unwrap()
    }

    #[test]
    fn a_count_keeps_its_packs_and_every_reading_of_no_pack() {
        let profile = profile();
        assert_eq!(profile.packs_mapped(), 2);
        let keys = |p: &super::Profile| p.readings.iter().map(|r| r.def.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&profile.with_packs(0)), ["packs"]);
        assert_eq!(keys(&profile.with_packs(1)), ["packs", "pack1_voltage"]);
        assert_eq!(keys(&profile.with_packs(9)), ["packs", "pack1_voltage", "pack2_voltage"]);
        assert_eq!(profile.with_packs(0).addresses().collect::<Vec<_>>(), [10002]);
    }

    #[test]
    fn the_count_is_read_from_the_poll() {
        let profile = profile().with_packs(0);
        let mut regs = RegisterSet::new();
        regs.insert(RegisterBlock { start: 10002, values: vec![3] });
        let (readings, _) = profile.decode(&regs);
        assert_eq!(profile.pack_count(&readings), Some(3));
        assert_eq!(profile.pack_count(&[]), None, "a poll that missed the count says nothing");
    }
}
