"""Callbacks over real HTTP: every status, retries with backoff, timeouts, signatures,
a restart in the middle of a retry schedule, and the private-address rule."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from segue.callbacks import PENDING
from segue.cli import app as cli_app
from segue.media.addresses import first_refused, resolve
from segue.tasks.schema import DeliveryRow
from tests.lifecycle.support import TASKS, body, create, deliveries, wait_until


def test_every_status_is_posted_and_a_failing_receiver_gets_retries(launch, receiver) -> None:
    receiver.plan = {"succeeded": [500, 503]}  # fails twice, then answers 200
    server = launch(callback_backoff=[0.3, 0.6, 0.9])
    task_id = create(server, callback_url=receiver.url, return_last_frame=True)

    wait_until(lambda: len(receiver.of(task_id, "succeeded")) == 3, what="third attempt")
    got = receiver.of(task_id)
    assert [r.status for r in got] == ["queued", "running", "succeeded", "succeeded",
                                      "succeeded"]
    assert [r.answered for r in got[2:]] == [500, 503, 200]
    assert all(r.headers["Content-Type"] == "application/json" for r in got)
    final = got[-1].json
    assert final["id"] == task_id and final["content"]["video_url"].startswith(server.url)
    assert final["usage"]["total_tokens"] > 0
    assert got[2].raw == got[4].raw  # a retry sends the same body
    # backoff: about 0.3 s, then 0.6 s, each stretched by at most 25 % jitter
    assert 0.3 <= got[3].at - got[2].at < 0.3 * 1.25 + 0.5
    assert 0.6 <= got[4].at - got[3].at < 0.6 * 1.25 + 0.5
    assert "webhook-signature" not in got[0].headers  # this key has no signing secret

    wait_until(lambda: deliveries(server, task_id)[-1].state == "delivered")
    rows = {d.status: d for d in deliveries(server, task_id)}
    assert rows["succeeded"].attempts == 3 and rows["succeeded"].max_attempts == 4
    assert rows["queued"].max_attempts == 1 and rows["queued"].state == "delivered"

    shown = CliRunner().invoke(cli_app, ["tasks", "show", task_id], env={
        "SEGUE_DATA_DIR": str(server.settings.data_dir), "SEGUE_API_KEYS": "x"})
    assert shown.exit_code == 0, shown.output
    listed = json.loads(shown.output)["callback_deliveries"]
    assert [(d["status"], d["state"], d["attempts"]) for d in listed] == [
        ("queued", "delivered", 1), ("running", "delivered", 1), ("succeeded", "delivered", 3)]


def test_a_hanging_receiver_is_given_up_and_blocks_no_render(launch, receiver) -> None:
    receiver.plan = {"succeeded": ["hang"] * 3}
    receiver.hang_seconds = 2.5
    server = launch(callback_timeout=1.0, callback_retries=2, callback_backoff=[0.2, 0.2])
    first = create(server, callback_url=receiver.url)
    second = create(server, callback_url=receiver.url)

    assert server.wait(first)["status"] == "succeeded"
    assert server.wait(second)["status"] == "succeeded"
    # both renders ended while the first task's final callback was still being retried
    assert [d.state for d in deliveries(server, first) if d.status == "succeeded"] == ["pending"]

    def settled() -> bool:
        return all(d.state != "pending" for d in deliveries(server, first))

    wait_until(settled, timeout=15, what="the first task's deliveries to settle")
    final = [d for d in deliveries(server, first) if d.status == "succeeded"][0]
    assert final.state == "failed" and final.attempts == 3
    assert "no answer within 1 s" in final.last_error
    assert len(receiver.of(first, "succeeded")) == 3


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def test_callbacks_of_a_key_with_a_secret_carry_standard_webhooks_signatures(
        launch, receiver) -> None:
    receiver.plan = {"succeeded": [500]}
    server = launch()
    secret = _secret()
    key, _row = server.services.keys.create("signed", webhook_secret=secret)
    task_id = create(server, key=key, callback_url=receiver.url)

    wait_until(lambda: len(receiver.of(task_id, "succeeded")) == 2, what="the retry")
    got = receiver.of(task_id)
    for request in got:
        assert Webhook(secret).verify(request.raw, request.headers)["id"] == task_id
        with pytest.raises(WebhookVerificationError):
            Webhook(_secret()).verify(request.raw, request.headers)
    finals = got[-2:]
    assert finals[0].headers["webhook-id"] == finals[1].headers["webhook-id"]  # same message
    assert len({r.headers["webhook-id"] for r in got}) == 3  # queued, running, succeeded
    assert int(finals[1].headers["webhook-timestamp"]) >= int(finals[0].headers[
        "webhook-timestamp"])


def test_a_pending_retry_survives_a_restart(launch, receiver) -> None:
    receiver.plan = {"succeeded": [500]}
    server = launch(callback_backoff=[2.0])
    task_id = create(server, callback_url=receiver.url)
    wait_until(lambda: receiver.of(task_id, "succeeded"), what="the first final attempt")
    server.stop()
    pending = [d for d in deliveries(server, task_id) if d.status == "succeeded"]
    assert pending[0].state == "pending" and pending[0].attempts == 1

    again = launch(callback_backoff=[2.0])  # a new process on the same store
    wait_until(lambda: len(receiver.of(task_id, "succeeded")) == 2, what="the retry")
    first, retry = receiver.of(task_id, "succeeded")
    assert retry.at - first.at >= 2.0  # the schedule was kept, not restarted
    assert retry.answered == 200 and retry.raw == first.raw
    wait_until(lambda: [d.state for d in deliveries(again, task_id)][-1] == "delivered")


def test_callback_urls_obey_the_private_address_rule(launch, receiver) -> None:
    server = launch(workers=0, allow_private_urls=False)
    port = receiver.url.rsplit(":", 1)[1]
    with server.client() as c:
        for url in (receiver.url, "http://10.1.2.3/hook", "http://[::1]:9/x",
                    "http://169.254.169.254/latest", f"http://localhost:{port}",
                    *(f"http://{host}:9/x" for host in NUMERIC_SPELLINGS)):
            response = c.post(TASKS, json=body(callback_url=url))
            assert response.status_code == 400, url
            error = response.json()["error"]
            assert error["code"] == "InvalidParameter" and error["param"] == "callback_url"
            assert "SEGUE_ALLOW_PRIVATE_URLS" in error["message"], url
        name = socket.gethostname()  # a name only DNS (here /etc/hosts) can answer
        if first_refused(resolve(name, 80), server.settings) is None:
            pytest.skip(f"{name} does not resolve to a private address here")
        response = c.post(TASKS, json=body(callback_url=f"http://{name}:{port}"))
    assert response.status_code == 200  # a name: checked when it is resolved
    task_id = response.json()["id"]
    wait_until(lambda: deliveries(server, task_id)[0].state == "failed")
    refused = deliveries(server, task_id)[0]
    assert "resolves to" in refused.last_error and refused.attempts == 1
    assert receiver.of(task_id) == []


NUMERIC_SPELLINGS = ("0177.0.0.1", "0251.0376.0251.0376", "2130706433", "0x7f000001", "127.1",
                     "0", "012.0.0.1", "[2002:a9fe:a9fe::]", "[64:ff9b::a9fe:a9fe]")


def test_a_numeric_spelling_is_delivered_to_the_address_it_spells(launch, receiver) -> None:
    server = launch(workers=1)
    port = receiver.url.rsplit(":", 1)[1]
    task_id = create(server, callback_url=f"http://0177.0.0.1:{port}/hook")
    wait_until(lambda: receiver.of(task_id, "succeeded"), what="the final callback")
    assert all(d.state == "delivered" for d in deliveries(server, task_id))
    with server.client() as c:  # no spelling of the metadata address, even when allowed
        for host in ("0251.0376.0251.0376", "[2002:a9fe:a9fe::]", "[64:ff9b::a9fe:a9fe]"):
            response = c.post(TASKS, json=body(callback_url=f"http://{host}/latest"))
            assert response.status_code == 400, host
        response = c.post(TASKS, json=body(callback_url="http://1.2.3.999/x"))
        assert response.status_code == 400 and "1.2.3.999" in response.json()["error"]["message"]


def test_a_delivery_that_can_never_be_sent_fails_at_once(launch) -> None:
    """A stored URL no sender can parse (written before these checks) ends failed, not
    pending: it is not claimed again every lease."""
    server = launch(workers=0)
    task_id = create(server)
    now = time.time()
    server.services.callbacks.store.add(DeliveryRow(
        id="msg_unsendable", task_id=task_id, key_id=server.services.tasks.get(task_id).key_id,
        url="http://0251.0376.0251.99999/x", status="running", payload={}, state=PENDING,
        attempts=0, max_attempts=4, next_attempt_at=now, created_at=now, updated_at=now))
    server.services.callbacks.wake.set()
    wait_until(lambda: [d.state for d in deliveries(server, task_id)] == ["failed"],
               what="the delivery to fail")
    failed = deliveries(server, task_id)[0]
    assert failed.attempts == 1 and "cannot be sent" in failed.last_error


def test_a_key_secret_must_be_a_standard_webhooks_secret(tmp_path) -> None:
    env = {"SEGUE_DATA_DIR": str(tmp_path), "SEGUE_API_KEYS": ""}
    for secret in ("hello world", "whsec_", "whsec_not base64!"):
        bad = CliRunner().invoke(cli_app, ["keys", "create", "--name", "x",
                                           "--webhook-secret", secret], env=env)
        assert bad.exit_code != 0 and "webhook-secret" in bad.output, secret
    good = CliRunner().invoke(cli_app, ["keys", "create", "--name", "x", "--webhook-secret",
                                        _secret()], env=env)
    assert good.exit_code == 0, good.output
    assert good.output.strip().splitlines()[-1].startswith("sk-")
