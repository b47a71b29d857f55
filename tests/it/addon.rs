//! The Home Assistant add-on's files, checked as the Supervisor and the add-on linter would:
//! config.yaml and its translations parse, every option has a schema entry and a translation,
//! the schema is the config's own shape, the version is the crate's, repository.yaml is valid,
//! and nothing else in the repository looks like an add-on to the Supervisor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use inverter_monitor::config::addon::{INGRESS_PORT, prune};
use inverter_monitor::config::{AddonLayers, Config, Sources};
use serde_json::{Value, json};

const SLUG: &str = "inverter_monitor";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn addon_dir() -> PathBuf {
    root().join("ha").join(SLUG)
}

/// A YAML file as JSON, so the same walkers serve YAML and options.json.
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifest() -> Value {
    yaml(&addon_dir().join("config.yaml"))
}

/// Keys the linter reports as "uses a default value", with those defaults.
const DEFAULTS: &[(&str, &str)] = &[
    ("boot", "\"auto\""),
    ("startup", "\"application\""),
    ("init", "true"),
    ("ingress_port", "8099"),
    ("ingress_entry", "\"/\""),
    ("timeout", "10"),
    ("stage", "\"stable\""),
    ("backup", "\"hot\""),
    ("hassio_role", "\"default\""),
    ("apparmor", "true"),
    ("panel_admin", "true"),
];

#[test]
fn config_yaml_follows_the_2026_conventions() {
    let manifest = manifest();
    for key in ["name", "version", "slug", "description", "arch", "url", "image", "panel_icon"] {
        assert!(manifest[key].is_string() || manifest[key].is_array(), "config.yaml: {key} missing");
    }
    assert_eq!(manifest["slug"], SLUG, "the folder is named after the slug");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"), "config.yaml: version is Cargo.toml's");
    assert_eq!(manifest["arch"], json!(["aarch64", "amd64"]), "32-bit is no longer supported");
    assert_eq!(manifest["services"], json!(["mqtt:need"]));
    assert_eq!(manifest["ingress"], true);
    assert_eq!(INGRESS_PORT, 8099, "the service listens on the Supervisor's default ingress port");
    assert!(manifest["map"].as_array().unwrap().contains(&json!("addon_config:rw")));
    assert!(!manifest["image"].as_str().unwrap().contains("{arch}"), "a multi-arch image name");
    for (key, default) in DEFAULTS {
        let value = manifest.get(key).map(Value::to_string);
        assert_ne!(value.as_deref(), Some(*default), "config.yaml: {key} is at its default; leave it out");
    }
    for key in ["watchdog", "webui", "build_from", "codenotary", "advanced", "auto_uart", "legacy"] {
        assert!(manifest.get(key).is_none(), "config.yaml: {key} is obsolete or clashes with ingress");
    }
    for file in ["build.yaml", "build.json", "Dockerfile", "DOCS.md", "CHANGELOG.md", "README.md"] {
        let exists = addon_dir().join(file).is_file();
        assert_eq!(exists, !file.starts_with("build."), "ha/{SLUG}/{file}");
    }
}

/// Every key of `options` (at any depth, list items included) is in `schema`.
fn assert_options_in_schema(options: &Value, schema: &Value, path: &str) {
    match (options, schema) {
        (Value::Object(options), Value::Object(schema)) => {
            for (key, value) in options {
                let entry =
                    schema.get(key).unwrap_or_else(|| panic!("option {path}{key} has no schema entry"));
                assert_options_in_schema(value, entry, &format!("{path}{key}."));
            }
        }
        (Value::Array(items), Value::Array(schema)) => {
            items.iter().for_each(|item| assert_options_in_schema(item, &schema[0], path));
        }
        (_, Value::String(_)) => {}
        _ => panic!("option {path} does not have the shape of its schema"),
    }
}

