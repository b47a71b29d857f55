use std::collections::HashMap;
use std::path::Path;

use super::*;

const GOOD: &str = r#"
[[inverter]]
name = "house"
host = "192.168.1.50"
serial = 2712345678
interval = "30s"
"#;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inverter-monitor.toml");
    std::fs::write(&path, text).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(&path, &env).map_err(|e| {
        // Keep messages stable across temp dirs.
        let text = e.to_string().replace(&path.display().to_string(), "FILE");
        ConfigError::Invalid { file: String::new(), key: String::new(), reason: text }
    })
}

fn message(text: &str, env: &[(&str, &str)]) -> String {
    match load(text, env).unwrap_err() {
        ConfigError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    }
}

#[test]
fn a_minimal_file_gets_defaults() {
    let config = load(GOOD, &[]).unwrap();
    let inverter = &config.inverters[0];
    assert_eq!(inverter.interval, Duration::from_secs(30));
    assert_eq!(inverter.profile, "auto", "the family is detected unless named");
    let target = inverter.target();
    let auto = Wire::Auto { serial: Some(2_712_345_678) };
    assert_eq!((target.port, target.wire, target.slave), (8899, auto, 1), "the protocol is found out");
    assert_eq!(inverter.link_settings().pause, Duration::from_millis(100));
    assert_eq!(config.log.level, "info");
}

#[test]
fn environment_overrides_the_file_including_list_items() {
    let config = load(
        GOOD,
        &[
            ("INVERTER_MONITOR__INVERTER__0__HOST", "10.0.0.9"),
            ("INVERTER_MONITOR__INVERTER__0__INTERVAL", "2m"),
            ("INVERTER_MONITOR__LOG__LEVEL", "debug"),
            ("UNRELATED", "x"),
        ],
    )
    .unwrap();
    assert_eq!(config.inverters[0].host, "10.0.0.9");
    assert_eq!(config.inverters[0].interval, Duration::from_secs(120));
    assert_eq!(config.log.level, "debug");
}

#[test]
fn a_solarman_logger_without_a_serial_gets_it_learned() {
    for serial in ["", "serial = 0\n"] {
        let text = format!("[[inverter]]\nname = \"house\"\nhost = \"h\"\nprotocol = \"solarman\"\n{serial}");
        let config = load(&text, &[]).unwrap();
        assert_eq!(config.inverters[0].target().wire, Wire::Solarman { serial: 0 });
    }
}

#[test]
fn modbus_tcp_needs_no_serial_and_defaults_to_port_502() {
    let config =
        load("[[inverter]]\nname = \"lse\"\nhost = \"h\"\nprotocol = \"modbus-tcp\"\n", &[]).unwrap();
    assert_eq!(config.inverters[0].target().port, 502);
}

#[test]
fn errors_name_the_file_and_the_key() {
    // The known ids come from the built-in list, so a new built-in profile leaves this test be.
    let known = crate::profile::Profiles::builtin().unwrap().ids().collect::<Vec<_>>().join(", ");
    assert_eq!(
        message(&format!("{GOOD}profile = \"deye_nope\"\n"), &[]),
        format!("FILE: inverter[0].profile: unknown profile `deye_nope` (known: {known})")
    );
    assert_eq!(
        message(&format!("{GOOD}{}", GOOD.replace("192.168.1.50", "h2")), &[]),
        "FILE: inverter[1].name: `house` is used by another inverter"
    );
    assert_eq!(message("", &[]), "FILE: inverter: no [[inverter]] is configured");
    assert_eq!(
        message(&GOOD.replace("\"house\"", "\"my house\""), &[]),
        "FILE: inverter[0].name: `my house` must be non-empty letters, digits, `_` or `-` (it becomes part of MQTT topics)"
    );
}

/// A profile `id` in `dir` claiming device type 3 with four PV inputs, single-phase: the same
/// shape as deye_sg01lp1.
fn lp1_lookalike(dir: &Path, id: &str) {
    let readings: String = (1..=4)
        .map(|n| format!("[[reading]]\nkey = \"pv{n}_power\"\nname = \"PV{n}\"\ngroup = \"pv\"\nregisters = [{}]\nkind = \"u16\"\n", 185 + n))
        .collect();
    let text = format!(
        "[profile]\nid = \"{id}\"\nmanufacturer = \"Deye\"\nmodel = \"M\"\ndevice_types = [3]\n{readings}"
    );
    std::fs::write(dir.join(format!("{id}.toml")), text).unwrap();
}

