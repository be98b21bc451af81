"""The runbook templates compile once per user: later builds load Jinja's compiled code from the user's cache
directory, write the same bytes, and a damaged or unwritable cache only costs the compile (issue 17)."""

from __future__ import annotations

import os
import time
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Renders maple's runbooks in a fresh process and prints a digest of them. With NO_COMPILE set, Jinja's compiler
# raises: the pages can then only come from compiled code in the cache.
SCRIPT = """
import hashlib, os, sys
import jinja2
if os.environ.get("NO_COMPILE"):
    def refuse(self, *args, **kwargs):
        raise SystemExit("a template was compiled")
    jinja2.Environment.compile = refuse
from obsgen import pipeline
from obsgen.render import runbooks
from obsgen.spec import load
pages = runbooks.render(pipeline.build(load(__import__("pathlib").Path(sys.argv[1]))))
print(hashlib.sha256(repr(sorted(pages.items())).encode()).hexdigest())
"""


def _render(cache_home: Path, *, compile_allowed: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    env.pop("NO_COMPILE", None)
    if not compile_allowed:
        env["NO_COMPILE"] = "1"
    return subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "specs" / "maple.yaml")], env=env,
                          capture_output=True, text=True, timeout=120)


def _entries(cache_home: Path) -> list[Path]:
    return sorted(cache_home.glob("obsgen/templates-*/*.cache"))


def test_a_second_run_renders_the_same_pages_without_compiling_a_template(tmp_path):
    first = _render(tmp_path)
    assert first.returncode == 0, first.stderr
    assert _entries(tmp_path), "the first run left no compiled templates in the cache"
    second = _render(tmp_path, compile_allowed=False)
    assert second.returncode == 0, f"the second run compiled a template: {second.stderr}"
    assert second.stdout == first.stdout


def test_without_a_cache_the_guard_does_catch_a_compile(tmp_path):
    """The check above means something: with an empty cache, rendering needs the compiler."""
    run = _render(tmp_path, compile_allowed=False)
    assert run.returncode != 0 and "a template was compiled" in run.stderr + run.stdout


def test_damaged_cache_entries_are_compiled_again_with_the_same_pages(tmp_path):
    reference = _render(tmp_path / "clean").stdout
    first = _render(tmp_path)
    from jinja2.bccache import bc_magic

    # Foreign bytes, a file cut inside the source checksum after Jinja's header, or cut inside the code.
    for i, entry in enumerate(_entries(tmp_path)):
        data = entry.read_bytes()
        entry.write_bytes((b"not jinja", data[: len(bc_magic) + 3], data[: len(data) // 2])[i % 3])
    again = _render(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout == reference
    assert _render(tmp_path, compile_allowed=False).returncode == 0, "damaged entries were not rewritten"


def test_an_unwritable_cache_directory_only_costs_the_compile(tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would go\n")
    reference = _render(tmp_path / "clean").stdout
    run = _render(blocked)
    assert run.returncode == 0, run.stderr
    assert run.stdout == reference


def test_two_installs_of_the_same_obsgen_share_one_compiled_copy_of_each_template(tmp_path):
    """Jinja names an entry by the template's path too: every checkout and virtualenv added its own copies."""
    import shutil

    other = tmp_path / "elsewhere"
    shutil.copytree(ROOT / "obsgen", other / "obsgen", ignore=shutil.ignore_patterns("__pycache__"))
    first = _render(tmp_path / "cache")
    entries = _entries(tmp_path / "cache")
    moved = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "specs" / "maple.yaml")],
                           env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(other)),
                           capture_output=True, text=True, timeout=120, cwd=other)
    assert moved.returncode == 0, moved.stderr
    assert "elsewhere" in subprocess.run(
        [sys.executable, "-c", "import obsgen; print(obsgen.__file__)"], env=dict(os.environ, PYTHONPATH=str(other)),
        capture_output=True, text=True, cwd=other).stdout, "the copy did not run from its own path"
    assert moved.stdout == first.stdout
    assert _entries(tmp_path / "cache") == entries


def test_the_first_run_of_another_obsgen_removes_compiled_templates_unwritten_for_a_month(tmp_path):
    from obsgen.render.runbooks import CACHE_KEPT_DAYS

    stale, recent = tmp_path / "obsgen" / "templates-0ld0ld0ld0ld", tmp_path / "obsgen" / "templates-recent0000"
    for folder in (stale, recent):
        folder.mkdir(parents=True)
        (folder / "entry.cache").write_bytes(b"compiled code")
    month_ago = time.time() - (CACHE_KEPT_DAYS + 1) * 86400
    os.utime(stale, (month_ago, month_ago))
    assert _render(tmp_path).returncode == 0
    assert not stale.exists()
    assert (recent / "entry.cache").exists()
    assert _entries(tmp_path), "this obsgen's own cache is missing"
