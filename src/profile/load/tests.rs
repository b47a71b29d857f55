use super::*;

const HEADER: &str = "[profile]\nid = \"t\"\nmanufacturer = \"Deye\"\nmodel = \"M\"\n";

fn profile(readings: &str) -> Result<Profile, ProfileError> {
    parse(&format!("{HEADER}{readings}"), "t.toml", Some("t"))
}

fn reason(readings: &str) -> String {
    profile(readings).unwrap_err().to_string()
}

#[test]
fn builtin_profiles_load_and_are_large_enough() {
    let profiles = Profiles::builtin().unwrap();
    let sg01 = profiles.get("deye_sg01lp1").unwrap();
    assert!(sg01.readings.len() >= 80, "{} readings", sg01.readings.len());
    assert_eq!(sg01.zero_poll.len(), 2);
}

#[test]
fn sg01lp1_needs_no_more_reads_than_its_contiguous_ranges() {
    let sg01 = Profiles::builtin().unwrap().get("deye_sg01lp1").unwrap();
    let plan = sg01.plan();
    let runs = crate::profile::plan::contiguous_runs(sg01.addresses());
    assert!(plan.len() <= runs.len(), "{} reads for {} runs", plan.len(), runs.len());
    assert!(plan.iter().all(|b| b.count <= 125));
    // Bridging gaps is what makes it few: the whole map fits in a handful of reads.
    assert!(plan.len() <= 4, "plan: {plan:?}");
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    // Built from the ids, so adding a built-in profile does not touch this test.
    let profiles = Profiles::builtin().unwrap();
    let err = profiles.get("nope").unwrap_err().to_string();
    let known = profiles.ids().collect::<Vec<_>>().join(", ");
    assert!(known.contains("deye_sg01lp1"), "{known}");
    assert_eq!(err, format!("unknown profile `nope` (known: {known})"));
}

#[test]
fn a_valid_minimal_profile_loads() {
    let p = profile("[[reading]]\nkey = \"soc\"\nname = \"SOC\"\ngroup = \"battery\"\nregisters = [184]\nkind = \"u16\"\nunit = \"%\"\ndevice_class = \"battery\"\nstate_class = \"measurement\"\n").unwrap();
    assert_eq!(p.readings[0].def.key, "soc");
    assert_eq!(p.readings[0].decimals, 0);
}

#[test]
fn errors_name_the_file_and_the_reading() {
    let r = "[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\n";
    assert_eq!(
        reason(&format!("{r}registers = [1]\nkind = \"u32\"\n")),
        "t.toml: reading `x`: kind U32 takes 2 register(s), got 1"
    );
    assert_eq!(
        reason(&format!("{r}registers = [1, 2]\nkind = \"u32\"\n")),
        "t.toml: reading `x`: a 32-bit kind needs word_order (low_first or high_first)"
    );
    assert_eq!(
        reason(&format!("{r}registers = [1]\nkind = \"u16\"\nunit = \"W\"\ndevice_class = \"energy\"\n")),
        "t.toml: reading `x`: device_class `energy` needs a unit of [\"Wh\", \"kWh\"], got `W`"
    );
    assert_eq!(
        reason(&format!("{r}registers = [1]\nkind = \"u16\"\nbit = 16\n")),
        "t.toml: reading `x`: bit 16 is beyond the 16 bits of its registers"
    );
    assert_eq!(
        reason(&format!(
            "{r}registers = [1]\nkind = \"u16\"\nenum = {{ a = \"A\" }}\ndevice_class = \"enum\"\n"
        )),
        "t.toml: reading `x`: enum key `a` is not an integer"
    );
    assert_eq!(
        reason(&format!("{r}registers = [1]\nkind = \"u16\"\nmin = 5\nmax = 1\n")),
        "t.toml: reading `x`: min 5 is above max 1"
    );
    assert_eq!(
        reason(&format!("{r}registers = [1]\nkind = \"u16\"\ncounter = \"total\"\n")),
        "t.toml: reading `x`: a counter needs state_class total_increasing"
    );
    let twice = format!("{r}registers = [1]\nkind = \"u16\"\n");
    assert_eq!(reason(&format!("{twice}{twice}")), "t.toml: reading `x`: the key is used twice");
}

