//! Connection admission, shared by the HTTP and PostgreSQL listeners.
//!
//! Every accepted connection asks [`Admission::try_admit`] for a [`Permit`] before anything else
//! is done with it. Two limits apply, over both protocols together:
//!
//! * a global limit ([`ConnectionLimits::max_connections`]), kept below the process's open-file
//!   limit so that the storage engine (WAL segments, Parquet files, the catalog) always finds a
//!   descriptor: [`automatic_max_connections`] derives it from the open-file limit;
//! * a limit per peer address ([`ConnectionLimits::max_per_peer`]), so one client cannot take the
//!   whole global pool. IPv4-mapped IPv6 addresses count as their IPv4 address, and an IPv6 peer
//!   counts by its /64 prefix (the block one host or one customer is given).
//!
//! A refused connection is closed by the listener at once. The permit is released when it is
//! dropped, i.e. when the connection's task ends, however it ends. [`Admission::metrics_text`]
//! renders the counters for `/metrics`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Connections one peer address may hold by default.
///
/// Far above what one ordinary client holds (connection pools of Grafana, JDBC or psycopg hold
/// tens; Telegraf a handful), enough for a few pooled hosts behind one NAT address, and small
/// next to the automatic global limit (15,000 with 20,000 descriptors), so exhausting the pool
/// takes dozens of addresses.
pub const DEFAULT_MAX_PER_PEER: usize = 256;

/// Descriptors kept for storage at least (WAL segments, Parquet files being written and read,
/// the catalog, the audit log), whatever the open-file limit.
pub const MIN_STORAGE_RESERVE: u64 = 1024;

/// The automatic limit never exceeds this (with an unlimited open-file limit).
pub const MAX_AUTOMATIC_CONNECTIONS: u64 = 1 << 20;

/// The two interfaces that share the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Postgres,
}

impl Protocol {
    fn index(self) -> usize {
        match self {
            Protocol::Http => 0,
            Protocol::Postgres => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Postgres => "postgres",
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The global limit is reached.
    TooManyConnections,
    /// The peer address holds its share already.
    TooManyFromPeer,
}

impl Refusal {
    fn index(self) -> usize {
        match self {
            Refusal::TooManyConnections => 0,
            Refusal::TooManyFromPeer => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Refusal::TooManyConnections => "max_connections",
            Refusal::TooManyFromPeer => "max_connections_per_peer",
        }
    }
}

/// The limits. `max_per_peer == 0` means no per-peer limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_per_peer: usize,
}

impl ConnectionLimits {
    /// No limit at all (embedded servers and tests that bring their own).
    pub const UNLIMITED: ConnectionLimits = ConnectionLimits {
        max_connections: usize::MAX,
        max_per_peer: 0,
    };
}

/// Descriptors reserved for storage under an open-file limit: a quarter of it, at least
/// [`MIN_STORAGE_RESERVE`].
pub fn storage_reserve(open_file_limit: u64) -> u64 {
    MIN_STORAGE_RESERVE.max(open_file_limit / 4)
}

/// The global limit for an open-file limit: what is left after [`storage_reserve`]. With a small
/// limit (under 2,048) half of it is left for connections instead.
pub fn automatic_max_connections(open_file_limit: u64) -> usize {
    let limit = open_file_limit.min(MAX_AUTOMATIC_CONNECTIONS * 2);
    let left = limit
        .saturating_sub(storage_reserve(limit))
        .max(limit / 2)
        .clamp(1, MAX_AUTOMATIC_CONNECTIONS);
    usize::try_from(left).unwrap_or(usize::MAX)
}

/// The global limit to use: `configured` (0: automatic), never above the automatic ceiling when
/// the open-file limit is known. The second value is true when `configured` was lowered.
pub fn effective_max_connections(configured: usize, open_file_limit: Option<u64>) -> (usize, bool) {
    let ceiling = open_file_limit.map(automatic_max_connections);
    match (configured, ceiling) {
        (0, Some(ceiling)) => (ceiling, false),
        (0, None) => (usize::MAX, false),
        (n, Some(ceiling)) if n > ceiling => (ceiling, true),
        (n, _) => (n, false),
    }
}

/// The address a peer is counted under.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

struct Inner {
    limits: ConnectionLimits,
    /// Open connections per peer key, and in all (changed under the lock only).
    peers: Mutex<HashMap<IpAddr, usize>>,
    open: AtomicUsize,
    open_by_protocol: [AtomicUsize; 2],
    accepted: [AtomicU64; 2],
    /// `[protocol][reason]`.
    refused: [[AtomicU64; 2]; 2],
}

impl Inner {
    fn peers(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map stays consistent under a panic elsewhere: every change is one statement.
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The admission control of one server (cheap to clone: all clones share the counts).
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("limits", &self.inner.limits)
            .field("open", &self.open())
            .finish()
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(ConnectionLimits::UNLIMITED)
    }
}

impl Admission {
    pub fn new(limits: ConnectionLimits) -> Self {
        Admission {
            inner: Arc::new(Inner {
                limits,
                peers: Mutex::new(HashMap::new()),
                open: AtomicUsize::new(0),
                open_by_protocol: Default::default(),
                accepted: Default::default(),
                refused: Default::default(),
            }),
        }
    }

