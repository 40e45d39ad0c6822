//! Notification targets: Alertmanager's API v2 (`POST /api/v2/alerts`, as Prometheus sends)
//! and a plain webhook receiving Alertmanager's webhook JSON. Delivery retries with exponential
//! backoff; per-target counters of alerts sent and failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::state::Alert;
use crate::{rfc3339, Labels, Millis};

/// Alerts per Alertmanager request (Prometheus' `--alertmanager.notification-batch-size`
/// default).
pub const BATCH_SIZE: usize = 256;
/// Time limit of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An alert as Alertmanager's API v2 takes it (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl PostableAlert {
    /// Prometheus' mapping: `startsAt` is when the instance fired, `endsAt` when it resolved or,
    /// while firing, its `valid_until`.
    pub fn from_alert(alert: &Alert, generator_url: &str) -> Self {
        let starts = alert.fired_at.unwrap_or(alert.active_at);
        let ends = alert.resolved_at.or(alert.valid_until).unwrap_or(starts);
        PostableAlert {
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: rfc3339(starts),
            ends_at: rfc3339(ends),
            generator_url: generator_url.to_string(),
        }
    }
}

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// An Alertmanager: its base URL; alerts are posted to `<url>/api/v2/alerts`.
    Alertmanager,
    /// A plain webhook: the URL receives Alertmanager's webhook JSON (version 4).
    Webhook,
}

/// A notification target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub kind: TargetKind,
    pub url: String,
}

impl Target {
    /// The URL requests are posted to.
    pub fn post_url(&self) -> String {
        match self.kind {
            TargetKind::Webhook => self.url.clone(),
            TargetKind::Alertmanager => {
                let base = self.url.trim_end_matches('/');
                if base.ends_with("/api/v2/alerts") {
                    base.to_string()
                } else {
                    format!("{base}/api/v2/alerts")
                }
            }
        }
    }
}

/// Retries of one delivery: `attempts` in all, waiting `initial_backoff`, doubled each time up to
/// `max_backoff`, between them. Connection errors, timeouts, 429 and 5xx are retried; other
/// statuses are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Delivery figures of one target, for the API and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStats {
    pub kind: TargetKind,
    pub url: String,
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts given up on after the last attempt.
    pub failed: u64,
    /// HTTP requests made, retries included.
    pub requests: u64,
    pub retries: u64,
    pub last_error: Option<String>,
}

/// Sends alerts to every target.
#[derive(Debug)]
pub struct Notifier {
    client: reqwest::Client,
    targets: Vec<(Target, Counters)>,
    retry: RetryPolicy,
    receiver: String,
    external_url: String,
}

