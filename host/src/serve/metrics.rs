//! `GET /metrics` in Prometheus's text format: requests by route and status, their
//! latency, core's operations by name and outcome (lost races among them), the
//! attempts commits made, and storage calls by kind.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use snapgit_core::{
    api,
    step::{CasOutcome, CasRef, Listed, RefState, Swap},
};

use super::problem::Problem;
use crate::storage::{self, Object, Storage};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
}

fn latency() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// The server's counters.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RouteLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    commit_attempts: Counter,
    storage_calls: Family<CallLabels, Counter>,
    lost_swaps: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("snapgit");
        let requests = Family::<RouteLabels, Counter>::default();
        let request_seconds = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let operations = Family::<OperationLabels, Counter>::default();
        let operation_seconds = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let commit_attempts = Counter::default();
        let storage_calls = Family::<CallLabels, Counter>::default();
        let lost_swaps = Counter::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            request_seconds.clone(),
        );
        registry.register(
            "operations",
            "Core operations run, by outcome (ok or core's error code: LOST_RACE, HEAD_MOVED...)",
            operations.clone(),
        );
        registry.register(
            "operation_duration_seconds",
            "Time to run a core operation",
            operation_seconds.clone(),
        );
        registry.register(
            "commit_attempts",
            "Attempts made by successful commits and restores (1 each without contention; the excess are retries)",
            commit_attempts.clone(),
        );
        registry.register(
            "storage_calls",
            "Calls to the storage backend, by kind",
            storage_calls.clone(),
        );
        registry.register(
            "lost_swaps",
            "Compare-and-swaps of a ref lost to another writer (each one a retry)",
            lost_swaps.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            request_seconds,
            operations,
            operation_seconds,
            commit_attempts,
            storage_calls,
            lost_swaps,
        }
    }
}

impl Metrics {
    /// Count an answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Count a finished operation.
    pub fn operation(&self, name: &str, elapsed: Duration, result: &Result<api::Output, Problem>) {
        let outcome = match result {
            Ok(output) => {
                if let api::Output::Commit(out) = output {
                    self.commit_attempts.inc_by(u64::from(out.attempts));
                }
                "ok".to_owned()
            }
            Err(problem) => problem.code.as_str().to_owned(),
        };
        let labels = OperationLabels {
            operation: name.to_owned(),
            outcome,
        };
        self.operations.get_or_create(&labels).inc();
        self.operation_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    fn call(&self, call: &'static str) {
        self.storage_calls.get_or_create(&CallLabels { call }).inc();
    }

    /// Everything, in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

/// A storage backend whose calls are counted.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
}

impl Metered {
    /// Count the calls to `inner` in `metrics`.
    pub fn new(inner: Arc<dyn Storage>, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics }
    }
}

#[async_trait::async_trait]
impl Storage for Metered {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn read_parallelism(&self) -> usize {
        self.inner.read_parallelism()
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
        self.metrics.call("get");
        self.inner.get_many(keys).await
    }

    async fn put_many(&self, objects: Vec<Object>) -> Result<(), storage::Error> {
        self.metrics.call("put");
        self.inner.put_many(objects).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, storage::Error> {
        self.metrics.call("list");
        self.inner.list(prefix).await
    }

    async fn get_ranges(&self, ranges: &[(String, u64, u64)]) -> Result<Vec<Option<Vec<u8>>>, storage::Error> {
        self.metrics.call("get_ranges");
        self.inner.get_ranges(ranges).await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), storage::Error> {
        self.metrics.call("delete");
        self.inner.delete(keys).await
    }

    async fn read_ref(&self, key: &str) -> Result<Option<RefState>, storage::Error> {
        self.metrics.call("read_ref");
        self.inner.read_ref(key).await
    }

    async fn cas_ref(&self, cas: &CasRef) -> Result<CasOutcome, storage::Error> {
        self.metrics.call("cas_ref");
        let outcome = self.inner.cas_ref(cas).await?;
        if matches!(outcome, CasOutcome::Lost { .. }) {
            self.metrics.lost_swaps.inc();
        }
        Ok(outcome)
    }

    async fn swap(&self, swap: &Swap) -> Result<bool, storage::Error> {
        self.metrics.call("swap");
        self.inner.swap(swap).await
    }
}