    pub fn limits(&self) -> ConnectionLimits {
        self.inner.limits
    }

    /// Admits a connection from `peer`, or says which limit refuses it.
    pub fn try_admit(&self, peer: IpAddr, protocol: Protocol) -> Result<Permit, Refusal> {
        let inner = &self.inner;
        let key = peer_key(peer);
        let refusal = {
            let mut peers = inner.peers();
            let from_peer = peers.get(&key).copied().unwrap_or(0);
            if inner.open.load(Ordering::Relaxed) >= inner.limits.max_connections {
                Some(Refusal::TooManyConnections)
            } else if inner.limits.max_per_peer > 0 && from_peer >= inner.limits.max_per_peer {
                Some(Refusal::TooManyFromPeer)
            } else {
                peers.insert(key, from_peer + 1);
                inner.open.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        if let Some(refusal) = refusal {
            inner.refused[protocol.index()][refusal.index()].fetch_add(1, Ordering::Relaxed);
            return Err(refusal);
        }
        inner.open_by_protocol[protocol.index()].fetch_add(1, Ordering::Relaxed);
        inner.accepted[protocol.index()].fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            inner: self.inner.clone(),
            key,
            protocol,
        })
    }

    /// Connections open now, over both protocols.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Connections open now over one protocol.
    pub fn open_for(&self, protocol: Protocol) -> usize {
        self.inner.open_by_protocol[protocol.index()].load(Ordering::Relaxed)
    }

    /// Connections refused so far for one reason over one protocol.
    pub fn refused(&self, protocol: Protocol, refusal: Refusal) -> u64 {
        self.inner.refused[protocol.index()][refusal.index()].load(Ordering::Relaxed)
    }

    /// Connections open now from one peer (by its counting key).
    pub fn open_from(&self, peer: IpAddr) -> usize {
        self.inner
            .peers()
            .get(&peer_key(peer))
            .copied()
            .unwrap_or(0)
    }

