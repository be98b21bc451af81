"""Fleet builds: parallel and deterministic, all or nothing across services, and skipping
unchanged specs without ever serving stale output."""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from obsgen import fleet, pipeline, writer
from obsgen.cli import main

SMALL = {
    "shop": "executors: [{name: pool, queue_capacity: 50}]\n",
    "cart": "caches: [{name: carts, tiers: {l1: {provider: caffeine, labels: {layer: L1}, hit_rate_min: 0.7}}}]\n",
    "pay": "breakers: [{name: psp}]\nretries: [{name: psp, breaker: psp}]\ntime_limiters: [{name: psp, timeout: 2s}]\n",
    "stock": "redis: [{name: main, topology: cluster}]\n",
    "search": "redis: [{name: idx, topology: standalone, replicas: 1}]\nexecutors: [{name: q, queue_capacity: 9}]\n",
}


def spec_text(name: str, body: str, team: str = "web") -> str:
    return f"apiVersion: obsgen/v1\nservice: {{name: {name}, team: {team}}}\n{body}"


def write_fleet(specs: Path, with_maple: bool = True) -> None:
    specs.mkdir(exist_ok=True)
    for name, body in SMALL.items():
        (specs / f"{name}.yaml").write_text(spec_text(name, body))
    if with_maple:
        shutil.copy(ROOT / "specs" / "maple.yaml", specs / "maple.yaml")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def snapshot(root: Path) -> dict:
    """Every file's bytes and every directory under ``root`` (``None`` if it does not exist)."""
    if not root.exists():
        return {"<absent>": None}
    out: dict = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        out[f"{rel}/"] = sorted(dirnames)
        for name in filenames:
            out[str(rel / name)] = (Path(dirpath) / name).read_bytes()
    return out


class Renders:
    """Counts pipeline.render calls (in this process: use jobs=1)."""

    def __init__(self, monkeypatch):
        self.services: list[str] = []
        real = pipeline.render

        def counting(spec, **kw):
            self.services.append(spec.service.name)
            return real(spec, **kw)

        monkeypatch.setattr(pipeline, "render", counting)


# --------------------------------------------------------------------------- parallel, deterministic


