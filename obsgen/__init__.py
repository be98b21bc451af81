"""obsgen: observability as code for services built on caches, breakers, executors and Redis."""
