"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kerasserve_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "kerasserve_http_request_duration_seconds",
            "Time from the request's start to the end of its response.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "kerasserve_queue_depth", "Images waiting in a model's queue.", ["model"], registry=r
        )
        self.queue_wait = Histogram(
            "kerasserve_queue_wait_seconds",
            "Time an image waited in the queue before its batch started.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "kerasserve_batch_size",
            "Images per model call.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "kerasserve_inference_duration_seconds",
            "Duration of one model call (a whole batch).",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "kerasserve_images_total", "Images that went through a model.", ["model"], registry=r
        )
        self.rejected = Counter(
            "kerasserve_images_rejected_total",
            "Uploads or requests rejected before inference, by reason (error code).",
            ["reason"],
            registry=r,
        )
        self.dropped = Counter(
            "kerasserve_queue_dropped_total",
            "Queued images dropped before their batch: client gone (cancelled) or expired.",
            ["model", "reason"],
            registry=r,
        )
        self.model_info = Info(
            "kerasserve_model", "Served models, their weights and runtime.", ["model"], registry=r
        )
        self.model_state = Enum(
            "kerasserve_model_state",
            "Each model's state: loading, ready, failed, unloading or unavailable.",
            ["model"],
            states=["loading", "ready", "failed", "unloading", "unavailable"],
            registry=r,
        )

    def observer(self, model: str) -> ModelObserver:
        return ModelObserver(self, model)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ModelObserver:
    """The batching engine's hooks, bound to one model's label values."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self._queue_wait = metrics.queue_wait.labels(model)
        self._batch_size = metrics.batch_size.labels(model)
        self._inference = metrics.inference.labels(model)
        self._images = metrics.images.labels(model)
        self._dropped = {
            reason: metrics.dropped.labels(model, reason) for reason in ("cancelled", "expired")
        }

    def batch_done(self, size: int, run_s: float, queue_waits: Sequence[float]) -> None:
        self._batch_size.observe(size)
        self._inference.observe(run_s)
        self._images.inc(size)
        for wait in queue_waits:
            self._queue_wait.observe(wait)

    def dropped(self, reason: str) -> None:
        self._dropped[reason].inc()
