//! Every family, found by itself: the simulator plays a profile, `read` without `--profile`
//! detects it over real TCP and decodes every reading. Every built-in profile is covered, and
//! small test families with other device types (three-phase, micro without battery) stand in
//! for the shapes SG01LP1 does not have.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use inverter_monitor::poller::{PollError, Poller};
use inverter_monitor::profile::{Profile, Profiles};
use inverter_monitor::sim::{SimConfig, Simulator};
use serde_json::Value as Json;
use tokio::net::TcpListener;

use crate::helpers::*;
use crate::process::{BIN, free_port};

/// A three-phase LV hybrid, as small as a test needs: per-phase grid and load, a battery, the
/// layout word mapped as readings at 0x16.
const TEST_P3: &str = r#"
[profile]
id = "test_p3"
manufacturer = "Deye"
model = "Test three-phase"
device_types = [5, 0x0500]
[profile.device]
serial = "inverter_serial"
model = "device_type"
"#;

/// A micro-inverter: two PV inputs, 2 kW, no battery, the layout word unmapped (at 0x12).
const TEST_MICRO: &str = r#"
[profile]
id = "test_micro"
manufacturer = "Deye"
model = "Test micro"
device_types = [4, 0x0400]
"#;

/// One `[[reading]]`.
fn reading(out: &mut String, key: &str, register: u16, rest: &str) {
    let _ = write!(
        out,
        "\n[[reading]]\nkey = \"{key}\"\nname = \"{key}\"\ngroup = \"g\"\nregisters = [{register}]\n{rest}\n"
    );
}

fn p3() -> String {
    let mut text = TEST_P3.to_string();
    reading(
        &mut text,
        "device_type",
        0,
        "kind = \"u16\"\ndevice_class = \"enum\"\nenum = { 5 = \"LV 3-phase hybrid\", 1280 = \"LV 3-phase hybrid\" }",
    );
    let _ = write!(
        text,
        "\n[[reading]]\nkey = \"inverter_serial\"\nname = \"Serial\"\ngroup = \"g\"\nregisters = [3, 4, 5, 6, 7]\nkind = \"ascii\"\n"
    );
    reading(&mut text, "mppts", 22, "kind = \"u16\"\nmask = 0x0F00");
    reading(&mut text, "phases", 22, "kind = \"u16\"\nmask = 0x000F");
    let watts = "kind = \"s16\"\nunit = \"W\"\ndevice_class = \"power\"\nstate_class = \"measurement\"\nmin = -20000\nmax = 20000";
    let volts = "kind = \"u16\"\nscale = 0.1\nunit = \"V\"\ndevice_class = \"voltage\"\nmin = 180\nmax = 280";
    for (i, phase) in ["l1", "l2", "l3"].iter().enumerate() {
        let i = i as u16;
        reading(&mut text, &format!("grid_voltage_{phase}"), 598 + i, volts);
        reading(&mut text, &format!("grid_power_{phase}"), 604 + i, watts);
        reading(&mut text, &format!("load_power_{phase}"), 650 + i, watts);
    }
    reading(&mut text, "grid_power", 625, watts);
    reading(&mut text, "load_power", 653, watts);
    reading(&mut text, "pv1_power", 672, "kind = \"u16\"\nunit = \"W\"\nmin = 0\nmax = 10000");
    reading(&mut text, "pv2_power", 673, "kind = \"u16\"\nunit = \"W\"\nmin = 0\nmax = 10000");
    reading(
        &mut text,
        "battery_voltage",
        587,
        "kind = \"u16\"\nscale = 0.01\nunit = \"V\"\nmin = 40\nmax = 60",
    );
    reading(
        &mut text,
        "battery_soc",
        588,
        "kind = \"u16\"\nunit = \"%\"\ndevice_class = \"battery\"\nmin = 0\nmax = 100",
    );
    reading(&mut text, "battery_power", 590, watts);
    text
}

fn micro() -> String {
    let mut text = TEST_MICRO.to_string();
    reading(&mut text, "device_type", 0, "kind = \"u16\"");
    for (n, register) in [(1, 109), (2, 111)] {
        reading(
            &mut text,
            &format!("pv{n}_voltage"),
            register,
            "kind = \"u16\"\nscale = 0.1\nunit = \"V\"\nmin = 0\nmax = 60",
        );
        reading(
            &mut text,
            &format!("pv{n}_power"),
            register + 1,
            "kind = \"u16\"\nunit = \"W\"\nmin = 0\nmax = 750",
        );
    }
    reading(&mut text, "inverter_power", 86, "kind = \"u16\"\nunit = \"W\"\nmin = 0\nmax = 2000");
    reading(
        &mut text,
        "pv_energy_today",
        60,
        "kind = \"u16\"\nscale = 0.1\nunit = \"kWh\"\ndevice_class = \"energy\"\nstate_class = \"total_increasing\"\ncounter = \"daily\"",
    );
    text
}