#[test]
fn unknown_keys_and_bad_toml_name_the_line() {
    let err = reason(
        "[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\nregisters = [1]\nkind = \"u16\"\nscael = 2\n",
    );
    assert!(err.starts_with("t.toml: "), "{err}");
    assert!(err.contains("scael"), "{err}");
    let err =
        reason("[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\nregisters = [1]\nkind = \"u17\"\n");
    assert!(err.contains("u17") && err.contains("line"), "{err}");
}

#[test]
fn header_errors_name_the_header() {
    let one = "[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\nregisters = [1]\nkind = \"u16\"\n";
    let text = format!("{}{one}", HEADER.replace("id = \"t\"", "id = \"other\""));
    let err = parse(&text, "t.toml", Some("t")).unwrap_err();
    assert_eq!(err.to_string(), "t.toml: [profile]: id `other` must equal the file name `t`");
    assert_eq!(profile("").unwrap_err().to_string(), "t.toml: [profile]: the profile has no [[reading]]");
}

#[test]
fn a_directory_profile_replaces_the_builtin_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[[reading]]\nkey = \"soc\"\nname = \"SOC\"\ngroup = \"battery\"\nregisters = [184]\nkind = \"u16\"\n",
        HEADER.replace("id = \"t\"", "id = \"deye_sg01lp1\"")
    );
    std::fs::write(dir.path().join("deye_sg01lp1.toml"), text).unwrap();
    let profiles = Profiles::with_dir(dir.path()).unwrap();
    assert_eq!(profiles.get("deye_sg01lp1").unwrap().readings.len(), 1);
    std::fs::write(dir.path().join("broken.toml"), "[profile]\n").unwrap();
    let err = Profiles::with_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("broken.toml"), "{err}");
}

/// A header with `pack_count` naming reading `count`, and that reading.
fn with_packs(header_extra: &str, readings: &str) -> Result<Profile, ProfileError> {
    let count = "[[reading]]\nkey = \"count\"\nname = \"Packs\"\ngroup = \"bms\"\nregisters = [10002]\nkind = \"u16\"\n";
    parse(&format!("{HEADER}{header_extra}{count}{readings}"), "t.toml", Some("t"))
}

const PACK1: &str = "[[reading]]\nkey = \"p1_v\"\nname = \"V\"\ngroup = \"bms\"\nregisters = [10040]\nkind = \"u16\"\npack = 1\n";

#[test]
fn pack_readings_need_a_pack_count_reading_of_no_pack() {
    let p = with_packs("pack_count = \"count\"\n", PACK1).unwrap();
    assert_eq!(p.readings[1].def.pack, Some(1));
    let err = |extra: &str, readings: &str| with_packs(extra, readings).unwrap_err().to_string();
    assert_eq!(
        err("", PACK1),
        "t.toml: reading `p1_v`: `pack` needs `pack_count` in [profile], the reading of the pack count"
    );
    assert_eq!(
        err("pack_count = \"nope\"\n", PACK1),
        "t.toml: [profile]: pack_count names `nope`, which is not a reading"
    );
    assert_eq!(
        err("pack_count = \"p1_v\"\n", PACK1),
        "t.toml: [profile]: pack_count names `p1_v`: it must be a numeric register reading of no pack"
    );
    assert_eq!(
        err("pack_count = \"count\"\n", &PACK1.replace("pack = 1", "pack = 0")),
        "t.toml: reading `p1_v`: pack counts from 1"
    );
    assert_eq!(
        err("pack_count = \"count\"\nzero_poll = [\"p1_v\"]\n", PACK1),
        "t.toml: [profile]: `p1_v` is a pack reading; the header names readings always read"
    );
}

#[test]
fn nothing_always_read_may_lean_on_a_pack_reading() {
    let sum =
        "[[reading]]\nkey = \"total\"\nname = \"T\"\ngroup = \"bms\"\nkind = \"sum\"\nof = [\"p1_v\"]\n";
    let err = with_packs("pack_count = \"count\"\n", &format!("{PACK1}{sum}")).unwrap_err().to_string();
    assert_eq!(
        err,
        "t.toml: reading `total`: reads another pack's reading (in `of` or `scale_when`): give it the same `pack`"
    );
    // The same sum as a reading of pack 1 is fine.
    with_packs("pack_count = \"count\"\n", &format!("{PACK1}{sum}pack = 1\n")).unwrap();
}