#[test]
fn auto_needs_each_device_type_to_pick_one_profile_a_named_profile_does_not() {
    let dir = tempfile::tempdir().unwrap();
    lp1_lookalike(dir.path(), "my_lp1");
    let with_dir = format!("profiles_dir = {:?}\n{GOOD}", dir.path().display().to_string());
    assert_eq!(
        message(&with_dir, &[]),
        "FILE: inverter[0].profile: \"auto\" cannot choose: 0x0003 is claimed by deye_sg01lp1 and my_lp1; \
         name the profile, or give the profiles different device_types"
    );
    assert!(load(&format!("{with_dir}profile = \"my_lp1\"\n"), &[]).is_ok());
    assert!(load(&format!("{with_dir}profile = \"deye_sg01lp1\"\n"), &[]).is_ok());
}

#[test]
fn an_inverter_may_not_take_the_name_of_a_service_device() {
    for name in ["weather", "control"] {
        assert_eq!(
            message(&GOOD.replace("\"house\"", &format!("\"{name}\"")), &[]),
            format!(
                "FILE: inverter[0].name: `{name}` is reserved: the service's own {name} device publishes on `<base_topic>/{name}/…`"
            )
        );
    }
    assert!(load(&GOOD.replace("\"house\"", "\"Weather\""), &[]).is_ok(), "topics are case-sensitive");
}

#[test]
fn type_errors_name_the_key() {
    let text = message(&GOOD.replace("2712345678", "\"abc\""), &[]);
    assert!(text.starts_with("FILE: ") && text.contains("serial"), "{text}");
    let text = message(&GOOD.replace("\"30s\"", "\"soon\""), &[]);
    assert!(text.contains("interval"), "{text}");
    let text = message(&format!("{GOOD}colour = \"red\"\n"), &[]);
    assert!(text.contains("colour"), "{text}");
    let text = message(&GOOD.replace("2712345678", "-5"), &[]);
    assert!(text.contains("inverter[0].serial"), "{text}");
    assert_eq!(
        message(&format!("[log]\nlevel = \"loud=verbose=x\"\n{GOOD}"), &[])
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["FILE", " log.level"]
    );
}

#[test]
fn tls_files_need_tls_and_come_in_pairs() {
    let cert = tempfile::NamedTempFile::new().unwrap();
    let path = cert.path().display();
    let mqtt = |keys: &str| format!("{GOOD}[mqtt]\n{keys}");
    assert_eq!(
        message(&mqtt(&format!("ca_file = \"{path}\"\n")), &[]),
        "FILE: mqtt.ca_file: applies with tls = true only"
    );
    assert_eq!(
        message(&mqtt(&format!("tls = true\nclient_cert = \"{path}\"\n")), &[]),
        "FILE: mqtt.client_key: client_cert and client_key go together"
    );
    assert_eq!(
        message(&mqtt("tls = true\nca_file = \"/nope.pem\"\n"), &[]),
        "FILE: mqtt.ca_file: /nope.pem cannot be read"
    );
    assert!(load(&mqtt(&format!("tls = true\nca_file = \"{path}\"\n")), &[]).is_ok());
}

#[test]
fn a_bad_sentry_dsn_is_a_config_error_not_a_crash() {
    let text = message(&format!("{GOOD}[sentry]\ndsn = \"not a dsn\"\n"), &[]);
    assert!(text.starts_with("FILE: sentry.dsn: not a Sentry DSN"), "{text}");
    assert!(!text.contains("not a dsn"), "the DSN is a secret and is not echoed: {text}");
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/inverter-monitor.toml");
    let config = Config::load(&path, &HashMap::new()).unwrap();
    assert!(!config.inverters.is_empty());
}

