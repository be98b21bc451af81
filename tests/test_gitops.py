"""generated/ is exactly what the code builds from specs/, builds are byte-identical,
and the writer owns only what it wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import ROOT
from obsgen.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_committed_generated_output_matches_the_specs():
    result = run("build", str(ROOT / "specs"), "--check", "--out", str(ROOT / "generated"))
    assert result.exit_code == 0, result.output + result.stderr


def test_same_spec_builds_identical_bytes(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert run("build", str(ROOT / "specs"), "--out", str(first)).exit_code == 0
    assert run("build", str(ROOT / "specs"), "--out", str(second)).exit_code == 0
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def _two_services(specs: Path) -> None:
    specs.mkdir()
    shutil.copy(ROOT / "specs" / "maple.yaml", specs / "maple.yaml")
    (specs / "shop.yaml").write_text(
        "apiVersion: obsgen/v1\nservice: {name: shop, team: web}\nexecutors: [{name: pool, queue_capacity: 50}]\n")


def test_check_reports_changed_missing_and_orphaned_files_and_rebuild_restores(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    _two_services(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    rules = out / "maple-expectation" / "prometheus" / "rules.yaml"
    rules.write_text(rules.read_text().replace("severity: critical", "severity: info", 1))
    (out / "shop" / "prometheus" / "rules.test.yaml").unlink()
    hand_written = out / "shop" / "NOTES.md"
    hand_written.write_text("ours\n")
    (specs / "shop.yaml").write_text(
        "apiVersion: obsgen/v1\nservice: {name: shop, team: web}\ncaches: [{name: c}]\n")

    check = run("build", str(specs), "--check", "--out", str(out))
    assert check.exit_code == 1
    assert f"changed: {rules}" in check.output
    assert "-      severity: info" in check.output and "+      severity: critical" in check.output
    assert f"missing: {out / 'shop' / 'prometheus' / 'rules.test.yaml'}" in check.output
    assert "NOTES.md" not in check.output

    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    assert run("build", str(specs), "--check", "--out", str(out)).exit_code == 0
    assert hand_written.read_text() == "ours\n"
    assert "ExecutorQueueFull" not in (out / "shop" / "prometheus" / "rules.yaml").read_text()


def test_removed_outputs_are_pruned_but_unowned_files_survive(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    _two_services(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    (out / "shop" / "prometheus" / "extra.yaml").write_text("mine\n")
    manifest = out / "shop" / ".obsgen-manifest.json"
    manifest.write_text(manifest.read_text().replace('"files": [', '"files": [\n    "shop/prometheus/old.yaml",'))
    (out / "shop" / "prometheus" / "old.yaml").write_text("stale\n")

    check = run("build", str(specs), "--check", "--out", str(out))
    assert check.exit_code == 1 and f"orphaned: {out / 'shop' / 'prometheus' / 'old.yaml'}" in check.output
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    assert not (out / "shop" / "prometheus" / "old.yaml").exists()
    assert (out / "shop" / "prometheus" / "extra.yaml").read_text() == "mine\n"


def test_build_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    out = tmp_path / "out"
    target = out / "maple-expectation" / "prometheus" / "rules.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("hand-written rules\n")
    result = run("build", str(ROOT / "specs" / "maple.yaml"), "--out", str(out))
    assert result.exit_code == 2 and "did not write" in result.stderr
    assert target.read_text() == "hand-written rules\n"


def test_hand_edits_to_a_runbook_survive_a_rebuild_and_generated_parts_are_restored(tmp_path):
    out = tmp_path / "out"
    spec = str(ROOT / "specs" / "maple.yaml")
    assert run("build", spec, "--out", str(out)).exit_code == 0
    page = out / "maple-expectation" / "runbooks" / "RedisDown.md"
    original = page.read_text()
    note = "\n## Team notes\n\nCall the DBA on-call first: they own the Sentinel hosts.\n"
    page.write_text(original.replace("## Impact", "## Impact (edited by hand)") + note)

    assert run("build", spec, "--check", "--out", str(out)).exit_code == 1
    assert run("build", spec, "--out", str(out)).exit_code == 0
    rebuilt = page.read_text()
    assert rebuilt.endswith(note)
    assert "## Impact (edited by hand)" not in rebuilt and "## Impact\n" in rebuilt
    assert rebuilt.replace(note, "") == original
    assert run("build", spec, "--check", "--out", str(out)).exit_code == 0


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_gitops_loop_check_reports_exactly_the_drift_and_rebuild_fixes_only_what_obsgen_owns(tmp_path):
    """Issue 6: modify one generated file, remove one spec, add a hand-written file."""
    specs, out = tmp_path / "specs", tmp_path / "out"
    _two_services(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    built = _files(out)
    shop_owned = sorted(f for f in built if f.startswith("shop/"))
    assert "shop/.obsgen-manifest.json" in shop_owned and len(shop_owned) > 5

    rules = out / "maple-expectation" / "prometheus" / "rules.yaml"
    rules.write_text(rules.read_text().replace("severity: critical", "severity: info", 1))
    (specs / "shop.yaml").unlink()
    hand_written = out / "shop" / "NOTES.md"
    hand_written.write_text("our notes about shop\n")

    check = run("build", str(specs), "--check", "--out", str(out))
    assert check.exit_code == 1
    listed = [line for line in check.stdout.splitlines() if line.split(":")[0] in ("changed", "missing", "orphaned")]
    assert listed == [f"changed: {rules}"] + [f"orphaned: {out / f}" for f in shop_owned]
    assert "-      severity: info" in check.stdout and "+      severity: critical" in check.stdout
    assert "NOTES.md" not in check.stdout + check.stderr

    rebuild = run("build", str(specs), "--out", str(out))
    assert rebuild.exit_code == 0
    assert rebuild.stderr.splitlines()[-1] == f"obsgen: 1 service(s) built into {out}/ ({1 + len(shop_owned)} file(s) changed)"
    after = _files(out)
    assert after.pop("shop/NOTES.md") == b"our notes about shop\n"
    assert sorted(p.relative_to(out / "shop").as_posix() for p in (out / "shop").rglob("*")) == ["NOTES.md"]
    assert {f: b for f, b in after.items() if not f.startswith(".obsgen-cache/")} == \
        {f: b for f, b in built.items() if not f.startswith(("shop/", ".obsgen-cache/"))}
    assert run("build", str(specs), "--check", "--out", str(out)).exit_code == 0


def test_building_one_spec_leaves_the_services_of_other_specs_alone(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    _two_services(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    before = _files(out / "shop")
    assert run("build", str(specs / "maple.yaml"), "--check", "--out", str(out)).exit_code == 0
    assert run("build", str(specs / "maple.yaml"), "--out", str(out)).exit_code == 0
    assert _files(out / "shop") == before
    # A spec given by name that now yields another service prunes the old one.
    (specs / "shop.yaml").write_text("apiVersion: obsgen/v1\nservice: {name: shop2, team: web}\n"
                                     "executors: [{name: pool, queue_capacity: 50}]\n")
    assert run("build", str(specs / "shop.yaml"), "--out", str(out)).exit_code == 0
    assert not (out / "shop").exists() and (out / "shop2" / "prometheus" / "rules.yaml").exists()


def test_output_without_a_recorded_spec_is_never_pruned(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    _two_services(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    manifest = out / "shop" / ".obsgen-manifest.json"
    manifest.write_text(json.dumps({"generator": "obsgen", "files": json.loads(manifest.read_text())["files"]}))
    (specs / "shop.yaml").unlink()
    assert run("build", str(specs), "--check", "--out", str(out)).exit_code == 0
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    assert (out / "shop" / "prometheus" / "rules.yaml").exists()
