"""Broken specs get the exact, located message (tests/specs/invalid/*.yaml → *.err) and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from obsgen.cli import main

INVALID = Path(__file__).parent / "specs" / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


@pytest.mark.parametrize("spec", CASES, ids=lambda p: p.stem)
def test_broken_spec_gets_exact_located_message_and_exit_2(spec, monkeypatch):
    monkeypatch.chdir(INVALID)
    result = CliRunner().invoke(main, ["validate", spec.name])
    assert result.exit_code == 2
    expected = spec.with_suffix(".err").read_text()
    *problems, summary = result.stderr.rstrip("\n").split("\n")
    assert "\n".join(problems) + "\n" == expected, result.stderr
    assert summary == f"obsgen: {len(problems)} problem{'s' if len(problems) != 1 else ''} found"
    assert "Traceback" not in result.output + result.stderr


def test_all_problems_of_all_files_are_reported_at_once(monkeypatch):
    monkeypatch.chdir(INVALID)
    result = CliRunner().invoke(main, ["validate", "unknown-key-typo.yaml", "duplicate-names.yaml"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 4 and "3 problems found" in result.stderr


def test_build_of_invalid_spec_writes_nothing(tmp_path):
    result = CliRunner().invoke(main, ["build", str(INVALID / "ratio-as-percent.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_missing_spec_path_is_exit_2_without_traceback(tmp_path):
    result = CliRunner().invoke(main, ["build", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_two_specs_claiming_one_service_are_rejected(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("apiVersion: obsgen/v1\nservice: {name: shop, team: web}\n")
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 2 and "also defined in" in result.stderr


ROOT = Path(__file__).resolve().parent.parent
# not-utf8.yaml is refused before any YAML is read (its message is checked with the other invalid specs)
YAML_FILES = sorted(p for p in [*ROOT.glob("specs/*.yaml"), *ROOT.glob("tests/specs/*/*.yaml")]
                    if p.name != "not-utf8.yaml")


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_libyaml_and_the_pure_loader_read_every_spec_alike(path, monkeypatch):
    """Specs are composed by libyaml for speed, and read again by the pure-Python loader only when libyaml
    refuses them: whatever libyaml accepts must come out exactly as the pure loader reads it (values, every
    key's and value's position, the problems found while converting), or users would see other answers."""
    from obsgen.spec import source

    text = path.read_text(encoding="utf-8")
    fast = source._fast_load(text, path.name)
    monkeypatch.setattr(source, "_FAST_LOADER", None)
    try:
        pure = source.load(text, path.name)
    except source.SpecError:
        assert fast is None, "libyaml read a document the pure loader refuses"
        return
    if path.parent.name in ("specs", "valid"):  # a valid spec is libyaml's to read: the comparison is never vacuous
        assert fast is not None, "libyaml refused a valid spec, or is missing (PyYAML without its C extension)"
    if fast is not None:
        assert fast == pure