#[test]
fn sentry_and_ping_secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let dsn = dir.path().join("dsn");
    let ping = dir.path().join("ping");
    std::fs::write(&dsn, "https://key@sentry.example/1\n").unwrap();
    std::fs::write(&ping, "https://hc.example/uuid\n").unwrap();
    let text = format!(
        "{GOOD}[sentry]\ndsn_file = \"{}\"\n[healthcheck]\nping_url_file = \"{}\"\n",
        dsn.display(),
        ping.display()
    );
    let config = load(&text, &[]).unwrap();
    assert_eq!(config.sentry.dsn.unwrap().expose(), "https://key@sentry.example/1");
    assert_eq!(config.health_pings.unwrap().ping_url.expose(), "https://hc.example/uuid");
    assert_eq!(
        message(&format!("{GOOD}[healthcheck]\nmin_interval = \"5m\"\n"), &[]),
        "FILE: healthcheck.ping_url: missing: set ping_url or ping_url_file"
    );
    let text = message(&format!("{GOOD}[sentry]\ndsn_file = \"/nope/dsn\"\n"), &[]);
    assert!(text.starts_with("FILE: sentry.dsn_file: cannot be read"), "{text}");
}

#[test]
fn weather_defaults_to_open_meteo_every_ten_minutes_facing_the_equator() {
    let config = load(&format!("{GOOD}[weather]\nlatitude = -34.05\nlongitude = 18.85\n"), &[]).unwrap();
    let weather = config.weather.unwrap();
    assert_eq!(weather.provider, WeatherProvider::OpenMeteo);
    assert_eq!(weather.interval, Duration::from_secs(600));
    assert_eq!(weather.timeout, Duration::from_secs(10));
    assert_eq!(weather.base_url(), "https://api.open-meteo.com");
    assert_eq!((weather.pv_peak_power, weather.pv_tilt, weather.pv_efficiency), (None, 30.0, 0.85));
    assert_eq!(weather.pv_azimuth(), 0.0, "north in the southern hemisphere");
    let north: WeatherConfig = toml::from_str("latitude = 52.5\nlongitude = 13.4").unwrap();
    assert_eq!(north.pv_azimuth(), 180.0, "south in the northern hemisphere");
}

#[test]
fn weather_errors_name_the_key() {
    let weather = |keys: &str| message(&format!("{GOOD}[weather]\n{keys}\n"), &[]);
    assert_eq!(weather("latitude = -95\nlongitude = 18"), "FILE: weather.latitude: -95 is outside -90..=90");
    assert_eq!(
        weather("latitude = 0\nlongitude = 181"),
        "FILE: weather.longitude: 181 is outside -180..=180"
    );
    assert_eq!(
        weather("latitude = 0\nlongitude = 0\ninterval = \"30s\""),
        "FILE: weather.interval: 30s is too short; at least 1m"
    );
    assert_eq!(
        weather("provider = \"openweather\"\nlatitude = 0\nlongitude = 0"),
        "FILE: weather.api_key: is required for provider = \"openweather\" (or api_key_file)"
    );
    assert_eq!(
        weather("latitude = 0\nlongitude = 0\napi_key_file = \"/nonexistent/key\""),
        "FILE: weather.api_key_file: cannot be read"
    );
    assert_eq!(
        weather("latitude = 0\nlongitude = 0\npv_peak_power = 0"),
        "FILE: weather.pv_peak_power: must be more than 0 W (kWp × 1000)"
    );
    assert_eq!(
        weather("latitude = 0\nlongitude = 0\npv_tilt = 95"),
        "FILE: weather.pv_tilt: 95 is outside 0..=90 degrees"
    );
    assert_eq!(
        weather("latitude = 0\nlongitude = 0\nurl = \"ftp://x\""),
        "FILE: weather.url: `ftp://x` must start with http:// or https://"
    );
    let text = weather("latitude = 0\nlongitude = 0\nprovider = \"accuweather\"");
    assert!(text.contains("weather.provider") || text.contains("accuweather"), "{text}");
    let text = weather("latitude = 0\nlongitude = 0\nlat = 1");
    assert!(text.contains("lat"), "unknown keys are refused: {text}");
}

#[test]
fn the_weather_key_file_wins_and_the_key_never_prints() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "from-file\n").unwrap();
    let text = format!(
        "{GOOD}[weather]\nprovider = \"openweather\"\nlatitude = 0\nlongitude = 0\napi_key = \"inline-key\"\napi_key_file = {:?}\n",
        file.display().to_string()
    );
    let weather = load(&text, &[]).unwrap().weather.unwrap();
    assert_eq!(weather.api_key().unwrap().unwrap().expose(), "from-file");
    assert!(!format!("{weather:?}").contains("inline-key"));
    let env = [("INVERTER_MONITOR__WEATHER__LATITUDE", "-33.9")];
    let overridden = load(&format!("{GOOD}[weather]\nlatitude = 0\nlongitude = 0\n"), &env).unwrap();
    assert_eq!(overridden.weather.unwrap().latitude, -33.9);
}

