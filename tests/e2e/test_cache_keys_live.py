"""The cache page's destructive step, run as on-call would run it, against a real redis-server: it deletes exactly
the keys its pattern matches, whatever they hold (spaces, quotes, brackets: Spring's ``SimpleKey [a, b]``), and
nothing else. ``xargs`` splitting on blanks once deleted an unrelated key ``1`` for ``cache:permissions:u 1``."""

from __future__ import annotations

import re
import subprocess

import pytest

from obsgen.pipeline import build
from obsgen.render import runbooks
from conftest import CACHE_ON_REDIS
from obsgen.spec import parse

from .harness import redis_call, redis_server, wait_until

pytestmark = [pytest.mark.e2e]


MATCHING = ["cache:a", "cache:permissions:u 1", "cache:schema:detail:it's", "cache:SimpleKey [a, b]", 'cache:"q"',
            "cache:tab\there"]
OTHERS = ["1", "u", "b]", "it's", "other:cache:x", "cach:e"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = redis_server("cache-keys", tmp_path_factory.mktemp("redis")).start()
    wait_until(lambda: redis_call(proc.port, "PING") == "PONG", 10, "redis-server", proc)
    yield proc
    proc.stop()


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_the_cache_page_deletes_exactly_its_keys_on_a_real_redis(server, topology):
    page = runbooks.render(build(parse(CACHE_ON_REDIS.format(topology=topology), "x.yaml")))["store/runbooks/CacheL2Unavailable.md"]
    (command,) = re.findall(r"^ *(redis-cli -u redis://<\w+> --scan .*)$", page.split("## Mitigation")[1], re.M)
    redis_call(server.port, "FLUSHALL")
    for key in MATCHING + OTHERS:
        redis_call(server.port, "SET", key, "v")
    # one node plays the server, or each master in turn (a cluster's scan of one master sees only its keys)
    run = subprocess.run(["bash", "-o", "pipefail", "-c", re.sub(r"<\w+>", f"127.0.0.1:{server.port}", command)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert sorted(redis_call(server.port, "KEYS", "*")) == sorted(OTHERS)