/// A directory with the test families.
fn test_profiles() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_p3.toml"), p3()).unwrap();
    std::fs::write(dir.path().join("test_micro.toml"), micro()).unwrap();
    dir
}

/// `read --json` against `sim`, with `extra` arguments: (exit ok, readings by key, stderr).
async fn read(sim: &SimHandle, extra: &[&str]) -> (bool, Vec<Json>, String) {
    let mut args = vec!["read".to_string(), "--logger".into(), sim.addr.to_string(), "--serial".into()];
    args.push(SERIAL.to_string());
    args.push("--json".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let output =
        tokio::task::spawn_blocking(move || std::process::Command::new(BIN).args(&args).output().unwrap())
            .await
            .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let readings = serde_json::from_slice(&output.stdout).unwrap_or_default();
    (output.status.success(), readings, stderr)
}

/// Asserts that `read` detected `profile` and decoded every reading of it to what the
/// simulator's house put in the registers: every battery pack the house has, none beyond.
fn assert_detected_and_decoded(profile: &Profile, sim: &Simulator, readings: &[Json], stderr: &str) {
    let profile = &profile.with_packs(sim.family().packs);
    let id = profile.id();
    let code = profile.header.device_types[0];
    assert!(
        stderr.contains(&format!("profile {id}, detected from device type {code:#06x}")),
        "{id}: {stderr}"
    );
    let keys: Vec<&str> = readings.iter().filter_map(|r| r["key"].as_str()).collect();
    let missing: Vec<&str> =
        profile.readings.iter().map(|r| r.def.key.as_str()).filter(|k| !keys.contains(k)).collect();
    assert!(missing.is_empty(), "{id}: not decoded or rejected: {missing:?}\n{stderr}");
    let value = |key: &str| readings.iter().find(|r| r["key"] == key).map(|r| r["value"].clone());
    let compared = compare_with_model(profile, sim, value);
    // The house models the flows, not every alarm bit and setting: a quarter of the readings at
    // least, and every shared flow and energy key the profile has.
    assert!(compared * 4 >= profile.readings.len(), "{id}: only {compared} readings compared with the house");
    let modelled: Vec<&str> = sim.expected().iter().map(|(key, _)| *key).collect();
    for key in [
        "pv1_voltage",
        "pv1_current",
        "inverter_power",
        "grid_power",
        "load_power",
        "battery_soc",
        "pv_energy_today",
    ] {
        let Some(index) = profile.index_of(key) else { continue };
        if !profile.readings[index].def.kind.is_derived() {
            assert!(modelled.contains(&key), "{id}: the house does not model {key}");
        }
    }
}

#[tokio::test]
async fn read_without_a_profile_detects_and_decodes_every_built_in_profile() {
    let profiles = Profiles::builtin().unwrap();
    for id in profiles.ids() {
        let profile = profiles.get(id).unwrap();
        assert!(!profile.header.device_types.is_empty(), "{id} lists no device_types: it cannot be detected");
        let handle = spawn_sim(SimConfig::new(SERIAL), profile.clone()).await;
        let (ok, readings, stderr) = read(&handle, &[]).await;
        assert!(ok, "{id}: {stderr}");
        assert_detected_and_decoded(&profile, &handle.sim, &readings, &stderr);
    }
}

#[tokio::test]
async fn a_three_phase_family_is_detected_and_its_phases_sum_to_the_totals() {
    let dir = test_profiles();
    let profile = Profiles::with_dir(dir.path()).unwrap().get("test_p3").unwrap();
    let handle = spawn_sim(SimConfig::new(SERIAL), profile.clone()).await;
    let (ok, readings, stderr) = read(&handle, &["--profiles-dir", &dir.path().display().to_string()]).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("profile test_p3, detected from device type 0x0005 (2 MPPT, 3 phase)"),
        "{stderr}"
    );
    assert_detected_and_decoded(&profile, &handle.sim, &readings, &stderr);
    let value = |key: &str| readings.iter().find(|r| r["key"] == key).unwrap()["value"].as_f64().unwrap();
    for total in ["grid_power", "load_power"] {
        let phases: f64 = ["l1", "l2", "l3"].iter().map(|p| value(&format!("{total}_{p}"))).sum();
        assert_eq!(phases, value(total), "{total}: the phases sum to the total");
    }
    assert!(value("load_power_l2") > 0.0, "the load is spread over the phases");
    assert_eq!((value("mppts"), value("phases")), (2.0, 3.0));
    assert!(value("battery_soc") > 0.0);
}