const STACK: &str = r#"
[[inverter]]
name = "master"
host = "192.168.1.50"
serial = 2712345678

[[inverter]]
name = "second"
host = "192.168.1.50"
port = 8899
serial = 2712345678
slave_id = 2

[[inverter]]
name = "garage"
host = "192.168.1.51"
serial = 2799999999
"#;

#[test]
fn inverters_at_one_address_form_a_stack_whose_first_is_master() {
    let config = load(STACK, &[]).unwrap();
    assert_eq!(config.stacks(), [vec![0, 1], vec![2]], "the default port and 8899 are one address");
    let [master, second, garage] = &config.inverters[..] else { panic!() };
    assert!(master.shows_settings(true) && !second.shows_settings(false) && garage.shows_settings(true));
    let mut forced = second.clone();
    forced.settings = Some(true);
    assert!(forced.shows_settings(false), "`settings = true` wins");
}

#[test]
fn a_stack_must_agree_on_its_connection_and_tell_its_inverters_apart() {
    let same_slave = STACK.replace("slave_id = 2", "slave_id = 1");
    let reason = message(&same_slave, &[]);
    assert!(reason.contains("inverter[1].slave_id: 1 is inverter[0]'s slave id too"), "{reason}");
    let other_serial = STACK.replacen("serial = 2712345678\nslave_id", "serial = 2712345679\nslave_id", 1);
    let reason = message(&other_serial, &[]);
    assert!(
        reason.contains(
            "inverter[1].serial: differs from inverter[0] (`master`), which is on 192.168.1.50:8899 too"
        ),
        "{reason}"
    );
    let other_timing = STACK.replace("slave_id = 2", "slave_id = 2\nread_timeout = \"9s\"");
    assert!(message(&other_timing, &[]).contains("inverter[1].read_timeout: differs"));
}

#[test]
fn loggers_with_their_own_serials_behind_one_port_are_a_fleet_not_a_stack() {
    let fleet = STACK.replacen("serial = 2712345678\nslave_id = 2", "serial = 2712345679", 1);
    let config = load(&fleet, &[]).unwrap();
    assert_eq!(config.stacks(), [vec![0], vec![1], vec![2]], "each logger its own connection");
    let same_serial = STACK.replacen("slave_id = 2", "", 1);
    assert!(
        message(&same_serial, &[]).contains("slave id too"),
        "one serial, one slave id: a stack's mistake"
    );
}

#[test]
fn rtu_over_tcp_needs_its_port_named_because_gateways_have_no_standard_one() {
    let text = "[[inverter]]\nname = \"ew11\"\nhost = \"192.168.1.70\"\nprotocol = \"rtu-over-tcp\"\n";
    assert_eq!(
        message(text, &[]),
        "FILE: inverter[0].port: missing: the RS485 gateway's TCP port (often 502, 8899 or 4196; see its web page)"
    );
    let target = load(&format!("{text}port = 8899\n"), &[]).unwrap().inverters[0].target();
    assert_eq!(
        (target.addr(), target.wire, target.port),
        ("192.168.1.70:8899".into(), Wire::RtuOverTcp, 8899)
    );
}

#[test]
fn serial_needs_a_device_and_no_host_and_defaults_to_9600_8n1() {
    let text = "[[inverter]]\nname = \"usb\"\nprotocol = \"serial\"\n";
    assert_eq!(
        message(text, &[]),
        "FILE: inverter[0].device: missing: the serial port of the RS485 adapter, e.g. /dev/ttyUSB0"
    );
    let config = load(&format!("{text}device = \"/dev/ttyUSB0\"\n"), &[]).unwrap();
    let target = config.inverters[0].target();
    let line = SerialLine { device: "/dev/ttyUSB0".into(), baud: 9600, parity: Parity::None, stop_bits: 1 };
    assert_eq!((target.addr(), target.wire), ("/dev/ttyUSB0".into(), Wire::Serial(line)));
    let config = load(
        &format!("{text}device = \"/dev/ttyACM0\"\nbaud = 19200\nparity = \"even\"\nstop_bits = 2\n"),
        &[("INVERTER_MONITOR__INVERTER__0__BAUD", "38400")],
    )
    .unwrap();
    let line = config.inverters[0].serial_line();
    assert_eq!((line.baud, line.parity, line.stop_bits), (38400, Parity::Even, 2));
}

