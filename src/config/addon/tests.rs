use std::collections::HashMap;

use super::*;
use crate::config::{Config, InfluxApi, Sources};

const OPTIONS: &str = include_str!("../../../tests/fixtures/addon/options.json");
const SERVICE: &str = include_str!("../../../tests/fixtures/addon/mqtt-service.json");

fn service() -> MqttService {
    parse_service(200, SERVICE).unwrap()
}

fn layers(options: &str, service: Option<&MqttService>) -> AddonLayers {
    let options = prune(serde_json::from_str(options).unwrap()).unwrap_or_else(|| json!({}));
    AddonLayers::new(PathBuf::from("/data/options.json"), options, service, None)
}

/// Loads `layers` over an optional TOML `file` in a temp dir.
fn load(layers: &AddonLayers, file: Option<&str>) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inverter-monitor.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    Config::load_from(Sources { file: &path, addon: Some(layers), env: &HashMap::new() })
}

#[test]
fn options_and_the_supervisor_broker_become_the_config() {
    let config = load(&layers(OPTIONS, Some(&service())), None).unwrap();
    let names: Vec<&str> = config.inverters.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["house", "garage"]);
    assert_eq!(config.inverters[0].interval, Duration::from_secs(30));
    assert_eq!(config.inverters[1].profile, "auto", "an empty option keeps the default");
    assert_eq!(config.inverters[1].target().port, 502);
    let mqtt = config.mqtt.unwrap();
    assert_eq!((mqtt.host.as_str(), mqtt.port, mqtt.tls), ("core-mosquitto", 1883, false));
    assert_eq!(mqtt.username.as_deref(), Some("addons"), "empty user options do not hide the Supervisor's");
    assert_eq!(mqtt.password().unwrap().unwrap().expose(), "Eeghoh7ohK");
    assert_eq!(mqtt.discovery_prefix, "ha", "options refine the Supervisor's broker");
    let influx = config.influxdb.unwrap();
    assert_eq!((influx.api(), influx.database.as_deref()), (InfluxApi::V1Compat, Some("homeassistant")));
    assert_eq!(config.data_dir, PathBuf::from("/data"));
    assert_eq!(config.http.unwrap().listen.port(), INGRESS_PORT);
    assert_eq!(config.log.level, "debug");
    assert!(config.sentry.dsn.is_none() && config.health_pings.is_none(), "empty sections stay off");
}

#[test]
fn a_broker_in_the_options_replaces_the_supervisors() {
    let options = r#"{"inverter": [{"name": "h", "host": "h", "serial": 1}],
                      "mqtt": {"host": "10.0.0.2", "port": 1884, "username": "me"}}"#;
    let config = load(&layers(options, None), None).unwrap();
    let mqtt = config.mqtt.unwrap();
    assert_eq!((mqtt.host.as_str(), mqtt.port, mqtt.password().unwrap()), ("10.0.0.2", 1884, None));
}

#[test]
fn the_toml_file_in_addon_config_sits_between_facts_and_options() {
    let file = "data_dir = \"/elsewhere\"\n[[inverter]]\nname = \"file\"\nhost = \"f\"\nserial = 9\n\
                [influxdb]\ndatabase = \"db\"\ntags = { site = \"home\" }\n";
    let without_inverters = r#"{"inverter": [], "influxdb": {"measurement": "solar"}}"#;
    let config = load(&layers(without_inverters, Some(&service())), Some(file)).unwrap();
    assert_eq!(config.inverters[0].name, "file", "an empty list option keeps the file's list");
    assert_eq!(config.data_dir, PathBuf::from("/elsewhere"), "the file wins over facts");
    let influx = config.influxdb.unwrap();
    assert_eq!((influx.measurement.as_str(), influx.tags["site"].as_str()), ("solar", "home"));
    let config = load(&layers(OPTIONS, Some(&service())), Some(file)).unwrap();
    assert_eq!(config.inverters.len(), 2, "a list option replaces the file's list whole");
}

#[test]
fn errors_name_the_options_file_and_the_key() {
    // The form's serial 0 means "learn it"; a slave id of 0 is an error the options can make.
    let options = r#"{"inverter": [{"name": "house", "host": "h", "serial": 0, "slave_id": 0}]}"#;
    let error = load(&layers(options, Some(&service())), None).unwrap_err().to_string();
    assert!(error.starts_with("/data/options.json: inverter[0].slave_id: 0 is outside"), "{error}");
    let options = r#"{"inverter": [{"name": "house", "host": "h", "serial": 1, "colour": "red"}]}"#;
    let error = load(&layers(options, Some(&service())), None).unwrap_err().to_string();
    assert!(error.starts_with("/data/options.json: ") && error.contains("colour"), "{error}");
    let error = load(&layers(options, None), Some("")).unwrap_err().to_string();
    assert!(error.contains("inverter-monitor.toml + /data/options.json: "), "{error}");
}

