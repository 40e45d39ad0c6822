//! MQTT subscriptions (`[[mqtt]]` sections of the configuration file): Hourglass as a client of
//! the user's broker, like Telegraf's `mqtt_consumer` or an AWS IoT Core rule. Each subscription
//! receives QoS 1 messages on a persistent session, maps them to rows (line protocol as is, or
//! JSON through a mapping), writes a batch of messages with one WAL commit and only then
//! acknowledges them: at-least-once, nothing lost when Hourglass is killed. Messages that cannot
//! be mapped are counted, logged, optionally dead-lettered, and acknowledged.
//! See `docs/protocols/mqtt.md`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod batch;
mod config;
mod mapping;
mod metrics;
mod path;
mod subscription;
mod template;
mod tls;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use hourglass_storage::Engine;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    JsonMapping, NumberType, PayloadFormat, Secret, SubscriptionConfig, TimeUnit, TlsConfig,
    EXAMPLE_TOML,
};
pub use metrics::Counters;

/// The running subscriptions of a server.
pub struct MqttSources {
    counters: Vec<(String, Arc<Counters>)>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Checks every subscription (names unique) and starts them; needs a Tokio runtime. A broker
/// that cannot be reached is not an error: the subscription keeps retrying.
pub fn start(
    subscriptions: Vec<SubscriptionConfig>,
    engine: Arc<Engine>,
) -> Result<MqttSources, String> {
    let mut prepared = Vec::with_capacity(subscriptions.len());
    for (i, config) in subscriptions.into_iter().enumerate() {
        if prepared
            .iter()
            .any(|s: &subscription::Subscription| s.config.name == config.name)
        {
            return Err(format!(
                "mqtt[{i}].name: '{}' names two subscriptions",
                config.name
            ));
        }
        prepared.push(subscription::Subscription::new(config)?);
    }
    let (stop, stop_rx) = watch::channel(false);
    let mut counters = Vec::new();
    let mut tasks = Vec::new();
    for sub in prepared {
        counters.push((sub.config.name.clone(), sub.counters.clone()));
        tracing::info!(
            subscription = %sub.config.name,
            url = %sub.config.url,
            topics = ?sub.config.topics,
            database = %sub.config.database,
            "MQTT subscription starting"
        );
        tasks.push(tokio::spawn(subscription::run(
            sub,
            engine.clone(),
            stop_rx.clone(),
        )));
    }
    Ok(MqttSources {
        counters,
        stop,
        tasks: Mutex::new(tasks),
    })
}

impl MqttSources {
    /// No subscriptions.
    pub fn none() -> MqttSources {
        MqttSources {
            counters: Vec::new(),
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// How many subscriptions run.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Appends the counters of every subscription (Prometheus text format).
    pub fn render_metrics(&self, out: &mut String) {
        let list: Vec<(String, &Counters)> = self
            .counters
            .iter()
            .map(|(n, c)| (n.clone(), c.as_ref()))
            .collect();
        metrics::render(&list, out);
    }

    /// The counters of the subscription `name`.
    pub fn counters(&self, name: &str) -> Option<&Counters> {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_ref())
    }

    /// Stops every subscription: the batch being written is committed and acknowledged, then
    /// each client disconnects (messages received but not yet written stay unacknowledged and
    /// are redelivered after restart). Waits at most `limit`.
    pub async fn stop(&self, limit: Duration) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for mut task in tasks {
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Stops at once without acknowledging anything more (a simulated crash).
    pub fn abort(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}
