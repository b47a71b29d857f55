//! Detection against the built-in SG01LP1 and small test families in a temporary profiles_dir:
//! every code of every profile picks it, variants are told apart, unknown codes are refused.

use std::fmt::Write;

use super::*;

/// A small profile `id` claiming `codes`, with `pv` PV inputs and one or three phases.
fn family(id: &str, codes: &[u16], pv: u8, three_phase: bool) -> String {
    let codes: Vec<String> = codes.iter().map(|c| format!("{c:#06x}")).collect();
    let mut text = format!(
        "[profile]\nid = \"{id}\"\nmanufacturer = \"Deye\"\nmodel = \"{id}\"\ndevice_types = [{}]\n",
        codes.join(", ")
    );
    let mut reading = |key: String, register: u16| {
        let _ = write!(
            text,
            "[[reading]]\nkey = \"{key}\"\nname = \"{key}\"\ngroup = \"g\"\nregisters = [{register}]\nkind = \"u16\"\n"
        );
    };
    for n in 1..=pv {
        reading(format!("pv{n}_power"), 100 + u16::from(n));
    }
    let phases: &[&str] = if three_phase { &["l1", "l2", "l3"] } else { &["l1"] };
    for (i, phase) in phases.iter().enumerate() {
        reading(format!("grid_power_{phase}"), 200 + i as u16);
    }
    text
}

/// The built-in profiles plus `files` (name, text) from a temporary directory.
fn with(files: &[(&str, String)]) -> (tempfile::TempDir, Profiles) {
    let dir = tempfile::tempdir().unwrap();
    for (id, text) in files {
        std::fs::write(dir.path().join(format!("{id}.toml")), text).unwrap();
    }
    let profiles = Profiles::with_dir(dir.path()).unwrap();
    (dir, profiles)
}

fn device(code: u16) -> DeviceType {
    DeviceType { code, mppts: None, phases: None }
}

/// Registers 0..=22 with `code` in 0 and `word` at `layout`.
fn answer(code: u16, layout: u16, word: u16) -> Vec<u16> {
    let mut values = vec![0u16; usize::from(DETECT_COUNT)];
    values[0] = code;
    values[usize::from(layout)] = word;
    values
}

#[test]
fn the_device_type_and_layout_word_come_from_the_familys_register() {
    // Single-phase: the layout word at 0x12; 0x16 is the clock there and must be ignored.
    let mut values = answer(0x0300, 0x12, 0x0201);
    values[0x16] = 0x1A0B;
    let lp1 = DeviceType::from_registers(0, &values).unwrap();
    assert_eq!(lp1, DeviceType { code: 0x0300, mppts: Some(2), phases: Some(1) });
    assert_eq!(lp1.to_string(), "device type 0x0300 (2 MPPT, 1 phase)");
    // Three-phase: at 0x16, in both encodings.
    for code in [5, 0x0500, 6, 0x0601, 8] {
        let three = DeviceType::from_registers(0, &answer(code, 0x16, 0x0803)).unwrap();
        assert_eq!(
            (three.mppts, three.phases, three.layout_register()),
            (Some(8), Some(3), 0x16),
            "{code:#x}"
        );
    }
    // Off-grid and storage (0x0103, 0x0104) are single-phase layouts.
    assert_eq!(DeviceType::from_registers(0, &answer(0x0104, 0x12, 0x0101)).unwrap().mppts, Some(1));
    // ha-solarman's quirks: an MPPT count above 12 means 2, more than 3 phases means 3, 0 unknown.
    let odd = DeviceType::from_registers(0, &answer(2, 0x12, 0x0F05)).unwrap();
    assert_eq!((odd.mppts, odd.phases), (Some(2), Some(3)));
    let blank = DeviceType::from_registers(0, &answer(2, 0x12, 0)).unwrap();
    assert_eq!((blank.mppts, blank.phases, blank.to_string()), (None, None, "device type 0x0002".into()));
}

#[test]
fn an_answer_without_register_0_or_the_layout_word_is_handled() {
    assert_eq!(DeviceType::from_registers(1, &[3, 4]), Err(DetectError::NoDeviceType));
    let short = DeviceType::from_registers(0, &[0x0500]).unwrap();
    assert_eq!(short, device(0x0500), "no layout word read: no variant facts, still a code");
}