#[test]
fn the_supervisor_port_may_be_a_number_or_a_string() {
    assert_eq!(service().port, 1883);
    let number = SERVICE.replace("\"1883\"", "1884");
    assert_eq!(parse_service(200, &number).unwrap().port, 1884);
    assert!(parse_service(200, &SERVICE.replace("\"1883\"", "\"x\"")).is_err());
    let error = parse_service(400, include_str!("../../../tests/fixtures/addon/mqtt-service-missing.json"));
    assert_eq!(
        error.unwrap_err(),
        "HTTP 400: No service for mqtt; install the Mosquitto broker add-on, or set the mqtt options"
    );
    assert!(parse_service(502, "<html>").unwrap_err().starts_with("HTTP 502, not a Supervisor answer"));
}

#[test]
fn the_supervisors_tls_and_missing_credentials_carry_over() {
    let service: MqttService =
        serde_json::from_value(json!({"host": "broker", "port": 8883, "ssl": true})).unwrap();
    let layers = layers("{}", Some(&service));
    assert_eq!(layers.facts["mqtt"], json!({"host": "broker", "port": 8883, "tls": true}));
    assert_eq!(layers.supervisor_broker.as_deref(), Some("broker:8883"));
}

#[test]
fn pruning_drops_what_the_user_left_empty_at_any_depth() {
    let value = json!({"a": "", "b": null, "c": [], "d": {"e": {}}, "f": [{"g": ""}, {"h": 0}], "i": false});
    assert_eq!(prune(value), Some(json!({"f": [{"h": 0}], "i": false})));
    assert_eq!(prune(json!({"x": [null]})), None);
}

#[test]
fn detection_needs_both_the_options_file_and_the_token() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().display().to_string();
    let env = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(Addon::detect(&env(&[(OPTIONS_ENV, &path)])).is_none());
    assert!(Addon::detect(&env(&[(OPTIONS_ENV, "/nope.json"), (TOKEN_ENV, "t")])).is_none());
    assert!(Addon::detect(&env(&[(OPTIONS_ENV, &path), (TOKEN_ENV, "")])).is_none());
    let addon = Addon::detect(&env(&[(OPTIONS_ENV, &path), (TOKEN_ENV, "t")])).unwrap();
    assert_eq!(addon.supervisor, "http://supervisor");
    let addon =
        Addon::detect(&env(&[(OPTIONS_ENV, &path), (TOKEN_ENV, "t"), (SUPERVISOR_URL_ENV, "http://x:1")]))
            .unwrap();
    assert_eq!((addon.supervisor.as_str(), addon.options_file.as_path()), ("http://x:1", file.path()));
}

#[test]
fn the_supervisors_login_never_goes_to_a_broker_the_toml_names() {
    let options = r#"{"inverter": [{"name": "h", "host": "h", "serial": 1}]}"#;
    let file = "[mqtt]\nhost = \"broker.example.net\"\n";
    let config = load(&layers(options, Some(&service())), Some(file)).unwrap();
    let mqtt = config.mqtt.unwrap();
    assert_eq!(mqtt.host, "broker.example.net");
    assert_eq!(
        (mqtt.username.as_deref(), mqtt.password().unwrap()),
        (None, None),
        "the Mosquitto add-on's login stays home"
    );
    let own = "[mqtt]\nhost = \"broker.example.net\"\nusername = \"me\"\npassword = \"mine\"\n";
    let mqtt = load(&layers(options, Some(&service())), Some(own)).unwrap().mqtt.unwrap();
    assert_eq!((mqtt.username.as_deref(), mqtt.password().unwrap().unwrap().expose()), (Some("me"), "mine"));
}

#[test]
fn the_ingress_port_cannot_be_moved_by_the_toml() {
    let options = r#"{"inverter": [{"name": "h", "host": "h", "serial": 1}]}"#;
    let file = "[http]\nlisten = \"0.0.0.0:9000\"\n";
    let config = load(&layers(options, Some(&service())), Some(file)).unwrap();
    assert_eq!(config.http.unwrap().listen.port(), INGRESS_PORT, "ingress and the health check use it");
}

#[test]
fn the_ingress_port_admits_the_ingress_proxy_and_the_health_check_unless_the_toml_widens_it() {
    let options = r#"{"inverter": [{"name": "h", "host": "h", "serial": 1}]}"#;
    let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
    let http = load(&layers(options, Some(&service())), None).unwrap().http.unwrap();
    assert!(http.allows(ip(INGRESS_PROXY)) && http.allows(ip(CONTAINER_LOOPBACK)));
    assert!(!http.allows(ip("172.30.32.1")) && !http.allows(ip("192.168.1.10")), "not the LAN");
    assert!(http.trusts(ip(INGRESS_PROXY)) && !http.trusts(ip(CONTAINER_LOOPBACK)), "ingress needs no token");

    let file = "[http]\nallow = [\"192.168.1.10\"]\n";
    let http = load(&layers(options, Some(&service())), Some(file)).unwrap().http.unwrap();
    assert!(http.allows(ip("192.168.1.10")), "a scraper through the mapped port, when asked for");
    assert_eq!(http.allow.len(), 1, "the file's list replaces the facts' whole: {:?}", http.allow);
}
