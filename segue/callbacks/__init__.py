"""Callbacks: ``POST callback_url`` with the task object on every status change.

Each status change of a task that has a ``callback_url`` becomes a row in
``callback_deliveries`` (``DeliveryRow``), written by the process that made the
change. A dispatcher thread in every server and worker process claims due rows
with a lease (so two processes never send the same row at once) and sends them
from a small thread pool, never from the render path: a slow receiver delays
nothing but its own callback.

Final statuses are retried with backoff and jitter; the others are sent once.
Because the schedule is in the store, a restart loses no pending retry. When
the task's key has a signing secret, each request carries Standard Webhooks
headers; the delivery id is the ``webhook-id`` and stays the same across
retries, so a receiver can drop duplicates.

``store`` holds the rows, ``send`` one HTTP exchange, ``dispatch`` the loop between.
"""

from segue.callbacks.dispatch import Callbacks
from segue.callbacks.send import Refused, check_callback_url, post
from segue.callbacks.store import DELIVERED, FAILED, PENDING, DeliveryStore

__all__ = ["DELIVERED", "FAILED", "PENDING", "Callbacks", "DeliveryStore", "Refused",
           "check_callback_url", "post"]
