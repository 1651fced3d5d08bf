//! Metrics in the Prometheus text exposition format (version 0.0.4), served on the admin port
//! at `/metrics`: requests by endpoint and status, latency histograms, outbox depth and
//! retries, rooms, connections.
//!
//! The values live in [`prometheus_client`] metric families and are rendered by its Prometheus
//! text encoder (`prometheus_client::encoding::prometheus_text`). This module keeps the call
//! sites' API of our former registry: a metric is declared by name with its help text and
//! label names (declaring it again gives the same handle), and updated with label values, so
//! that a misuse is an error value instead of a panic. Names, label names and types as a
//! scraper sees them are the ones the node exported before (`spec-notes/decisions.md`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Latency buckets in seconds, from 100 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

/// The content type of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A label set: label names with their values, in declaration order.
type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// One declared family, of one kind.
#[derive(Clone)]
enum Values {
    Counter(Family<Labels, Counter>),
    Gauge(Family<Labels, Gauge>),
    Histogram(Family<Labels, Histogram, fn() -> Histogram>),
}

impl Values {
    fn same_kind(&self, other: &Values) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

#[derive(Clone)]
struct Declared {
    labels: &'static [&'static str],
    values: Values,
}

/// A set of metrics.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    encoder: prometheus_client::registry::Registry,
    declared: BTreeMap<&'static str, Declared>,
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
    /// An update that the metric's kind does not have (a histogram has no `add`, only a
    /// gauge is `set`, only a histogram `observe`s).
    #[error("metric {name} has no {op}")]
    WrongKind {
        /// The metric.
        name: &'static str,
        /// The update.
        op: &'static str,
    },
}

/// A handle to one declared metric.
#[derive(Clone)]
pub struct Metric {
    name: &'static str,
    declared: Declared,
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
        labels: &'static [&'static str],
        values: Values,
    ) -> Result<Metric, MetricError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = inner.declared.get(name) {
            if !d.values.same_kind(&values) || d.labels != labels {
                return Err(MetricError::Redeclared(name));
            }
            return Ok(Metric {
                name,
                declared: d.clone(),
            });
        }
        // prometheus-client adds `_total` to a counter's name and a full stop to every help
        // text: give it the name and text without them, so that the output has them once.
        let help = help.strip_suffix('.').unwrap_or(help);
        match &values {
            Values::Counter(f) => {
                let base = name.strip_suffix("_total").unwrap_or(name);
                inner.encoder.register(base, help, f.clone());
            }
            Values::Gauge(f) => inner.encoder.register(name, help, f.clone()),
            Values::Histogram(f) => inner.encoder.register(name, help, f.clone()),
        }
        let declared = Declared { labels, values };
        inner.declared.insert(name, declared.clone());
        Ok(Metric { name, declared })
    }

    /// Declares a counter (a value that only goes up). Its name should end in `_total`.
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        self.declare(name, help, labels, Values::Counter(Family::default()))
    }

    /// Declares a gauge (a value that goes up and down).
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        self.declare(name, help, labels, Values::Gauge(Family::default()))
    }

    /// Declares a latency histogram with [`LATENCY_BUCKETS`].
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Result<Metric, MetricError> {
        let family = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        self.declare(name, help, labels, Values::Histogram(family))
    }

    /// Everything, in the Prometheus text exposition format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &inner.encoder);
        out
    }
}

impl Metric {
    fn labels(&self, values: &[&str]) -> Result<Labels, MetricError> {
        let names = self.declared.labels;
        if values.len() != names.len() {
            return Err(MetricError::LabelCount {
                name: self.name,
                expected: names.len(),
                given: values.len(),
            });
        }
        Ok(names
            .iter()
            .zip(values)
            .map(|(n, v)| (*n, (*v).to_owned()))
            .collect())
    }

    /// Adds `n` to a counter (or a gauge).
    pub fn add(&self, values: &[&str], n: u64) -> Result<(), MetricError> {
        let labels = self.labels(values)?;
        match &self.declared.values {
            Values::Counter(f) => {
                f.get_or_create(&labels).inc_by(n);
            }
            Values::Gauge(f) => {
                f.get_or_create(&labels)
                    .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
            }
            Values::Histogram(_) => {
                return Err(MetricError::WrongKind {
                    name: self.name,
                    op: "add",
                });
            }
        }
        Ok(())
    }

    /// Sets a gauge.
    pub fn set(&self, values: &[&str], v: i64) -> Result<(), MetricError> {
        let labels = self.labels(values)?;
        match &self.declared.values {
            Values::Gauge(f) => {
                f.get_or_create(&labels).set(v);
                Ok(())
            }
            _ => Err(MetricError::WrongKind {
                name: self.name,
                op: "set",
            }),
        }
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, values: &[&str], d: std::time::Duration) -> Result<(), MetricError> {
        let labels = self.labels(values)?;
        match &self.declared.values {
            Values::Histogram(f) => {
                f.get_or_create(&labels).observe(d.as_secs_f64());
                Ok(())
            }
            _ => Err(MetricError::WrongKind {
                name: self.name,
                op: "observe",
            }),
        }
    }
}
