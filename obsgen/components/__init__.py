"""Component kinds, one module each. Adding a kind: a module with ``KIND`` plus its schema."""

from obsgen.components import (breaker, cache, custom, etag, executor, health, http, redis, retry, slo, streams,
                               time_limiter)
from obsgen.components.base import Kind

KINDS: tuple[Kind, ...] = (http.KIND, cache.KIND, etag.KIND, breaker.KIND, retry.KIND, time_limiter.KIND, executor.KIND,
                          redis.KIND, health.KIND, streams.KIND, custom.KIND, slo.KIND)
