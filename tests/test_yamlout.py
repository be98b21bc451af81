"""YAML output is the same bytes with libyaml's emitter and with PyYAML's pure-Python one."""

from __future__ import annotations

import pytest
import yaml

from conftest import ROOT
from obsgen import pipeline
from obsgen.render import yamlout
from obsgen.spec import load

SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def _pure(monkeypatch) -> None:
    monkeypatch.setattr(yamlout, "_FAST", None)


def test_libyaml_is_used_where_installed():
    assert yaml.__with_libyaml__, "PyYAML without libyaml: builds would be about three times slower"
    assert yamlout._FAST is not None


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_generated_file_is_the_same_bytes_without_libyaml(path, monkeypatch):
    spec = load(path)
    fast = {o.path: o.content for o in pipeline.render(spec)}
    _pure(monkeypatch)
    assert {o.path: o.content for o in pipeline.render(spec)} == fast


@pytest.mark.parametrize("text", [
    "cache 😀 hits", "\U0001F600", "𠀀 ideograph", "tab\tand 😀", "line\nbreak 😀", "é ß 日本語 (BMP only)",
    'quote " and \\ backslash', "\u2028 line separator", "{{ 7*7 }}", "0x1F", "- item", "a" * 300,
])
def test_strings_read_back_exactly_and_match_the_pure_emitter(text, monkeypatch):
    data = {"labels": {"cache": text}, "list": [text, {"k": text}]}
    fast = yamlout.dump(data)
    assert yaml.safe_load(fast) == data
    _pure(monkeypatch)
    assert yamlout.dump(data) == fast


SHARED = {"k": "v"}


@pytest.mark.parametrize("data", [
    {"int": 3, "neg": -1, "float": 0.1, "big": 1e20, "tiny": 1e-05, "inf": float("inf"), "true": True, "none": None},
    {"empty_map": {}, "empty_list": [], "empty_tuple": (), "tuple": (1, "a"), "nested": [[{"a": [1]}]]},
    {"yes": "yes", "on": "on", "null": "null", "num": "1.5", "octal": "0o17", "date": "2024-01-01", "colon": "a: b"},
    {"twice": [SHARED, SHARED]},  # one dict twice: PyYAML writes an anchor and an alias
], ids=["scalars", "containers", "strings-read-as-other-types", "shared-object"])
def test_plain_data_is_written_as_pyyaml_writes_it(data, monkeypatch):
    """The direct node path gives the same bytes as PyYAML's representer, and leaves what it does not handle
    (a shared object) to it."""
    fast = yamlout.dump(data)
    assert yaml.safe_load(fast) == yaml.safe_load(yaml.safe_dump(data))
    _pure(monkeypatch)
    assert yamlout.dump(data) == fast


def test_remembered_scalars_give_the_same_bytes_again_and_when_the_memo_overflows(monkeypatch):
    """Styles and tags are remembered across documents (a fleet repeats most scalars); a full memo is emptied."""
    data = {"a": ["yes", "1.5", "x\ny", "plain", "\x85"], "b": {"yes": "plain", "n": 1}}
    first = yamlout.dump(data)
    assert yamlout.dump(data) == first
    monkeypatch.setattr(yamlout, "_MEMO_SIZE", 2)
    monkeypatch.setattr(yamlout, "_styles", {})
    monkeypatch.setattr(yamlout, "_tags", {})
    assert yamlout.dump(data) == first
    assert len(yamlout._styles) <= 2 and len(yamlout._tags) <= 2
    _pure(monkeypatch)
    assert yamlout.dump(data) == first
