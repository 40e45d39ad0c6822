//! A generator of TSBS cpu-only data (timescale/tsbs `devops` use case) as line protocol:
//! per host 10 tags and 10 integer fields that are clamped random walks, one row per host every
//! interval, rows ordered by time then host. Deterministic from a seed.

/// A small deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];
pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// One simulated host.
#[derive(Debug, Clone)]
struct Host {
    series_key: String,
    values: [f64; 10],
}

/// TSBS cpu-only data for `hosts` hosts from `start_ns`, one row per host every `interval_ns`.
#[derive(Debug)]
pub struct CpuOnly {
    hosts: Vec<Host>,
    rng: Rng,
    pub start_ns: i64,
    pub interval_ns: i64,
}

impl CpuOnly {
    pub fn new(hosts: usize, start_ns: i64, interval_ns: i64, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let hosts = (0..hosts)
            .map(|i| {
                let (region, zones) = REGIONS[rng.below(REGIONS.len() as u64) as usize];
                let dc = zones[rng.below(zones.len() as u64) as usize];
                let series_key = format!(
                    "cpu,hostname=host_{i},region={region},datacenter={dc},rack={},os={},arch={},team={},service={},service_version={},service_environment={}",
                    rng.below(100),
                    OSES[rng.below(3) as usize],
                    ARCHES[rng.below(2) as usize],
                    TEAMS[rng.below(4) as usize],
                    rng.below(20),
                    rng.below(2),
                    ENVIRONMENTS[rng.below(3) as usize],
                );
                let mut values = [0.0; 10];
                for v in &mut values {
                    *v = rng.unit() * 100.0;
                }
                Host { series_key, values }
            })
            .collect();
        CpuOnly {
            hosts,
            rng,
            start_ns,
            interval_ns,
        }
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Appends the rows of time step `step` (every host once) to `out`.
    pub fn write_step(&mut self, step: i64, out: &mut String) {
        use std::fmt::Write;
        let ts = self.start_ns + step * self.interval_ns;
        for h in &mut self.hosts {
            out.push_str(&h.series_key);
            out.push(' ');
            for (i, v) in h.values.iter_mut().enumerate() {
                *v = (*v + self.rng.normal()).clamp(0.0, 100.0);
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}={}i", FIELDS[i], v.round() as i64);
            }
            let _ = writeln!(out, " {ts}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_ten_tags_and_ten_integer_fields_and_are_deterministic() {
        let mut a = CpuOnly::new(3, 0, 10_000_000_000, 7);
        let mut b = CpuOnly::new(3, 0, 10_000_000_000, 7);
        let (mut sa, mut sb) = (String::new(), String::new());
        a.write_step(1, &mut sa);
        b.write_step(1, &mut sb);
        assert_eq!(sa, sb);
        let line = sa.lines().next().unwrap();
        let (series, rest) = line.split_once(' ').unwrap();
        assert_eq!(series.split(',').count(), 11);
        let (fields, ts) = rest.split_once(' ').unwrap();
        assert_eq!(ts, "10000000000");
        assert_eq!(fields.split(',').count(), 10);
        assert!(fields.split(',').all(|f| f.ends_with('i')));
    }
}
