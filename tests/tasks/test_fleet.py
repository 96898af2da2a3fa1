"""Which models the running workers serve (``segue.tasks.fleet``): a create for a model no
worker can render is refused at once with the reason, not queued until it expires."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from byteplussdkarkruntime import Ark
from byteplussdkarkruntime._exceptions import ArkNotFoundError

from segue.errors import NotFound
from segue.services import Services
from segue.tasks.db import ensure_schema, make_engine
from segue.tasks.fleet import FORGET_AFTER, LIVE_FOR, Fleet
from segue.worker import Background, Worker
from tests.conftest import KEY, TASKS, ark_task, make_settings, start_server

RIFE_MISSING = "segue-rife-missing"


def test_the_fleet_on_each_store(db_url: str) -> None:
    engine = make_engine(db_url)
    ensure_schema(engine)
    fleet = Fleet(engine)
    now = time.time()
    try:
        assert fleet.view(now).serves("segue-flow") is None  # no worker process: unknown
        fleet.advertise("a-1", ["segue-flow"], {"segue-rife": "no weights"}, now=now)
        fleet.advertise("b-2", ["segue-rife", "segue-blend"], {}, now=now)
        fleet.advertise("old-3", ["segue-ltx"], {}, now=now - LIVE_FOR - 1)  # gone
        view = fleet.view(now)
        assert view.processes == 2
        assert view.served == {"segue-flow", "segue-rife", "segue-blend"}
        assert view.unavailable == {}  # served by b-2: a's reason does not count
        assert view.serves("segue-ltx") is False
        with pytest.raises(NotFound) as refused:
            view.check("segue-ltx", "segue-ltx")
        assert refused.value.code == "ModelNotOpen" and "--models" in refused.value.message

        fleet.advertise("b-2", ["segue-blend"], {}, now=now)  # renewed with less
        fleet.leave("a-1")
        fleet.advertise("c-4", [], {"segue-rife": "no weights"}, now=now)
        view = fleet.view(now)
        assert view.served == {"segue-blend"} and view.unavailable == {"segue-rife": "no weights"}

        # old-3 counts as seen from a moment when it was live; pruned, it is gone for good
        assert fleet.view(now - 2).processes == 3
        fleet.prune(now + FORGET_AFTER - LIVE_FOR / 2)
        assert fleet.view(now - 2).processes == 2
        fleet.prune(now + FORGET_AFTER + 1)
        assert fleet.view(now).processes == 0
    finally:
        engine.dispose()


def test_the_workers_of_one_process_say_it_at_once(db_url: str) -> None:
    """Each worker thread renews its process's row as it starts: one upsert, never two
    inserts of one id."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    fleet = Fleet(engine)
    errors: list[BaseException] = []

    def renew(n: int) -> None:
        try:
            for _ in range(10):
                fleet.advertise("host-1-abc", [f"m{n}"], {})
        except BaseException as exc:  # noqa: BLE001 - any failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=renew, args=(n,)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        view = fleet.view()
        assert view.processes == 1 and len(view.served) == 1
    finally:
        engine.dispose()


def _registry(tmp_path: Path) -> Path:
    """The flow and blend models, and a learned one whose weights are not there."""
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [
        {"id": "segue-flow", "engine": "flow", "tier": "lite",
         "modes": ["first_frame", "first_last_frame"]},
        {"id": "segue-blend", "engine": "blend", "tier": "lite",
         "modes": ["first_frame", "first_last_frame"]},
        {"id": RIFE_MISSING, "engine": "rife", "tier": "lite", "modes": ["first_last_frame"],
         "options": {"weights": str(tmp_path / "no-such-flownet.pkl")}},
    ]}))
    return path


def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the fleet did not change in time"
        time.sleep(0.05)


def test_a_model_its_workers_cannot_load_is_refused_with_the_reason(tmp_path: Path) -> None:
    server = start_server(make_settings(tmp_path / "data", models_file=_registry(tmp_path)))
    try:
        client = Ark(base_url=server.url + "/api/v3", api_key=KEY, max_retries=0)
        _until(lambda: server.services.fleet.view().processes == 1)
        body = ark_task(RIFE_MISSING, "a kite --dur 2")
        with pytest.raises(ArkNotFoundError) as refused:
            client.content_generation.tasks.create(model=RIFE_MISSING, content=body["content"])
        assert refused.value.code == "ModelNotOpen"
        assert "no-such-flownet.pkl" in str(refused.value) and "segue weights" in str(refused.value)
        with server.client() as c:
            listed = {m["id"]: m for m in c.get("/api/v3/models").json()["data"]}
            assert listed["segue-flow"]["served"] is True
            assert listed[RIFE_MISSING]["served"] is False
            assert "segue weights" in listed[RIFE_MISSING]["unavailable_reason"]
            assert not c.get(TASKS).json()["items"]  # nothing was queued
        created = client.content_generation.tasks.create(
            model="segue-flow", content=ark_task("segue-flow", "a kite --dur 2")["content"])
        assert server.wait(created.id)["status"] == "succeeded"
    finally:
        server.stop()


def test_with_workers_elsewhere_the_api_follows_what_they_serve(tmp_path: Path) -> None:
    """An API-only server: without any worker process a create is queued (workers may come);
    with one that serves only segue-flow, segue-blend is refused; once it stops, queued again."""
    settings = make_settings(tmp_path / "data", models_file=_registry(tmp_path))
    api = start_server(settings, workers=0)
    workers = Background(Services.build(settings), workers=1, models=["segue-flow"])
    try:
        with api.client() as c:
            r = c.post(TASKS, json=ark_task("segue-blend", "before --dur 2"))
            assert r.status_code == 200, r.text
            workers.start()
            _until(lambda: api.services.fleet.view().serves("segue-blend") is False)
            r = c.post(TASKS, json=ark_task("segue-blend", "during --dur 2"))
            assert r.status_code == 404 and r.json()["error"]["code"] == "ModelNotOpen", r.text
            assert "--models" in r.json()["error"]["message"]
            r = c.post(TASKS, json=ark_task("segue-flow", "served --dur 2"))
            assert api.wait(r.json()["id"])["status"] == "succeeded"
            workers.stop()
            _until(lambda: api.services.fleet.view().processes == 0)
            r = c.post(TASKS, json=ark_task("segue-blend", "after --dur 2"))
            assert r.status_code == 200, r.text
    finally:
        workers.stop()
        api.stop()


def test_a_worker_still_loading_counts_as_serving_what_it_was_asked_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU worker loads its model for minutes: its model is not refused meanwhile; the
    model it then fails to load is (with the reason)."""
    loaded = threading.Event()
    prepare = Worker.prepare

    def slow_prepare(worker: Worker) -> list[str]:
        assert loaded.wait(30)
        return prepare(worker)

    monkeypatch.setattr(Worker, "prepare", slow_prepare)
    services = Services.build(make_settings(tmp_path / "data", models_file=_registry(tmp_path)))
    workers = Background(services, workers=1, models=["segue-blend", RIFE_MISSING])
    workers.start()
    try:
        _until(lambda: services.fleet.view().processes == 1)
        assert services.fleet.view().served == {"segue-blend", RIFE_MISSING}
        loaded.set()
        _until(lambda: services.fleet.view().serves(RIFE_MISSING) is False)
        assert services.fleet.view().served == {"segue-blend"}
        assert "no-such-flownet.pkl" in services.fleet.view().unavailable[RIFE_MISSING]
    finally:
        loaded.set()
        workers.stop()
