//! The queue between rule evaluation and notification delivery, as Prometheus' notifier has one:
//! an evaluation hands its alerts over and goes on; one task sends them, in the order they were
//! handed over, through the [`Notifier`] (with its retries). A target that hangs or refuses
//! delays only deliveries, never the evaluation of this rule or of others (before, a target
//! timing out held an evaluation slot for up to 45 s). Bounded: past [`QUEUE_CAPACITY`] batches
//! the oldest is dropped, counted and logged, as Prometheus drops the oldest alerts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::alertmanager::{Notifier, PostableAlert};
use crate::Millis;

/// Batches (one rule's alerts of one evaluation) waiting at most.
pub const QUEUE_CAPACITY: usize = 10_000;

struct Job {
    rule: String,
    alerts: Vec<PostableAlert>,
    now: Millis,
}

struct Shared {
    jobs: Mutex<VecDeque<Job>>,
    wake: Notify,
    /// Batches enqueued and not yet delivered (or given up on, or dropped).
    unfinished: AtomicUsize,
    dropped: AtomicU64,
    closed: AtomicBool,
    capacity: usize,
}

/// The queue; its sending task ends when the queue is dropped, after what it holds is sent.
pub struct DeliveryQueue {
    shared: Arc<Shared>,
}

impl DeliveryQueue {
    /// Starts the sending task (on the current tokio runtime).
    pub fn start(notifier: Arc<Notifier>, capacity: usize) -> DeliveryQueue {
        let shared = Arc::new(Shared {
            jobs: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            unfinished: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            capacity: capacity.max(1),
        });
        let worker = shared.clone();
        tokio::spawn(async move {
            loop {
                let job = worker.jobs.lock().pop_front();
                match job {
                    Some(job) => {
                        notifier.notify(&job.rule, &job.alerts, job.now).await;
                        worker.unfinished.fetch_sub(1, Ordering::SeqCst);
                    }
                    None if worker.closed.load(Ordering::SeqCst) => return,
                    // notify_one stores a permit when nobody waits: no wake-up is lost.
                    None => worker.wake.notified().await,
                }
            }
        });
        DeliveryQueue { shared }
    }

    /// Hands one rule's alerts over; never waits.
    pub fn enqueue(&self, rule: &str, alerts: Vec<PostableAlert>, now: Millis) {
        if alerts.is_empty() {
            return;
        }
        self.shared.unfinished.fetch_add(1, Ordering::SeqCst);
        let dropped = {
            let mut jobs = self.shared.jobs.lock();
            jobs.push_back(Job {
                rule: rule.to_string(),
                alerts,
                now,
            });
            if jobs.len() > self.shared.capacity {
                jobs.pop_front()
            } else {
                None
            }
        };
        if let Some(old) = dropped {
            self.shared.unfinished.fetch_sub(1, Ordering::SeqCst);
            let total = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                rule = %old.rule,
                alerts = old.alerts.len(),
                dropped_total = total,
                "alert notification queue full: the oldest batch was dropped"
            );
        }
        self.shared.wake.notify_one();
    }

    /// Batches dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Batches waiting or being sent.
    pub fn unfinished(&self) -> usize {
        self.shared.unfinished.load(Ordering::SeqCst)
    }

    /// Waits until everything handed over has been delivered or given up on.
    pub async fn idle(&self) {
        while self.unfinished() > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for DeliveryQueue {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alertmanager::{RetryPolicy, Target, TargetKind};

    fn alert(name: &str) -> PostableAlert {
        PostableAlert {
            labels: BTreeMap::from([("alertname".to_string(), name.to_string())]),
            annotations: BTreeMap::new(),
            starts_at: crate::rfc3339(0),
            ends_at: crate::rfc3339(1),
            generator_url: String::new(),
        }
    }

    /// A target that accepts connections and never answers: enqueue still returns at once,
    /// and the batches beyond the capacity are dropped oldest first.
    #[tokio::test]
    async fn a_hanging_target_never_blocks_enqueue_and_the_queue_is_bounded() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let notifier = Notifier::new(
            vec![Target {
                kind: TargetKind::Alertmanager,
                url,
            }],
            RetryPolicy::default(),
            "http://hg",
            "hourglass",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let queue = DeliveryQueue::start(Arc::new(notifier), 3);
        queue.enqueue("r0", vec![alert("A")], 0);
        tokio::time::sleep(Duration::from_millis(50)).await; // being sent: hangs
        let started = std::time::Instant::now();
        for i in 1..10 {
            queue.enqueue(&format!("r{i}"), vec![alert("A")], 0);
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        // One batch is being sent; of the nine behind it, the six oldest were dropped.
        assert_eq!(queue.dropped(), 6);
        assert_eq!(queue.unfinished(), 4);
        drop(listener);
    }

    #[tokio::test]
    async fn batches_are_sent_in_order_and_idle_waits_for_them() {
        use axum::routing::post;
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().route(
            "/api/v2/alerts",
            post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let record = record.clone();
                async move {
                    let name = body[0]["labels"]["alertname"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    record.lock().push(name);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let notifier = Notifier::new(
            vec![Target {
                kind: TargetKind::Alertmanager,
                url: format!("http://{addr}"),
            }],
            RetryPolicy::default(),
            "http://hg",
            "hourglass",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let queue = DeliveryQueue::start(Arc::new(notifier), 100);
        for name in ["A", "B", "C", "D"] {
            queue.enqueue(name, vec![alert(name)], 0);
        }
        tokio::time::timeout(Duration::from_secs(10), queue.idle())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(*seen.lock(), ["A", "B", "C", "D"]);
        assert_eq!(queue.dropped(), 0);
    }
}
