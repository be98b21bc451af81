"""Deterministic JSON text: ``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)``, faster.

With ``indent`` the standard library encodes in pure Python, through a generator per container (its C
encoder cannot indent); that was most of a dashboard's rendering. :func:`dumps` walks plain JSON data
(dicts with string keys, lists, strings, numbers, booleans, None) with one recursive function and the
library's own C string encoder, and writes the very same bytes; anything else (another key or value type)
goes to ``json.dumps`` itself, so errors and odd inputs behave exactly as before.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

_INDENT = "  "
_INFINITY = float("inf")


class _Unusual(Exception):
    """The data holds something :func:`_encode` does not write; ``json.dumps`` does."""


def dumps(data: Any) -> str:
    """``data`` as ``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)`` writes it (no newline)."""
    out: list[str] = []
    try:
        _encode(data, "\n", out.append)
    except _Unusual:
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)
    return "".join(out)


def _float(x: float) -> str:
    if x != x:
        return "NaN"
    if x == _INFINITY:
        return "Infinity"
    if x == -_INFINITY:
        return "-Infinity"
    return float.__repr__(x)


def _encode(value: Any, newline: str, out) -> None:
    """Append ``value``'s text to ``out``; ``newline`` is a line break and the current indentation."""
    kind = type(value)
    if kind is str:
        out(encode_basestring(value))
    elif kind is dict:
        if not value:
            out("{}")
            return
        inner = newline + _INDENT
        separator = "{" + inner
        for key, item in sorted(value.items()):
            if type(key) is not str:
                raise _Unusual
            out(separator + encode_basestring(key) + ": ")
            _encode(item, inner, out)
            separator = "," + inner
        out(newline + "}")
    elif kind is list or kind is tuple:
        if not value:
            out("[]")
            return
        inner = newline + _INDENT
        separator = "[" + inner
        for item in value:
            out(separator)
            _encode(item, inner, out)
            separator = "," + inner
        out(newline + "]")
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif kind is int:
        out(int.__repr__(value))
    elif kind is float:
        out(_float(value))
    else:
        raise _Unusual