    /// The counters in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let inner = &self.inner;
        let mut out = String::new();
        out.push_str(
            "# HELP hourglass_connections_open Client connections open (HTTP and PostgreSQL).\n\
             # TYPE hourglass_connections_open gauge\n",
        );
        for p in [Protocol::Http, Protocol::Postgres] {
            out.push_str(&format!(
                "hourglass_connections_open{{protocol=\"{}\"}} {}\n",
                p.name(),
                self.open_for(p)
            ));
        }
        out.push_str(&format!(
            "# HELP hourglass_connections_max The limit of open connections over both protocols.\n\
             # TYPE hourglass_connections_max gauge\n\
             hourglass_connections_max {}\n\
             # HELP hourglass_connections_max_per_peer The limit per peer address (0: none).\n\
             # TYPE hourglass_connections_max_per_peer gauge\n\
             hourglass_connections_max_per_peer {}\n\
             # HELP hourglass_connections_accepted_total Connections admitted.\n\
             # TYPE hourglass_connections_accepted_total counter\n",
            inner.limits.max_connections, inner.limits.max_per_peer
        ));
        for p in [Protocol::Http, Protocol::Postgres] {
            out.push_str(&format!(
                "hourglass_connections_accepted_total{{protocol=\"{}\"}} {}\n",
                p.name(),
                inner.accepted[p.index()].load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP hourglass_connections_refused_total Connections closed at once by a limit.\n\
             # TYPE hourglass_connections_refused_total counter\n",
        );
        for p in [Protocol::Http, Protocol::Postgres] {
            for r in [Refusal::TooManyConnections, Refusal::TooManyFromPeer] {
                out.push_str(&format!(
                    "hourglass_connections_refused_total{{protocol=\"{}\",reason=\"{}\"}} {}\n",
                    p.name(),
                    r.name(),
                    self.refused(p, r)
                ));
            }
        }
        out
    }
}

/// One admitted connection; dropping it frees its place.
pub struct Permit {
    inner: Arc<Inner>,
    key: IpAddr,
    protocol: Protocol,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("peer", &self.key)
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let inner = &self.inner;
        {
            let mut peers = inner.peers();
            match peers.get_mut(&self.key) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    peers.remove(&self.key);
                }
                None => {}
            }
            inner.open.fetch_sub(1, Ordering::Relaxed);
        }
        inner.open_by_protocol[self.protocol.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn global_and_per_peer_limits() {
        let a = Admission::new(ConnectionLimits {
            max_connections: 5,
            max_per_peer: 2,
        });
        let p1 = a.try_admit(ip("10.0.0.1"), Protocol::Http).unwrap();
        let _p2 = a.try_admit(ip("10.0.0.1"), Protocol::Postgres).unwrap();
        assert_eq!(
            a.try_admit(ip("10.0.0.1"), Protocol::Http).unwrap_err(),
            Refusal::TooManyFromPeer
        );
        let _others: Vec<_> = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
            .iter()
            .map(|p| a.try_admit(ip(p), Protocol::Http).unwrap())
            .collect();
        assert_eq!(a.open(), 5);
        assert_eq!(
            a.try_admit(ip("10.0.0.5"), Protocol::Http).unwrap_err(),
            Refusal::TooManyConnections
        );
        drop(p1);
        assert_eq!(a.open(), 4);
        assert_eq!(a.open_from(ip("10.0.0.1")), 1);
        let _again = a.try_admit(ip("10.0.0.1"), Protocol::Http).unwrap();
        assert_eq!(a.open_for(Protocol::Http), 4);
        assert_eq!(a.open_for(Protocol::Postgres), 1);
        assert_eq!(a.refused(Protocol::Http, Refusal::TooManyFromPeer), 1);
        assert_eq!(a.refused(Protocol::Http, Refusal::TooManyConnections), 1);
        let text = a.metrics_text();
        assert!(text.contains("hourglass_connections_open{protocol=\"http\"} 4\n"));
        assert!(text.contains(
            "hourglass_connections_refused_total{protocol=\"http\",reason=\"max_connections\"} 1\n"
        ));
    }

    #[test]
    fn permits_are_released_and_peers_forgotten() {
        let a = Admission::new(ConnectionLimits {
            max_connections: 100,
            max_per_peer: 1,
        });
        for _ in 0..10 {
            let p = a.try_admit(ip("192.0.2.7"), Protocol::Http).unwrap();
            assert!(a.try_admit(ip("192.0.2.7"), Protocol::Http).is_err());
            drop(p);
        }
        assert_eq!(a.open(), 0);
        assert!(a.inner.peers().is_empty());
    }

    #[test]
    fn ipv6_peers_count_by_prefix_and_mapped_as_v4() {
        let a = Admission::new(ConnectionLimits {
            max_connections: 100,
            max_per_peer: 1,
        });
        let _p = a.try_admit(ip("2001:db8:1:2::1"), Protocol::Http).unwrap();
        assert_eq!(
            a.try_admit(ip("2001:db8:1:2::ffff"), Protocol::Http)
                .unwrap_err(),
            Refusal::TooManyFromPeer
        );
        let _q = a.try_admit(ip("2001:db8:1:3::1"), Protocol::Http).unwrap();
        let _v4 = a.try_admit(ip("192.0.2.1"), Protocol::Http).unwrap();
        assert!(a.try_admit(ip("::ffff:192.0.2.1"), Protocol::Http).is_err());
    }

    #[test]
    fn unlimited_admits_everything() {
        let a = Admission::default();
        let permits: Vec<_> = (0..1000)
            .map(|_| a.try_admit(ip("127.0.0.1"), Protocol::Http).unwrap())
            .collect();
        assert_eq!(a.open(), 1000);
        drop(permits);
        assert_eq!(a.open(), 0);
    }

    #[test]
    fn automatic_limit_reserves_descriptors_for_storage() {
        assert_eq!(automatic_max_connections(20_000), 15_000);
        assert_eq!(automatic_max_connections(4096), 3072);
        assert_eq!(automatic_max_connections(2048), 1024);
        assert_eq!(automatic_max_connections(1024), 512);
        assert_eq!(automatic_max_connections(1_048_576), 786_432);
        assert_eq!(
            automatic_max_connections(u64::MAX),
            MAX_AUTOMATIC_CONNECTIONS as usize
        );
        assert_eq!(automatic_max_connections(1), 1);
        assert_eq!(effective_max_connections(0, Some(20_000)), (15_000, false));
        assert_eq!(effective_max_connections(100, Some(20_000)), (100, false));
        assert_eq!(
            effective_max_connections(19_000, Some(20_000)),
            (15_000, true)
        );
        assert_eq!(effective_max_connections(7, None), (7, false));
        assert_eq!(effective_max_connections(0, None), (usize::MAX, false));
    }
}