impl Notifier {
    /// A notifier for `targets`; `external_url` is Hourglass' own URL (webhook `externalURL`),
    /// `receiver` the webhook's `receiver` name.
    pub fn new(
        targets: Vec<Target>,
        retry: RetryPolicy,
        external_url: &str,
        receiver: &str,
    ) -> Result<Self, String> {
        for t in &targets {
            let url = t.post_url();
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| format!("notification target `{}`: {e}", t.url))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "notification target `{}`: not an http(s) URL",
                    t.url
                ));
            }
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client for notifications: {e}"))?;
        Ok(Notifier {
            client,
            targets: targets
                .into_iter()
                .map(|t| (t, Counters::default()))
                .collect(),
            retry,
            receiver: receiver.to_string(),
            external_url: external_url.to_string(),
        })
    }

    /// Whether there is any target at all.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Sends one rule's alerts to every target concurrently, with retries; returns when all are
    /// delivered or given up on.
    pub async fn notify(&self, rule: &str, alerts: &[PostableAlert], now: Millis) {
        if alerts.is_empty() {
            return;
        }
        let sends = self.targets.iter().map(|(target, counters)| async move {
            match target.kind {
                TargetKind::Alertmanager => {
                    for batch in alerts.chunks(BATCH_SIZE) {
                        self.deliver(target, counters, batch, batch.len()).await;
                    }
                }
                TargetKind::Webhook => {
                    let payload =
                        webhook_payload(rule, alerts, &self.receiver, &self.external_url, now);
                    self.deliver(target, counters, &payload, alerts.len()).await;
                }
            }
        });
        futures::future::join_all(sends).await;
    }

    async fn deliver<B: Serialize + ?Sized>(
        &self,
        target: &Target,
        counters: &Counters,
        body: &B,
        count: usize,
    ) {
        let url = target.post_url();
        let mut backoff = self.retry.initial_backoff;
        let attempts = self.retry.attempts.max(1);
        for attempt in 1..=attempts {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let (error, retryable) = match self.client.post(&url).json(body).send().await {
                Ok(resp) if resp.status().is_success() => {
                    counters.sent.fetch_add(count as u64, Ordering::Relaxed);
                    return;
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let retryable = status.is_server_error() || status.as_u16() == 429;
                    (format!("{url}: HTTP {status}: {}", text.trim()), retryable)
                }
                Err(e) => (format!("{url}: {e}"), true),
            };
            *counters.last_error.lock() = Some(error.clone());
            if !retryable || attempt == attempts {
                tracing::warn!(target = %url, attempts = attempt, error, "alert notification failed");
                counters.failed.fetch_add(count as u64, Ordering::Relaxed);
                return;
            }
            counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    /// The delivery figures of every target.
    pub fn stats(&self) -> Vec<TargetStats> {
        self.targets
            .iter()
            .map(|(t, c)| TargetStats {
                kind: t.kind,
                url: t.url.clone(),
                sent: c.sent.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
                requests: c.requests.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                last_error: c.last_error.lock().clone(),
            })
            .collect()
    }
}

/// Alertmanager's webhook message (version 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
    pub status: String,
    pub receiver: String,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a webhook message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// The webhook message of one rule's alerts: grouped by `alertname`, status `firing` if any
/// alert is firing (its `endsAt` after `now`), else `resolved`.
pub fn webhook_payload(
    rule: &str,
    alerts: &[PostableAlert],
    receiver: &str,
    external_url: &str,
    now: Millis,
) -> WebhookMessage {
    let now_text = rfc3339(now);
    let alerts: Vec<WebhookAlert> = alerts
        .iter()
        .map(|a| WebhookAlert {
            // RFC 3339 in UTC with fixed millisecond precision sorts as text.
            status: if a.ends_at > now_text {
                "firing"
            } else {
                "resolved"
            }
            .into(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.starts_at.clone(),
            ends_at: a.ends_at.clone(),
            generator_url: a.generator_url.clone(),
            fingerprint: format!("{:016x}", fingerprint(&a.labels)),
        })
        .collect();
    let common = |get: fn(&WebhookAlert) -> &Labels| -> Labels {
        let mut iter = alerts.iter();
        let mut common = iter.next().map(|a| get(a).clone()).unwrap_or_default();
        for a in iter {
            common.retain(|k, v| get(a).get(k) == Some(v));
        }
        common
    };
    let group_labels: Labels = [("alertname".to_string(), rule.to_string())].into();
    let status = if alerts.iter().any(|a| a.status == "firing") {
        "firing"
    } else {
        "resolved"
    };
    WebhookMessage {
        version: "4".into(),
        group_key: format!("{{}}:{{alertname={rule:?}}}"),
        truncated_alerts: 0,
        status: status.into(),
        receiver: receiver.to_string(),
        common_labels: common(|a| &a.labels),
        common_annotations: common(|a| &a.annotations),
        group_labels,
        external_url: external_url.to_string(),
        alerts,
    }
}

/// Alertmanager's fingerprint of a label set: FNV-1a 64 over each name and value, each followed
/// by the byte 0xff, in name order (Prometheus' `LabelsToSignature`).
pub fn fingerprint(labels: &Labels) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain(std::iter::once(&0xffu8)) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, value) in labels {
        eat(name.as_bytes());
        eat(value.as_bytes());
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::AlertState;
    use std::sync::Arc;

    const T0: Millis = 1_700_000_000_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn alert(host: &str, resolved: bool) -> PostableAlert {
        PostableAlert::from_alert(
            &Alert {
                labels: labels(&[("alertname", "High"), ("host", host), ("severity", "page")]),
                annotations: labels(&[("summary", host)]),
                value: Some(1.0),
                state: if resolved {
                    AlertState::Inactive
                } else {
                    AlertState::Firing
                },
                active_at: T0,
                fired_at: Some(T0 + 10_000),
                resolved_at: resolved.then_some(T0 + 60_000),
                last_sent_at: Some(T0 + 60_000),
                keep_firing_since: None,
                valid_until: Some(T0 + 300_000),
            },
            "http://hg:8086/api/v3/alert_rules/High",
        )
    }

    #[test]
    fn postable_alert_shape() {
        let json = serde_json::to_value(alert("a", false)).unwrap_or_default();
        assert_eq!(json["startsAt"], "2023-11-14T22:13:30.000Z");
        assert_eq!(
            json["endsAt"], "2023-11-14T22:18:20.000Z",
            "valid_until while firing"
        );
        assert_eq!(json["labels"]["alertname"], "High");
        assert_eq!(
            json["generatorURL"],
            "http://hg:8086/api/v3/alert_rules/High"
        );
        let resolved = serde_json::to_value(alert("a", true)).unwrap_or_default();
        assert_eq!(
            resolved["endsAt"], "2023-11-14T22:14:20.000Z",
            "resolved_at on resolve"
        );
    }

    #[test]
    fn webhook_message_shape() {
        let now = T0 + 60_000;
        let msg = webhook_payload(
            "High",
            &[alert("a", false), alert("b", true)],
            "hourglass",
            "http://hg:8086",
            now,
        );
        let json = serde_json::to_value(&msg).unwrap_or_default();
        assert_eq!(json["version"], "4");
        assert_eq!(json["status"], "firing");
        assert_eq!(json["groupKey"], "{}:{alertname=\"High\"}");
        assert_eq!(json["receiver"], "hourglass");
        assert_eq!(json["externalURL"], "http://hg:8086");
        assert_eq!(json["truncatedAlerts"], 0);
        assert_eq!(
            json["groupLabels"],
            serde_json::json!({"alertname": "High"})
        );
        assert_eq!(
            json["commonLabels"],
            serde_json::json!({"alertname": "High", "severity": "page"})
        );
        assert_eq!(json["commonAnnotations"], serde_json::json!({}));
        assert_eq!(json["alerts"][0]["status"], "firing");
        assert_eq!(json["alerts"][1]["status"], "resolved");
        assert_eq!(
            json["alerts"][0]["fingerprint"].as_str().map(str::len),
            Some(16)
        );
        assert_ne!(
            json["alerts"][0]["fingerprint"],
            json["alerts"][1]["fingerprint"]
        );
        let resolved = webhook_payload("High", &[alert("b", true)], "r", "", now);
        assert_eq!(resolved.status, "resolved");
    }

    #[test]
    fn fingerprint_is_prometheus_signature() {
        // FNV-1a 64 of the empty input is the offset basis; Prometheus' signature of no labels.
        assert_eq!(fingerprint(&Labels::new()), 0xcbf2_9ce4_8422_2325);
        let a = fingerprint(&labels(&[("a", "b")]));
        assert_ne!(a, fingerprint(&labels(&[("ab", "")])), "separators matter");
    }

    #[test]
    fn alertmanager_url() {
        let t = |url: &str| {
            Target {
                kind: TargetKind::Alertmanager,
                url: url.into(),
            }
            .post_url()
        };
        assert_eq!(t("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(t("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            t("http://am:9093/api/v2/alerts"),
            "http://am:9093/api/v2/alerts"
        );
        assert!(Notifier::new(
            vec![Target {
                kind: TargetKind::Webhook,
                url: "ftp://x".into()
            }],
            RetryPolicy::default(),
            "",
            "r"
        )
        .is_err());
    }

    /// A local server answering with the given statuses in turn (then 200), recording bodies.
    async fn server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
        use axum::http::StatusCode;
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses.into_iter()));
        let seen = bodies.clone();
        let app = axum::Router::new().fallback(axum::routing::post(
            move |axum::Json(body): axum::Json<serde_json::Value>| {
                let seen = seen.clone();
                let statuses = statuses.clone();
                async move {
                    seen.lock().push(body);
                    let code = statuses.lock().next().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), bodies)
    }

    fn fast_retry(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn retries_server_errors_then_delivers() {
        let (url, bodies) = server(vec![503, 500]).await;
        let n = Notifier::new(
            vec![Target {
                kind: TargetKind::Alertmanager,
                url,
            }],
            fast_retry(3),
            "",
            "r",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        n.notify("High", &[alert("a", false), alert("b", false)], T0)
            .await;
        let s = &n.stats()[0];
        assert_eq!((s.sent, s.failed, s.requests, s.retries), (2, 0, 3, 2));
        assert!(
            s.last_error.as_deref().is_some_and(|e| e.contains("500")),
            "{s:?}"
        );
        let bodies = bodies.lock();
        assert_eq!(bodies.len(), 3);
        assert_eq!(
            bodies[2].as_array().map(Vec::len),
            Some(2),
            "a JSON array of alerts"
        );
        assert_eq!(bodies[2][0]["labels"]["host"], "a");
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_give_up_counts() {
        let (url, bodies) = server(vec![400]).await;
        let (url2, _) = server(vec![503, 503, 503]).await;
        let n = Notifier::new(
            vec![
                Target {
                    kind: TargetKind::Alertmanager,
                    url,
                },
                Target {
                    kind: TargetKind::Webhook,
                    url: url2,
                },
            ],
            fast_retry(3),
            "http://hg",
            "r",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        n.notify("High", &[alert("a", false)], T0).await;
        let s = n.stats();
        assert_eq!((s[0].sent, s[0].failed, s[0].requests), (0, 1, 1));
        assert_eq!(bodies.lock().len(), 1);
        assert_eq!(
            (s[1].sent, s[1].failed, s[1].requests, s[1].retries),
            (0, 1, 3, 2)
        );
    }

    #[tokio::test]
    async fn webhook_receives_alertmanager_message() {
        let (url, bodies) = server(vec![]).await;
        let n = Notifier::new(
            vec![Target {
                kind: TargetKind::Webhook,
                url,
            }],
            fast_retry(1),
            "http://hg",
            "hourglass",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        n.notify("High", &[alert("a", false)], T0 + 60_000).await;
        let bodies = bodies.lock();
        assert_eq!(bodies[0]["version"], "4");
        assert_eq!(bodies[0]["alerts"][0]["labels"]["host"], "a");
        assert_eq!(n.stats()[0].sent, 1);
    }

    #[tokio::test]
    async fn unreachable_target_fails_after_retries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        drop(listener);
        let n = Notifier::new(
            vec![Target {
                kind: TargetKind::Alertmanager,
                url,
            }],
            fast_retry(2),
            "",
            "r",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        n.notify("High", &[alert("a", false)], T0).await;
        let s = &n.stats()[0];
        assert_eq!((s.sent, s.failed, s.requests, s.retries), (0, 1, 2, 1));
        assert!(s.last_error.is_some());
    }
}
