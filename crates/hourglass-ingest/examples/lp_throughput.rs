//! Line protocol decoding throughput on TSBS cpu-only data.
//!
//! Generates the TSBS `cpu-only` use case (1,000 hosts x 100 timestamps 10 s apart, 10 tags and
//! 10 integer fields per line), cuts it into bodies of 5,000 lines, decodes them over and over on
//! one thread and prints lines/s and MB/s. Run in release:
//!
//! ```text
//! cargo run --release -p hourglass-ingest --example lp_throughput [seconds [hosts [lines/body]]]
//! ```
//!
//! With other host counts the data keeps about 100,000 lines (at least one timestamp): at
//! 100,000 hosts no series repeats within a body, as in the side-by-side cardinality run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hourglass_ingest::{parse_line_protocol, LineProtocolOptions, NoExistingTables};

const HOSTS: usize = 1_000;
const LINES: usize = 100_000;
const LINES_PER_BODY: usize = 5_000;
const START_NS: i64 = 1_451_606_400_000_000_000; // 2016-01-01T00:00:00Z
const INTERVAL_NS: i64 = 10_000_000_000;

const REGIONS: [&str; 9] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "test"];
const FIELDS: [&str; 10] = [
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

/// xorshift64*: a small deterministic generator, enough for benchmark data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bodies of `lines_per_body` lines each, in TSBS order (all hosts for each timestamp).
fn generate(hosts: usize, timestamps: usize, lines_per_body: usize) -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tags: Vec<String> = (0..hosts)
        .map(|h| {
            let region = REGIONS[rng.below(REGIONS.len())];
            let az = ["a", "b", "c"][rng.below(3)];
            format!(
                "hostname=host_{h},region={region},datacenter={region}{az},rack={},os={},arch={},\
                 team={},service={},service_version={},service_environment={}",
                rng.below(100),
                OSES[rng.below(OSES.len())],
                ARCHES[rng.below(ARCHES.len())],
                TEAMS[rng.below(TEAMS.len())],
                rng.below(20),
                rng.below(2),
                ENVIRONMENTS[rng.below(ENVIRONMENTS.len())],
            )
        })
        .collect();
    let mut usage: Vec<[i64; 10]> = (0..hosts)
        .map(|_| std::array::from_fn(|_| rng.below(101) as i64))
        .collect();
    let mut bodies = Vec::new();
    let mut body = String::new();
    let mut lines = 0;
    for t in 0..timestamps {
        let time = START_NS + t as i64 * INTERVAL_NS;
        for (h, host_tags) in tags.iter().enumerate() {
            body.push_str("cpu,");
            body.push_str(host_tags);
            for (i, field) in FIELDS.iter().enumerate() {
                let v = &mut usage[h][i];
                *v = (*v + rng.below(11) as i64 - 5).clamp(0, 100);
                let sep = if i == 0 { ' ' } else { ',' };
                let _ = write!(body, "{sep}{field}={v}i");
            }
            let _ = writeln!(body, " {time}");
            lines += 1;
            if lines == lines_per_body {
                bodies.push(std::mem::take(&mut body));
                lines = 0;
            }
        }
    }
    if !body.is_empty() {
        bodies.push(body);
    }
    bodies
}

fn main() {
    let arg = |n: usize| std::env::args().nth(n).and_then(|s| s.parse::<f64>().ok());
    let seconds = arg(1).unwrap_or(5.0);
    let hosts = arg(2).map_or(HOSTS, |h| h as usize).max(1);
    let lines_per_body = arg(3).map_or(LINES_PER_BODY, |n| n as usize).max(1);
    let timestamps = (LINES / hosts).max(1);
    let bodies = generate(hosts, timestamps, lines_per_body);
    let bytes: usize = bodies.iter().map(String::len).sum();
    let lines = hosts * timestamps;
    println!(
        "TSBS cpu-only: {hosts} hosts, {lines} lines in {} bodies of {lines_per_body} lines, {:.1} MB ({:.0} bytes/line)",
        bodies.len(),
        bytes as f64 / 1e6,
        bytes as f64 / lines as f64
    );
    // Nanosecond timestamps, as TSBS writes them.
    let options = LineProtocolOptions::default();

    // Check once that everything decodes.
    let accepted: usize = bodies
        .iter()
        .map(|b| {
            let outcome = parse_line_protocol(b.as_bytes(), &options, &NoExistingTables);
            assert!(outcome.errors.is_empty(), "{:?}", outcome.errors.first());
            outcome.lines_accepted
        })
        .sum();
    assert_eq!(accepted, lines);

    // Rounds of about one second each; the best round is the least disturbed by other work on
    // the machine, the median shows the spread.
    let rounds = (seconds.ceil() as usize).max(1);
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let mut passes = 0usize;
        while start.elapsed() < Duration::from_secs(1) {
            for body in &bodies {
                let outcome = parse_line_protocol(
                    std::hint::black_box(body.as_bytes()),
                    &options,
                    &NoExistingTables,
                );
                std::hint::black_box(outcome);
            }
            passes += 1;
        }
        rates.push((passes * lines) as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let best = rates[rates.len() - 1];
    let median = rates[rates.len() / 2];
    let mb_per_line = bytes as f64 / lines as f64 / 1e6;
    println!(
        "{rounds} rounds of 1 s on one thread: best {:.0} lines/s ({:.1} M metrics/s, {:.0} MB/s), \
         median {:.0} lines/s ({:.0} MB/s)",
        best,
        best * 10.0 / 1e6,
        best * mb_per_line,
        median,
        median * mb_per_line
    );
}
