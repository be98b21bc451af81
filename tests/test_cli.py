"""The command line is a click group: usage errors exit 2 as click reports them, help exits 0, ``--version``,
short options, shell completion, one guard mapping every command's failures to the exit-code contract, and an
import cheap enough for a pre-commit hook."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import ROOT, tool
from obsgen.cli import main

MAPLE = ROOT / "specs" / "maple.yaml"
BIN = Path(sys.executable).parent


def run(*args: str, **kw):
    return CliRunner().invoke(main, list(args), **kw)


@pytest.mark.parametrize(("args", "usage", "error"), [
    (("frob",), "Usage: obsgen [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'frob'."),
    (("--frob",), "Usage: obsgen [OPTIONS] COMMAND [ARGS]...", "Error: No such option '--frob'."),
    (("build",), "Usage: obsgen build [OPTIONS] SPECS...", "Error: Missing argument 'SPECS...'."),
    (("build", "x", "--bogus"), "Usage: obsgen build [OPTIONS] SPECS...", "Error: No such option '--bogus'."),
    (("build", "x", "--chek"), "Usage: obsgen build [OPTIONS] SPECS...", "Error: No such option '--chek'."),
    (("build", "x", "--jobs", "0"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: Invalid value for '-j' / '--jobs': 0 is not in the range x>=1."),
    (("build", "x", "-j", "two"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: Invalid value for '-j' / '--jobs': 'two' is not a valid integer range."),
    (("build", "x", "--time-scale", "0.5", "-o", "y"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: Invalid value for '--time-scale': 0.5 is not in the range x>=1."),
    (("schema", "extra"), "Usage: obsgen schema [OPTIONS]", "Error: Got unexpected extra argument (extra)"),
])
def test_usage_errors_exit_2_with_usage_hint_and_error(args, usage, error):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    command = f"obsgen {args[0]}" if args[0] in main.commands else "obsgen"
    assert result.stderr.splitlines()[:3] == [usage, f"Try '{command} --help' for help.", ""]
    assert result.stderr.splitlines()[3].startswith(error), result.stderr


@pytest.mark.parametrize(("args", "suggested"), [(("build", "x", "--bogus"), "'--out'"),
                                                  (("build", "x", "--chek"), "'--check'")])
def test_a_misspelled_option_gets_a_suggestion(args, suggested):
    result = run(*args)
    assert result.exit_code == 2 and "Did you mean" in result.stderr and suggested in result.stderr


@pytest.mark.parametrize(("args", "error"), [(("build", "x", "--out"), "Error: Option '--out' requires an argument."),
                                             (("build", "x", "--check=yes"),
                                              "Error: Option '--check' does not take a value.")])
def test_option_syntax_errors_exit_2(args, error):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.splitlines()[-1] == error


def test_no_command_shows_the_commands_on_stderr_and_exits_2():
    result = run()
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Usage: obsgen [OPTIONS] COMMAND [ARGS]...")
    assert all(f"  {name} " in result.stderr for name in ("build", "validate", "schema"))


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("build", "--help"), ("validate", "-h"), ("schema", "--help")])
def test_help_goes_to_stdout_and_exits_0(args):
    result = run(*args)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: obsgen") and "-h, --help" in result.stdout


def test_build_help_documents_short_options_and_defaults():
    out = run("build", "--help").stdout
    assert "-j, --jobs N" in out and "the number of CPUs" in out
    assert "-o, --out PATH" in out and "[default: generated]" in out


def test_version_is_the_installed_distributions():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"obsgen, version {version('obsgen')}\n"


def test_options_take_inline_values_and_double_dash_ends_options(tmp_path):
    result = run("build", f"--out={tmp_path / 'out'}", "--jobs=1", "--", str(MAPLE))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "maple-expectation" / "prometheus" / "rules.yaml").exists()


def test_short_options_attach_their_values(tmp_path):
    result = run("build", "-j1", "-o", str(tmp_path / "out"), str(MAPLE))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "maple-expectation" / "prometheus" / "rules.yaml").exists()


def test_time_scale_accepts_an_out_given_explicitly_even_when_it_is_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused = run("build", str(MAPLE), "--time-scale", "20")
    assert refused.exit_code == 2 and "give an explicit --out" in refused.stderr
    accepted = run("build", str(MAPLE), "--time-scale", "20", "--out", "generated")
    assert accepted.exit_code == 0, accepted.stderr
    assert (tmp_path / "generated" / "maple-expectation" / "prometheus" / "rules.yaml").exists()


def test_a_new_command_gets_the_exit_code_contract_without_code_of_its_own(monkeypatch):
    """Commands only raise; the group maps failures once (here a command registered the way others are)."""
    failures = {"spec": None, "disk": OSError(28, "No space left on device"), "bug": RuntimeError("boom"),
                "ctrl-c": KeyboardInterrupt(), "findings": 1}

    @click.command()
    @click.argument("what")
    def probe(what: str) -> int:
        failure = failures[what]
        if isinstance(failure, BaseException):
            raise failure
        if failure is None:
            from obsgen.errors import UsageError
            raise UsageError("nothing to probe")
        return failure

    monkeypatch.setitem(main.commands, "probe", probe)
    codes = {what: run("probe", what) for what in failures}
    assert {what: r.exit_code for what, r in codes.items()} == \
        {"spec": 2, "disk": 74, "bug": 70, "ctrl-c": 130, "findings": 1}
    assert codes["spec"].stderr == "obsgen: nothing to probe\n"
    assert codes["disk"].stderr == "obsgen: [Errno 28] No space left on device; nothing was changed\n"
    assert codes["ctrl-c"].stderr == "obsgen: interrupted; nothing was changed\n"
    assert codes["bug"].stderr.startswith("obsgen: internal error: RuntimeError: boom\n")
    assert "Traceback" not in codes["bug"].stderr


def test_an_internal_error_shows_its_traceback_only_with_obsgen_debug(monkeypatch):
    from obsgen import fleet

    def crash(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(fleet, "validate", crash)
    quiet = run("validate", str(MAPLE))
    loud = run("validate", str(MAPLE), env={"OBSGEN_DEBUG": "1"})
    assert quiet.exit_code == loud.exit_code == 70
    assert "Traceback" not in quiet.stderr and "RuntimeError: boom" in quiet.stderr
    assert loud.stderr.startswith("Traceback (most recent call last):") and "in crash" in loud.stderr


def test_console_script_and_python_m_run_the_same_group():
    proc = subprocess.run([str(BIN / "obsgen"), "validate", str(MAPLE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr.endswith("\nobsgen: 1 spec(s) valid\n"), proc.stderr
    assert "warning: alerts link runbooks and dashboards with relative URLs" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "obsgen", "validate"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("Usage: obsgen validate [OPTIONS] SPECS...")
    assert "Error: Missing argument 'SPECS...'." in proc.stderr


def test_the_cli_module_imports_no_heavy_library():
    """Every run imports obsgen.cli; a no-change build must not pay for what only rendering needs."""
    heavy = ("jsonschema", "grafanalib", "jinja2", "obsgen.pipeline", "obsgen.render", "obsgen.spec", "promql_parser")
    code = f"import sys, obsgen.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "[]\n", proc.stdout + proc.stderr


def _complete(words: list[str], tmp_path: Path) -> tuple[list[str], str]:
    """Source the bash completion script obsgen prints and complete ``words`` (the last is partial).

    Returns what bash offers and what obsgen answered the script (``plain,build``; ``file,<partial>``
    hands over to the shell's own file-name completion, which only an interactive shell performs).
    """
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    script = subprocess.run(["obsgen"], env={**os.environ, "PATH": path, "_OBSGEN_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60, check=True).stdout
    (tmp_path / "obsgen-complete.bash").write_text(script)
    shell = (f'source obsgen-complete.bash; COMP_WORDS=({" ".join(words)}); COMP_CWORD={len(words) - 1}; '
             '_obsgen_completion obsgen 2>/dev/null; printf "%s\\n" "${COMPREPLY[@]}"')
    offered = subprocess.run([tool("bash"), "-c", shell], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, env={**os.environ, "PATH": path})
    answer = subprocess.run(["obsgen"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PATH": path, "_OBSGEN_COMPLETE": "bash_complete",
                                 "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)})
    assert offered.returncode == 0 and answer.returncode == 0, offered.stderr + answer.stderr
    return offered.stdout.split(), answer.stdout


def test_bash_completion_completes_commands_options_and_hands_spec_paths_to_the_shell(tmp_path):
    assert _complete(["obsgen", "bu"], tmp_path) == (["build"], "plain,build\n")
    assert _complete(["obsgen", "build", "--ch"], tmp_path)[0] == ["--check"]
    assert _complete(["obsgen", "validate", "sp"], tmp_path)[1] == "file,sp\n"


@pytest.mark.parametrize(("shell", "marker"), [("zsh", "#compdef obsgen"), ("fish", "complete --no-files --command obsgen")])
def test_completion_scripts_for_zsh_and_fish_are_produced(shell, marker):
    proc = subprocess.run([str(BIN / "obsgen")], env={**os.environ, "_OBSGEN_COMPLETE": f"{shell}_source"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and marker in proc.stdout and "_OBSGEN_COMPLETE" in proc.stdout
