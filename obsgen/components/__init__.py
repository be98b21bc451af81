"""Component kinds, one module each. Adding a kind: a module with ``KIND`` plus its schema."""

from obsgen.components import (backpressure, breaker, cache, custom, db_pool, etag, executor, health, http, lock,
                               rate_limiter, redis, retry, slo, streams, time_limiter)
from obsgen.components.base import Kind

KINDS: tuple[Kind, ...] = (http.KIND, cache.KIND, etag.KIND, breaker.KIND, retry.KIND, time_limiter.KIND, executor.KIND,
                          backpressure.KIND, rate_limiter.KIND, lock.KIND, db_pool.KIND, redis.KIND, health.KIND,
                          streams.KIND, custom.KIND, slo.KIND)
