"""Component kinds, one module each. Adding a kind: a module with ``KIND`` plus its schema."""

from obsgen.components import breaker, cache, executor, redis, retry, time_limiter
from obsgen.components import backpressure, db_pool, lock, rate_limiter
from obsgen.components.base import Kind

KINDS: tuple[Kind, ...] = (cache.KIND, breaker.KIND, retry.KIND, time_limiter.KIND, executor.KIND, redis.KIND,
                          backpressure.KIND, rate_limiter.KIND, lock.KIND, db_pool.KIND)
