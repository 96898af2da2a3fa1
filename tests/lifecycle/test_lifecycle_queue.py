"""The flex tier waits behind default tasks of its model; Idempotency-Key replays a create."""

from __future__ import annotations

import time

from sqlalchemy import update

from segue.tasks.schema import CreateRow, TaskRow
from segue.worker import Worker
from tests.conftest import OTHER_KEY
from tests.lifecycle.support import TASKS, body, create

FLOW = "segue-flow"


def test_flex_runs_only_when_no_default_task_of_its_model_waits(launch) -> None:
    server = launch(workers=0)
    flex_blend = create(server, service_tier="flex")
    default_blend = create(server)
    default_flow = create(server, model=FLOW)
    flex_flow = create(server, model=FLOW, service_tier="flex")
    late_blend = create(server)

    def next_for(models: list[str] | None) -> str:
        row = server.services.tasks.claim("test-worker", lease_ttl=30, models=models)
        assert row is not None
        return row.id

    # a blend worker: the default blend tasks first, oldest first, then the older flex one
    # even though a default flow task still waits (only the same model counts)
    assert next_for(["segue-blend"]) == default_blend
    assert next_for(["segue-blend"]) == late_blend
    assert next_for(["segue-blend"]) == flex_blend
    # any worker: default before flex
    assert next_for(None) == default_flow
    assert next_for(None) == flex_flow
    assert server.services.tasks.claim("test-worker", 30) is None

    # and a real worker renders what it claimed
    flex = create(server, service_tier="flex")
    default = create(server)
    assert Worker(server.services, name="w").run_once()
    with server.client() as c:
        assert c.get(f"{TASKS}/{default}").json()["status"] == "succeeded"
        task = c.get(f"{TASKS}/{flex}").json()
    assert task["status"] == "queued" and task["service_tier"] == "flex"


def test_an_idempotency_key_returns_the_same_task_for_the_same_body(launch) -> None:
    server = launch(workers=0, rate_limit_lite=2)
    tasks = server.services.tasks
    with server.client() as c, server.client(OTHER_KEY) as other:
        headers = {"Idempotency-Key": "order-17"}
        first = c.post(TASKS, json=body(), headers=headers)
        assert first.status_code == 200
        task_id = first.json()["id"]
        again = c.post(TASKS, json=body(), headers=headers)  # e.g. the SDK retrying a 5xx
        assert again.status_code == 200 and again.json()["id"] == task_id
        assert tasks.list_page(tasks.get(task_id).key_id)[0] == 1

        changed = c.post(TASKS, json=body(text="another --rs 480p --dur 2"), headers=headers)
        assert changed.status_code == 400
        assert changed.json()["error"]["code"] == "InvalidParameter.IdempotencyKey"
        assert other.post(TASKS, json=body(), headers=headers).json()["id"] != task_id

        # the second create without a key fills the rate limit; replays are still answered
        assert c.post(TASKS, json=body()).status_code == 200
        assert c.post(TASKS, json=body(), headers=headers).json()["id"] == task_id
        assert c.post(TASKS, json=body()).status_code == 429

        # after 24 h the key may name a new task (and the creates have left the rate window)
        with server.services.db.begin() as conn:
            conn.execute(update(TaskRow).values(created_at=time.time() - 90_000))
            conn.execute(update(CreateRow).values(created_at=time.time() - 90_000))
        renewed = c.post(TASKS, json=body(), headers=headers)
        assert renewed.status_code == 200 and renewed.json()["id"] != task_id
