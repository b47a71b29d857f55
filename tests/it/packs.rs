//! Battery packs over real TCP: the three-phase simulator reports two packs, and the poller
//! reads the count, then packs 1 and 2 and nothing beyond; a family without packs makes no pack
//! reads at all.

use std::sync::Arc;

use inverter_monitor::profile::Profiles;
use inverter_monitor::protocol::{Request, Response};
use inverter_monitor::sim::SimConfig;
use inverter_monitor::transport::Transport;

use crate::helpers::*;

/// Pack 3's voltage register: refused by the simulator, so a read of it would show.
const PACK3: u16 = 10040 + 2 * 38;

fn keys(snapshot: &inverter_monitor::poller::Snapshot) -> Vec<&str> {
    snapshot.readings.iter().map(|r| snapshot.profile.readings[r.index].def.key.as_str()).collect()
}

fn pack_keys<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    keys.iter().copied().filter(|k| k.starts_with("battery_pack") && *k != "battery_pack_count").collect()
}

#[tokio::test]
async fn the_packs_present_are_read_and_none_beyond() {
    let full = Profiles::builtin().unwrap().get("deye_sg04lp3").unwrap();
    let mut config = SimConfig::new(SERIAL);
    config.refuse = vec![PACK3];
    let handle = spawn_sim(config, full.clone()).await;
    assert_eq!(handle.sim.family().packs, 2);
    let mut link = link(handle.addr, fast_settings());
    let mut poller = poller(full.clone());

    // First poll: the count, no pack data yet.
    let first = poll(&mut poller, &mut link, &handle.sim).await;
    assert_eq!(first.get("battery_pack_count").and_then(|v| v.as_f64()), Some(2.0));
    assert!(pack_keys(&keys(&first)).is_empty(), "{:?}", keys(&first));
    assert!(first.refused.is_empty(), "{:?}", first.refused);

    // From the second poll on: packs 1 and 2, as the house has them, and no read of pack 3.
    let second = poll(&mut poller, &mut link, &handle.sim).await;
    assert!(!Arc::ptr_eq(&first.profile, &second.profile), "a new profile for the packs");
    let mut packs = pack_keys(&keys(&second));
    packs.sort_unstable();
    let mut want: Vec<String> = (1..=2)
        .flat_map(|p| {
            ["voltage", "current", "temperature", "soc", "soh", "cycles"]
                .map(|w| format!("battery_pack{p}_{w}"))
        })
        .collect();
    want.sort_unstable();
    assert_eq!(packs, want);
    assert!(second.refused.is_empty(), "pack 3 was read: {:?}", second.refused);
    assert!(second.rejected.is_empty(), "{:?}", second.rejected);
    let got = |key: &str| second.get(key).map(|v| serde_json::to_value(v).unwrap());
    compare_with_model(&second.profile, &handle.sim, got);
    let number = |key: &str| second.get(key).and_then(|v| v.as_f64()).unwrap();
    let currents = number("battery_pack1_current") + number("battery_pack2_current");
    assert!((currents - number("battery_current")).abs() < 0.15, "{currents} vs the battery's");
    assert!(poller.plan().iter().all(|b| b.end() < PACK3), "{:?}", poller.plan());

    // The BMS loses a pack: once the count has read 1 three polls in a row (a blink of the
    // BMS link must not remove entities), pack 2 is no longer read.
    let write = Request::WriteMultiple { addr: 10002, values: vec![1] };
    assert!(matches!(link.call(&write).await.unwrap(), Ok(Response::Written { .. })));
    for _ in 0..2 {
        let blink = poll(&mut poller, &mut link, &handle.sim).await;
        assert!(blink.get("battery_pack2_voltage").is_some(), "kept while the lower count may be a blink");
    }
    poll(&mut poller, &mut link, &handle.sim).await;
    let after = poll(&mut poller, &mut link, &handle.sim).await;
    assert_eq!(pack_keys(&keys(&after)).len(), 6, "{:?}", keys(&after));
    assert!(after.get("battery_pack2_voltage").is_none());
    assert!(poller.plan().iter().all(|b| b.end() < 10040 + 38), "{:?}", poller.plan());
}

#[tokio::test]
async fn a_family_without_packs_makes_no_pack_reads() {
    let sg01 = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let handle = spawn_sim(SimConfig::new(SERIAL), sg01.clone()).await;
    assert_eq!(handle.sim.family().packs, 0);
    let mut link = link(handle.addr, fast_settings());
    let mut poller = poller(sg01.clone());
    for _ in 0..2 {
        let snapshot = poll(&mut poller, &mut link, &handle.sim).await;
        assert!(Arc::ptr_eq(&snapshot.profile, &sg01), "the profile is used as it is");
        assert!(keys(&snapshot).iter().all(|k| !k.starts_with("battery_pack")), "{:?}", keys(&snapshot));
        assert!(snapshot.refused.is_empty(), "{:?}", snapshot.refused);
    }
    assert!(poller.plan().iter().all(|b| b.end() < 10000), "{:?}", poller.plan());
}
