"""The one exception tree of Segue.

Every error a client can cause is a ``SegueError`` with an HTTP status, a code
from the Ark error table and a message that teaches. Each API surface renders
the same error in its own envelope (``api/ark/errors.py``,
``api/pixazo/errors.py``); nothing else turns exceptions into responses.

    SegueError (500 InternalServiceError)
    ├── BadRequest (400)
    │   ├── InvalidParameter            code InvalidParameter or InvalidParameter.<Param>
    │   ├── MissingParameter            code MissingParameter or MissingParameter.<Param>
    │   ├── InvalidImage                code InvalidImageURL.<Reason>
    │   └── OperationDenied             code OperationDenied.TaskStatus
    ├── AuthenticationError (401)
    ├── NotFound (404)                  code ResourceNotFound / InvalidEndpointOrModel.NotFound
    │   └── ModelNotOpen                a listed model that cannot be rendered here
    ├── MethodNotAllowed (405)          with the route's methods in ``Allow``
    ├── PayloadTooLarge (413)
    ├── TooManyRequests (429)           code RateLimitExceeded.EndpointRPMExceeded / QuotaExceeded
    ├── ServiceUnavailable (503)
    │   └── StorageFull (507)           code InsufficientStorage: the disk or database is full
    └── TaskInterrupted                 not an HTTP error: a render was told to stop
"""

from __future__ import annotations


class SegueError(Exception):
    status = 500
    code = "InternalServiceError"
    type = "InternalServerError"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str = "",
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.retry_after = retry_after


class BadRequest(SegueError):
    status = 400
    code = "InvalidParameter"
    type = "BadRequest"


class InvalidParameter(BadRequest):
    """A parameter is present but not valid. The message names it."""

    def __init__(self, param: str, detail: str, *, code: str | None = None) -> None:
        super().__init__(
            f"The parameter `{param}` specified in the request is not valid: {detail}",
            code=code or "InvalidParameter",
            param=param,
        )


class MissingParameter(BadRequest):
    code = "MissingParameter"

    def __init__(self, param: str) -> None:
        super().__init__(
            f"The request failed because it is missing the `{param}` parameter.",
            code="MissingParameter",
            param=param,
        )


class InvalidImage(BadRequest):
    """An input image is unusable; ``reason`` becomes ``InvalidImageURL.<reason>``."""

    def __init__(self, param: str, reason: str, detail: str) -> None:
        super().__init__(
            f"The image `{param}` is not valid: {detail}",
            code=f"InvalidImageURL.{reason}",
            param=param,
        )


class OperationDenied(BadRequest):
    code = "OperationDenied.TaskStatus"


class AuthenticationError(SegueError):
    status = 401
    code = "AuthenticationError"
    type = "Unauthorized"

    def __init__(self, message: str = "The API key in the request is missing or invalid.") -> None:
        super().__init__(message)


class NotFound(SegueError):
    status = 404
    code = "ResourceNotFound"
    type = "NotFound"


class ModelNotOpen(NotFound):
    """A model the registry lists that cannot be rendered here: no running worker serves it
    (``segue.tasks.fleet``), or its engine cannot load (weights not installed, torch or a GPU
    missing). Ark's code for a model not open to the account."""

    code = "ModelNotOpen"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


def task_not_found(task_id: str) -> NotFound:
    return NotFound(f"The specified task {task_id} is not found.", param="task_id")


class MethodNotAllowed(SegueError):
    """A known route called with a method it does not answer; ``allow`` lists those it does."""

    status = 405
    code = "MethodNotAllowed"
    type = "MethodNotAllowed"

    def __init__(self, method: str, allow: list[str]) -> None:
        super().__init__(f"The method {method} is not allowed on this route; "
                         f"use {', '.join(allow)}.")
        self.allow = allow


class PayloadTooLarge(SegueError):
    status = 413
    code = "InvalidParameter.RequestTooLarge"
    type = "BadRequest"


class TooManyRequests(SegueError):
    status = 429
    code = "RateLimitExceeded.EndpointRPMExceeded"
    type = "TooManyRequests"


class ServiceUnavailable(SegueError):
    status = 503
    code = "ServerOverloaded"
    type = "ServiceUnavailable"


class StorageFull(ServiceUnavailable):
    """The disk under the task store or the files is full (or below ``SEGUE_MIN_FREE_MB``).

    A kind of unavailability (what retries a store error retries this too), but one an
    operator must end: told apart so that clients and logs say what is wrong."""

    status = 507
    code = "InsufficientStorage"
    type = "InsufficientStorage"


class TaskInterrupted(Exception):
    """Raised inside a render when its task was cancelled or expired; the worker stops it."""
