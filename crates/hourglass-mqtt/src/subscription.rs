//! One subscription's tasks. The *poller* drives rumqttc's event loop (connect, reconnect with
//! backoff, subscribe on every CONNACK, forward publishes); the *batcher* takes the waiting
//! messages, writes them with one commit on a blocking thread, and only then acknowledges them
//! (manual acks), so a message is acked only once its rows are durable in the WAL.
//!
//! Acks are tagged with the connection they came from: after a reconnect the broker resends
//! every unacknowledged message of the persistent session with its original packet id, so a
//! message of an earlier connection is not acked (its redelivery will be) — an ack for a stale
//! packet id could otherwise acknowledge a different, not yet durable message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hourglass_core::time::Precision;
use hourglass_storage::Engine;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, Publish, QoS};
use tokio::sync::{mpsc, watch};

use crate::batch::{write_batch, Message};
use crate::config::{CompiledMapping, SubscriptionConfig};
use crate::metrics::Counters;

/// The largest MQTT packet (the protocol's limit), so no message is refused for its size
/// (a refused one would break the connection and be redelivered forever).
const MAX_PACKET: usize = 268_435_455;

/// A subscription ready to run.
pub struct Subscription {
    pub config: SubscriptionConfig,
    pub mapping: Option<CompiledMapping>,
    pub precision: Precision,
    pub options: MqttOptions,
    pub counters: Arc<Counters>,
}

impl Subscription {
    /// Validates and prepares; errors name the subscription and key.
    pub fn new(config: SubscriptionConfig) -> Result<Subscription, String> {
        config.validate()?;
        let at = |key: &str, e: String| format!("mqtt[{}].{key}: {e}", config.name);
        let mapping = config
            .json
            .as_ref()
            .map(|j| j.compile())
            .transpose()
            .map_err(|(k, e)| at(&format!("json.{k}"), e))?;
        let precision =
            Precision::parse(&config.precision).map_err(|e| at("precision", e.message))?;
        let (host, port, tls) = config.broker().map_err(|e| at("url", e))?;
        let mut options = MqttOptions::new(config.effective_client_id(), host, port);
        options
            .set_keep_alive(Duration::from_secs(config.keep_alive_secs))
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_request_channel_capacity(config.batch_max_messages.max(16) * 2 + 64);
        if let Some(user) = &config.username {
            options.set_credentials(
                user.clone(),
                config.password.clone().map(|p| p.0).unwrap_or_default(),
            );
        }
        if tls {
            let client = crate::tls::client_config(&config.tls.clone().unwrap_or_default())
                .map_err(|e| at("tls", e))?;
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(client),
            ));
        }
        Ok(Subscription {
            config,
            mapping,
            precision,
            options,
            counters: Arc::default(),
        })
    }
}

/// A message with the connection it arrived on.
struct Received {
    publish: Publish,
    connection: u64,
    arrival_ns: i64,
}

/// Runs the subscription until `stop` turns true: then the batch in progress is committed and
/// acknowledged, the client disconnects, and the task ends.
pub async fn run(sub: Subscription, engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let sub = Arc::new(sub);
    let (client, eventloop) = AsyncClient::new(
        sub.options.clone(),
        sub.config.batch_max_messages.max(16) * 2 + 64,
    );
    let connection = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut poller = AbortOnDrop(tokio::spawn(poll(
        sub.clone(),
        engine.clone(),
        client.clone(),
        eventloop,
        connection.clone(),
        tx,
        closing_rx,
    )));
    let mut log = RateLimited::default();
    loop {
        let first = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
        };
        let mut batch = vec![first];
        gather(&sub.config, &mut rx, &mut batch).await;
        if !commit_and_ack(
            &sub,
            &engine,
            &client,
            &connection,
            batch,
            &mut stop,
            &mut log,
        )
        .await
        {
            break;
        }
    }
    let _ = closing_tx.send(true);
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(3), &mut poller.0).await;
    sub.counters.connected.store(0, Ordering::Relaxed);
}

/// Adds waiting messages to `batch`, up to the batch size, waiting at most the batch wait.
async fn gather(
    config: &SubscriptionConfig,
    rx: &mut mpsc::UnboundedReceiver<Received>,
    batch: &mut Vec<Received>,
) {
    let max = config.batch_max_messages;
    while batch.len() < max {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(_) => break,
        }
    }
    if config.batch_max_wait_ms == 0 {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(config.batch_max_wait_ms);
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => batch.push(m),
            _ => break,
        }
    }
}

