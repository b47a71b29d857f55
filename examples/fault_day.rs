//! Writes a recorded day with injected faults, for the picture in docs/data-quality.md:
//! `cargo run --example fault_day -- fault-day.jsonl`, then
//! `inverter-monitor replay fault-day.jsonl --config replay.toml --fast --svg docs/images/fault-day.svg`.
//!
//! The registers are the simulator's house (deye_sg01lp1, its clock fixed and moved a poll at a
//! time), read as a poll reads them, every five minutes from the house's midnight; then, as a
//! real logger does now and then: a 65535 high word on the PV total (range), 65535 W on PV1
//! (range), a counter jumping 6553.6 kWh (max_change), an all-zero frame where the battery lives
//! (zero_frame) and the grid import total stepping back 5 kWh (counter_backwards).
//! It exists until the simulator writes fault days itself.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use inverter_monitor::profile::{Profile, Profiles};
use inverter_monitor::record::{Block, Poll};
use inverter_monitor::sim::{SimClock, SimConfig, Simulator};

/// One poll every five minutes: a day's picture with every fault in sight, in a small file.
const EVERY: TimeDelta = TimeDelta::minutes(5);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "fault-day.jsonl".into());
    let profile = Profiles::builtin()?.get("deye_sg01lp1")?;
    // The house's midnight (the simulator's house is at UTC+02:00) on 1 June.
    let start: DateTime<Utc> = "2026-05-31T22:00:00Z".parse()?;
    let config = SimConfig { clock: SimClock::Fixed(start), ..SimConfig::new(1) };
    let sim = Simulator::new(config, profile.clone());
    let offset = sim.config().house.utc_offset;
    let mut file = std::fs::File::create(&out)?;
    for i in 0..288 {
        let time = start + EVERY * i;
        sim.set_time(time);
        let mut poll = read(&sim, &profile, time, time.with_timezone(&offset).naive_local());
        fault(&mut poll, &profile);
        writeln!(file, "{}", poll.to_line())?;
    }
    println!("{out}: 288 polls, five faults");
    Ok(())
}

/// Every block of the profile's plan, as the simulator serves it at `time`.
fn read(sim: &Simulator, profile: &Arc<Profile>, time: DateTime<Utc>, local: chrono::NaiveDateTime) -> Poll {
    let blocks = profile
        .plan()
        .iter()
        .map(|b| Block {
            start: b.start,
            values: (b.start..b.start + b.count).map(|a| sim.register(a).unwrap_or(0)).collect(),
        })
        .collect();
    Poll {
        time,
        local,
        inverter: "house".into(),
        profile: profile.id().into(),
        identity: "2306178901".into(),
        blocks,
        refused: Vec::new(),
    }
}

/// The fault of this time of day, if any.
fn fault(poll: &mut Poll, profile: &Profile) {
    let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
    let now = poll.local.time();
    if now == at(8, 0) {
        set(poll, 97, 65535);
    } else if now == at(10, 30) {
        set(poll, 186, 65535);
    } else if now == at(12, 0) {
        let high = get(poll, 97);
        set(poll, 97, high + 1);
    } else if now == at(14, 0) {
        let soc = profile.index_of("battery_soc").map(|i| profile.readings[i].def.registers[0]);
        let block = poll
            .blocks
            .iter_mut()
            .find(|b| soc.is_some_and(|a| a >= b.start && a < b.start + b.values.len() as u16));
        block.into_iter().for_each(|b| b.values.fill(0));
    } else if now == at(16, 0) {
        let value = (u32::from(get(poll, 80)) << 16 | u32::from(get(poll, 78))).saturating_sub(50);
        set(poll, 78, value as u16);
        set(poll, 80, (value >> 16) as u16);
    }
}

fn get(poll: &Poll, addr: u16) -> u16 {
    poll.registers(addr, 1).map_or(0, |r| r[0])
}

fn set(poll: &mut Poll, addr: u16, value: u16) {
    for block in &mut poll.blocks {
        if addr >= block.start && usize::from(addr - block.start) < block.values.len() {
            block.values[usize::from(addr - block.start)] = value;
        }
    }
}
