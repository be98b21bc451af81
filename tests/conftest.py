"""Shared fixtures: real promtool (a missing binary fails the run), spec builds into temp dirs."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

# Before obsgen is imported: its records are frozen, so a test fails where code assigns to one
# (obsgen/model/records.py). Subprocesses the tests start inherit it.
os.environ["OBSGEN_FROZEN_RECORDS"] = "1"

import pytest  # noqa: E402
import yaml  # noqa: E402

from obsgen import pipeline, writer  # noqa: E402
from obsgen.spec import load, parse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
# Small specs that exercise what the seed specs do not (a kind's other profile, a rare topology).
VALID_SPECS = sorted((ROOT / "tests" / "specs" / "valid").glob("*.yaml"))

# A cache whose L2 tier lives in a Redis of the given topology (the cache page's Redis steps depend on it).
CACHE_ON_REDIS = """
apiVersion: obsgen/v1
service: {{name: store, team: platform}}
caches:
  - name: sessions
    tiers:
      l2: {{provider: redis, ttl: 5m, key_pattern: "cache:*"}}
redis:
  - name: sessions
    topology: {topology}
    selector: {{job: redis-store}}
"""


def tool(name: str) -> str:
    """Path of a server or tool binary; its absence is a failure, never a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed; run scripts/setup.sh (Debian package)", pytrace=False)
    return path


def output_sets(spec) -> list[tuple[object, Path]]:
    """Each output set of a committed spec under generated/: the spec and its folder, or, for a spec with
    `environments:`, each environment's merged spec and its folder (generated/<service>/<environment>/)."""
    folder = ROOT / "generated" / spec.service.name
    if not spec.environments:
        return [(spec, folder)]
    return [(merged, folder / name) for name, merged in spec.environments]


def build_into(out: Path, *specs) -> None:
    """Build already-loaded specs into ``out`` through the real writer."""
    writer.apply(writer.plan(out, {s.service.name: pipeline.render(s) for s in specs}))


def promtool(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def unit_tests(prom: Path) -> list[str]:
    """Every promtool test file obsgen wrote into a service's ``prometheus/`` (one per rule group and clock)."""
    return sorted(p.name for p in prom.glob("*.test.yaml"))


def unit_test_entries(prom: Path) -> list[dict]:
    """Every entry under ``tests:`` of every generated promtool test file of ``prom``."""
    return [t for name in unit_tests(prom) for t in yaml.safe_load((prom / name).read_text())["tests"]]


def run_unit_tests(prom: Path) -> subprocess.CompletedProcess:
    """``promtool test rules`` on every generated test file of ``prom``."""
    return promtool("test", "rules", *unit_tests(prom), cwd=prom)


@pytest.fixture(scope="session")
def maple():
    return load(ROOT / "specs" / "maple.yaml")


@pytest.fixture
def spec_from():
    """Parse spec text (for small, targeted specs in tests)."""
    return lambda text: parse(text, "test.yaml")


_RENDERED: dict[int, tuple[object, dict[str, str]]] = {}


def rendered(spec) -> dict[str, str]:
    """Every file of a loaded spec, path → text, rendered once per spec object."""
    hit = _RENDERED.get(id(spec))
    if hit is None or hit[0] is not spec:
        hit = _RENDERED[id(spec)] = (spec, {o.path: o.content for o in pipeline.render(spec)})
    return hit[1]


@functools.cache
def load_spec(path: Path):
    """A spec file loaded once per test run (specs are read-only)."""
    return load(path)


def all_rule_groups(files: dict[str, str], service: str) -> dict:
    """Every group of every plain rule file of ``service`` (rules.yaml, then e.g. slo.yaml), as one document."""
    import yaml

    prefix = f"{service}/prometheus/"
    names = [p for p in files if p.startswith(prefix) and "/" not in p.removeprefix(prefix)  # not components/
             and p.endswith(".yaml") and not p.endswith(".test.yaml")]
    names.sort(key=lambda p: (p != f"{prefix}rules.yaml", p))
    return {"groups": [g for name in names for g in yaml.safe_load(files[name])["groups"]]}


def assert_mutation_caught(tmp_path: Path, spec, pattern: str, replacement: str, mutation: str, *,
                           keep_syntax: bool = False) -> None:
    """Build ``spec``, apply one regex mutation to its rule files, and require its generated tests to fail.

    A pattern that no longer matches fails too (the mutation would prove nothing); with ``keep_syntax`` the
    mutated rules must still load, so the failure is the tests' and not promtool's parser's.
    """
    import re

    build_into(tmp_path, spec)
    prom = tmp_path / spec.service.name / "prometheus"
    # the deployed rule files and the copies of each component's rules that its tests load (components/<key>.yaml)
    rule_files = sorted(str(p.relative_to(prom)) for pattern in ("*.yaml", "components/*.yaml")
                        for p in prom.glob(pattern) if not p.name.endswith(".test.yaml"))
    mutated_files = set()
    for name in rule_files:
        mutated, n = re.subn(pattern, replacement, (prom / name).read_text())
        (prom / name).write_text(mutated)
        if n:
            mutated_files.add(name)
    assert mutated_files, f"mutation pattern no longer matches the rules of {spec.service.name}: {pattern}"
    if keep_syntax:
        assert promtool("check", "rules", *rule_files, cwd=prom).returncode == 0, "the mutation broke the syntax"
    # only the test files that load a mutated rule file can notice (the others would pass, and cost seconds)
    tests = sorted(p.name for p in prom.glob("*.test.yaml")
                   if mutated_files & set(yaml.safe_load(p.read_text())["rule_files"]))
    result = promtool("test", "rules", *tests, cwd=prom)
    assert result.returncode != 0, f"the generated tests did not notice: {mutation}"