#[test]
fn serial_line_settings_are_checked_and_named() {
    let text = "[[inverter]]\nname = \"usb\"\nprotocol = \"serial\"\ndevice = \"/dev/ttyUSB0\"\n";
    assert_eq!(
        message(&format!("{text}baud = 12\n"), &[]),
        "FILE: inverter[0].baud: 12 is outside 300..=4000000 (Deye and Sunsynk use 9600)"
    );
    assert_eq!(
        message(&format!("{text}stop_bits = 3\n"), &[]),
        "FILE: inverter[0].stop_bits: 3 must be 1 or 2"
    );
    assert!(message(&format!("{text}parity = \"mark\"\n"), &[]).contains("parity"));
    // A TCP logger still needs its host.
    assert_eq!(
        message("[[inverter]]\nname = \"x\"\nprotocol = \"modbus-tcp\"\n", &[]),
        "FILE: inverter[0].host: must name the logger's IP or host name"
    );
}

#[test]
fn auto_probes_on_8899_and_tries_v5_only_with_a_serial() {
    let text = "[[inverter]]\nname = \"x\"\nhost = \"h\"\nprotocol = \"auto\"\n";
    let target = load(text, &[]).unwrap().inverters[0].target();
    assert_eq!((target.port, target.wire), (8899, Wire::Auto { serial: None }));
    let target = load(&format!("{text}serial = 5\nport = 502\n"), &[]).unwrap().inverters[0].target();
    assert_eq!((target.port, target.wire), (502, Wire::Auto { serial: Some(5) }));
}

#[test]
fn serial_inverters_stack_by_device_only() {
    let usb = |name: &str, device: &str, slave: u8| {
        format!(
            "[[inverter]]\nname = \"{name}\"\nprotocol = \"serial\"\ndevice = \"{device}\"\nslave_id = {slave}\n"
        )
    };
    let text =
        [usb("a", "/dev/ttyUSB0", 1), usb("b", "/dev/ttyUSB0", 2), usb("c", "/dev/ttyUSB1", 1)].concat();
    assert_eq!(load(&text, &[]).unwrap().stacks(), [vec![0, 1], vec![2]]);
    let clash = [usb("a", "/dev/ttyUSB0", 1), usb("b", "/dev/ttyUSB0", 2), "baud = 19200\n".into()].concat();
    assert!(message(&clash, &[]).contains("inverter[1].baud: differs"), "{}", message(&clash, &[]));
}

#[test]
fn writes_are_off_by_default_and_write_keys_are_checked() {
    let inverter = &load(GOOD, &[]).unwrap().inverters[0];
    assert!(!inverter.writes && inverter.write_keys.is_empty(), "writes are off unless asked for");
    let mqtt = "[mqtt]\nhost = \"broker\"\n";
    let on = format!("{GOOD}writes = true\nprofile = \"deye_sg01lp1\"\n");
    assert!(load(&format!("{on}write_keys = [\"max_sell_power\", \"work_mode\"]\n{mqtt}"), &[]).is_ok());
    let reason = message(&format!("{on}write_keys = [\"max_sell_power\", \"pv1_power\"]\n{mqtt}"), &[]);
    assert!(
        reason
            .contains("inverter[0].write_keys: pv1_power is not a writable reading of profile deye_sg01lp1"),
        "{reason}"
    );
    // With auto the family is not known yet: the poller warns once it is.
    let auto = format!("{GOOD}writes = true\nwrite_keys = [\"pv1_power\"]\n{mqtt}");
    assert!(load(&auto, &[]).is_ok());
    let reason = message(&format!("{GOOD}write_keys = [\"work_mode\"]\n{mqtt}"), &[]);
    assert!(reason.contains("inverter[0].write_keys: write_keys narrows writes, which are off"), "{reason}");
    let reason = message(&on, &[]);
    assert!(reason.contains("inverter[0].writes: writes come from Home Assistant over MQTT"), "{reason}");
}

