//! The engine's edge: polls and plug states in, commands and decisions out over MQTT, Home
//! Assistant's "automatic control" and "dry run" switches honoured and kept across restarts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::engine::{Action, Decision, Engine};
use super::observation::{Observation, Outlook};
use super::view::ControlView;
use crate::config::Config;
use crate::mqtt::MqttHandle;
use crate::mqtt::topics::Topics;
use crate::poller::Update;

/// Where the weather's outlook comes from: asked at each decision, `None` when unknown or stale.
pub(crate) type OutlookSource = Box<dyn Fn(DateTime<Utc>) -> Option<Outlook> + Send + Sync>;

/// How often the runtimes are written while loads run: often enough that a restart loses
/// little, seldom enough to spare an SD card.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// What Home Assistant's switches set, and today's runtimes, kept in `<data_dir>/control.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Settings {
    dry_run: bool,
    automatic: BTreeMap<String, bool>,
    /// Seconds on per consumer, and the inverter's day they were counted on.
    #[serde(default)]
    runtime: BTreeMap<String, (NaiveDate, u64)>,
}

/// The running adapter.
pub(crate) struct Adapter {
    engine: Engine,
    mqtt: MqttHandle,
    topics: Topics,
    inverter: String,
    capacity_wh: Option<f64>,
    settings: Settings,
    file: PathBuf,
    outlook: OutlookSource,
    last: Vec<Decision>,
    saved_at: Option<tokio::time::Instant>,
    view: ControlView,
    /// Subscribed at construction, so retained commands that arrive before `run` are not lost.
    messages: Option<broadcast::Receiver<(String, Vec<u8>)>>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter").field("inverter", &self.inverter).field("settings", &self.settings).finish()
    }
}

