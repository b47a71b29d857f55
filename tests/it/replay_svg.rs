//! `replay --svg`: a day recorded from the simulator over real TCP, with injected faults (a
//! 65535 PV power, a counter jumping and stepping back, an all-zero battery frame), replayed
//! through the real pipeline; the picture puts a red dot on every value the report counts as
//! rejected, names its rule, and the same recording draws the same bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use inverter_monitor::config::{Config, InverterConfig};
use inverter_monitor::record::Poll;
use inverter_monitor::replay::{self, Capture, Pace, svg};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::process::BIN;
use crate::replay::{faulty_day, recorded_poll, set};

/// The poll with the 65535 PV1 power, and the one whose battery frame reads all zero.
const SPIKE: usize = 5;
const ZERO_FRAME: usize = 25;

/// `faulty_day` (a max_change jump at poll 10, a step back at 20) and two more faults.
async fn day() -> Vec<Poll> {
    let profile = profile();
    let mut day = faulty_day(&recorded_poll().await, 30);
    let register = |key: &str| profile.readings[profile.index_of(key).unwrap()].def.registers[0];
    set(&mut day[SPIKE], register("pv1_power"), 65535);
    let soc = register("battery_soc");
    let frame =
        day[ZERO_FRAME].blocks.iter_mut().find(|b| (b.start..b.start + b.values.len() as u16).contains(&soc));
    frame.expect("the battery is recorded").values.fill(0);
    day
}

/// The red dots of `picture`, by rule, from their titles.
fn dots(picture: &str) -> BTreeMap<String, usize> {
    let mut rules = BTreeMap::new();
    for line in picture.lines().filter(|l| l.starts_with("<circle class=\"rejected\"")) {
        let rule = line.split("rejected by ").nth(1).and_then(|r| r.split('<').next()).unwrap();
        *rules.entry(rule.to_string()).or_default() += 1;
    }
    rules
}

#[tokio::test]
async fn every_rejection_in_the_report_is_a_red_dot_in_the_picture() {
    let config = Config::new(vec![InverterConfig::new("house", "127.0.0.1", 1, SERIAL)]);
    // Every reading: then each rejection the report counts has its panel.
    let keys = profile().readings.iter().map(|r| r.def.key.clone()).collect();
    let mut capture = Capture::new(Some(keys));
    let report = replay::replay(
        &config,
        day().await,
        Pace::Fast,
        CancellationToken::new(),
        replay::Options { resume: false, capture: Some(&mut capture) },
    )
    .await
    .unwrap();
    let picture = svg::render("day", capture.series());
    let dots = dots(&picture);

    assert_eq!(report.rejected.get("range"), Some(&1), "the 65535 W: {report}");
    assert_eq!(report.rejected.get("zero_frame"), Some(&1), "{report}");
    let read_at_zero_frame = capture.series().iter().filter(|s| s.points[ZERO_FRAME].raw.is_some()).count();
    for (rule, count) in &report.rejected {
        let expected =
            if *rule == "zero_frame" { *count as usize * read_at_zero_frame } else { *count as usize };
        assert_eq!(dots.get(*rule).copied().unwrap_or(0), expected, "{rule}: {report}");
    }
    assert_eq!(dots.len(), report.rejected.len(), "no dot without a rejection: {dots:?}");
    let dot = |key: &str, what: &str| {
        picture.lines().any(|l| l.contains(&format!("<title>{key} ")) && l.contains(what))
    };
    assert!(dot("pv1_power", ": raw 65535 W, rejected by range"), "the spike names its value and rule");
    assert!(
        dot("pv_energy_total", "rejected by max_change")
            && dot("pv_energy_total", "rejected by counter_backwards")
    );
}

#[tokio::test]
async fn the_binary_draws_the_same_picture_of_the_same_recording_twice() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("day.jsonl");
    let lines: Vec<String> = day().await.iter().map(Poll::to_line).collect();
    std::fs::write(&recording, lines.join("\n")).unwrap();
    let config = dir.path().join("replay.toml");
    std::fs::write(
        &config,
        format!("[[inverter]]\nname = \"house\"\nhost = \"127.0.0.1\"\nserial = {SERIAL}\n"),
    )
    .unwrap();
    let dir = dir.path().to_path_buf();
    let (first, second) = tokio::task::spawn_blocking(move || {
        (draw(&dir, &recording, &config, "a.svg"), draw(&dir, &recording, &config, "b.svg"))
    })
    .await
    .unwrap();
    let ((first, stdout), (second, _)) = (first, second);
    assert_eq!(first, second, "byte-identical");
    assert!(stdout.contains("rejected max_change        1"), "{stdout}");
    let dots = dots(&first);
    assert_eq!((dots["max_change"], dots["counter_backwards"], dots["range"]), (1, 1, 1), "{dots:?}");
    assert_eq!(dots["zero_frame"], 2, "both panels were read in the refused poll");
    assert_eq!(first.matches("<g>").count(), 2, "one panel per key asked for");
}

/// Runs `replay --fast --svg DIR/NAME` on two keys; the picture and the printed report.
fn draw(dir: &Path, recording: &Path, config: &Path, name: &str) -> (String, String) {
    let out = dir.join(name);
    let output = Command::new(BIN)
        .arg("replay")
        .arg(recording)
        .arg("--config")
        .arg(config)
        .args(["--fast", "--svg-keys", "pv_energy_total,pv1_power", "--svg"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (std::fs::read_to_string(out).unwrap(), String::from_utf8(output.stdout).unwrap())
}