#[test]
fn in_a_parallel_stack_writes_go_to_the_master_unless_a_member_says_otherwise() {
    let mqtt = "\n[mqtt]\nhost = \"broker\"\n";
    let master = STACK.replacen("serial = 2712345678\n", "serial = 2712345678\nwrites = true\n", 1);
    assert!(load(&format!("{master}{mqtt}"), &[]).is_ok());
    let member = STACK.replacen("slave_id = 2", "slave_id = 2\nwrites = true", 1);
    let reason = message(&format!("{member}{mqtt}"), &[]);
    assert!(
        reason.contains("inverter[1].writes: this inverter's settings follow its stack's master"),
        "{reason}"
    );
    let own = STACK.replacen("slave_id = 2", "slave_id = 2\nwrites = true\nsettings = true", 1);
    assert!(load(&format!("{own}{mqtt}"), &[]).is_ok());
    let clock = STACK.replacen("slave_id = 2", "slave_id = 2\nclock_sync = true", 1);
    let reason = message(&clock, &[]);
    assert!(reason.contains("inverter[1].clock_sync: this inverter's settings follow"), "{reason}");
}

#[test]
fn clock_sync_is_off_by_default_and_needs_a_clock() {
    let inverter = &load(GOOD, &[]).unwrap().inverters[0];
    assert!(!inverter.clock_sync);
    assert_eq!(inverter.clock_drift, Duration::from_secs(30));
    assert!(load(&format!("{GOOD}clock_sync = true\nprofile = \"deye_sg04lp3\"\n"), &[]).is_ok());
    // A profile of four PV powers and no clock.
    let dir = tempfile::tempdir().unwrap();
    lp1_lookalike(dir.path(), "clockless");
    let with_dir = format!("profiles_dir = {:?}\n{GOOD}", dir.path().display().to_string());
    let reason = message(&format!("{with_dir}clock_sync = true\nprofile = \"clockless\"\n"), &[]);
    assert!(
        reason.contains("inverter[0].clock_sync: profile clockless does not map the inverter's clock"),
        "{reason}"
    );
    let reason = message(&format!("{GOOD}clock_drift = \"500ms\"\n"), &[]);
    assert!(reason.contains("inverter[0].clock_drift: 500ms is too short"), "{reason}");
}

#[test]
fn record_rotates_by_default_and_refuses_unknown_keys() {
    let config = load(&format!("{GOOD}\n[record]\npath = \"rec/polls.jsonl\"\n"), &[]).unwrap();
    let record = config.record.unwrap();
    assert_eq!((record.path, record.rotate), (PathBuf::from("rec/polls.jsonl"), true));
    assert!(load(GOOD, &[]).unwrap().record.is_none(), "no [record], no recording");
    let text = message(&format!("{GOOD}\n[record]\npath = \"p\"\nrotation = \"daily\"\n"), &[]);
    assert!(text.contains("rotation"), "{text}");
}

#[test]
fn log_filters_read_levels_and_targets_and_refuse_what_they_cannot_obey() {
    use tracing::Level;
    let enables = |directives: &str, target: &str, level: Level| {
        super::log_filter(directives)
            .unwrap_or_else(|e| panic!("{directives}: {e}"))
            .would_enable(target, &level)
    };
    assert!(enables("debug", "hyper", Level::DEBUG) && !enables("debug", "hyper", Level::TRACE));
    assert!(enables("INFO", "hyper", Level::INFO) && !enables("INFO", "hyper", Level::DEBUG));
    assert!(enables("3", "hyper", Level::INFO) && !enables("3", "hyper", Level::DEBUG), "3 is info");
    assert!(!enables("off", "inverter_monitor", Level::ERROR));
    // A target covers the modules below it; other targets take the bare level.
    let ours = "inverter_monitor=debug,warn";
    assert!(enables(ours, "inverter_monitor::poller", Level::DEBUG));
    assert!(!enables(ours, "hyper", Level::INFO) && enables(ours, "hyper", Level::WARN));
    // A blank item is skipped, not read as the level `error`.
    assert!(enables("debug,", "hyper", Level::DEBUG) && enables(" debug , ,", "hyper", Level::DEBUG));
    for (refused, says) in [
        ("", "names no level"),
        (" , ", "names no level"),
        ("inverter_monitor=", "`inverter_monitor=` names no level"),
        ("[poll_once]=debug", "filters by span or field"),
        ("info,inverter_monitor[poll_once{inverter=house}]=trace", "filters by span or field"),
        ("loud=verbose=x", "too many '='"),
    ] {
        let error = super::log_filter(refused).expect_err(refused);
        assert!(error.contains(says), "{refused}: {error}");
    }
}
