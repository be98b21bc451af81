"""``obsgen diff --base REF`` in real temporary git repositories: the base's specs come out of git, both
sides are built in fresh interpreters, and ``--base-code`` builds the base side with the obsgen source
committed at the ref."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, tool
from obsgen.cli import main

MAPLE = (ROOT / "specs" / "maple.yaml").read_text()
SHOP = "apiVersion: obsgen/v1\nservice: {name: shop, team: web}\nexecutors: [{name: pool, queue_capacity: 50}]\n"


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run([tool("git"), *args], cwd=repo, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A GitOps repository: specs/maple.yaml and specs/shop.yaml committed on main; the test edits the work tree."""
    root = tmp_path / "gitops"
    (root / "specs").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "specs" / "maple.yaml").write_text(MAPLE)
    (root / "specs" / "shop.yaml").write_text(SHOP)
    commit(root, "specs")
    monkeypatch.chdir(root)
    return root


def diff_json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["diff", *args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_base_compares_the_committed_specs_with_the_work_tree(repo):
    spec = repo / "specs" / "maple.yaml"
    spec.write_text(MAPLE.replace("labels: {layer: L1}, hit_rate_min: 0.8}", "labels: {layer: L1}, hit_rate_min: 0.4}", 1))
    rep = diff_json("--base", "main")
    head = git(repo, "rev-parse", "HEAD")[:12]
    assert rep["old"] == {"source": f"main ({head})", "built_by": rep["new"]["built_by"]}
    assert rep["new"]["source"] == "work tree" and rep["new"]["built_by"].startswith("the current obsgen (")
    assert [(r["kind"], r["subject"]) for r in rep["risks"]] == [
        ("threshold-loosened", "CacheHitRateLow (equipment, tier=L1)")]
    assert git(repo, "status", "--porcelain") == "M specs/maple.yaml"  # nothing written into the repository
    assert git(repo, "worktree", "list").count("\n") == 0


@pytest.mark.slow
def test_base_sees_services_added_and_removed(repo):
    (repo / "specs" / "shop.yaml").unlink()
    (repo / "specs" / "cart.yaml").write_text(SHOP.replace("name: shop", "name: cart"))
    rep = diff_json("--base", "HEAD", "specs")
    assert {(s["service"], s["status"]) for s in rep["services"]} == {("cart", "added"), ("shop", "removed")}


@pytest.mark.slow
def test_base_limited_to_one_spec_file(repo):
    (repo / "specs" / "shop.yaml").write_text(SHOP.replace("queue_capacity: 50", "queue_capacity: 80"))
    assert diff_json("--base", "main", "specs/maple.yaml")["services"] == []
    assert [s["service"] for s in diff_json("--base", "main", "specs/shop.yaml")["services"]] == ["shop"]


@pytest.mark.slow
def test_base_code_builds_the_base_side_with_the_obsgen_committed_there(repo):
    """The base commit carries a copy of obsgen whose pager receiver is named differently: only --base-code
    lets that code build the base side, so only then do the pages move."""
    shutil.copytree(ROOT / "obsgen", repo / "obsgen", ignore=shutil.ignore_patterns("__pycache__"))
    alertmanager = repo / "obsgen" / "render" / "alertmanager.py"
    source = alertmanager.read_text()
    assert '"critical": "{team}-pager"' in source
    alertmanager.write_text(source.replace('"critical": "{team}-pager"', '"critical": "{team}-oncall"'))
    commit(repo, "obsgen with another pager name")
    assert diff_json("--base", "main")["services"] == []
    rep = diff_json("--base", "main", "--base-code")
    assert rep["old"]["built_by"] == f"obsgen at main ({git(repo, 'rev-parse', 'HEAD')[:12]})"
    moved = [c for s in rep["services"] for a in s["alerts"] for c in a["changes"]]
    pager_moves = [{"kind": "receiver", "old": [f"{team}-oncall"], "new": [f"{team}-pager"]} for team in ("sre", "web")]
    assert moved and [c for c in moved if c not in pager_moves] == []


def test_base_code_without_obsgen_source_at_the_ref_is_invalid_input(repo):
    result = CliRunner().invoke(main, ["diff", "--base", "main", "--base-code"])
    assert result.exit_code == 2
    assert result.stderr == f"obsgen: --base-code: main has no obsgen source (obsgen/cli.py) in {repo}\n"


def test_an_invalid_spec_at_the_base_is_reported_at_ref_and_path(repo):
    (repo / "specs" / "shop.yaml").write_text(SHOP.replace("queue_capacity: 50", "queue_capacty: 50"))
    commit(repo, "typo")
    (repo / "specs" / "shop.yaml").write_text(SHOP)
    result = CliRunner().invoke(main, ["diff", "--base", "main"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "main:specs/shop.yaml:3:" in result.stderr and "unknown key `queue_capacty`" in result.stderr
    assert result.stderr.endswith("obsgen: diff: building main failed (exit 2)\n")


@pytest.mark.parametrize(("args", "message"), [
    (("--base", "no-such-branch"), "obsgen: --base no-such-branch: no such commit, branch or tag in {repo}\n"),
    (("--base", "main", "nowhere"), "obsgen: nowhere: no spec files there, neither at main nor in the work tree\n"),
    (("--base", "--upload-pack=touch x"), "obsgen: --base --upload-pack=touch x: no such commit, branch or tag in "
                                           "{repo}\n"),
])
def test_bad_refs_and_paths_are_invalid_input(repo, args, message):
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exit_code == 2 and result.stderr == message.format(repo=repo)
    assert not (repo / "x").exists()


def test_base_outside_a_git_repository_is_invalid_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["diff", "--base", "main"])
    assert result.exit_code == 2 and result.stderr == f"obsgen: --base main: {tmp_path} is not inside a git repository\n"
