"""The harness fails loudly: a missing server binary is a failure before anything starts, never a skip."""

import pytest

from .harness import Stack

pytestmark = [pytest.mark.e2e]


def test_a_missing_server_binary_fails_the_run_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    stack = Stack(tmp_path, {"app": {}})
    with pytest.raises(pytest.fail.Exception, match="is not installed; run scripts/setup.sh"):
        stack.start()
    assert stack.procs == []
