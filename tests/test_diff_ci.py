"""The CI integration of ``obsgen diff`` people copy: the composite GitHub Action (action.yml) and the
GitLab CI template, linted by actionlint and check-jsonschema (their vendored GitHub Action, GitHub
workflow and GitLab CI schemas: no network), and their diff scripts run for real in a git repository whose
pull-request branch changes a threshold. Posting the comment needs GitHub's or GitLab's API and is not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, tool

BIN = Path(sys.executable).parent
ACTION = ROOT / "action.yml"
GITLAB = ROOT / "ci" / "gitlab" / "obsgen.gitlab-ci.yml"
GITOPS = (ROOT / "docs" / "gitops.md").read_text()


def gitops_block(first_line: str) -> str:
    """The fenced yaml block of docs/gitops.md that starts with ``first_line``."""
    for block in re.findall(r"```yaml\n(.*?)```", GITOPS, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/gitops.md has no yaml block starting with {first_line!r}")


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def schema_check(schema: str, path: Path) -> subprocess.CompletedProcess:
    return run(str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(path), cwd=path.parent)


# --------------------------------------------------------------------------- schemas and actionlint


def test_action_yml_is_a_valid_github_action(tmp_path):
    assert schema_check("vendor.github-actions", ACTION).returncode == 0
    broken = yaml.safe_load(ACTION.read_text())
    broken["runs"]["using"] = "docker-compose"  # not a kind of action: the schema must say so
    (tmp_path / "action.yml").write_text(yaml.safe_dump(broken))
    assert schema_check("vendor.github-actions", tmp_path / "action.yml").returncode == 1


@pytest.fixture
def workflow_repo(tmp_path) -> Path:
    """A repository holding the action and the workflow docs/gitops.md shows, pointed at the action in it."""
    run(tool("git"), "init", "-q", cwd=tmp_path)
    shutil.copy(ACTION, tmp_path / "action.yml")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    text = gitops_block("# .github/workflows/obsgen-review.yaml")
    assert "uses: <your-org>/obsgen@v0.1.0" in text
    (workflows / "obsgen-review.yaml").write_text(text.replace("<your-org>/obsgen@v0.1.0", "./"))
    return tmp_path


def actionlint(repo: Path) -> subprocess.CompletedProcess:
    return run(str(BIN / "actionlint"), "-no-color", ".github/workflows/obsgen-review.yaml", cwd=repo)


def test_the_readme_workflow_using_the_action_passes_actionlint(workflow_repo):
    result = actionlint(workflow_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert schema_check("vendor.github-workflows", workflow_repo / ".github/workflows/obsgen-review.yaml"
                        ).returncode == 0


def test_actionlint_reads_the_actions_inputs(workflow_repo):
    """Control: an input the action does not declare is an error, so the passing lint did read action.yml."""
    path = workflow_repo / ".github/workflows/obsgen-review.yaml"
    path.write_text(path.read_text().replace("fail-on: risk", "fail_on: risk"))
    result = actionlint(workflow_repo)
    assert result.returncode == 1 and "fail_on" in result.stdout


def test_the_gitlab_template_and_the_readme_job_are_valid_gitlab_ci(tmp_path):
    assert schema_check("vendor.gitlab-ci", GITLAB).returncode == 0
    (tmp_path / ".gitlab-ci.yml").write_text(gitops_block("# .gitlab-ci.yml"))
    assert schema_check("vendor.gitlab-ci", tmp_path / ".gitlab-ci.yml").returncode == 0
    broken = yaml.safe_load(GITLAB.read_text())
    broken["obsgen-diff"]["when"] = "sometimes"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert schema_check("vendor.gitlab-ci", tmp_path / "broken.yml").returncode == 1


def test_the_action_and_template_scripts_are_valid_bash():
    steps = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    scripts = [s["run"] for s in steps if "run" in s]
    template = yaml.safe_load(GITLAB.read_text())
    scripts += ["\n".join(job["script"]) for job in template.values() if isinstance(job, dict) and "script" in job]
    assert len(scripts) == 7
    for script in scripts:
        result = run(tool("bash"), "-n", "-c", script, cwd=ROOT)
        assert result.returncode == 0, result.stderr + script


# --------------------------------------------------------------------------- the scripts, run


@pytest.fixture
def pull_request(tmp_path) -> tuple[Path, dict]:
    """A clone of a GitOps repository (its origin a bare repository with main) on a branch that loosens a
    threshold; and an environment with this obsgen first on PATH."""
    git = tool("git")
    origin, clone = tmp_path / "origin.git", tmp_path / "clone"
    run(git, "init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    run(git, "clone", "-q", str(origin), str(clone), cwd=tmp_path)
    (clone / "specs").mkdir()
    maple = (ROOT / "specs" / "maple.yaml").read_text()
    (clone / "specs" / "maple.yaml").write_text(maple)
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["checkout", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-q", "-m", "specs"],
                 ["push", "-q", "origin", "main"], ["checkout", "-q", "-b", "loosen"]):
        assert run(git, *args, cwd=clone).returncode == 0
    (clone / "specs" / "maple.yaml").write_text(maple.replace("hit_rate_min: 0.8}", "hit_rate_min: 0.4}", 1))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return clone, env


@pytest.mark.slow
def test_the_actions_diff_step_reports_the_pull_request_and_fails_on_risk(pull_request, tmp_path):
    clone, env = pull_request
    (step,) = [s for s in yaml.safe_load(ACTION.read_text())["runs"]["steps"] if s.get("id") == "diff"]
    outputs, summary = tmp_path / "github-output", tmp_path / "step-summary"
    env.update(SPECS="specs", BASE="main", FAIL_ON="risk", RUNNER_TEMP=str(tmp_path), GITHUB_OUTPUT=str(outputs),
               GITHUB_STEP_SUMMARY=str(summary))
    result = run(tool("bash"), "-e", "-c", step["run"], cwd=clone, env=env)
    assert result.returncode == 0, result.stderr
    assert outputs.read_text() == f"exit-code=1\nreport={tmp_path / 'obsgen-diff.md'}\n"
    report = (tmp_path / "obsgen-diff.md").read_text()
    assert report.startswith("<!-- obsgen-diff -->\n") and "#### Risks (1)" in report
    assert "`< 0.8` → `< 0.4` (looser, 3×)" in report and summary.read_text() == report


@pytest.mark.slow
def test_the_gitlab_diff_job_script_reports_the_merge_request(pull_request):
    clone, env = pull_request
    job = yaml.safe_load(GITLAB.read_text())["obsgen-diff"]
    env.update(OBSGEN_SPECS="specs", OBSGEN_FAIL_ON="risk", CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main")
    env.pop("OBSGEN_GITLAB_TOKEN", None)
    # GitLab runs the lines of `script` in one shell, stopping at the first that fails.
    result = run(tool("bash"), "-e", "-c", "\n".join(job["script"]), cwd=clone, env=env)
    assert result.returncode == 1, result.stderr  # fail-on risk matched, after the report was written
    report = (clone / "obsgen-diff.md").read_text()
    assert report.startswith("<!-- obsgen-diff -->\n") and "#### Risks (1)" in report
    assert "CacheHitRateLow" in report and job["artifacts"]["paths"] == ["obsgen-diff.md"]
