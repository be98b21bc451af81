"""``obsgen diff --base REF``: build the specs as they were at a git ref and as they are in the work tree.

The base's specs come out of git with ``git archive`` (no checkout, nothing in the repository changes) into
a temporary directory. Both sides are built by running ``obsgen build`` in a fresh interpreter: with the
code running this command, or with ``--base-code`` the base side with the obsgen source found at the ref
(``obsgen/`` of that tree on ``PYTHONPATH``), for reviewing a change to obsgen itself. ``-P`` keeps the
working directory off ``sys.path``, so each side imports exactly the code it says.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from obsgen.diff.outputs import Output, load
from obsgen.errors import UsageError

SPEC_SUFFIXES = (".yaml", ".yml")


class BuildFailed(Exception):
    """``obsgen build`` refused a side (its report is in ``stderr``; ``code`` is its exit code)."""

    def __init__(self, side: str, code: int, stderr: str):
        super().__init__(f"building {side} failed (exit {code})")
        self.side, self.code, self.stderr = side, code, stderr


@dataclass(frozen=True)
class Repo:
    top: Path
    ref: str
    commit: str

    def git(self, *args: str, binary: bool = False):
        return _git(self.top, *args, binary=binary)


def _git(cwd: Path, *args: str, binary: bool = False):
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise UsageError("--base needs git on PATH") from None
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, proc.stderr)
    return proc.stdout if binary else proc.stdout.decode("utf-8", "replace").strip()


def repo(ref: str, cwd: Path) -> Repo:
    try:
        top = Path(_git(cwd, "rev-parse", "--show-toplevel"))
    except subprocess.CalledProcessError:
        raise UsageError(f"--base {ref}: {cwd} is not inside a git repository") from None
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise UsageError(f"--base {ref}: no such commit, branch or tag in {top}") from None
    return Repo(top, ref, commit)


def _specs_at(r: Repo, path: Path) -> list[str]:
    """Spec files at or under ``path`` (relative to the repository) in the base tree."""
    listed = r.git("ls-tree", "-r", "--name-only", r.commit, "--", path.as_posix())
    return sorted(f for f in listed.splitlines() if f.endswith(SPEC_SUFFIXES))


def _extract(r: Repo, paths: list[str], into: Path) -> None:
    data = r.git("archive", "--format=tar", r.commit, "--", *paths, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def _obsgen_build(specs: list[Path], out: Path, *, pythonpath: Path, side: str, tree: Path | None = None) -> Path:
    """``obsgen build`` of ``specs`` into ``out`` by the obsgen package found in ``pythonpath``.

    Problems in a base spec are reported at ``REF:path`` rather than at the temporary copy (``tree``).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-P", "-m", "obsgen", "build", *map(str, specs), "--out", str(out),
                           "--jobs", "1"], env=env, capture_output=True, text=True, cwd=out.parent)
    if proc.returncode != 0:
        stderr = proc.stderr.replace(f"{tree}{os.sep}", f"{side}:") if tree else proc.stderr
        raise BuildFailed(side, proc.returncode, stderr)
    return out


def build_sides(ref: str, inputs: list[str], *, base_code: bool, workdir: Path) -> tuple[Output, Output]:
    """The outputs of ``inputs`` (spec files or folders) at ``ref`` and in the work tree, built into ``workdir``."""
    r = repo(ref, Path.cwd())
    base_specs: list[str] = []
    work_specs: list[Path] = []
    for raw in inputs:
        absolute = Path(os.path.abspath(raw))
        if not absolute.is_relative_to(r.top):
            raise UsageError(f"{raw}: outside the git repository {r.top}")
        at_base, here = _specs_at(r, absolute.relative_to(r.top)), _work_tree_specs(Path(raw))
        if not at_base and not here:
            raise UsageError(f"{raw}: no spec files there, neither at {ref} nor in the work tree")
        base_specs += [s for s in at_base if s not in base_specs]
        work_specs += [p for p in here if p not in work_specs]
    label = f"{ref} ({r.commit[:12]})"
    current = Path(__file__).resolve().parents[2]  # the folder holding the obsgen package running now
    this = f"the current obsgen ({version()})"
    old = Output(label, {}, f"obsgen at {label}" if base_code else this)
    if base_specs:
        tree = workdir / "base"
        code = ["obsgen"] if base_code else []
        if base_code and not r.git("ls-tree", "--name-only", r.commit, "--", "obsgen/cli.py"):
            raise UsageError(f"--base-code: {ref} has no obsgen source (obsgen/cli.py) in {r.top}")
        _extract(r, base_specs + code, tree)
        built = _obsgen_build([tree / s for s in base_specs], workdir / "old",
                              pythonpath=tree if base_code else current, side=ref, tree=tree)
        old = load(built, label=label)
        old.built_by = f"obsgen at {label}" if base_code else this
    new = Output("work tree", {}, this)
    if work_specs:
        new = load(_obsgen_build(work_specs, workdir / "new", pythonpath=current, side="the work tree"),
                   label="work tree")
        new.built_by = this
    return old, new


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("obsgen")
    except PackageNotFoundError:
        return "not installed"


def _work_tree_specs(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p.absolute() for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
    return [path.absolute()] if path.is_file() else []