#[test]
fn writes_are_checked_against_the_reading() {
    let r = "[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\nkind = \"u16\"\n";
    let ok = |extra: &str| profile(&format!("{r}{extra}")).map(|p| p.readings[0].def.write_form());
    assert_eq!(
        ok("registers = [1]\nmin = 0\nmax = 100\nwrite = { min = 0, max = 50, step = 5 }\n").unwrap(),
        Some(crate::profile::WriteForm::Number)
    );
    assert_eq!(
        ok("registers = [1]\nbit = 3\nwrite = {}\n").unwrap(),
        Some(crate::profile::WriteForm::Switch)
    );
    assert_eq!(
        ok("registers = [1]\nwrite = { time = true }\n").unwrap(),
        Some(crate::profile::WriteForm::Time)
    );
    let enum_ = "registers = [1]\nmask = 0x3\ndevice_class = \"enum\"\nenum = { 0 = \"A\", 1 = \"B\" }\n";
    assert_eq!(ok(&format!("{enum_}write = {{}}\n")).unwrap(), Some(crate::profile::WriteForm::Select));
    assert_eq!(ok("registers = [1]\n").unwrap(), None);

    let err = |extra: &str| reason(&format!("{r}{extra}"));
    assert!(
        err("registers = [1]\nmin = 0\nmax = 100\nwrite = { min = 0, max = 200 }\n")
            .contains("inside the reading's")
    );
    assert!(err("registers = [1]\nwrite = {}\n").contains("needs min and max"));
    assert!(err("registers = [1]\nwrite = { min = 5, max = 1 }\n").contains("at most max"));
    assert!(
        err("registers = [1]\nwrite = { min = 0, max = 9, step = 0 }\n").contains("step must be positive")
    );
    assert!(err("registers = [1]\nbit = 0\nwrite = { min = 0, max = 1 }\n").contains("write = {}"));
    assert!(err(&format!("{enum_}write = {{ time = true }}\n")).contains("write = {}"));
    assert!(err("registers = [1]\nscale = 0.1\nwrite = { time = true }\n").contains("HHMM"));
    assert!(err("registers = [1]\nwrite = { limit = 3 }\n").contains("unknown field"));
    let split = "[[reading]]\nkey = \"x\"\nname = \"X\"\ngroup = \"g\"\nkind = \"u32\"\nword_order = \"low_first\"\nregisters = [1, 3]\nwrite = { min = 0, max = 9 }\n";
    assert!(reason(split).contains("consecutive registers"), "{}", reason(split));
    let shared = "[[reading]]\nkey = \"flag\"\nname = \"F\"\ngroup = \"g\"\nkind = \"u16\"\nregisters = [1]\nbit = 4\n";
    let whole = format!("{shared}{r}registers = [1]\nwrite = {{ min = 0, max = 9 }}\n");
    assert!(
        reason(&whole).contains("reading `x`: write: reading `flag` shares its register"),
        "{}",
        reason(&whole)
    );
}

#[test]
fn a_logger_that_sleeps_at_night_belongs_to_a_pv_only_family_with_pv_power() {
    let sleeps = |readings: &str| {
        parse(&format!("{HEADER}logger_sleeps_at_night = true\n{readings}"), "t.toml", Some("t"))
            .map(|p| p.header.logger_sleeps_at_night)
            .map_err(|e| e.to_string())
    };
    let pv = "[[reading]]\nkey = \"pv_power\"\nname = \"PV\"\ngroup = \"pv\"\nregisters = [1]\nkind = \"u16\"\nunit = \"W\"\ndevice_class = \"power\"\nstate_class = \"measurement\"\n";
    let soc = "[[reading]]\nkey = \"battery_soc\"\nname = \"SOC\"\ngroup = \"battery\"\nregisters = [2]\nkind = \"u16\"\n";
    let volts = "[[reading]]\nkey = \"v\"\nname = \"V\"\ngroup = \"pv\"\nregisters = [3]\nkind = \"u16\"\n";
    assert_eq!(sleeps(pv), Ok(true));
    assert!(sleeps(&format!("{pv}{soc}")).unwrap_err().contains("keeps its logger up"));
    assert!(sleeps(volts).unwrap_err().contains("needs a power reading"));
    let builtin = Profiles::builtin().unwrap();
    let flag = |id: &str| builtin.get(id).unwrap().header.logger_sleeps_at_night;
    assert!(flag("deye_micro") && flag("deye_string"), "the PV-only families");
    assert!(!flag("deye_sg01lp1") && !flag("deye_sg04lp3") && !flag("deye_sg01hp3"), "a battery keeps it up");
}
