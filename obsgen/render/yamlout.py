"""Deterministic, readable YAML: block style, multi-line strings as literal blocks, keys in given order.

Dumping is most of the CPU of a build with PyYAML's pure-Python emitter; libyaml's
emitter (``CSafeDumper``) is about three times faster and writes the same bytes,
except for characters outside Unicode's Basic Multilingual Plane (emoji, rare CJK
ideographs), which libyaml escapes (``"\\U0001F600"``) where the Python emitter
writes them as they are. A document holding any such character is dumped by the
Python emitter, so the bytes never depend on whether libyaml is installed.

With libyaml, plain data (dicts, lists, strings, numbers, booleans, None: what every
renderer hands over) is turned into PyYAML's nodes directly, without the representer's
per-object dispatch and alias bookkeeping; anything else (a document that shares one
dict or list twice, which PyYAML writes as an anchor and alias) goes the usual way.
"""

from __future__ import annotations

import io
import re

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode


class _Dumper(yaml.SafeDumper):
    pass


_FAST: type | None = None
if getattr(yaml, "__with_libyaml__", False):
    class _CDumper(yaml.CSafeDumper):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._resolved: dict = {}

        def resolve(self, kind, value, implicit):
            """libyaml asks twice per scalar which tag it would read back as; a document repeats most of them."""
            if kind is not ScalarNode:
                return super().resolve(kind, value, implicit)
            key = (value, tuple(implicit))
            if key not in self._resolved:
                self._resolved[key] = super().resolve(kind, value, implicit)
            return self._resolved[key]

    _FAST = _CDumper


# Characters PyYAML writes into plain or block scalars although a reader folds or drops them (NEL and the
# Unicode line separators are line breaks to YAML 1.1), and other control characters: double-quoted style
# writes them as escapes, so every string reads back exactly.
_QUOTE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# Plain scalars a YAML 1.2 reader (Prometheus, in Go) would not read as strings although YAML 1.1 does.
_YAML12_NOT_STRING = re.compile(r"[-+]?(0o[0-7]+|0x[0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\.[0-9]+"
                                r"([eE][-+]?[0-9]+)?|\.(inf|Inf|INF|nan|NaN|NAN))")


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if _QUOTE.search(value):
        style = '"'
    elif "\n" in value:
        style = "|"
    elif _YAML12_NOT_STRING.fullmatch(value):
        style = "'"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _astral(data: object) -> bool:
    """Whether any string (key or value) in ``data`` has a character outside the Basic Multilingual Plane."""
    if isinstance(data, str):
        return bool(_ASTRAL.search(data))
    if isinstance(data, dict):
        return any(_astral(k) or _astral(v) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        return any(_astral(v) for v in data)
    return False


for _dumper in (_Dumper, _FAST):
    if _dumper is not None:
        _dumper.add_representer(str, _str)


_OPTIONS = dict(sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Unusual(Exception):
    """The document needs PyYAML's own representer: shared objects, other types, characters libyaml escapes."""


def _node(dumper: yaml.CSafeDumper, data: object, seen: set[int]) -> yaml.Node:
    """``data`` as the node PyYAML's SafeRepresenter would make of it (block style, keys in order)."""
    kind = type(data)
    if kind is str:
        if _ASTRAL.search(data):
            raise _Unusual
        return _str(dumper, data)
    if kind is dict or kind is list or (kind is tuple and data):
        if id(data) in seen:
            raise _Unusual
        seen.add(id(data))
        if kind is dict:
            return MappingNode(_MAP, [(_node(dumper, k, seen), _node(dumper, v, seen)) for k, v in data.items()],
                               flow_style=False)
        return SequenceNode(_SEQ, [_node(dumper, v, seen) for v in data], flow_style=False)
    if kind in (int, float, bool) or data is None or data == ():
        return dumper.represent_data(data)
    raise _Unusual


def dump(data: object) -> str:
    if _FAST is not None:
        stream = io.StringIO()
        dumper = _FAST(stream, **_OPTIONS)
        try:
            node = _node(dumper, data, set())
        except _Unusual:
            pass
        else:
            dumper.open()
            dumper.serialize(node)
            dumper.close()
            return stream.getvalue()
    dumper = _FAST if _FAST is not None and not _astral(data) else _Dumper
    return yaml.dump(data, Dumper=dumper, **_OPTIONS)