#[test]
fn every_code_of_every_profile_picks_it() {
    let (_dir, profiles) = with(&[
        // Codes no built-in profile claims, so the built-ins keep theirs.
        ("test_p3", family("test_p3", &[0x0F05], 4, true)),
        ("test_micro", family("test_micro", &[0x0F04], 2, false)),
        ("test_string", family("test_string", &[0x0F02], 2, false)),
    ]);
    let mut checked = 0;
    for id in profiles.ids() {
        let profile = profiles.get(id).unwrap();
        for code in &profile.header.device_types {
            assert_eq!(profiles.detect(&device(*code)).unwrap().id(), id, "code {code:#x}");
            checked += 1;
        }
    }
    assert!(checked >= 17, "{checked} codes: 14 built in, 3 here");
    // The sources disagree on 0x0200 (a string inverter, or Sunsynk's 16 kW single-phase
    // hybrid): no guess, the owner names the profile.
    assert!(matches!(profiles.detect(&device(0x0200)), Err(DetectError::Unknown { code: 0x0200, .. })));
    for (code, id) in
        [(5, "deye_sg04lp3"), (0x0601, "deye_sg01hp3"), (0x0400, "deye_micro"), (2, "deye_string")]
    {
        assert_eq!(profiles.detect(&device(code)).unwrap().id(), id, "code {code:#x}");
    }
    assert_eq!(profiles.detect(&device(0x0103)).unwrap().id(), "deye_sg01lp1", "off-grid: the LP1 map");
    assert_eq!(profiles.detect(&device(0x0104)).unwrap().id(), "deye_sg01lp1", "storage: the LP1 map");
    assert_eq!(profiles.detect(&device(3)).unwrap().id(), "deye_sg01lp1");
    assert_eq!(profiles.detect(&device(0x0300)).unwrap().id(), "deye_sg01lp1");
    assert!(profiles.conflicts().is_empty());
}

#[test]
fn an_unknown_code_names_itself_and_the_profiles_that_exist() {
    let (_dir, profiles) = with(&[("test_p3", family("test_p3", &[0x0F05], 4, true))]);
    let err = profiles.detect(&device(0x0999)).unwrap_err().to_string();
    assert!(err.starts_with("device type 0x0999 (2457) is not known to any profile (known: "), "{err}");
    for known in
        ["deye_sg01lp1 (0x0003, 0x0300, 0x0103, 0x0104)", "deye_sg04lp3 (0x0005, 0x0500)", "test_p3 (0x0f05)"]
    {
        assert!(err.contains(known), "{err}");
    }
    assert!(
        err.ends_with("); name the profile with `profile = \"...\"` or add one to profiles_dir"),
        "{err}"
    );
    let builtin = Profiles::builtin().unwrap();
    assert!(matches!(builtin.detect(&device(0)), Err(DetectError::Unknown { code: 0, .. })));
}

#[test]
fn variants_of_one_code_are_told_apart_by_mppts_and_phases() {
    let (_dir, profiles) = with(&[
        ("test_hv_4pv", family("test_hv_4pv", &[0x0F06], 4, true)),
        ("test_hv_8pv", family("test_hv_8pv", &[0x0F06], 8, true)),
        ("test_hv_1ph", family("test_hv_1ph", &[0x0F06], 2, false)),
    ]);
    let pick = |mppts, phases| {
        let device = DeviceType { code: 0x0F06, mppts, phases };
        profiles.detect(&device).map(|p| p.id().to_string())
    };
    assert_eq!(pick(Some(2), Some(3)).unwrap(), "test_hv_4pv", "the closest with enough inputs");
    assert_eq!(pick(Some(4), Some(3)).unwrap(), "test_hv_4pv");
    assert_eq!(pick(Some(8), Some(3)).unwrap(), "test_hv_8pv", "8 PV inputs on the SUN-80K");
    assert_eq!(pick(Some(2), Some(1)).unwrap(), "test_hv_1ph", "phases first");
    assert_eq!(pick(Some(12), Some(3)).unwrap(), "test_hv_8pv", "too few inputs everywhere: the most");
    assert_eq!(pick(None, None).unwrap(), "test_hv_1ph", "no facts: the fewest inputs");
}

#[test]
fn two_profiles_of_the_same_shape_for_one_code_are_a_conflict() {
    let (_dir, profiles) = with(&[
        ("test_a", family("test_a", &[0x0F02], 2, false)),
        ("test_b", family("test_b", &[0x0F03, 0x0F02], 2, false)),
    ]);
    let err = profiles.detect(&device(0x0F02)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "device type 0x0f02 (3842) fits test_a, test_b equally; name one with `profile = \"...\"`"
    );
    assert_eq!(profiles.detect(&device(0x0F03)).unwrap().id(), "test_b", "only one claims 0x0f03");
    assert_eq!(profiles.conflicts(), vec![(0x0F02, vec!["test_a".to_string(), "test_b".to_string()])]);
    assert!(Profiles::builtin().unwrap().conflicts().is_empty(), "the built-ins claim distinct codes");
}

#[test]
fn a_choice_describes_itself() {
    let device = DeviceType { code: 0x0300, mppts: Some(2), phases: Some(1) };
    let detected = Choice { profile: "deye_sg01lp1".into(), detected: true, device: Some(device) };
    assert_eq!(detected.describe(), "deye_sg01lp1, detected from device type 0x0300 (2 MPPT, 1 phase)");
    let named = Choice { profile: "deye_sg01lp1".into(), detected: false, device: None };
    assert_eq!(named.describe(), "deye_sg01lp1, as configured");
    let sg01 = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    assert_eq!((pv_inputs(&sg01), phases(&sg01)), (4, 1));
}