/// Every schema key has a translation with a name, nested ones under `fields`, and no
/// translation is left over.
fn assert_translated(schema: &Value, translations: &Value, path: &str) {
    let schema = match schema {
        Value::Array(items) => &items[0],
        other => other,
    };
    let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(schema), keys(translations), "translations of {path} do not match the schema");
    for (key, entry) in schema.as_object().unwrap() {
        let translation = &translations[key];
        assert!(translation["name"].is_string(), "{path}{key} has no translated name");
        assert!(translation["description"].is_string(), "{path}{key} has no description");
        // A list of plain values (`write_keys: [str?]`) has no fields of its own.
        let plain_list = entry.as_array().is_some_and(|items| items[0].is_string());
        if !entry.is_string() && !plain_list {
            assert_translated(entry, &translation["fields"], &format!("{path}{key}."));
        }
    }
}

#[test]
fn every_option_has_a_schema_entry_and_a_translation() {
    let manifest = manifest();
    assert_options_in_schema(&manifest["options"], &manifest["schema"], "");
    let translations = yaml(&addon_dir().join("translations/en.yaml"));
    assert_translated(&manifest["schema"], &translations["configuration"], "");
    let ports = manifest["ports"].as_object().unwrap().keys().collect::<Vec<_>>();
    let network = translations["network"].as_object().unwrap().keys().collect::<Vec<_>>();
    assert_eq!(ports, network, "every port has a translated description");
    let types = unknown_types(&manifest["schema"]);
    assert!(types.iter().all(|t| t.is_empty()), "schema entries the Supervisor does not know: {types:?}");
}

/// The schema's type strings that are not Supervisor types (empty strings for good ones).
fn unknown_types(schema: &Value) -> Vec<String> {
    match schema {
        Value::Object(map) => map.values().flat_map(unknown_types).collect(),
        Value::Array(items) => items.iter().flat_map(unknown_types).collect(),
        Value::String(t) => {
            let t = t.trim_end_matches('?');
            let known = ["str", "bool", "port", "password", "url", "email", "device"].contains(&t)
                || ["int(", "float(", "list(", "match(^", "device("].iter().any(|p| t.starts_with(p))
                    && t.ends_with(')');
            vec![if known { String::new() } else { t.to_string() }]
        }
        other => vec![other.to_string()],
    }
}

/// Loads add-on options as the binary does, with the Supervisor's broker.
fn load(options: Value) -> Result<Config, String> {
    let service = serde_json::from_value(json!({"host": "core-mosquitto", "port": 1883})).unwrap();
    let options = prune(options).unwrap_or_else(|| json!({}));
    let layers = AddonLayers::new(PathBuf::from("/data/options.json"), options, Some(&service), None);
    let absent = root().join("no-such-file.toml");
    Config::load_from(Sources { file: &absent, addon: Some(&layers), env: &HashMap::new() })
        .map_err(|e| e.to_string())
}

#[test]
fn the_default_options_ask_for_the_logger_and_then_run() {
    let mut options = manifest()["options"].clone();
    let error = load(options.clone()).unwrap_err();
    assert!(error.starts_with("/data/options.json: ") && error.contains("host"), "{error}");
    options["inverter"][0]["host"] = json!("192.168.1.50");
    options["inverter"][0]["serial"] = json!(2_712_345_678u32);
    let config = load(options).unwrap();
    assert_eq!(config.mqtt.unwrap().host, "core-mosquitto");
}

#[test]
fn a_usb_adapter_on_the_host_needs_a_device_and_no_host() {
    let manifest = manifest();
    assert_eq!(manifest["uart"], true, "the Supervisor maps serial devices only with uart");
    let mut options = manifest["options"].clone();
    options["inverter"][0]["protocol"] = json!("serial");
    let error = load(options.clone()).unwrap_err();
    assert!(error.contains("inverter[0].device: missing"), "{error}");
    options["inverter"][0]["device"] = json!("/dev/serial/by-id/usb-FTDI_FT232R-if00-port0");
    let config = load(options).unwrap();
    let line = config.inverters[0].serial_line();
    assert_eq!((line.device.as_str(), line.baud), ("/dev/serial/by-id/usb-FTDI_FT232R-if00-port0", 9600));
}

