"""`/metrics` on its own address (SEGUE_METRICS_ADDR) and the gauges an operator scales on."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from segue.tasks.schema import DeliveryRow
from segue.worker import Worker
from tests.conftest import TASKS, ark_task, free_port, make_settings, start_server


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_on_their_own_address_with_queue_gauges(tmp_path: Path) -> None:
    admin = f"127.0.0.1:{free_port()}"
    server = start_server(make_settings(tmp_path / "data", metrics_addr=admin), workers=0)
    try:
        assert httpx.get(server.url + "/metrics").status_code == 404  # not on the API port
        services = server.services
        with server.client() as c:
            for tier in ("default", "default", "flex"):
                body = {**ark_task("segue-blend", "x --rs 480p --dur 2"), "service_tier": tier}
                assert c.post(TASKS, json=body).status_code == 200
        now = time.time()
        services.callbacks.store.add(DeliveryRow(  # a retry scheduled an hour from now
            id="msg_pending", task_id="cgt-x", key_id="k", url="http://127.0.0.1:9/",
            status="failed", payload={}, state="pending", attempts=1, max_attempts=4,
            next_attempt_at=now + 3600, created_at=now, updated_at=now))
        time.sleep(0.5)
        running = services.tasks.claim("dead-worker", lease_ttl=0.2)
        assert running is not None

        metrics = _samples("http://" + admin)
        depth = {labels: v for (name, labels), v in metrics.items()
                 if name == "segue_queue_depth"}
        assert depth == {(("model", "segue-blend"), ("service_tier", "default")): 1.0,
                         (("model", "segue-blend"), ("service_tier", "flex")): 1.0}
        age = metrics[("segue_queue_oldest_age_seconds",
                       (("model", "segue-blend"), ("service_tier", "default")))]
        assert 0.4 < age < 120
        assert metrics[("segue_tasks_running", (("model", "segue-blend"),))] == 1.0
        assert metrics[("segue_callback_backlog", ())] == 1.0

        time.sleep(0.5)  # the dead worker's lease lapses; a live worker takes the task over
        worker = Worker(services, models=["segue-blend"])
        assert worker.run_once()
        assert services.tasks.get(running.id).status == "succeeded"
        metrics = _samples("http://" + admin)
        assert metrics[("segue_leases_taken_over_total", (("model", "segue-blend"),))] == 1.0
        assert ("segue_tasks_running", (("model", "segue-blend"),)) not in metrics
    finally:
        server.stop()
    # the listener is closed with the process's background threads
    try:
        httpx.get(f"http://{admin}/metrics", timeout=2)
        closed = False
    except httpx.TransportError:
        closed = True
    assert closed


def test_a_malformed_metrics_address_is_refused_with_an_example(tmp_path: Path) -> None:
    for bad in ("9100x", "localhost", "host:70000"):
        with pytest.raises(ValidationError, match="host:port, e.g. 0.0.0.0:9100"):
            make_settings(tmp_path, metrics_addr=bad)