def test_output_is_identical_whatever_the_number_of_jobs(tmp_path):
    specs = tmp_path / "specs"
    write_fleet(specs)
    one, two = tmp_path / "one" / "out", tmp_path / "two" / "out"
    first = run("build", str(specs), "--out", str(one), "--jobs", "1")
    assert first.exit_code == 0, first.stderr
    result = run("build", str(specs), "--out", str(two), "--jobs", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == first.stderr.replace(str(one), str(two))
    assert result.stderr.splitlines()[-1].startswith(f"obsgen: 6 service(s) built into {two}/ (")
    a, b = snapshot(one), snapshot(two)
    assert sorted(a) == sorted(b) and len(a) > 80
    assert all(a[k] == b[k] for k in a)


def test_check_output_is_identical_whatever_the_number_of_jobs(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    for name in ("shop", "pay", "stock"):
        rules = out / name / "prometheus" / "rules.yaml"
        rules.write_text(rules.read_text().replace("severity: warning", "severity: info"))
    (specs / "cart.yaml").write_text(spec_text("cart", SMALL["cart"], team="ops"))
    reports = [run("build", str(specs), "--check", "--out", str(out), "--jobs", jobs) for jobs in ("1", "2")]
    assert [r.exit_code for r in reports] == [1, 1]
    assert reports[0].stdout == reports[1].stdout and reports[0].stderr == reports[1].stderr
    assert len([line for line in reports[0].stdout.splitlines() if line.startswith("changed: ")]) > 4


def test_two_specs_claiming_one_service_are_an_error_located_in_both_files(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    (specs / "zz-copy.yaml").write_text("# a copy\n" + spec_text("shop", SMALL["shop"]))
    for jobs in ("1", "2"):
        result = run("build", str(specs), "--out", str(out), "--jobs", jobs)
        assert result.exit_code == 2
        assert result.stderr.splitlines()[:2] == [
            f"{specs / 'shop.yaml'}:2:17: service.name: service `shop` is also defined in {specs / 'zz-copy.yaml'}; "
            "service names must be unique",
            f"{specs / 'zz-copy.yaml'}:3:17: service.name: service `shop` is also defined in {specs / 'shop.yaml'}; "
            "service names must be unique",
        ]
        assert not out.exists()


def test_a_duplicate_is_caught_even_when_the_first_spec_is_skipped_as_unchanged(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    before = snapshot(out)
    (specs / "zz-copy.yaml").write_text(spec_text("shop", SMALL["shop"]))
    result = run("build", str(specs), "--out", str(out))
    assert result.exit_code == 2 and result.stderr.count("also defined in") == 2
    assert snapshot(out) == before


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = fleet.Progress(3, stream)
        for _ in range(3):
            bar.advance()
        bar.close()
    assert "[############################] 3/3 services" in tty.getvalue()
    assert tty.getvalue().endswith("\r\033[K")
    assert pipe.getvalue() == ""


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    specs = tmp_path / "specs"
    write_fleet(specs, with_maple=False)
    result = run("build", str(specs), "--out", str(tmp_path / "out"), "--jobs", "2")
    assert result.exit_code == 0 and "\r" not in result.stderr and "#" not in result.stderr


# --------------------------------------------------------------------------- all or nothing


@pytest.fixture
def built(tmp_path):
    """A built fleet, then specs changed so that a rebuild writes, replaces and prunes in many services."""
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    (specs / "shop.yaml").write_text(spec_text("shop", "caches: [{name: c}]\n"))  # prunes executor files
    (specs / "cart.yaml").write_text(spec_text("cart", SMALL["cart"], team="ops"))  # changes every file
    (specs / "stock.yaml").unlink()  # prunes a whole service
    (specs / "new.yaml").write_text(spec_text("new", SMALL["pay"]))  # new directories
    page = out / "pay" / "runbooks" / "CircuitBreakerOpen.md"
    page.write_text(page.read_text() + "\n## Team notes\n\nours\n")  # merged, kept
    return specs, out


def test_the_fixture_rebuild_writes_replaces_and_prunes_in_many_services(built, monkeypatch):
    specs, out = built
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: calls.append(a) or real(*a))
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert len(calls) > 35
    assert not (out / "stock").exists() and (out / "new" / "prometheus" / "rules.yaml").exists()
    assert (out / "pay" / "runbooks" / "CircuitBreakerOpen.md").read_text().endswith("ours\n")


def calls_of_a_good_build(monkeypatch, owner, name: str, specs: Path, out: Path) -> int:
    """How often a successful rebuild (on a copy of ``out``) calls ``owner.name``."""
    real, calls = getattr(owner, name), []
    monkeypatch.setattr(owner, name, lambda *a: calls.append(a) or real(*a))
    copy = out.parent / "copy"
    shutil.copytree(out, copy)
    assert run("build", str(specs), "--out", str(copy), "--jobs", "1").exit_code == 0
    monkeypatch.setattr(owner, name, real)
    shutil.rmtree(copy)
    return len(calls)


def fail_on_call(monkeypatch, owner, name: str, nth: int, error: BaseException) -> None:
    real, calls = getattr(owner, name), []

    def failing(*a):
        calls.append(a)
        if len(calls) == nth:
            raise error
        return real(*a)

    monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize("nth", [1, 2, 20, 35, "last"])
@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
@pytest.mark.slow
def test_a_failure_while_moving_files_into_place_changes_nothing(built, monkeypatch, nth, error):
    specs, out = built
    before = snapshot(out)
    total = calls_of_a_good_build(monkeypatch, os, "replace", specs, out)
    fail_on_call(monkeypatch, os, "replace", total if nth == "last" else nth, error)
    result = run("build", str(specs), "--out", str(out), "--jobs", "1")
    expected = (130, "obsgen: interrupted; nothing was changed") if isinstance(error, KeyboardInterrupt) else \
        (74, "No space left on device")
    assert result.exit_code == expected[0] and expected[1] in result.stderr, result.stderr
    assert snapshot(out) == before


@pytest.mark.parametrize("nth", [1, 15, "last"])
def test_disk_full_while_staging_changes_nothing(built, monkeypatch, nth):
    specs, out = built
    before = snapshot(out)
    total = calls_of_a_good_build(monkeypatch, writer, "write_file", specs, out)
    fail_on_call(monkeypatch, writer, "write_file", total if nth == "last" else nth,
                 OSError(errno.ENOSPC, "No space left on device"))
    result = run("build", str(specs), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 74 and "nothing was changed" in result.stderr
    assert snapshot(out) == before


@pytest.mark.parametrize(("error", "jobs"), [(RuntimeError("boom"), "1"), (RuntimeError("boom"), "2"),
                                             (KeyboardInterrupt(), "1")], ids=["crash", "crash-in-worker", "ctrl-c"])
def test_a_failure_while_rendering_changes_nothing(built, monkeypatch, error, jobs):
    specs, out = built
    before = snapshot(out)
    real = pipeline.render

    def failing(spec, **kw):  # forked workers inherit the patch
        if spec.service.name == "new":
            raise error
        return real(spec, **kw)

    monkeypatch.setattr(pipeline, "render", failing)
    result = run("build", str(specs), "--out", str(out), "--jobs", jobs)
    assert result.exit_code == (130 if isinstance(error, KeyboardInterrupt) else 70), result.stderr
    assert snapshot(out) == before


def test_a_bad_spec_among_many_changes_nothing(built):
    specs, out = built
    before = snapshot(out)
    (specs / "broken.yaml").write_text(spec_text("broken", "executors: [{name: p}]\n"))
    result = run("build", str(specs), "--out", str(out), "--jobs", "2")
    assert result.exit_code == 2 and "missing required key `queue_capacity`" in result.stderr
    assert snapshot(out) == before


def test_a_failed_first_build_leaves_no_output_directory(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "deep" / "out"
    write_fleet(specs, with_maple=False)
    # a first build moves each service's directory into place in one step: the 4th of 5, with 3 already there
    fail_on_call(monkeypatch, os, "replace", 4, OSError(errno.EIO, "Input/output error"))
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 74
    assert not (tmp_path / "deep").exists()


# --------------------------------------------------------------------------- skipping unchanged specs


def test_a_no_change_rebuild_renders_nothing_and_writes_nothing(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    before = snapshot(out)
    renders = Renders(monkeypatch)
    result = run("build", str(specs), "--out", str(out), "--jobs", "1")
    assert result.exit_code == 0 and "(0 file(s) changed)" in result.stderr
    check = run("build", str(specs), "--out", str(out), "--check", "--jobs", "1")
    assert check.exit_code == 0 and check.stdout == ""
    assert renders.services == [] and snapshot(out) == before


def test_only_the_changed_spec_is_rendered_again(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    (specs / "cart.yaml").write_text(spec_text("cart", SMALL["cart"], team="ops"))
    renders = Renders(monkeypatch)
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert renders.services == ["cart"]
    assert "team: ops" in (out / "cart" / "prometheus" / "rules.yaml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("edit", ["hand-edit", "delete", "manifest", "runbook-notes"])
def test_a_touched_generated_file_is_never_served_stale(tmp_path, monkeypatch, edit):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    pristine = snapshot(out)
    rules = out / "pay" / "prometheus" / "rules.yaml"
    page = out / "pay" / "runbooks" / "CircuitBreakerOpen.md"
    if edit == "hand-edit":
        rules.write_text(rules.read_text().replace("severity: critical", "severity: info", 1))
    elif edit == "delete":
        rules.unlink()
    elif edit == "manifest":
        manifest = out / "pay" / writer.MANIFEST
        manifest.write_text(manifest.read_text().replace('"files": [', '"files": [\n    "pay/old.yaml",'))
        (out / "pay" / "old.yaml").write_text("stale\n")
    else:
        page.write_text(page.read_text() + "\nour notes\n")
    renders = Renders(monkeypatch)
    check = run("build", str(specs), "--out", str(out), "--check", "--jobs", "1")
    assert check.exit_code == (0 if edit == "runbook-notes" else 1)
    expected = {"hand-edit": f"changed: {rules}", "delete": f"missing: {rules}",
                "manifest": f"orphaned: {out / 'pay' / 'old.yaml'}"}.get(edit)
    if expected:
        assert expected in check.stdout.splitlines()
    else:
        assert check.stdout == ""
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert renders.services == ["pay", "pay"]
    if edit == "runbook-notes":
        assert page.read_text().endswith("\nour notes\n")
    else:
        assert snapshot(out).keys() == pristine.keys()
        assert all(snapshot(out)[k] == v for k, v in pristine.items() if ".obsgen-cache" not in k)
    renders.services.clear()
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert renders.services == []


def test_a_changed_option_renders_again(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    real = pipeline.render

    def render(spec, suffix=""):
        return [writer.Output(o.path, o.content + suffix, o.merge) for o in real(spec)]

    monkeypatch.setattr(pipeline, "render", render)
    paths = sorted(specs.glob("*.yaml"))
    first = fleet.build(paths, out, options={"suffix": "# a\n"})
    assert first.rendered == 5
    assert fleet.build(paths, out, options={"suffix": "# a\n"}).rendered == 0
    again = fleet.build(paths, out, options={"suffix": "# b\n"})
    assert again.rendered == 5 and (out / "shop" / "prometheus" / "rules.yaml").read_text().endswith("# b\n")


def test_changed_code_or_templates_render_everything_again(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    monkeypatch.setattr(fleet, "code_fingerprint", lambda: "another obsgen")
    renders = Renders(monkeypatch)
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert sorted(renders.services) == sorted(SMALL)


def test_the_code_fingerprint_covers_code_templates_and_schemas_but_not_bytecode(tmp_path, monkeypatch):
    package = tmp_path / "obsgen"
    shutil.copytree(Path(fleet.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fleet, "__file__", str(package / "fleet.py"))

    def fingerprint() -> str:
        fleet.code_fingerprint.cache_clear()
        return fleet.code_fingerprint()

    seen = {fingerprint()}
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert fingerprint() in seen
    for rel in ("templates/runbooks/redis.md.j2", "spec/schema.json", "render/rules.py"):
        with (package / rel).open("a") as f:
            f.write("\n")
        value = fingerprint()
        assert value not in seen, rel
        seen.add(value)
    (package / "render" / "new_renderer.py").write_text("")
    assert fingerprint() not in seen
    fleet.code_fingerprint.cache_clear()


def test_a_moved_spec_is_rendered_again_and_recorded(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    (specs / "team").mkdir()
    (specs / "shop.yaml").rename(specs / "team" / "shop.yaml")
    renders = Renders(monkeypatch)
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert renders.services == ["shop"]
    assert writer.read_manifest(out, "shop")["spec"] == "../specs/team/shop.yaml"
    assert run("build", str(specs), "--out", str(out), "--check").exit_code == 0


def test_a_corrupt_cache_only_costs_a_full_render(tmp_path, monkeypatch):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    (out / fleet.STATE_FILE).write_text("{not json")
    renders = Renders(monkeypatch)
    assert run("build", str(specs), "--out", str(out), "--jobs", "1").exit_code == 0
    assert sorted(renders.services) == sorted(SMALL)
    assert run("build", str(specs), "--out", str(out), "--check").exit_code == 0


def test_the_cache_is_git_ignored_local_state_that_check_ignores(tmp_path):
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_fleet(specs, with_maple=False)
    assert run("build", str(specs), "--out", str(out)).exit_code == 0
    assert (out / fleet.CACHE_DIR / ".gitignore").read_text().endswith("*\n")
    shutil.rmtree(out / fleet.CACHE_DIR)
    check = run("build", str(specs), "--out", str(out), "--check")
    assert check.exit_code == 0 and check.stdout == ""
    assert not (out / fleet.CACHE_DIR).exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_build_leaves_the_garbage_collector_as_it_found_it(tmp_path, jobs):
    """Builds freeze what is imported and collect less often while they render (a tenth of a cold build), but a
    process that goes on (tests, `obsgen diff`) gets its collector back as it was, nothing left frozen."""
    import gc

    specs = tmp_path / "specs"
    write_fleet(specs, with_maple=False)
    before = (gc.get_threshold(), gc.get_freeze_count())
    fleet.build(sorted(specs.glob("*.yaml")), tmp_path / "out", jobs=jobs)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    assert (tmp_path / "out" / "shop" / "prometheus" / "rules.yaml").is_file()
