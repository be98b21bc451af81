"""A deterministic fleet of realistic synthetic specs, for benchmarks.

``python benchmarks/fleetgen.py N DIR [--seed S]`` writes N specs to DIR. The
same N and seed always give the same bytes. Services mix what real Spring
services run: tiered caches (Caffeine L1, Redis L2), circuit breakers with the
retries and time limiters around the same call, thread pools, and Redis in all
three topologies; some tune alerts or thresholds. Sizes go from a little under
specs/maple.yaml (10 components) to about two and a half times it; the median
is about maple's. Only keys of obsgen's spec schema are used (``obsgen
validate DIR`` accepts the fleet).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

WORDS = ("order", "cart", "pay", "stock", "search", "user", "auth", "ship", "price", "promo", "review", "media",
         "notify", "ledger", "quote", "match", "geo", "feed", "rank", "audit")
TEAMS = ("sre", "checkout", "catalog", "identity", "platform", "growth", "payments", "data")
CALLEES = ("partnerApi", "pspGateway", "taxService", "fraudCheck", "geoIp", "mailer", "inventoryApi", "crm",
           "ledgerApi", "searchCluster", "imageResizer", "smsGateway")
CACHE_NAMES = ("products", "prices", "sessions", "profiles", "tokens", "carts", "quotes", "rates", "catalog",
               "features", "geo", "thumbnails", "rankings", "reviews")
POOLS = ("ioExecutor", "computeExecutor", "asyncMailExecutor", "batchExecutor", "webhookExecutor", "reportExecutor")
DURATIONS_TTL = ("1m", "5m", "10m", "30m", "1h")
# How much bigger than maple a service is: mostly maple-sized, a tail up to 2.5x.
SCALES = (0.7, 0.8, 1.0, 1.0, 1.0, 1.2, 1.5, 2.0, 2.5)


def _cache(rng: random.Random, name: str) -> str:
    parts = [f"name: {name}", f"description: {name} lookups"]
    shape = rng.random()
    if shape < 0.6:
        l1 = f"{{provider: caffeine, ttl: {rng.choice(DURATIONS_TTL)}, max_size: {rng.choice((1000, 5000, 20000))}, " \
             f"labels: {{layer: L1}}, hit_rate_min: {rng.choice((0.7, 0.8, 0.85))}}}"
        l2 = f"{{provider: redis, ttl: {rng.choice(DURATIONS_TTL)}, labels: {{layer: L2}}, " \
             f"hit_rate_min: {rng.choice((0.85, 0.9, 0.95))}}}"
        parts.append(f"tiers: {{l1: {l1}, l2: {l2}}}")
    elif shape < 0.8:
        parts.append(f"tiers: {{l1: {{provider: caffeine, ttl: {rng.choice(DURATIONS_TTL)}, max_size: 5000}}}}")
        parts.append(f"hit_rate_min: {rng.choice((0.6, 0.75, 0.9))}")
    else:
        parts.append(f"hit_rate_min: {rng.choice((0.5, 0.8))}")
        parts.append(f"min_request_rate: {rng.choice((0.5, 2, 5))}")
    if rng.random() < 0.2:
        parts.append(f"stampede_rate_max: {rng.choice((5, 20, 50))}")
    if rng.random() < 0.15:
        parts.append("alerts: {CacheStampede: {severity: warning, for: 2m}}")
    return "  - {" + ", ".join(parts) + "}"


def _resilience(rng: random.Random, callee: str) -> tuple[str, str | None, str | None]:
    breaker = [f"name: {callee}", f"description: calls to {callee}",
               f"failure_rate_threshold: {rng.choice((25, 50, 60))}",
               f"wait_in_open: {rng.choice(('30s', '60s', '5m'))}"]
    if rng.random() < 0.3:
        breaker.append(f"reopen_window: {rng.choice(('5m', '10m'))}")
    if rng.random() < 0.15:
        breaker.append("state_encoding: {type: enum, closed: 0}")
    if rng.random() < 0.15:
        breaker.append("alerts: {CircuitBreakerFailureRateHigh: {for: 5m}}")
    retry = None
    if rng.random() < 0.8:
        retry = (f"  - {{name: {callee}, breaker: {callee}, max_attempts: {rng.choice((2, 3, 5))}, "
                 f"wait: {rng.choice(('100ms', '500ms', '1s'))}, backoff: {rng.choice(('fixed', 'exponential'))}}}")
    limiter = None
    if rng.random() < 0.6:
        limiter = f"  - {{name: {callee}, breaker: {callee}, timeout: {rng.choice(('2s', '5s', '10s', '30s'))}}}"
    return "  - {" + ", ".join(breaker) + "}", retry, limiter


def _executor(rng: random.Random, name: str) -> str:
    core = rng.choice((2, 4, 8))
    parts = [f"name: {name}", f"core_threads: {core}", f"max_threads: {core * rng.choice((1, 2))}",
             f"queue_capacity: {rng.choice((100, 200, 500, 1000))}"]
    if rng.random() < 0.2:
        parts.append(f"queue_full_ratio: {rng.choice((0.8, 0.95))}")
    return "  - {" + ", ".join(parts) + "}"


def _redis(rng: random.Random, name: str) -> str:
    topology = rng.choice(("standalone", "sentinel", "sentinel", "cluster"))
    parts = [f"name: {name}", f"topology: {topology}", f"selector: {{job: redis-{name}}}"]
    if topology == "sentinel":
        sentinels = rng.choice((3, 5))
        parts += ["master_name: mymaster", f"sentinels: {sentinels}", f"quorum: {sentinels // 2 + 1}",
                  f"replicas: {rng.choice((1, 2))}"]
    elif topology == "standalone":
        parts.append(f"replicas: {rng.choice((0, 0, 1))}")
    if rng.random() < 0.3:
        parts.append(f"memory_ratio_max: {rng.choice((0.8, 0.85))}")
    return "  - {" + ", ".join(parts) + "}"


def spec(index: int, rng: random.Random) -> str:
    scale = rng.choice(SCALES)
    count = lambda base: max(0, round(base * scale * rng.uniform(0.7, 1.3)))  # noqa: E731
    name = f"{rng.choice(WORDS)}-{index:04d}"
    lines = ["apiVersion: obsgen/v1", "service:", f"  name: {name}", f"  team: {rng.choice(TEAMS)}",
             f"  description: synthetic service {index} (fleet benchmark)", f"  selector: {{job: {name}}}"]
    if rng.random() < 0.2:
        lines.append(f"  runbook_base_url: https://runbooks.example.com/{name}/")
    caches = rng.sample(CACHE_NAMES, min(len(CACHE_NAMES), max(1, count(4))))
    lines += ["caches:"] + [_cache(rng, c) for c in caches]
    callees = rng.sample(CALLEES, min(len(CALLEES), count(1.5)))
    if callees:
        parts = [_resilience(rng, c) for c in callees]
        lines += ["breakers:"] + [b for b, _, _ in parts]
        if any(r for _, r, _ in parts):
            lines += ["retries:"] + [r for _, r, _ in parts if r]
        if any(t for _, _, t in parts):
            lines += ["time_limiters:"] + [t for _, _, t in parts if t]
    pools = rng.sample(POOLS, min(len(POOLS), max(1, count(2))))
    lines += ["executors:"] + [_executor(rng, p) for p in pools]
    redis = [f"r{i}" for i in range(min(3, count(1)))]
    if redis:
        lines += ["redis:"] + [_redis(rng, r) for r in redis]
    return "\n".join(lines) + "\n"


def generate(n: int, directory: Path, seed: int = 9) -> list[Path]:
    """Write ``n`` specs into ``directory`` (``svc-0000.yaml``, …); the same n and seed give the same bytes."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = directory / f"svc-{i:04d}.yaml"
        path.write_text(spec(i, rng), "utf-8")
        out.append(path)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    generate(args.n, args.directory, args.seed)
