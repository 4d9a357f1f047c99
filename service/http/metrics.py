"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

With several workers (`PROMETHEUS_MULTIPROC_DIR` set before the worker started) the values
live in prometheus_client's multiprocess files and a scrape of any worker sums them all;
Info and Enum have no multiprocess form there, so model info and state become gauges of the
same names and samples.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MODEL_INFO_KEYS = ("version", "weights", "runtime", "precision", "output_kind", "input_shape")
MODEL_STATES = ("loading", "ready", "failed", "unloading", "unavailable")


class Metrics:
    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
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
            "kerasserve_queue_depth",
            "Images waiting in a model's queue.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
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
        info_help = "Served models, their weights and runtime."
        state_help = "Each model's state: loading, ready, failed, unloading or unavailable."
        if self.multiprocess_dir is None:
            self._info = Info("kerasserve_model", info_help, ["model"], registry=r)
            self._state = Enum(
                "kerasserve_model_state", state_help, ["model"], states=MODEL_STATES, registry=r
            )
        else:
            # livemax: a worker's last value while it lives; a state any live worker is in is 1.
            self._info_gauge = Gauge(
                "kerasserve_model_info",
                info_help,
                ["model", *MODEL_INFO_KEYS],
                registry=r,
                multiprocess_mode="livemax",
            )
            self._state_gauge = Gauge(
                "kerasserve_model_state",
                state_help,
                ["model", "kerasserve_model_state"],
                registry=r,
                multiprocess_mode="livemax",
            )

    def set_model_info(self, model: str, info: Mapping[str, str]) -> None:
        """`info` holds MODEL_INFO_KEYS."""
        if self.multiprocess_dir is None:
            self._info.labels(model).info(dict(info))
        else:
            self._info_gauge.labels(model, *(info.get(k, "") for k in MODEL_INFO_KEYS)).set(1)

    def set_model_state(self, model: str, state: str) -> None:
        if self.multiprocess_dir is None:
            self._state.labels(model).state(state)
            return
        for name in MODEL_STATES:
            self._state_gauge.labels(model, name).set(1 if name == state else 0)

    def observer(self, model: str) -> ModelObserver:
        return ModelObserver(self, model)

    def render(self) -> bytes:
        """This app's metrics; with several workers, every worker's, summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)


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
