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