/// Commits `batch` (retrying with backoff while the engine refuses), dead-letters and counts
/// the rejected messages, then acks. Returns false when stopped before the commit succeeded.
#[allow(clippy::too_many_arguments)]
async fn commit_and_ack(
    sub: &Arc<Subscription>,
    engine: &Arc<Engine>,
    client: &AsyncClient,
    connection: &AtomicU64,
    batch: Vec<Received>,
    stop: &mut watch::Receiver<bool>,
    log: &mut RateLimited,
) -> bool {
    let messages: Arc<Vec<Message>> = Arc::new(
        batch
            .iter()
            .map(|r| Message {
                topic: r.publish.topic.clone(),
                payload: r.publish.payload.clone(),
                arrival_ns: r.arrival_ns,
            })
            .collect(),
    );
    let mut backoff = Duration::from_millis(100);
    let outcome = loop {
        let (engine, sub2, msgs) = (engine.clone(), sub.clone(), messages.clone());
        let result = tokio::task::spawn_blocking(move || {
            write_batch(
                &engine,
                &sub2.config.database,
                sub2.precision,
                sub2.mapping.as_ref(),
                &msgs,
            )
        })
        .await;
        let error = match result {
            Ok(Ok(outcome)) => break outcome,
            Ok(Err(e)) => e.message,
            Err(e) => format!("write task failed: {e}"),
        };
        sub.counters.commit_errors.fetch_add(1, Ordering::Relaxed);
        if log.allow() {
            tracing::warn!(
                subscription = %sub.config.name,
                error = %error,
                retry_in_ms = backoff.as_millis() as u64,
                suppressed = log.take_suppressed(),
                "MQTT batch not written; retrying (nothing acknowledged)"
            );
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    };
    let counters = &sub.counters;
    counters.commits.fetch_add(1, Ordering::Relaxed);
    counters
        .rows
        .fetch_add(outcome.rows as u64, Ordering::Relaxed);
    counters
        .messages
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    for (received, reason) in batch.iter().zip(&outcome.rejected) {
        let Some(reason) = reason else { continue };
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        let topic = &received.publish.topic;
        if log.allow() {
            tracing::warn!(
                subscription = %sub.config.name,
                topic = %topic,
                reason = %reason,
                suppressed = log.take_suppressed(),
                "MQTT message rejected"
            );
        }
        if let Some(dead) = &sub.config.dead_letter_topic {
            let envelope = dead_letter(&sub.config.name, topic, reason, &received.publish.payload);
            match client
                .publish(dead, QoS::AtLeastOnce, false, envelope)
                .await
            {
                Ok(()) => {
                    counters.dead_letters.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(
                    subscription = %sub.config.name,
                    error = %e,
                    "cannot republish to the dead-letter topic"
                ),
            }
        }
    }
    let current = connection.load(Ordering::Acquire);
    for received in &batch {
        if received.connection == current {
            // Only fails once the event loop is gone (shutting down): the broker redelivers.
            let _ = client.ack(&received.publish).await;
        }
    }
    true
}

/// The dead-letter message: JSON with the subscription, topic, reason and the payload (as text
/// when it is UTF-8, else base64).
fn dead_letter(name: &str, topic: &str, reason: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = serde_json::json!({
        "subscription": name,
        "topic": topic,
        "reason": reason,
    });
    match std::str::from_utf8(payload) {
        Ok(text) => v["payload"] = serde_json::Value::String(text.to_string()),
        Err(_) => {
            v["payload_base64"] =
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(payload))
        }
    }
    v.to_string().into_bytes()
}

/// Drives the event loop: forwards publishes, subscribes on each CONNACK, reconnects with
/// backoff (0.5 s doubling to `reconnect_max_secs`). Ends on the client's disconnect, or when
/// closing and not connected.
async fn poll(
    sub: Arc<Subscription>,
    engine: Arc<Engine>,
    client: AsyncClient,
    mut eventloop: EventLoop,
    connection: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Received>,
    mut closing: watch::Receiver<bool>,
) {
    let name = &sub.config.name;
    let min_backoff = Duration::from_millis(500);
    let max_backoff = Duration::from_secs(sub.config.reconnect_max_secs);
    let mut backoff = min_backoff;
    let mut last_log: Option<Instant> = None;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                connection.fetch_add(1, Ordering::AcqRel);
                sub.counters.connected.store(1, Ordering::Relaxed);
                backoff = min_backoff;
                tracing::info!(
                    subscription = %name,
                    url = %sub.config.url,
                    session_present = ack.session_present,
                    "MQTT connected"
                );
                let filters = sub
                    .config
                    .topics
                    .iter()
                    .map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(filters) {
                    tracing::warn!(subscription = %name, error = %e, "MQTT subscribe failed");
                }
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                let received = Received {
                    publish,
                    connection: connection.load(Ordering::Acquire),
                    arrival_ns: engine.clock.now_nanos(),
                };
                if tx.send(received).is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                if refused {
                    tracing::warn!(subscription = %name, "the broker refused a topic filter");
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                connection.fetch_add(1, Ordering::AcqRel);
                sub.counters.connected.store(0, Ordering::Relaxed);
                sub.counters
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                if *closing.borrow() {
                    return;
                }
                // At most one line per backoff step, and at least every minute.
                if last_log.is_none_or(|t| t.elapsed() >= backoff.min(Duration::from_secs(60))) {
                    tracing::warn!(
                        subscription = %name,
                        url = %sub.config.url,
                        error = %e,
                        retry_in_ms = backoff.as_millis() as u64,
                        "MQTT connection failed; retrying"
                    );
                    last_log = Some(Instant::now());
                }
                tokio::select! {
                    _ = closing.wait_for(|c| *c) => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// The poller ends with the subscription, also when the subscription's task is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// At most one warning per second; the rest are counted and reported with the next one.
#[derive(Default)]
struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn allow(&mut self) -> bool {
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last = Some(Instant::now());
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}
