//! Metrics in the Prometheus text exposition format (version 0.0.4), served on the admin port
//! at `/metrics`: requests by endpoint and status, latency histograms, outbox depth and
//! retries, rooms, connections.
//!
//! A small registry of our own: every metric is declared once with its help text and label
//! names, updated with atomics under a short lock per label set, and rendered in a stable
//! order (so two scrapes of an idle node are byte-identical).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency buckets in seconds, from 100 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// A metric's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One label set's values.
#[derive(Default)]
struct Series {
    /// Counter or gauge value (gauges as i64 bits), or histogram count.
    value: AtomicU64,
    /// Histogram: cumulative bucket counts are computed at render time from these.
    buckets: Vec<AtomicU64>,
    /// Histogram sum in nanoseconds.
    sum_ns: AtomicU64,
}

struct Family {
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, std::sync::Arc<Series>>>,
}

impl Family {
    fn series(&self, values: &[&str]) -> std::sync::Arc<Series> {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut map = self
            .series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(key)
            .or_insert_with(|| {
                let mut s = Series::default();
                if self.kind == Kind::Histogram {
                    s.buckets = (0..LATENCY_BUCKETS.len())
                        .map(|_| AtomicU64::new(0))
                        .collect();
                }
                std::sync::Arc::new(s)
            })
            .clone()
    }
}

/// A set of metrics.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, std::sync::Arc<Family>>>,
}

/// A misuse of the registry (our bug, reported instead of panicking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// The metric was declared with other label names or of another kind.
    #[error("metric {0} redeclared differently")]
    Redeclared(&'static str),
    /// The number of label values does not match the label names.
    #[error("metric {name} has {expected} labels, {given} values given")]
    LabelCount {
        /// The metric.
        name: &'static str,
        /// Declared label count.
        expected: usize,
        /// Given values.
        given: usize,
    },
}

/// A handle to one declared metric.
#[derive(Clone)]
pub struct Metric {
    name: &'static str,
    family: std::sync::Arc<Family>,
}

impl Registry {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn declare(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        let mut families = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let family = families
            .entry(name)
            .or_insert_with(|| {
                std::sync::Arc::new(Family {
                    help,
                    kind,
                    labels,
                    series: Mutex::new(BTreeMap::new()),
                })
            })
            .clone();
        if family.kind != kind || family.labels != labels {
            return Err(MetricError::Redeclared(name));
        }
        Ok(Metric { name, family })
    }

    /// Declares a counter (a value that only goes up).
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        self.declare(name, help, Kind::Counter, labels)
    }

    /// Declares a gauge (a value that goes up and down).
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        self.declare(name, help, Kind::Gauge, labels)
    }

    /// Declares a latency histogram with [`LATENCY_BUCKETS`].
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        self.declare(name, help, Kind::Histogram, labels)
    }

    /// Everything, in the text exposition format.
    pub fn render(&self) -> String {
        let families: Vec<(&'static str, std::sync::Arc<Family>)> = self
            .families
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let mut out = String::new();
        for (name, f) in families {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(f.help));
            let _ = writeln!(out, "# TYPE {name} {}", f.kind.name());
            let series: Vec<(Vec<String>, std::sync::Arc<Series>)> = f
                .series
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (values, s) in series {
                let labels = label_text(f.labels, &values, None);
                match f.kind {
                    Kind::Counter => {
                        let _ = writeln!(out, "{name}{labels} {}", s.value.load(Ordering::Relaxed));
                    }
                    Kind::Gauge => {
                        let v = s.value.load(Ordering::Relaxed) as i64;
                        let _ = writeln!(out, "{name}{labels} {v}");
                    }
                    Kind::Histogram => {
                        let mut cumulative = 0u64;
                        for (bound, count) in LATENCY_BUCKETS.iter().zip(&s.buckets) {
                            cumulative += count.load(Ordering::Relaxed);
                            let le = label_text(f.labels, &values, Some(&bound.to_string()));
                            let _ = writeln!(out, "{name}_bucket{le} {cumulative}");
                        }
                        let count = s.value.load(Ordering::Relaxed);
                        let inf = label_text(f.labels, &values, Some("+Inf"));
                        let _ = writeln!(out, "{name}_bucket{inf} {count}");
                        let sum = s.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
                        let _ = writeln!(out, "{name}_sum{labels} {sum}");
                        let _ = writeln!(out, "{name}_count{labels} {count}");
                    }
                }
            }
        }
        out
    }
}

impl Metric {
    fn series(&self, values: &[&str]) -> Result<std::sync::Arc<Series>, MetricError> {
        if values.len() != self.family.labels.len() {
            return Err(MetricError::LabelCount {
                name: self.name,
                expected: self.family.labels.len(),
                given: values.len(),
            });
        }
        Ok(self.family.series(values))
    }

    /// Adds `n` to a counter (or a gauge).
    pub fn add(&self, values: &[&str], n: u64) -> Result<(), MetricError> {
        self.series(values)?.value.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Sets a gauge.
    pub fn set(&self, values: &[&str], v: i64) -> Result<(), MetricError> {
        self.series(values)?
            .value
            .store(v as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, values: &[&str], d: std::time::Duration) -> Result<(), MetricError> {
        let s = self.series(values)?;
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b)
            && let Some(bucket) = s.buckets.get(i)
        {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        s.value.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        s.sum_ns.fetch_add(ns, Ordering::Relaxed);
        Ok(())
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}
