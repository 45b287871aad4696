"""Errors of the JSON API as exceptions.

The server answers a failed request with ``application/problem+json``:
``{type, title, status, detail, code, ...fields}``, where ``code`` is core's stable code
(``NOT_FOUND``, ``HEAD_MOVED``...) and the other fields name the values involved
(``value``, ``expected``, ``actual``, ``limit``...). Each code has its exception class
here; 401 and 403 have theirs whatever the code. An answer that is not a problem (a
proxy's page, a plain-text error) is mapped by its status.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Corrupt",
    "EmptyCommit",
    "Forbidden",
    "HeadMoved",
    "InvalidInput",
    "LimitExceeded",
    "LostRace",
    "Misuse",
    "NotFound",
    "PolicyViolation",
    "SnapgitError",
    "StorageFailed",
    "Unauthorized",
    "Unsupported",
    "error_from",
]


class SnapgitError(Exception):
    """A request the server refused or failed.

    ``code`` is core's code (``"NOT_FOUND"``...), ``status`` the HTTP status, ``detail``
    the server's message and ``fields`` the values it names (``value``, ``limit``...).
    """

    code: str = "UNKNOWN"

    def __init__(self, code: str, status: int, detail: str, fields: Optional[Mapping[str, Any]] = None):
        super().__init__(f"{code} ({status}): {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.fields: Dict[str, Any] = dict(fields or {})

    @property
    def value(self) -> Any:
        """The offending value the server named, if any."""
        return self.fields.get("value")


class InvalidInput(SnapgitError):
    """``INVALID_INPUT`` (400): a bad name, path, id, signature, option or body."""

    code = "INVALID_INPUT"


class NotFound(SnapgitError):
    """``NOT_FOUND`` (404): no such repo, branch, revision or path."""

    code = "NOT_FOUND"


class AlreadyExists(SnapgitError):
    """``ALREADY_EXISTS`` (409): the repo or branch exists."""

    code = "ALREADY_EXISTS"


class Conflict(SnapgitError):
    """``CONFLICT`` (409): a path changed on both sides of a replay (with
    ``on_conflict="fail"``), or something stands where a change writes."""

    code = "CONFLICT"


class LostRace(SnapgitError):
    """``LOST_RACE`` (409): every attempt lost the compare-and-swap; nothing was
    committed, so the same commit may be sent again."""

    code = "LOST_RACE"


class HeadMoved(SnapgitError):
    """``HEAD_MOVED`` (412): the branch is not at ``expected_head``."""

    code = "HEAD_MOVED"

    @property
    def expected(self) -> Optional[str]:
        return self.fields.get("expected")

    @property
    def actual(self) -> Optional[str]:
        """The head found (``None``: no branch)."""
        return self.fields.get("actual")


class EmptyCommit(SnapgitError):
    """``EMPTY_COMMIT`` (422): the commit changes nothing (pass ``allow_empty=True``)."""

    code = "EMPTY_COMMIT"


class PolicyViolation(SnapgitError):
    """``POLICY`` (422): the changes break the write policy."""

    code = "POLICY"


class LimitExceeded(SnapgitError):
    """``LIMIT`` (413): a size or count limit; ``fields["limit"]`` says which."""

    code = "LIMIT"


class StorageFailed(SnapgitError):
    """``STORAGE`` (503): the server's storage or lock service failed; try again."""

    code = "STORAGE"


class Unsupported(SnapgitError):
    """``UNSUPPORTED`` (501): the store holds something the operation cannot account for."""

    code = "UNSUPPORTED"


class Corrupt(SnapgitError):
    """``CORRUPT`` (500): stored data is not what it must be."""

    code = "CORRUPT"


class Misuse(SnapgitError):
    """``MISUSE`` (500): the server drove an operation out of order (a server bug)."""

    code = "MISUSE"


class Unauthorized(SnapgitError):
    """401: no token, or one the server does not know."""


class Forbidden(SnapgitError):
    """403: the token may not do this in this repo (or in the whole store)."""


_BY_CODE: Dict[str, Type[SnapgitError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        NotFound,
        AlreadyExists,
        Conflict,
        LostRace,
        HeadMoved,
        EmptyCommit,
        PolicyViolation,
        LimitExceeded,
        StorageFailed,
        Unsupported,
        Corrupt,
        Misuse,
    )
}

# The code of an answer that carries none, by status (what the server's own mapping gives).
_BY_STATUS = {
    400: "INVALID_INPUT",
    404: "NOT_FOUND",
    405: "INVALID_INPUT",
    409: "CONFLICT",
    412: "HEAD_MOVED",
    413: "LIMIT",
    422: "POLICY",
    500: "CORRUPT",
    501: "UNSUPPORTED",
    502: "STORAGE",
    503: "STORAGE",
    504: "STORAGE",
}

_PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def error_from(status: int, content_type: str, body: bytes) -> SnapgitError:
    """The exception for an error answer: a problem's code and fields, else the status's."""
    problem: Optional[Dict[str, Any]] = None
    if "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            problem = parsed
    if problem is not None and isinstance(problem.get("code"), str):
        code = problem["code"]
        detail = str(problem.get("detail") or problem.get("title") or code)
        fields = {k: v for k, v in problem.items() if k not in _PROBLEM_KEYS}
    else:
        code = _BY_STATUS.get(status, "UNKNOWN")
        detail = body.decode("utf-8", "replace").strip() or f"HTTP {status}"
        fields = {}
    if status == 401:
        cls: Type[SnapgitError] = Unauthorized
    elif status == 403:
        cls = Forbidden
    else:
        cls = _BY_CODE.get(code, SnapgitError)
    return cls(code, status, detail, fields)