#[tokio::test]
async fn a_micro_inverter_is_detected_sized_to_its_rating_and_has_no_battery() {
    let dir = test_profiles();
    let profile = Profiles::with_dir(dir.path()).unwrap().get("test_micro").unwrap();
    let handle = spawn_sim(SimConfig::new(SERIAL), profile.clone()).await;
    let (ok, readings, stderr) = read(&handle, &["--profiles-dir", &dir.path().display().to_string()]).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("profile test_micro, detected from device type 0x0004 (2 MPPT, 1 phase)"),
        "{stderr}"
    );
    assert_detected_and_decoded(&profile, &handle.sim, &readings, &stderr);
    let state = handle.sim.state();
    assert_eq!(state.battery_power, 0.0, "no battery flows in a house without one");
    assert!(state.pv_power[0] > 0.0 && state.inverter_power <= 1600.0, "{state:?}");
}

#[tokio::test]
async fn an_unknown_device_type_is_a_clear_error_naming_the_code_and_the_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let odd =
        p3().replace("test_p3", "test_odd").replace("device_types = [5, 0x0500]", "device_types = [0x0999]");
    std::fs::write(dir.path().join("test_odd.toml"), odd).unwrap();
    let profile = Profiles::with_dir(dir.path()).unwrap().get("test_odd").unwrap();
    let handle = spawn_sim(SimConfig::new(SERIAL), profile).await;
    // Only the built-in profiles are known to `read`: none lists 0x0999.
    let (ok, readings, stderr) = read(&handle, &[]).await;
    assert!(!ok && readings.is_empty());
    assert!(
        stderr.contains(
            "cannot choose the profile: device type 0x0999 (2457) is not known to any profile (known: "
        ),
        "{stderr}"
    );
    for known in
        ["deye_sg01lp1 (0x0003, 0x0300, 0x0103, 0x0104)", "deye_sg04lp3 (0x0005, 0x0500)", "deye_micro"]
    {
        assert!(stderr.contains(known), "{known}: {stderr}");
    }
}

#[tokio::test]
async fn a_named_profile_wins_and_a_disagreeing_device_type_is_logged_naming_both() {
    let dir = test_profiles();
    let profiles = Profiles::with_dir(dir.path()).unwrap();
    let handle = spawn_sim(SimConfig::new(SERIAL), profiles.get("test_p3").unwrap()).await;
    let args = ["--profiles-dir", &dir.path().display().to_string(), "--profile", "test_micro"];
    let (ok, readings, stderr) = read(&handle, &args).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("the configured profile `test_micro` does not list device type 0x0005 (2 MPPT, 3 phase), which is `test_p3`; using `test_micro` as configured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("profile test_micro, as configured; the inverter says device type 0x0005"),
        "{stderr}"
    );
    assert_eq!(readings.len(), profiles.get("test_micro").unwrap().readings.len());
}

