"""Component kinds, one module each. Adding a kind: a module with ``KIND`` plus its schema."""

from obsgen.components import breaker, cache, etag, executor, http, redis, retry, time_limiter
from obsgen.components.base import Kind

KINDS: tuple[Kind, ...] = (http.KIND, cache.KIND, etag.KIND, breaker.KIND, retry.KIND, time_limiter.KIND, executor.KIND,
                           redis.KIND)
