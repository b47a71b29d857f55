//! Switches we follow and command: the door later control logic uses.
//!
//! Payload shapes: plain `ON`/`OFF` (HA MQTT switches, Tasmota, Shelly), JSON `{"state":"ON"}`
//! (zigbee2mqtt; Shelly Gen2's `{"output": true}` is read too), and the original tool's banks: `{"switches": [1,0,…]}` on the state topic,
//! `{"state": […]}` to the command topic. A malformed payload is an error to log, never fatal.

use serde_json::{Value as Json, json};

use crate::config::{PayloadShape, SwitchConfig};

/// A payload we could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SwitchError {
    /// The payload is not one of the shape's forms.
    #[error("switch `{switch}`: cannot read state payload `{payload}`: {why}")]
    Malformed {
        /// The switch.
        switch: String,
        /// The payload, lossily decoded.
        payload: String,
        /// What was expected.
        why: &'static str,
    },
    /// A bank command needs the bank's current state, which has not been seen yet.
    #[error("switch `{0}`: the bank's state is not known yet, so no command can be built")]
    BankUnknown(String),
}

/// The last known state of one switch.
#[derive(Debug, Clone)]
pub(crate) struct Switch {
    config: SwitchConfig,
    on: Option<bool>,
    bank: Option<Vec<u8>>,
}

impl Switch {
    /// A switch whose state is not known yet.
    pub(crate) fn new(config: SwitchConfig) -> Self {
        Self { config, on: None, bank: None }
    }

    /// Its configuration.
    pub(crate) fn config(&self) -> &SwitchConfig {
        &self.config
    }

    #[cfg(test)]
    /// On, off, or not known yet.
    pub(crate) fn is_on(&self) -> Option<bool> {
        self.on
    }

    /// Reads a state payload.
    ///
    /// # Errors
    /// [`SwitchError::Malformed`]; the known state is left as it was.
    pub(crate) fn on_state(&mut self, payload: &[u8]) -> Result<bool, SwitchError> {
        let text = String::from_utf8_lossy(payload);
        let malformed =
            |why| SwitchError::Malformed { switch: self.config.name.clone(), payload: text.to_string(), why };
        let on = match self.config.payload {
            PayloadShape::Plain => plain(&text).ok_or_else(|| malformed("ON or OFF"))?,
            PayloadShape::Json => serde_json::from_str::<Json>(&text)
                .ok()
                .and_then(|j| {
                    j.get("state")
                        .and_then(Json::as_str)
                        .and_then(plain)
                        .or_else(|| j.get("output")?.as_bool())
                })
                .ok_or_else(|| malformed(r#"{"state": "ON"|"OFF"} or {"output": true|false}"#))?,
            PayloadShape::Bank => {
                let bank = bank_state(&text).ok_or_else(|| malformed(r#"{"switches": [0|1, …]}"#))?;
                let on = bank
                    .get(self.config.index.unwrap_or(0))
                    .ok_or_else(|| malformed("a bank long enough for index"))?;
                let on = *on == 1;
                self.bank = Some(bank);
                on
            }
        };
        self.on = Some(on);
        Ok(on)
    }

    /// The command payload that turns the switch `on` or off.
    ///
    /// # Errors
    /// [`SwitchError::BankUnknown`] for a bank whose state was never seen.
    pub(crate) fn command(&self, on: bool) -> Result<Vec<u8>, SwitchError> {
        let word = if on { "ON" } else { "OFF" };
        let custom = if on { &self.config.payload_on } else { &self.config.payload_off };
        if let Some(custom) = custom {
            return Ok(custom.as_bytes().to_vec());
        }
        Ok(match self.config.payload {
            PayloadShape::Plain => word.as_bytes().to_vec(),
            PayloadShape::Json => json!({ "state": word }).to_string().into_bytes(),
            PayloadShape::Bank => {
                let mut bank =
                    self.bank.clone().ok_or_else(|| SwitchError::BankUnknown(self.config.name.clone()))?;
                if let Some(slot) = bank.get_mut(self.config.index.unwrap_or(0)) {
                    *slot = u8::from(on);
                }
                json!({ "state": bank }).to_string().into_bytes()
            }
        })
    }
}

/// `ON`/`OFF` in any case, `1`/`0`, `true`/`false`: what plugs and Home Assistant send.
pub(crate) fn plain(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Some(true),
        "off" | "0" | "false" => Some(false),
        _ => None,
    }
}

fn bank_state(text: &str) -> Option<Vec<u8>> {
    let json: Json = serde_json::from_str(text).ok()?;
    json.get("switches")?
        .as_array()?
        .iter()
        .map(|v| v.as_u64().filter(|n| *n <= 1).map(|n| n as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(payload: PayloadShape, index: Option<usize>) -> Switch {
        Switch::new(SwitchConfig { payload, index, ..SwitchConfig::plain("geyser", "s", "c") })
    }

    #[test]
    fn plain_json_and_bank_states_are_read() {
        let mut plain = switch(PayloadShape::Plain, None);
        assert_eq!(plain.on_state(b"ON"), Ok(true));
        assert_eq!(plain.on_state(b"off"), Ok(false));
        let mut z2m = switch(PayloadShape::Json, None);
        assert_eq!(z2m.on_state(br#"{"state":"ON","linkquality":90}"#), Ok(true));
        let mut bank = switch(PayloadShape::Bank, Some(2));
        assert_eq!(bank.on_state(br#"{"switches":[1,0,1,0]}"#), Ok(true));
        assert_eq!(bank.command(false).unwrap(), br#"{"state":[1,0,0,0]}"#);
    }

    #[test]
    fn malformed_payloads_are_errors_and_keep_the_last_state() {
        let mut plain = switch(PayloadShape::Plain, None);
        plain.on_state(b"ON").unwrap();
        let error = plain.on_state(b"maybe").unwrap_err();
        assert_eq!(error.to_string(), "switch `geyser`: cannot read state payload `maybe`: ON or OFF");
        assert_eq!(plain.is_on(), Some(true));
        let mut bank = switch(PayloadShape::Bank, Some(5));
        assert!(bank.on_state(br#"{"switches":[1,0]}"#).is_err());
        assert!(bank.on_state(b"\xff\xfe").is_err());
        assert_eq!(bank.command(true), Err(SwitchError::BankUnknown("geyser".into())));
    }

    #[test]
    fn commands_follow_the_shape_unless_the_plug_wants_its_own_words() {
        assert_eq!(switch(PayloadShape::Plain, None).command(true).unwrap(), b"ON");
        assert_eq!(switch(PayloadShape::Json, None).command(false).unwrap(), br#"{"state":"OFF"}"#);
        // A Shelly Gen2: JSON status, plain lower-case commands.
        let mut shelly = switch(PayloadShape::Json, None);
        shelly.config.payload_on = Some("on".into());
        shelly.config.payload_off = Some("off".into());
        assert_eq!(shelly.on_state(br#"{"id":0,"output":true,"apower":2990.5}"#), Ok(true));
        assert_eq!(shelly.command(false).unwrap(), b"off");
    }
}