#[tokio::test]
async fn detection_fails_as_a_poll_until_the_inverter_answers_then_holds_for_good() {
    let dir = test_profiles();
    let profiles = Profiles::with_dir(dir.path()).unwrap();
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut link = link(addr, fast_settings());
    let mut poller = Poller::detecting("test", profiles.clone(), Some(40), Duration::from_secs(60), 3);
    let now = noon();
    let local = now.naive_utc();
    let failed = poller.poll_once(&mut link, now, local).await.unwrap_err();
    assert!(matches!(failed, PollError::Detect(_)), "{failed}");
    assert!(failed.to_string().starts_with("cannot choose the profile: reading the device type"), "{failed}");
    assert!(poller.profile().is_none(), "never a silent default");

    let handle = spawn_sim_on(
        TcpListener::bind(addr).await.unwrap(),
        SimConfig::new(SERIAL),
        profiles.get("test_p3").unwrap(),
    );
    // The link backs off after the refused connect; the next polls retry behind it.
    let mut detected = None;
    for _ in 0..50 {
        match poller.poll_once(&mut link, now, local).await {
            Ok(snapshot) => {
                detected = Some(snapshot);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let snapshot = detected.expect("detected once the inverter answered");
    assert_eq!((snapshot.profile.id(), snapshot.choice.detected), ("test_p3", true));
    assert!(poller.plan().iter().all(|b| b.count <= 40), "the plan honours max_read: {:?}", poller.plan());
    let requests = handle.sim.requests();
    poller.poll_once(&mut link, now, local).await.unwrap();
    assert_eq!(
        handle.sim.requests() - requests,
        poller.plan().len() as u64,
        "no second detection read, reconnects or not"
    );
}

/// `check-config` loads and validates every profile, and lists each with its detection codes.
#[test]
fn check_config_validates_and_lists_every_profile() {
    let dir = test_profiles();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("inverter-monitor.toml");
    let text = format!(
        "profiles_dir = {:?}\n[[inverter]]\nname = \"house\"\nhost = \"h\"\nserial = 1\n",
        dir.path().display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let output = std::process::Command::new(BIN).arg("check-config").arg(&config).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for id in Profiles::with_dir(dir.path()).unwrap().ids() {
        assert!(stdout.contains(&format!("  profile {id}: ")), "{id} not listed: {stdout}");
    }
    assert!(stdout.contains("profile test_p3: 20 readings, device types [0x0005, 0x0500]"), "{stdout}");
    broken_profile_fails(dir.path(), &config);
}

/// A broken profile in profiles_dir fails check-config, naming the file and the reading.
fn broken_profile_fails(dir: &Path, config: &Path) {
    std::fs::write(
        dir.join("test_broken.toml"),
        micro().replace("test_micro", "test_broken").replace("max = 2000", "max = -1"),
    )
    .unwrap();
    let output = std::process::Command::new(BIN).arg("check-config").arg(config).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success());
    assert!(stderr.contains("test_broken.toml: reading `inverter_power`: min 0 is above max -1"), "{stderr}");
}

/// `simulate --profile` serves a family from `--profiles-dir`, and `read` finds it by itself.
#[test]
fn simulate_serves_the_named_family_and_read_detects_it() {
    let dir = test_profiles();
    let dir_arg = dir.path().display().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut sim = std::process::Command::new(BIN)
        .args(["simulate", "--listen", &listen, "--profile", "test_micro", "--profiles-dir", &dir_arg])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::process::wait_for_port(&listen);
    let output = std::process::Command::new(BIN)
        .args(["read", "--logger", &listen, "--serial", &SERIAL.to_string(), "--profiles-dir", &dir_arg])
        .output()
        .unwrap();
    crate::process::terminate(&sim);
    assert!(sim.wait().unwrap().success(), "simulate exits cleanly on SIGTERM");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, "profile test_micro, detected from device type 0x0004 (2 MPPT, 1 phase)");
    assert!(stdout.contains("read · test_micro · ") && stdout.contains("7 readings in"), "{stdout}");
}

/// An inverter that refuses the device-type read: with `auto` every poll fails saying so; a
/// named profile polls on, unchecked.
#[tokio::test]
async fn a_refused_device_type_read_fails_auto_but_not_a_named_profile() {
    let config = SimConfig { refuse: vec![0], ..SimConfig::new(SERIAL) };
    let handle = spawn_sim(config, profile()).await;
    let mut link = link(handle.addr, fast_settings());
    let profiles = Profiles::builtin().unwrap();
    let (now, local) = (noon(), noon().naive_utc());
    let mut auto = Poller::detecting("test", profiles.clone(), None, Duration::from_secs(60), 3);
    for _ in 0..2 {
        let failed = auto.poll_once(&mut link, now, local).await.unwrap_err().to_string();
        assert!(
            failed.starts_with(
                "cannot choose the profile: the inverter refused the device-type read (registers 0-22)"
            ),
            "{failed}"
        );
    }
    let mut inverter =
        inverter_monitor::config::InverterConfig::new("named", "127.0.0.1", handle.addr.port(), SERIAL);
    inverter.profile = "deye_sg01lp1".into();
    let mut named = Poller::for_inverter(&inverter, &profiles).unwrap();
    let choice = named.poll_once(&mut link, now, local).await.map(|s| s.choice.describe());
    // Register 0 is refused inside the profile's own first read too: that read splits, the rest decodes.
    assert_eq!(choice.unwrap(), "deye_sg01lp1, as configured");
}