/// A value of `kind` for option `key`, valid for the config too.
fn sample(key: &str, kind: &str) -> Value {
    let kind = kind.trim_end_matches('?');
    match (key, kind) {
        ("name", _) => json!("house"),
        ("profile", _) => json!("deye_sg01lp1"),
        ("dsn", _) => json!("https://key@sentry.example/1"),
        ("inverter", "str") => json!("house"),
        ("allowed_hours" | "off_peak", _) => json!("06:00-22:00"),
        ("surplus_stop", _) => json!(0),
        ("write_keys", _) => json!("max_sell_power"),
        ("pv_efficiency", _) => json!(0.85),
        (_, "bool") => json!(true),
        (_, "port") => json!(1884),
        (_, "url") => json!("http://influx.example:8086"),
        (_, k) if k.starts_with("match(") => json!("10m"),
        (_, k) if k.starts_with("list(") => json!(k[5..].split('|').next().unwrap()),
        (_, k) if k.starts_with("int(") || k.starts_with("float(") => {
            let low: f64 = k[k.find('(').unwrap() + 1..k.find(',').unwrap()].parse().unwrap();
            json!(low.max(1.0) as u64)
        }
        _ => json!("x"),
    }
}

/// Options with every key of `schema` set, leaving out `skip`.
fn fill(schema: &Value, skip: &[&str]) -> Value {
    let object = |map: &serde_json::Map<String, Value>| -> Value {
        let filled = map.iter().filter(|(k, _)| !skip.contains(&k.as_str())).map(|(k, v)| {
            let value = match v {
                Value::String(kind) => sample(k, kind),
                // A list of plain values: one sample of its item type.
                Value::Array(items) if items[0].is_string() => json!([sample(k, items[0].as_str().unwrap())]),
                other => fill(other, skip),
            };
            (k.clone(), value)
        });
        Value::Object(filled.collect())
    };
    match schema {
        Value::Object(map) => object(map),
        Value::Array(items) => json!([fill(&items[0], skip)]),
        other => panic!("not a schema: {other}"),
    }
}

#[test]
fn every_schema_entry_is_a_config_key_of_the_right_type() {
    // `index` belongs to payload = "bank" only.
    let options = fill(&manifest()["schema"], &["index"]);
    let config = load(options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.mqtt.unwrap().host, "x", "a broker in the options wins over the Supervisor's");
    assert_eq!(config.inverters[0].slave_id, 1);
    assert!(config.inverters[0].writes && config.inverters[0].write_keys == ["max_sell_power"]);
    assert!(config.influxdb.is_some() && config.sentry.dsn.is_some() && config.health_pings.is_some());
    assert_eq!((config.consumers.len(), config.control.dry_run), (1, true));
    assert_eq!(config.consumers[0].payload_on.as_deref(), Some("x"));
    let weather = config.weather.unwrap();
    assert_eq!((weather.latitude, weather.pv_peak_power), (1.0, Some(1.0)));
}

#[test]
fn repository_yaml_names_the_repository() {
    let repository = yaml(&root().join("repository.yaml"));
    assert!(repository["name"].is_string() && repository["maintainer"].is_string());
    assert_eq!(repository["url"], env!("CARGO_PKG_REPOSITORY"));
    assert_eq!(manifest()["url"], env!("CARGO_PKG_REPOSITORY"));
}

#[test]
fn no_other_file_looks_like_an_addon_to_the_supervisor() {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() && !name.starts_with('.') && name != "target" {
                walk(&path, found);
            } else if ["config.yaml", "config.yml", "config.json"].contains(&name.as_str()) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&root(), &mut found);
    assert_eq!(found, [addon_dir().join("config.yaml")], "the Supervisor takes each for an add-on");
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn icon_and_logo_are_pngs_of_the_recommended_size() {
    assert_eq!(png_size(&addon_dir().join("icon.png")), (128, 128));
    assert_eq!(png_size(&addon_dir().join("logo.png")), (250, 100));
}

#[test]
fn the_changelog_and_the_image_carry_the_crate_version() {
    let version = env!("CARGO_PKG_VERSION");
    let changelog = std::fs::read_to_string(addon_dir().join("CHANGELOG.md")).unwrap();
    assert!(changelog.contains(&format!("## {version}")), "CHANGELOG.md has no entry for {version}");
    let dockerfile = std::fs::read_to_string(addon_dir().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(&format!("ARG BUILD_VERSION={version}")), "Dockerfile's BUILD_VERSION");
}