impl Adapter {
    /// An adapter for the consumers of `config`; `None` when there are none.
    pub(crate) fn new(config: &Config, mqtt: MqttHandle, outlook: OutlookSource) -> Option<Self> {
        let inverter = config.control_inverter()?.name.clone();
        if config.consumers.is_empty() {
            return None;
        }
        let mut engine = Engine::new(&config.control, &config.consumers);
        let file = config.data_dir.join("control.json");
        let mut settings = Settings {
            dry_run: config.control.dry_run,
            automatic: config.consumers.iter().map(|c| (c.name.clone(), c.automatic)).collect(),
            runtime: BTreeMap::new(),
        };
        match std::fs::read(&file).map(|bytes| serde_json::from_slice::<Settings>(&bytes)) {
            Ok(Ok(saved)) => {
                settings.dry_run = saved.dry_run;
                settings.runtime = saved.runtime;
                for (name, on) in saved.automatic {
                    // A consumer no longer configured keeps no setting.
                    if let Some(slot) = settings.automatic.get_mut(&name) {
                        *slot = on;
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(file = %file.display(), "ignored unreadable control settings: {e}"),
            Err(_) => {}
        }
        for (name, on) in &settings.automatic {
            engine.set_automatic(name, *on);
        }
        for (name, (day, secs)) in &settings.runtime {
            engine.restore_runtime(name, *day, std::time::Duration::from_secs(*secs));
        }
        let topics = mqtt.topics().clone();
        Some(Self {
            engine,
            messages: Some(mqtt.messages()),
            mqtt,
            topics,
            inverter,
            capacity_wh: config.control.battery_capacity,
            settings,
            file,
            outlook,
            last: Vec::new(),
            saved_at: None,
            view: ControlView::default(),
        })
    }

    /// Runs until `cancel`.
    pub(crate) async fn run(mut self, mut bus: broadcast::Receiver<Update>, cancel: CancellationToken) {
        let Some(mut messages) = self.messages.take() else { return };
        let mut states = self.mqtt.states();
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        tracing::info!(inverter = %self.inverter, consumers = self.engine.consumers().count(), dry_run = self.settings.dry_run, "load control");
        self.publish().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => {
                    self.save();
                    return;
                }
                update = bus.recv() => match update {
                    Ok(update) => self.on_update(&update).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("load control skipped {n} poll updates"),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                message = messages.recv() => match message {
                    Ok((topic, payload)) => self.on_message(&topic, &payload).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!("load control skipped {n} MQTT messages"),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                changed = states.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = states.borrow_and_update().clone();
                    for (name, on) in &now {
                        if seen.get(name) != Some(on) {
                            self.engine.observe(name, *on, Utc::now());
                        }
                    }
                    seen = now;
                }
            }
        }
    }

    async fn on_update(&mut self, update: &Update) {
        let (at, observation) = match update {
            Update::Polled { snapshot, .. } if *snapshot.inverter == *self.inverter => {
                (snapshot.time, Observation::from_snapshot(snapshot, self.capacity_wh))
            }
            Update::Failed { failure, .. } if *failure.inverter == *self.inverter => {
                (failure.time, Err(format!("the last poll failed: {}", failure.error)))
            }
            _ => return,
        };
        let outlook = (self.outlook)(at);
        let decisions = self.engine.step(at, observation.as_ref().map_err(String::as_str), outlook.as_ref());
        for d in &decisions {
            self.act(d, at).await;
        }
        self.view.record(&decisions, self.settings.dry_run);
        let running = decisions.iter().any(|d| d.state == Some(true));
        self.last = decisions;
        if running && self.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
            self.save();
        }
        self.publish().await;
    }

    async fn act(&mut self, d: &Decision, at: DateTime<Utc>) {
        let changed =
            self.last.iter().find(|l| l.consumer == d.consumer).is_none_or(|l| l.reason != d.reason);
        let Some(on) = d.command() else {
            if changed {
                tracing::debug!(consumer = %d.consumer, action = d.action.as_str(), "{}", d.reason);
            }
            return;
        };
        let word = if on { "on" } else { "off" };
        if self.settings.dry_run {
            if changed {
                tracing::info!(consumer = %d.consumer, "dry run: would switch {word}: {}", d.reason);
            }
            return;
        }
        tracing::info!(consumer = %d.consumer, "switching {word}: {}", d.reason);
        if self.mqtt.command(&d.consumer, on).await.is_ok() {
            self.engine.sent(&d.consumer, on, at);
            self.view.sent(&d.consumer, on);
        }
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let Some(on) = std::str::from_utf8(payload).ok().and_then(crate::mqtt::switches::plain) else {
            tracing::warn!(%topic, payload = %String::from_utf8_lossy(payload), "ignored: expected ON or OFF");
            return;
        };
        if topic == self.topics.control_dry_run() {
            self.settings.dry_run = on;
            tracing::info!(dry_run = on, "load control dry run set from MQTT");
        } else if let Some(name) = {
            let names: Vec<String> = self.engine.consumers().map(|c| c.name.clone()).collect();
            names.into_iter().find(|n| self.topics.control_automatic(n) == topic)
        } {
            self.engine.set_automatic(&name, on);
            self.settings.automatic.insert(name.clone(), on);
            tracing::info!(consumer = %name, automatic = on, "automatic control set from MQTT");
        } else {
            return;
        }
        self.save();
        self.publish().await;
    }

    fn save(&mut self) {
        self.saved_at = Some(tokio::time::Instant::now());
        let names: Vec<String> = self.engine.consumers().map(|c| c.name.clone()).collect();
        self.settings.runtime = names
            .into_iter()
            .filter_map(|n| self.engine.runtime(&n).map(|(day, d)| (n, (day, d.as_secs()))))
            .collect();
        if let Err(e) = crate::state_file::write(&self.file, &self.settings) {
            tracing::warn!(file = %self.file.display(), "cannot keep the control settings: {e}");
        }
    }

    /// The retained state every control entity reads.
    async fn publish(&self) {
        let word = |on: bool| if on { "ON" } else { "OFF" };
        let consumers: serde_json::Map<String, serde_json::Value> = self
            .engine
            .consumers()
            .map(|c| {
                let automatic = self.engine.automatic(&c.name).unwrap_or(false);
                let view = match self.last.iter().find(|d| d.consumer == c.name) {
                    Some(d) => json!({
                        "automatic": word(automatic),
                        "state": d.state.map(word),
                        "wanted": word(d.want),
                        "action": d.action.as_str(),
                        "decision": decision_text(d, self.settings.dry_run),
                        "reason": d.reason,
                        "runtime_today_min": (d.runtime_today.as_secs_f64() / 60.0 * 10.0).round() / 10.0,
                    }),
                    None => json!({"automatic": word(automatic), "decision": "waiting for the first poll"}),
                };
                (c.name.clone(), view)
            })
            .collect();
        let state = json!({"dry_run": word(self.settings.dry_run), "consumers": consumers});
        if self.mqtt.publish(self.topics.control_state(), state.to_string().into_bytes(), true).await.is_err()
        {
            tracing::debug!("MQTT task gone; control state not published");
        }
    }
}

/// `switch on: surplus 2.1 kW ≥ 1.5 kW`, cut to HA's 255 characters.
fn decision_text(d: &Decision, dry_run: bool) -> String {
    let head = match (d.action, dry_run) {
        (Action::Start, false) => "switch on",
        (Action::Start, true) => "would switch on",
        (Action::Stop, false) => "switch off",
        (Action::Stop, true) => "would switch off",
        (Action::Stay, _) if d.want => "keep on",
        (Action::Stay, _) => "keep off",
        (Action::Wait, _) => "wait",
    };
    let text = format!("{head}: {}", d.reason);
    match text.char_indices().nth(254) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Starts load control when `config` has consumers and MQTT; returns its view for metrics.
pub(crate) fn spawn(
    config: &Config,
    mqtt: Option<&MqttHandle>,
    outlook: OutlookSource,
    bus: broadcast::Receiver<Update>,
    tasks: &mut tokio::task::JoinSet<()>,
    cancel: CancellationToken,
) -> Option<ControlView> {
    let adapter = Adapter::new(config, mqtt?.clone(), outlook)?;
    let view = adapter.view.clone();
    tasks.spawn(adapter.run(bus, cancel));
    Some(view)
}

/// The outlook from the weather task: `None` while its data is missing or stale.
pub(crate) fn weather_outlook(weather: crate::weather::WeatherHandle) -> OutlookSource {
    Box::new(move |now| Outlook::from_weather(weather.latest(now)?.as_ref(), now))
}

/// The outlook source when there is no weather.
pub(crate) fn no_outlook() -> OutlookSource {
    Box::new(|_| None)
}
