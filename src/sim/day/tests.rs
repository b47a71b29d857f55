use chrono::{NaiveDate, Timelike};

use super::*;
use crate::profile::Profiles;

fn profile(id: &str) -> Arc<Profile> {
    Profiles::builtin().unwrap().get(id).unwrap()
}

fn solstice(id: &str, faults: &str) -> Day {
    let faults = faults.parse().unwrap();
    Day { faults, ..Day::new(profile(id), NaiveDate::from_ymd_opt(2026, 6, 21).unwrap()) }
}

#[test]
fn a_clean_day_is_a_poll_a_minute_in_the_plan_and_the_same_every_time() {
    let day = solstice("deye_sg01lp1", "").polls().unwrap();
    assert_eq!(day.polls.len(), 1440);
    assert!(day.injected.is_empty());
    let first = &day.polls[0];
    assert_eq!(first.time.to_rfc3339(), "2026-06-21T00:00:00+00:00");
    assert_eq!(first.local, first.time.naive_utc(), "the inverter's clock at UTC");
    assert_eq!(day.polls[1].time - first.time, TimeDelta::minutes(1));
    let starts: Vec<u16> = first.blocks.iter().map(|b| b.start).collect();
    let plan: Vec<u16> = profile("deye_sg01lp1").plan().iter().map(|b| b.start).collect();
    assert_eq!(starts, plan);
    assert!(day.polls.iter().all(|p| p.failed.is_none()), "a hybrid's logger never sleeps");
    let again = solstice("deye_sg01lp1", "").polls().unwrap();
    assert_eq!(day.polls, again.polls, "deterministic");
    let other = Day { seed: 2, ..solstice("deye_sg01lp1", "") }.polls().unwrap();
    assert_ne!(day.polls, other.polls, "the seed moves the house's noise");
}

#[test]
fn every_fault_is_where_the_day_says_and_nowhere_else() {
    let clean = solstice("deye_micro", "midnight-utc,dark-night").polls().unwrap();
    let faulty = solstice("deye_micro", "all").polls().unwrap();
    assert_eq!(faulty.injected.len(), 6, "{:?}", faulty.injected);
    let at: Vec<usize> = faulty.injected.iter().map(|(i, _)| *i).collect();
    for (i, (clean, faulty)) in clean.polls.iter().zip(&faulty.polls).enumerate() {
        assert_eq!(clean == faulty, !at.contains(&i), "poll {i}");
    }
    for (i, fault) in &faulty.injected {
        let poll = &faulty.polls[*i];
        assert!(*i >= CLEAN_START && poll.failed.is_none(), "a fault lands on an answered poll");
        match fault {
            Fault::Spike(a) | Fault::CounterSpike(a) => {
                assert_eq!(poll.registers(*a, 1), Some(&[u16::MAX][..]))
            }
            Fault::ZeroFrame => assert!(poll.blocks.iter().all(|b| b.values.iter().all(|v| *v == 0))),
            Fault::ZeroBlock(start) => {
                let block = poll.blocks.iter().find(|b| b.start == *start).unwrap();
                assert!(block.values.iter().all(|v| *v == 0));
            }
            Fault::CounterBack(low, high) => {
                let raw = |p: &Poll| {
                    u32::from(p.registers(*high, 1).unwrap()[0]) << 16
                        | u32::from(p.registers(*low, 1).unwrap()[0])
                };
                assert_eq!(raw(&clean.polls[*i]) - raw(poll), STEP_BACK);
                assert!(raw(&faulty.polls[i + 1]) >= raw(&clean.polls[*i]), "then it recovers");
            }
        }
    }
}

#[test]
fn the_inverters_midnight_and_night_fall_in_the_middle_of_the_hosts_utc_day() {
    let day = solstice("deye_micro", "midnight-utc,dark-night").polls().unwrap();
    let first = &day.polls[0];
    assert_eq!(first.local - first.time.naive_utc(), TimeDelta::hours(10));
    let midnight = day.polls.windows(2).position(|w| w[0].local.date() != w[1].local.date()).unwrap();
    assert_eq!(day.polls[midnight + 1].time.hour(), 14, "00:00 at UTC+10");
    let dark: Vec<usize> = (0..day.polls.len()).filter(|&i| day.polls[i].failed.is_some()).collect();
    assert!(!dark.is_empty());
    let (from, to) = (dark[0], *dark.last().unwrap());
    assert_eq!(to - from + 1, dark.len(), "one night, without a gap");
    assert!(from > 0 && to < day.polls.len() - 1, "answered before and after");
    assert!((from..=to).contains(&midnight), "the inverter's midnight is in its night");
    assert!(day.polls[from].blocks.is_empty());
    assert_eq!(day.polls[from].failed.as_deref(), Some(NO_ANSWER));
    // Dark from about 18:00 to 06:00 by the inverter's clock.
    assert!((17..=18).contains(&day.polls[from].local.hour()), "{}", day.polls[from].local);
    assert!((5..=6).contains(&day.polls[to].local.hour()), "{}", day.polls[to].local);
}

#[test]
fn faults_that_do_not_fit_are_refused_by_name() {
    let err = |day: Day| day.polls().unwrap_err().to_string();
    assert!(err(solstice("deye_sg01lp1", "dark-night")).contains("does not sleep at night"));
    let at_utc = Day { utc_offset: Some(Utc.fix()), ..solstice("deye_micro", "midnight-utc") };
    assert!(err(at_utc).contains("must be off UTC"));
    assert!(err(Day { interval: TimeDelta::zero(), ..solstice("deye_micro", "") }).contains("interval"));
    assert_eq!(
        "spikes,bogus".parse::<DayFaults>().unwrap_err().to_string(),
        "unknown fault `bogus`: spikes, zero-frames, counter-back, midnight-utc, dark-night or all"
    );
    assert_eq!("".parse::<DayFaults>().unwrap(), DayFaults::default());
    assert_eq!("all".parse::<DayFaults>().unwrap(), DayFaults::ALL);
}
