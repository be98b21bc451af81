"""Component kinds, one module each. Adding a kind: a module with ``KIND`` plus its schema and runbook template.

Importing this package checks the catalogue: alert names are unique across kinds and every alert a declaration
names as related exists, so a misspelt reference fails at once instead of silently losing a link.
"""

from obsgen.components import (backpressure, breaker, cache, custom, db_pool, etag, executor, health, http, lock,
                               rate_limiter, redis, retry, service, slo, streams, time_limiter)
from obsgen.components.base import Kind
from obsgen.model.rules import AlertDef

# The kinds a spec lists, in output order; every spec also has the service's own (components/service.py).
KINDS: tuple[Kind, ...] = (http.KIND, cache.KIND, etag.KIND, breaker.KIND, retry.KIND, time_limiter.KIND, executor.KIND,
                          backpressure.KIND, rate_limiter.KIND, lock.KIND, db_pool.KIND, redis.KIND, health.KIND,
                          streams.KIND, custom.KIND, slo.KIND)


def _catalogue(kinds: tuple[Kind, ...]) -> dict[str, AlertDef]:
    out: dict[str, AlertDef] = {}
    for kind in kinds:
        for definition in kind.alerts:
            if definition.name in out:
                raise ValueError(f"alert {definition.name} is declared twice ({kind.key})")
            out[definition.name] = definition
    for definition in out.values():
        unknown = [name for name in definition.related if name not in out]
        if unknown:
            raise ValueError(f"{definition.name} names unknown related alert(s): {', '.join(unknown)}")
    return out


CATALOGUE: dict[str, AlertDef] = _catalogue((service.KIND, *KINDS))
"""Every alert obsgen declares, by name (custom signals name their own)."""
