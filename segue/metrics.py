"""Prometheus metrics, one registry per process (so tests can build many apps).

Counters and histograms count what this process did; the gauges are read from the
store at scrape time, so every replica reports the same, whole-deployment figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from segue.tasks.store import QueueStats


class _TaskGauge(Collector):
    """Tasks by status."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("segue_tasks", "Tasks in the store by status", labels=["status"])
        for status, n in sorted(self._counts().items()):
            gauge.add_metric([status], n)
        yield gauge


class _QueueGauges(Collector):
    """What an operator scales on: the queue per model and tier, running tasks, callbacks."""

    def __init__(self, stats: Callable[[], QueueStats], backlog: Callable[[], int]) -> None:
        self._stats, self._backlog = stats, backlog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats, now = self._stats(), time.time()
        depth = GaugeMetricFamily("segue_queue_depth", "Queued tasks by model and service tier",
                                  labels=["model", "service_tier"])
        age = GaugeMetricFamily("segue_queue_oldest_age_seconds",
                                "Age of the oldest queued task by model and service tier",
                                labels=["model", "service_tier"])
        for (model, tier), (n, oldest) in sorted(stats.queued.items()):
            depth.add_metric([model, tier], n)
            age.add_metric([model, tier], max(0.0, now - oldest))
        running = GaugeMetricFamily("segue_tasks_running", "Running tasks by model",
                                    labels=["model"])
        for model, n in sorted(stats.running.items()):
            running.add_metric([model], n)
        backlog = GaugeMetricFamily("segue_callback_backlog",
                                    "Callback deliveries not yet settled (sends and retries)")
        backlog.add_metric([], self._backlog())
        yield from (depth, age, running, backlog)


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self, task_counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("segue_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("segue_http_request_seconds", "HTTP request latency",
                                 ["route"], registry=r)
        self.created = Counter("segue_tasks_created", "Tasks created", ["model"], registry=r)
        self.finished = Counter("segue_tasks_finished", "Tasks ended", ["model", "status"],
                                registry=r)
        self.render = Histogram("segue_render_seconds", "Seconds from claim to stored video",
                                ["engine"], registry=r,
                                buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
        self.callbacks = Counter("segue_callbacks", "Callback delivery attempts", ["outcome"],
                                 registry=r)
        self.taken_over = Counter("segue_leases_taken_over",
                                  "Tasks this process took over after their worker's lease "
                                  "lapsed (the worker died)", ["model"], registry=r)
        r.register(_TaskGauge(task_counts))
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency (the children are found once per label set:
        ``labels()`` checked and looked them up again on every request).

        A method outside HTTP's usual ones is counted as ``OTHER``: a client may send any
        token as its method, and each would otherwise add series to every scrape for good.
        """
        if method not in HTTP_METHODS:
            method = "OTHER"
        children = self._request_children.get((method, route, status))
        if children is None:
            children = self._request_children[method, route, status] = (
                self.requests.labels(method, route, status), self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)

    def watch_queue(self, stats: Callable[[], QueueStats], backlog: Callable[[], int]) -> None:
        self.registry.register(_QueueGauges(stats, backlog))
