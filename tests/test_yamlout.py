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
