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
        def resolve(self, kind, value, implicit):
            """libyaml asks twice per scalar which tag it would read back as; a build repeats most scalars.

            Only the question whether a plain scalar reads back as a string (``implicit[0]``) depends on the value,
            and its answer is remembered across documents (:func:`_remember`); every other answer is the kind's
            default tag, as the dumper has no path resolvers."""
            if kind is ScalarNode and implicit[0]:
                try:
                    return _tags[value]
                except KeyError:
                    return _remember(_tags, value, super().resolve(kind, value, implicit))
            return _DEFAULT_TAGS[kind]

    assert not _CDumper.yaml_path_resolvers  # what the short answer above relies on
    _FAST = _CDumper

_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_DEFAULT_TAGS = {ScalarNode: _STR, SequenceNode: _SEQ, MappingNode: _MAP}
_MEMO_SIZE = 1 << 15
_tags: dict[str, str] = {}
_styles: dict[str, str | None] = {}


def _remember(table: dict, key: str, value):
    """Store and return ``table[key] = value``. Scalars repeat across a service's files and a fleet's services
    (label names, durations, severities); a full table is emptied first, so a large fleet's memory stays flat."""
    if len(table) >= _MEMO_SIZE:
        table.clear()
    table[key] = value
    return value


# Characters PyYAML writes into plain or block scalars although a reader folds or drops them (NEL and the
# Unicode line separators are line breaks to YAML 1.1), and other control characters: double-quoted style
# writes them as escapes, so every string reads back exactly.
_QUOTE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# Plain scalars a YAML 1.2 reader (Prometheus, in Go) would not read as strings although YAML 1.1 does.
_YAML12_NOT_STRING = re.compile(r"[-+]?(0o[0-7]+|0x[0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\.[0-9]+"
                                r"([eE][-+]?[0-9]+)?|\.(inf|Inf|INF|nan|NaN|NAN))")


def _style(value: str) -> str | None:
    """How a string is written: double-quoted, literal block, single-quoted or plain (``None``)."""
    if _QUOTE.search(value):
        return '"'
    if "\n" in value:
        return "|"
    if _YAML12_NOT_STRING.fullmatch(value):
        return "'"
    return None


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar(_STR, value, style=_style(value))


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


class _Unusual(Exception):
    """The document needs PyYAML's own representer: shared objects, other types, characters libyaml escapes."""


_ASTRAL_STYLE = "astral"  # not a style: the string needs the pure-Python emitter


def _str_style(value: str) -> str | None:
    return _ASTRAL_STYLE if _ASTRAL.search(value) else _style(value)


def _node(dumper: yaml.CSafeDumper, data: object, seen: set[int]) -> yaml.Node:
    """``data`` as the node PyYAML's SafeRepresenter would make of it (block style, keys in order).

    A string's node is made directly (what ``represent_scalar`` makes: no default style, no alias for a string).
    """
    kind = type(data)
    if kind is str:
        try:
            style = _styles[data]
        except KeyError:
            style = _remember(_styles, data, _str_style(data))
        if style is _ASTRAL_STYLE:
            raise _Unusual
        return ScalarNode(_STR, data, style=style)
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
