"""How values cross the wire: file contents in JSON, JSON into dataclasses, NDJSON lines.

File contents are the one place where the JSON API differs from plain JSON: the server
writes them as ``{"text": "..."}`` when they are UTF-8 and ``{"base64": "..."}`` otherwise,
and reads either of those or a plain string (its UTF-8 text). Every content in this
package is encoded by :func:`encode_content` and decoded by :func:`decode_content`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import typing
from typing import Any, Dict, Iterator, List, Mapping, Union

#: What a file's content may be given as: bytes, text (stored as UTF-8), or a binary
#: file object, read when the request is sent.
Content = Union[bytes, bytearray, memoryview, str, typing.BinaryIO]

# Bytes read from a file object per NDJSON chunk: a multiple of 3, so every chunk but the
# last encodes to base64 without padding and the chunks join into one base64 string.
_CHUNK = 3 * 64 * 1024


def encode_content(data: Content) -> Any:
    """A file's content in the JSON API's form: ``{"text"}`` for UTF-8, else ``{"base64"}``."""
    if isinstance(data, str):
        return {"text": data}
    raw = _read_all(data)
    try:
        return {"text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def decode_content(value: Any) -> bytes:
    """A file's content from the JSON API: ``{"text"}``, ``{"base64"}`` or a plain string."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and len(value) == 1:
        if "text" in value:
            return str(value["text"]).encode("utf-8")
        if "base64" in value:
            return base64.b64decode(value["base64"], validate=True)
    if isinstance(value, list):
        return bytes(value)
    raise ValueError(f'file content must be {{"text": ...}} or {{"base64": ...}}, not {value!r}')


def _read_all(data: Content) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        out = data.read()
        if isinstance(out, str):
            return out.encode("utf-8")
        return bytes(out)
    raise TypeError(f"file content must be bytes, str or a binary file object, not {type(data).__name__}")


def is_stream(data: Any) -> bool:
    """Whether ``data`` is a file object, read only when its line of a streamed commit is sent."""
    return hasattr(data, "read") and not isinstance(data, (bytes, bytearray, memoryview, str))


# ---------------------------------------------------------------------------------------
# NDJSON


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ndjson_put(head: Mapping[str, Any], data: Content) -> Iterator[bytes]:
    """One put change as an NDJSON line, in pieces.

    ``head`` is the change without its data. Bytes and text go out as one line. A file
    object is read a chunk at a time and sent as base64 as it is read, so neither the
    file nor its encoding is ever held whole on this side.
    """
    if not is_stream(data):
        change = dict(head)
        change["data"] = encode_content(data)
        yield dumps(change) + b"\n"
        return
    prefix = dumps(dict(head))
    yield prefix[:-1] + b',"data":{"base64":"'
    stream = typing.cast(typing.BinaryIO, data)
    while True:
        chunk = _read_exactly(stream, _CHUNK)
        if not chunk:
            break
        yield base64.b64encode(chunk)
        if len(chunk) < _CHUNK:
            break
    yield b'"}}\n'


def _read_exactly(stream: typing.BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end: a short read from a pipe must not put base64
    padding in the middle of the string."""
    parts = []
    left = size
    while left > 0:
        part = stream.read(left)
        if isinstance(part, str):
            part = part.encode("utf-8")
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


# ---------------------------------------------------------------------------------------
# JSON into dataclasses


def camel(name: str) -> str:
    """``objects_written`` -> ``objectsWritten``; a trailing ``_`` (``from_``) is dropped."""
    name = name.rstrip("_")
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


_hints: Dict[type, Dict[str, Any]] = {}


def _type_hints(cls: type) -> Dict[str, Any]:
    hints = _hints.get(cls)
    if hints is None:
        module = sys.modules[cls.__module__]
        hints = typing.get_type_hints(cls, vars(module))
        _hints[cls] = hints
    return hints


T = typing.TypeVar("T")


def from_json(tp: Any, value: Any) -> Any:
    """Read ``value`` (parsed JSON) as type ``tp``: dataclasses by their fields' camelCase
    names (unknown keys ignored, so newer servers still read), ``bytes`` as file content,
    ``Optional``, ``List`` and ``Dict`` of those. A dataclass may read itself with a
    ``_from_json`` classmethod."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return from_json(args[0], value)
    if origin in (list, List):
        (item,) = typing.get_args(tp)
        return [from_json(item, v) for v in _expect(value, list, tp)]
    if origin in (dict, Dict):
        _, item = typing.get_args(tp)
        return {k: from_json(item, v) for k, v in _expect(value, dict, tp).items()}
    if tp is bytes:
        return decode_content(value)
    if dataclasses.is_dataclass(tp):
        reader = getattr(tp, "_from_json", None)
        if reader is not None:
            return reader(value)
        return read_fields(tp, _expect(value, dict, tp))
    if tp in (int, float, str, bool):
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return _expect(value, tp, tp)
    return value


def read_fields(cls: Any, obj: Mapping[str, Any], **given: Any) -> Any:
    """A dataclass from a JSON object's fields (plus any ``given`` already read)."""
    hints = _type_hints(cls)
    kwargs: Dict[str, Any] = dict(given)
    for field in dataclasses.fields(cls):
        if field.name in kwargs or not field.init:
            continue
        key = field.metadata.get("json", camel(field.name))
        if key in obj:
            kwargs[field.name] = from_json(hints[field.name], obj[key])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            if typing.get_origin(hints[field.name]) is Union and type(None) in typing.get_args(hints[field.name]):
                kwargs[field.name] = None
            else:
                raise ValueError(f"the server's {cls.__name__} has no {key!r}: {dict(obj)!r:.200}")
    return cls(**kwargs)


def _expect(value: Any, kind: Any, tp: Any) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {getattr(tp, '__name__', tp)} from the server, got {value!r:.200}")
    return value


def text_of(raw: bytes) -> str:
    """Text of a plain-text response; bytes that are not UTF-8 survive as surrogates
    (``text.encode("utf-8", "surrogateescape")`` gives them back)."""
    return raw.decode("utf-8", "surrogateescape")

