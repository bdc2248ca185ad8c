//! What `GET /metrics` reports, in the Prometheus (OpenMetrics) text format: requests by endpoint and
//! status, latency, GPU batch sizes, queue depth and reloads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 15))
}

/// Cheap to clone: every metric is a shared handle.
#[derive(Clone)]
pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// Users per `brute_force_top_k` pass: its mean is sum / count.
    pub batch_size: Histogram,
    /// Jobs sent to the GPU thread and not yet taken.
    pub queue_depth: Gauge,
    /// Requests whose client left before the GPU thread got to them (not computed).
    pub cancelled: Counter,
    pub reloads: Family<ResultLabels, Counter>,
}

impl Metrics {
    pub fn new() -> (Self, Registry) {
        let m = Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            queue_depth: Gauge::default(),
            cancelled: Counter::default(),
            reloads: Family::default(),
        };
        let mut r = Registry::with_prefix("wgrec");
        r.register(
            "http_requests",
            "HTTP requests by endpoint and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from request to response, by endpoint",
            m.latency.clone(),
        );
        r.register(
            "gpu_batch_size",
            "Users ranked per brute_force_top_k pass",
            m.batch_size.clone(),
        );
        r.register(
            "queue_depth",
            "Jobs waiting for the GPU thread",
            m.queue_depth.clone(),
        );
        r.register(
            "cancelled_requests",
            "Requests dropped by their client before the GPU thread reached them",
            m.cancelled.clone(),
        );
        r.register(
            "model_reloads",
            "Model reloads by result (ok, refused)",
            m.reloads.clone(),
        );
        (m, r)
    }
}
