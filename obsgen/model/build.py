"""Turn checked, defaulted spec data into the typed model (dataclasses all the way down)."""

from __future__ import annotations

import sys
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from functools import cache

from obsgen.model.types import Duration, MetricRef

T = typing.TypeVar("T")


@cache
def _hints(cls: type) -> dict[str, object]:
    """The type of each field of ``cls`` (and its bases), as :func:`typing.get_type_hints` reads it.

    obsgen's modules postpone annotations (``from __future__ import annotations``): every annotation is a string
    such as ``"str | None"``, evaluated in the namespace of the module that wrote it. ``get_type_hints`` compiles
    one per field (a ``ForwardRef`` each, every run: ~2 ms of a cold build); the same few texts recur across a
    module's classes, so each is compiled and evaluated once per module. tests/test_architecture.py checks the
    answers are the same for every class a spec is read into."""
    out: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        for name, annotation in base.__dict__.get("__annotations__", {}).items():
            out[name] = _evaluated(annotation, base.__module__) if isinstance(annotation, str) else annotation
    return out


@cache
def _evaluated(annotation: str, module: str) -> object:
    return eval(annotation, sys.modules[module].__dict__)  # obsgen's own annotation text, never a spec's


class MissingKey(Exception):
    """Spec data lacks a key the model needs and the JSON Schema gives no default for: a bug in the schema (the
    schema is the only place defaults live), never a user's mistake (those are reported with their location)."""


def build(cls: type[T], data: dict) -> T:
    """Build ``cls`` from a dict whose keys are the field names (``for`` fills ``for_``).

    Defaults live in the JSON Schema only (:func:`obsgen.spec.schema.apply_defaults` filled them in): a field
    that may be absent is typed ``X | None`` and gets ``None``; a field the kind fixes itself keeps its value in
    the dataclass; any other missing key fails loudly."""
    hints = _hints(cls)
    kwargs = {}
    for f in fields(cls):  # type: ignore[arg-type]
        key = f.name.rstrip("_")
        if key in data:
            kwargs[f.name] = _coerce(hints[f.name], data[key])
        elif f.default is MISSING and f.default_factory is MISSING:
            if not _optional(hints[f.name]):
                raise MissingKey(f"{cls.__name__}.{f.name}: the spec data has no `{key}` and the schema no default")
            kwargs[f.name] = None
    return cls(**kwargs)


def _optional(tp: object) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _coerce(tp: object, value: object) -> object:
    if value is None:
        return None
    if tp is Duration:
        return Duration.parse(value)  # type: ignore[arg-type]
    if tp is MetricRef:
        return MetricRef.of(value)  # type: ignore[arg-type]
    if tp is float:
        return float(value)  # type: ignore[arg-type]
    if isinstance(tp, type) and is_dataclass(tp):
        if isinstance(value, tp):  # already typed (the service's own tuning, read with the service)
            return value
        return build(tp, value)  # type: ignore[arg-type]
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_coerce(item, v) for v in value]  # type: ignore[attr-defined]
    if origin is tuple:  # tuple[X, ...]: a list in the spec
        return tuple(_coerce(typing.get_args(tp)[0], v) for v in value)  # type: ignore[attr-defined]
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: _coerce(item, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner, value)
    return value
