//! The simulated inverter without a socket: its register image and the snapshot a poll of it
//! decodes to. For benches and unit tests that need realistic data but no network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::house::{House, HouseParams};
use super::{Family, registers};
use crate::poller::Snapshot;
use crate::profile::{Choice, Profile, ReadBlock, RegisterBlock, RegisterSet};

/// The inverter serial the simulator reports.
pub const INVERTER_SERIAL: &str = "2306178901";

/// The registers the simulator serves for a default house at `at`.
pub fn image(profile: &Profile, at: DateTime<Utc>) -> Vec<u16> {
    let family = Family::of(profile, &HouseParams::default());
    let params = family.fit(HouseParams::default());
    let local = at.with_timezone(&params.utc_offset).naive_local();
    let house = House::new(params, at);
    let mut regs = super::base_image(profile, &family, INVERTER_SERIAL);
    registers::apply(profile, &family.adjust(registers::values(house.state(), local)), &mut regs);
    regs
}

/// The blocks of `profile`'s plan, as a poll reads them from `image`.
pub fn register_set(profile: &Profile, image: &[u16]) -> RegisterSet {
    let mut set = RegisterSet::new();
    blocks(&profile.plan(), image).into_iter().for_each(|block| set.insert(block));
    set
}

/// The blocks of `plan`, in its order, as a poll reads them from `image`.
pub fn blocks(plan: &[ReadBlock], image: &[u16]) -> Vec<RegisterBlock> {
    let block = |b: &ReadBlock| {
        let from = usize::from(b.start);
        RegisterBlock { start: b.start, values: image[from..from + usize::from(b.count)].to_vec() }
    };
    plan.iter().map(block).collect()
}

/// The snapshot a clean poll of the simulated inverter `inverter` decodes to at `at`.
pub fn snapshot(profile: Arc<Profile>, inverter: &str, at: DateTime<Utc>) -> Snapshot {
    let (readings, _) = profile.decode(&register_set(&profile, &image(&profile, at)));
    let choice = Choice { profile: profile.id().to_string(), detected: false, device: None };
    Snapshot {
        inverter: inverter.into(),
        profile,
        choice: Arc::new(choice),
        time: at,
        local: at.with_timezone(&HouseParams::default().utc_offset).naive_local(),
        readings,
        rejected: Vec::new(),
        refused: Vec::new(),
        duration: Duration::ZERO,
        reads: 3,
        link: Default::default(),
        rejected_total: BTreeMap::new(),
        identity: INVERTER_SERIAL.into(),
    }
}
