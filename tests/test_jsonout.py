"""Dashboard JSON is written exactly as ``json.dumps(sort_keys=True, indent=2, ensure_ascii=False)`` writes it."""

from __future__ import annotations

import json

import pytest

from obsgen.render import jsonout


def _reference(data) -> str:
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("data", [
    {"b": 1, "a": [1, 2.5, -0.0, 1e20, 1e-07, True, False, None], "c": {}, "d": [], "e": [[], [{}]]},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "big": 10 ** 30},
    {"s": 'quote " backslash \\ tab \t newline \n', "u": "é ß 日本語 😀 \u2028 \x7f \x00", "": ""},
    {"nested": {"z": {"y": [{"x": "1"}, (1, "tuple")]}}, "key with spaces": "v", "Ä": 1, "a": 2},
    [], {}, "text", 3, 0.1, None, True, (),
], ids=["scalars", "special-floats", "escapes", "nesting", "empty-list", "empty-dict", "str", "int", "float",
        "null", "bool", "empty-tuple"])
def test_plain_json_is_written_as_the_standard_library_writes_it(data):
    assert jsonout.dumps(data) == _reference(data)


class Number(int):
    pass


@pytest.mark.parametrize("data", [{1: "int key"}, {"a": Number(3)}, {"set": {1}}], ids=["int-key", "int-subclass", "set"])
def test_anything_else_goes_to_the_standard_library(data):
    """Other key and value types are json.dumps's own business: the same text, or the same error."""
    try:
        expected = _reference(data)
    except TypeError as exc:
        with pytest.raises(TypeError, match=str(exc)):
            jsonout.dumps(data)
    else:
        assert jsonout.dumps(data) == expected
