"""Prometheus metrics, one registry per process (so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _TaskGauge(Collector):
    """Tasks by status, read from the store at scrape time (so it holds across replicas)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("segue_tasks", "Tasks in the store by status", labels=["status"])
        for status, n in sorted(self._counts().items()):
            gauge.add_metric([status], n)
        yield gauge


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
        r.register(_TaskGauge(task_counts))
