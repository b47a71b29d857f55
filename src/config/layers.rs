//! Loading: the layers of a configuration, merged by config-rs, then validated.
//!
//! Lowest first: built-in defaults, the add-on's facts (data dir, ingress port, broker from the
//! Supervisor), the TOML file, the add-on's `options.json`, environment variables. The
//! environment is last because indexed list overrides (`inverter[0].host`) are config-rs
//! overrides, which win over every source; plain ones then behave the same.

use std::collections::HashMap;
use std::path::Path;

use super::{Config, ConfigError, ENV_PREFIX};
use crate::config::AddonLayers;

/// Where a configuration comes from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The TOML file. Required, unless add-on layers are given: then it is read if it exists.
    pub file: &'a Path,
    /// The add-on's layers, in add-on mode.
    pub addon: Option<&'a AddonLayers>,
    /// The process environment; only `INVERTER_MONITOR__…` variables count.
    pub env: &'a HashMap<String, String>,
}

impl Config {
    /// Loads `file`, then applies `INVERTER_MONITOR__…` overrides from `env`, then validates.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key.
    pub fn load(file: &Path, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::load_from(Sources { file, addon: None, env })
    }

    /// Loads and validates every layer of `sources`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file (or files) and the key.
    pub fn load_from(sources: Sources<'_>) -> Result<Self, ConfigError> {
        let file_exists = sources.file.exists();
        let name = match sources.addon {
            Some(addon) if file_exists => {
                format!("{} + {}", sources.file.display(), addon.options_file.display())
            }
            Some(addon) => addon.options_file.display().to_string(),
            None => sources.file.display().to_string(),
        };
        let load =
            |e: config::ConfigError| ConfigError::Load { file: name.clone(), reason: dotted(&e.to_string()) };
        let json =
            |value: &serde_json::Value| config::File::from_str(&value.to_string(), config::FileFormat::Json);
        let mut builder = config::Config::builder();
        if let Some(addon) = sources.addon {
            builder = builder.add_source(json(&addon.facts));
        }
        if sources.addon.is_none() || file_exists {
            builder = builder
                .add_source(config::File::from(sources.file).format(config::FileFormat::Toml).required(true));
        }
        if let Some(addon) = sources.addon {
            // Ingress and the image's health check go to the ingress port: the file may not
            // move it (the environment, the operator's last word, still may).
            if let Some(listen) = addon.facts.pointer("/http/listen") {
                builder = builder.add_source(json(&serde_json::json!({"http": {"listen": listen}})));
            }
            builder = builder.add_source(json(&addon.options));
        }
        let (indexed, plain) = split_env(sources.env);
        for (path, value) in indexed {
            builder = builder.set_override(path, value).map_err(load)?;
        }
        let environment = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(plain));
        let mut config: Self =
            builder.add_source(environment).build().and_then(|c| c.try_deserialize()).map_err(load)?;
        if let Some(addon) = sources.addon {
            addon.keep_supervisor_login_home(&mut config);
        }
        config.read_secret_files(&name)?;
        config.validate(&name)?;
        Ok(config)
    }

    /// Reads the `*_file` secrets that are resolved once, at load time.
    fn read_secret_files(&mut self, file: &str) -> Result<(), ConfigError> {
        let invalid = |section: &str, (key, reason): (&str, String)| ConfigError::Invalid {
            file: file.into(),
            key: format!("{section}.{key}"),
            reason,
        };
        if let Some(problem) = self.sentry.read_secret_file() {
            return Err(invalid("sentry", problem));
        }
        if let Some(problem) = self.health_pings.as_mut().and_then(|h| h.read_secret_file()) {
            return Err(invalid("healthcheck", problem));
        }
        if let Some(problem) = self.http.as_mut().and_then(|h| h.read_secret_file()) {
            return Err(invalid("http", problem));
        }
        Ok(())
    }
}

/// config-rs writes list keys as `inverter[0]serial`; ours are `inverter[0].serial`.
fn dotted(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 4);
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']' && chars.peek().is_some_and(|n| n.is_ascii_alphabetic() || *n == '_') {
            out.push('.');
        }
    }
    out
}

/// Splits `INVERTER_MONITOR__…` variables into indexed list overrides (`inverter[0].host`)
/// and plain ones for config-rs's environment source.
fn split_env(env: &HashMap<String, String>) -> (Vec<(String, String)>, HashMap<String, String>) {
    let prefix = format!("{ENV_PREFIX}__");
    let mut indexed = Vec::new();
    let mut plain = HashMap::new();
    for (name, value) in env.iter().filter(|(n, _)| n.starts_with(&prefix)) {
        let parts: Vec<String> = name[prefix.len()..].split("__").map(str::to_lowercase).collect();
        match parts.as_slice() {
            [list, index, rest @ ..] if !rest.is_empty() && index.parse::<usize>().is_ok() => {
                indexed.push((format!("{list}[{index}].{}", rest.join(".")), value.clone()));
            }
            _ => {
                plain.insert(name.clone(), value.clone());
            }
        }
    }
    indexed.sort();
    (indexed, plain)
}
