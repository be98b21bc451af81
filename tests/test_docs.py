"""The documentation (README.md and docs/*.md) is true against the code and the tools it describes.

Every relative link lands on a file and every anchor on a heading; the alert catalogue, the table of what
ComponentMetricsMissing watches, the recording names and the spec's key tables are compared with what the
code declares (so the doc cannot drift); example specs validate; every line of a ``sh`` block runs in a
copy of the repository and exits as the text implies (lines that need a server, or that must not run
inside the test suite, are listed here with the reason, and the lists must match the docs exactly); an
output shown after a command is that command's output; excerpts of generated files are in them verbatim;
every ``make`` target the docs name exists. No servers: this runs in ``make test-fast``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, tool
from obsgen.cli import main
from obsgen.components import CATALOGUE, KINDS, service
from obsgen.model.types import Duration
from obsgen.spec.schema import schema

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)

# Shell lines of the docs that need a server to answer (a Prometheus, a scraped app): shown, never run here.
NEEDS_SERVER = {
    "obsgen verify specs/maple.yaml --prometheus http://localhost:9090": "the Prometheus that scrapes maple",
    "obsgen verify specs --prometheus URL": "a Prometheus",
    "obsgen verify specs/maple.yaml --prometheus http://prometheus:9090": "a Prometheus",
    "obsgen verify specs --prometheus https://mimir.example/prometheus "
    "--bearer-token-file /run/secrets/token --header 'X-Scope-OrgID: sre'": "a Mimir",
    "obsgen verify specs/oms.yaml --prometheus $URL --at 2025-07-11T09:00:00Z --lookback 2h": "a Prometheus",
    "obsgen verify specs/oms.yaml --metrics saved-scrape.txt --metrics http://localhost:8091/metrics": "a live app",
    "obsgen init --metrics http://localhost:8080/actuator/prometheus --service checkout --team payments "
    "-o specs/checkout.yaml": "a live app",
    "obsgen init --prometheus http://prometheus:9090 --selector 'job=~\"checkout|redis\"' -o specs/checkout.yaml":
        "a Prometheus",
}
SERVER = re.compile(r"--prometheus|--metrics\s+https?://")

# Shell lines that must not run inside the test suite, and why.
NOT_RUN = {
    "make build": "the set-up this suite already runs in (a venv, an editable install)",
    "make test": "runs this very suite",
    "$EDITOR specs/shop.yaml": "opens an editor",
    "git add specs generated && git commit": "commits; the GitOps tests (tests/test_gitops.py) do it for real",
    "promtool test rules generated/maple-expectation/prometheus/*.test.yaml":
        "tests/test_promtool.py runs every committed test file with promtool",
}

# Lines whose shell is not bash: what runs instead, in bash.
OTHER_SHELL = {
    'eval "$(_OBSGEN_COMPLETE=zsh_source obsgen)"': "_OBSGEN_COMPLETE=zsh_source obsgen | grep -q compdef",
}

# The exit code each line's text implies, where it is not 0.
EXIT_CODES = {
    "obsgen validate docs/examples/shop-broken.yaml": 2,  # "It exits 2 and writes nothing"
    "obsgen verify specs/oms.yaml --metrics docs/examples/oms.prom": 1,  # findings
    "obsgen diff generated/maple-expectation tour/out/maple-expectation --fail-on risk": 1,  # a risk flag
}


# --------------------------------------------------------------------------- reading Markdown


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def unfenced(text: str) -> str:
    """``text`` without its fenced blocks (a ``# comment`` in a block is no heading)."""
    return FENCE.sub("", text)


def prose(text: str) -> str:
    """``text`` without fenced blocks and inline code (a link shown as code is no link)."""
    return re.sub(r"`[^`\n]*`", "", unfenced(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in unfenced(path.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def table(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line is ``header``, as stripped cells."""
    lines = text.splitlines()
    assert header in lines, f"no table with header {header!r}"
    rows = []
    for line in lines[lines.index(header) + 2:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\) \| ", line.strip()[2:-2])
        rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    rest = text[start + len(heading) + 2:]
    end = re.search(rf"^#{{1,{len(level)}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


# --------------------------------------------------------------------------- links


def links() -> list[tuple[Path, str]]:
    found = []
    for doc in DOCS:
        for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(doc.read_text())):
            if not re.match(r"[a-z]+:", target):
                found.append((doc, target))
    return found


@pytest.mark.parametrize("doc, target", links(), ids=lambda v: v if isinstance(v, str) else rel(v))
def test_relative_link_resolves_to_a_file_and_its_anchor_to_a_heading(doc, target):
    path, _, anchor = target.partition("#")
    file = (doc.parent / path).resolve() if path else doc
    assert file.exists(), f"{rel(doc)}: link to {target}: no such file"
    assert ROOT in file.parents or file == ROOT, f"{rel(doc)}: link to {target} leaves the repository"
    if anchor:
        assert file.suffix == ".md", f"{rel(doc)}: anchor into a non-Markdown file: {target}"
        assert anchor in anchors(file), f"{rel(doc)}: {target}: no heading with anchor #{anchor} in {rel(file)}"


def test_docs_hold_links_at_all():
    """The link test above must have found the docs' links (a broken regex would pass on nothing)."""
    assert len(links()) > 50


# --------------------------------------------------------------------------- the alert catalogue

CATALOGUE_DOC = (ROOT / "docs" / "catalogue.md").read_text()
ALL_KINDS = (service.KIND, *KINDS)


def first_duration(text: str) -> Duration:
    found = re.search(r"\b(?:\d+(?:ms|[smhdwy]))+\b", text)
    assert found, f"no duration in {text!r}"
    return Duration.parse(found.group(0))


def split_default(cell: str) -> tuple[str, str]:
    """``critical (warning with a `fallback`), 1m`` → (severity part, for part): the first top-level comma."""
    depth = 0
    for i, ch in enumerate(cell):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            return cell[:i].strip(), cell[i + 1:].strip()
    raise AssertionError(f"default {cell!r} is not 'severity, for'")


def test_catalogue_lists_exactly_the_declared_alerts_with_their_kind_severity_and_for():
    rows = table(CATALOGUE_DOC, "| kind | alert | default | condition |")
    listed: dict[str, tuple[str, str, Duration]] = {}
    kinds_listed = set()
    for kind, alerts, default, _ in rows:
        kinds_listed.add(kind)
        names = re.findall(r"`([A-Z][A-Za-z0-9]*)`", alerts)
        if not names:
            continue
        severity, for_ = split_default(default)
        for name in names:
            assert name not in listed, f"{name} is listed twice"
            listed[name] = (kind, severity.split()[0], first_duration(for_))
    declared = {d.name: (k.key, d.severity, Duration.parse(d.for_)) for k in ALL_KINDS for d in k.alerts}
    assert set(declared) == set(CATALOGUE)
    assert listed == declared
    # a kind that declares no alert of its own (custom signals name theirs) still has its row
    assert kinds_listed == {k.key for k in ALL_KINDS}


def test_catalogue_says_which_signal_component_metrics_missing_watches_per_kind_and_profile():
    rows = {r[0]: r for r in table(CATALOGUE_DOC, "| kind | micrometer | python | why |")}
    assert set(rows) == {k.key for k in KINDS}
    for kind in KINDS:
        for column, profile in ((1, "micrometer"), (2, "python")):
            cell, signal = rows[kind.key][column], kind.presence_signal(profile)
            if signal is None:
                assert cell == "—", f"{kind.key} ({profile}) watches nothing, the doc says {cell!r}"
                continue
            assert cell.startswith(f"`{signal}`"), f"{kind.key} ({profile}) watches {signal}, the doc: {cell!r}"
            shown = re.search(r"\(`([a-z_:]+)`\)", cell)
            default = kind.default_metrics.get(profile, {}).get(signal)
            if shown:
                assert default is not None and shown.group(1) == default.name, (kind.key, profile, cell)


def produced_recordings() -> set[str]:
    names = set()
    # <service>/prometheus/, or <service>/<environment>/prometheus/ for a spec with environments
    for path in [*(ROOT / "generated").glob("*/prometheus/*.yaml"), *(ROOT / "generated").glob("*/*/prometheus/*.yaml")]:
        if not path.name.endswith(".test.yaml"):
            names |= {r["record"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]
                      if "record" in r}
    return names


def test_recordings_table_names_every_recording_the_committed_specs_produce_and_no_other():
    recordings = section(CATALOGUE_DOC, "## Recordings")
    shown = [r[0].strip("`") for r in table(recordings, "| recording | holds | kind |")]
    patterns = [re.compile(re.escape(s).replace("<W>", r"\w+") + r"\Z") for s in shown]
    produced = produced_recordings()
    assert {n for n in produced if not any(p.match(n) for p in patterns)} == set()
    assert [s for s, p in zip(shown, patterns) if not any(p.match(n) for n in produced)] == []
    renamed = table(section(CATALOGUE_DOC, "### Renamed recordings"), "| old name | new name | holds |")
    assert renamed and all(old.strip("`") not in produced and new.strip("`") in shown for old, new, _ in renamed)


# --------------------------------------------------------------------------- the spec reference

SPEC_DOC = (ROOT / "docs" / "spec.md").read_text()
SHARED = {"name", "description", "value", "selector", "metrics", "alerts", "history", "assumptions"}


def default_cell(node: dict, required: bool) -> str:
    if required:
        return "required"
    if "default" not in node:
        return "—"
    value = node["default"]
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return "`" + yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...") + "`"


def kind_schemas() -> dict[str, dict]:
    doc = schema()
    return {key: doc["$defs"][node["items"]["$ref"].split("/")[-1]]
            for key, node in doc["properties"].items() if "items" in node}


def test_spec_reference_lists_every_key_of_each_kind_with_the_schemas_default():
    shared = {r[0].strip("`") for r in table(section(SPEC_DOC, "### Keys the kinds share"),
                                             "| key | default | what |")}
    assert shared == SHARED
    for key, node in kind_schemas().items():
        required = set(node.get("required", ()))
        expected = {}
        for name, prop in node["properties"].items():
            empty = prop.get("default") in (None, {}, [], "")
            if name in SHARED and name not in required and empty:
                continue  # documented once, among the shared keys
            expected[name] = default_cell(prop, name in required)
        rows = table(section(SPEC_DOC, f"### {key}"), "| key | default | what |")
        assert {r[0].strip("`"): r[1] for r in rows} == expected, f"spec.md's table of {key}"


def test_the_slo_traffic_guard_example_is_the_count_the_rules_use():
    """spec.md's example of the default ``min_events`` ("N in 1h for 99.9%") against the rule obsgen builds."""
    from obsgen.components import slo
    from obsgen.spec import parse

    count, window, objective = re.search(r"\((\d+) in (\w+) for ([\d.]+)%\)", SPEC_DOC).groups()
    spec = parse(f"apiVersion: obsgen/v1\nservice: {{name: shop, team: web}}\nslos:\n  - name: api\n"
                 f"    objective: {float(objective) / 100}\n", "t.yaml").components[0].spec
    cond = next(c for a in (slo.FAST, slo.SLOW) for c in a.conditions if c.long == Duration.parse(window))
    assert int(count) == slo.min_events(spec, cond)


def spec_blocks() -> list[tuple[Path, str]]:
    return [(doc, m.group(2)) for doc in DOCS for m in FENCE.finditer(doc.read_text())
            if m.group(1) == "yaml" and m.group(2).startswith("apiVersion: obsgen/v1")]


@pytest.mark.parametrize("doc, text", spec_blocks(), ids=lambda v: rel(v) if isinstance(v, Path) else "")
def test_example_spec_is_valid_and_sets_its_link_base_urls(doc, text, tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output, result.output


def test_spec_reference_block_holds_every_service_key():
    block = next(t for d, t in spec_blocks() if d.name == "spec.md")
    assert set(yaml.safe_load(block)["service"]) == set(schema()["$defs"]["service"]["properties"])


# --------------------------------------------------------------------------- shell lines and their output


@dataclass
class Shown:
    """One line of a ``sh`` block (continuations joined, comment dropped), and the output the docs show for it."""

    doc: Path
    line: str
    output: str | None = None
    excerpt: bool = False


def shell_lines() -> list[Shown]:
    out: list[Shown] = []
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) != "sh":
                continue
            block = [re.sub(r"(^|\s)#.*$", "", line).strip()
                     for line in m.group(2).replace("\\\n", " ").splitlines()]
            shown = [Shown(doc, re.sub(r"\s+", " ", line)) for line in block if line]
            after = re.match(r"\s*<!-- output(, excerpt)? -->\n```[^\n]*\n(.*?)^```", text[m.end():], re.S | re.M)
            if after:
                shown[-1].output, shown[-1].excerpt = after.group(2), bool(after.group(1))
            out += shown
    return out


SHOWN = shell_lines()


def test_lines_needing_a_server_are_exactly_those_listed():
    assert {s.line for s in SHOWN if SERVER.search(s.line)} == set(NEEDS_SERVER)


def test_every_listed_line_is_still_in_the_docs():
    lines = {s.line for s in SHOWN}
    assert set(NOT_RUN) | set(OTHER_SHELL) | set(EXIT_CODES) <= lines


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A copy of what the documented commands read (specs, generated/, the docs' examples) as a git repository
    whose `main` holds it, with a home folder for the shell-completion lines."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "specs", root / "specs")
    shutil.copytree(ROOT / "generated", root / "generated", ignore=shutil.ignore_patterns(".obsgen-cache"))
    shutil.copytree(ROOT / "docs" / "examples", root / "docs" / "examples")
    (root / "home" / ".config" / "fish" / "completions").mkdir(parents=True)
    git = tool("git")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=docs", "-c", "user.email=docs@example.com", "commit", "-q", "-m", "docs"]):
        subprocess.run([git, *args], cwd=root, check=True)
    return root


def matches_excerpt(shown: str, output: str) -> bool:
    """Each shown line is a line of the output, in order; `…` in a shown line stands for any text."""
    lines = iter(output.splitlines())
    for want in shown.splitlines():
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("…")) + r"\Z")
        if not any(pattern.match(got) for got in lines):
            return False
    return True


def test_every_shell_line_in_the_docs_runs_with_the_exit_code_and_output_they_show(sandbox):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(sandbox / "home")}
    env.pop("OBSGEN_DEBUG", None)
    ran = 0
    for shown in SHOWN:
        if shown.line in NEEDS_SERVER or shown.line in NOT_RUN:
            continue
        command = OTHER_SHELL.get(shown.line, shown.line)
        result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", command], cwd=sandbox, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        where = f"{rel(shown.doc)}: `{shown.line}`"
        assert result.returncode == EXIT_CODES.get(shown.line, 0), f"{where} exited {result.returncode}:\n" \
                                                                    f"{result.stdout}"
        if shown.output is not None and shown.excerpt:
            assert matches_excerpt(shown.output, result.stdout), f"{where} printed:\n{result.stdout}"
        elif shown.output is not None:
            assert result.stdout.rstrip("\n") == shown.output.rstrip("\n"), f"{where} printed:\n{result.stdout}"
        ran += 1
    assert ran >= 20


# --------------------------------------------------------------------------- excerpts and make targets


def excerpts() -> list[tuple[Path, str, str]]:
    found = []
    for doc in DOCS:
        for m in re.finditer(r"<!-- excerpt: (\S+) -->\n```[^\n]*\n(.*?)^```", doc.read_text(), re.S | re.M):
            found.append((doc, m.group(1), m.group(2)))
    return found


@pytest.mark.parametrize("doc, source, text", excerpts(), ids=lambda v: v if isinstance(v, str) and "\n" not in v
                         else "")
def test_excerpt_of_a_generated_file_is_in_it_verbatim(doc, source, text):
    assert text in (ROOT / source).read_text(), f"{rel(doc)}: the excerpt of {source} is not in it any more"


def test_every_make_target_the_docs_name_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    code = []
    for doc in DOCS:
        text = doc.read_text()
        code += [m.group(2) for m in FENCE.finditer(text)] + re.findall(r"`([^`\n]*)`", unfenced(text))
    named = {t for chunk in code for t in re.findall(r"(?:^|[\s(])make ([a-z][\w-]*)", chunk, re.M)}
    assert {"build", "test", "test-fast"} <= named
    assert named - targets == set()
