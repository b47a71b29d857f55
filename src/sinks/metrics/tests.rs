use super::*;

#[test]
fn units_map_to_prometheus_base_units() {
    assert_eq!(base_unit("W"), Some("watts"));
    assert_eq!(base_unit("kWh"), Some("kilowatt_hours"));
    assert_eq!(base_unit("°C"), Some("celsius"));
    assert_eq!(base_unit("furlong"), None);
}

#[test]
fn names_stay_clear_of_reserved_suffixes() {
    assert_eq!(metric_name("mppt_count", "", false), "inverter_mppt_count_value");
    assert_eq!(metric_name("pv_energy", "_kilowatt_hours", true), "inverter_pv_energy_kilowatt_hours");
    assert_eq!(metric_name("lifetime_total", "", false), "inverter_lifetime_total_value");
    assert_eq!(metric_name("battery_soc", "_percent", false), "inverter_battery_soc_percent");
}

#[test]
fn before_the_first_poll_the_serial_label_follows_the_identity_rule() {
    // A Modbus TCP gateway has no logger serial (0): the label is the name, never a `0` that two
    // such inverters would share; a Solarman logger's serial labels it as the identity would.
    let mut gateway = crate::config::InverterConfig::new("garage", "127.0.0.1", 502, 1);
    gateway.serial = None;
    let logger = crate::config::InverterConfig::new("house", "127.0.0.1", 8899, 2_712_345_678);
    let config = crate::config::Config::new(vec![gateway, logger]);
    let text = Metrics::new(Statuses::new(&config), ScrapeSources::default()).render();
    assert!(text.contains(r#"inverter_monitor_up{inverter="garage",serial="garage"} 0"#), "{text}");
    assert!(text.contains(r#"inverter_monitor_up{inverter="house",serial="2712345678"} 0"#), "{text}");
}

#[test]
fn writes_are_counted_by_inverter_key_and_outcome() {
    use crate::writes::{Outcome, WriteCounters, WriteResult};
    let config =
        crate::config::Config::new(vec![crate::config::InverterConfig::new("house", "127.0.0.1", 8899, 1)]);
    let counters = WriteCounters::default();
    let result = |key: &str, outcome| WriteResult {
        inverter: "house".into(),
        key: key.into(),
        value: "1".into(),
        outcome,
        reason: None,
        old: None,
        read_back: None,
    };
    counters.count(&result("max_sell_power", Outcome::Written));
    counters.count(&result("max_sell_power", Outcome::Written));
    counters.count(&result("work_mode", Outcome::Refused));
    let sources = ScrapeSources { writes: Some(counters), ..ScrapeSources::default() };
    let text = Metrics::new(Statuses::new(&config), sources).render();
    let written =
        r#"inverter_monitor_writes_total{inverter="house",key="max_sell_power",outcome="written"} 2.0"#;
    assert!(text.contains(written), "{text}");
    let refused = r#"inverter_monitor_writes_total{inverter="house",key="work_mode",outcome="refused"} 1.0"#;
    assert!(text.contains(refused), "{text}");
    assert!(text.contains("# TYPE inverter_monitor_writes_total counter"), "{text}");
}
