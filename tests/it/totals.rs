//! Total counters across restarts: the service's poll loop keeps them in the data dir, and a
//! restarted poller judges its first poll by them, over real TCP to the simulator.

use std::time::Duration;

use inverter_monitor::poller::{self, Poller, Update};
use inverter_monitor::profile::Counter;
use inverter_monitor::quality::Rule;
use inverter_monitor::sim::SimConfig;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const INTERVAL: Duration = Duration::from_millis(50);

/// The key, index and two registers (low word first) of the profile's first total counter.
fn total_counter() -> (String, usize, u16, u16) {
    let profile = profile();
    let index = profile.readings.iter().position(|r| r.def.counter == Some(Counter::Total)).unwrap();
    let def = &profile.readings[index].def;
    (def.key.clone(), index, def.registers[0], def.registers[1])
}

fn rejected_by(snapshot: &inverter_monitor::poller::Snapshot, index: usize) -> Option<Rule> {
    snapshot.rejected.iter().find(|r| r.index == Some(index)).map(|r| r.rule)
}

#[tokio::test]
async fn a_restart_rejects_a_total_that_fell_back_or_spiked() {
    let sim = spawn_sim(SimConfig::new(SERIAL), profile()).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, index, low, high) = total_counter();

    // The first run: the service's poll loop, one good poll, then shutdown.
    let (bus, mut updates) = broadcast::channel(16);
    let cancel = CancellationToken::new();
    let first = Poller::new("house", profile(), INTERVAL, 3).keeping_totals(dir.path());
    let task =
        tokio::spawn(poller::run(first, link(sim.addr, fast_settings()), INTERVAL, bus, cancel.clone()));
    let kept = loop {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.recv()).await.unwrap().unwrap();
        if let Update::Polled { snapshot, .. } = update {
            break snapshot.get(&key).and_then(|v| v.as_f64()).expect("the counter was read");
        }
    };
    cancel.cancel();
    task.await.unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("totals-house.json")).unwrap()).unwrap();
    assert_eq!(file["totals"][&key].as_f64(), Some(kept), "{file}");

    // After the restart the counter reads 10 kWh lower.
    let raw = u32::from(sim.sim.register(high).unwrap()) << 16 | u32::from(sim.sim.register(low).unwrap());
    let lower = raw - 100;
    sim.sim.poke(low, lower as u16);
    sim.sim.poke(high, (lower >> 16) as u16);
    let mut link = link(sim.addr, fast_settings());
    let mut restarted = Poller::new("house", profile(), INTERVAL, 3).keeping_totals(dir.path());
    let snapshot = poll(&mut restarted, &mut link, &sim.sim).await;
    assert_eq!(snapshot.get(&key), None, "a step back is not published after a restart");
    assert_eq!(rejected_by(&snapshot, index), Some(Rule::CounterBackwards));
    // What the restart would have done without them: taken it.
    let mut forgetful = Poller::new("house", profile(), INTERVAL, 3);
    let taken = poll(&mut forgetful, &mut link, &sim.sim).await;
    assert!((taken.get(&key).and_then(|v| v.as_f64()).unwrap() - (kept - 10.0)).abs() < 1e-6);

    // A spike (+6553.6 kWh, the high word one up) after a restart is rejected too.
    let spike = raw + (1 << 16);
    sim.sim.poke(low, spike as u16);
    sim.sim.poke(high, (spike >> 16) as u16);
    let mut restarted = Poller::new("house", profile(), INTERVAL, 3).keeping_totals(dir.path());
    let snapshot = poll(&mut restarted, &mut link, &sim.sim).await;
    assert_eq!(snapshot.get(&key), None, "a spike is not published after a restart");
    assert_eq!(rejected_by(&snapshot, index), Some(Rule::MaxChange));
}
