"""Redis, from redis_exporter's series: topology, master name, sentinel count and replicas.

One component per scrape job (a Sentinel set: its servers and sentinels scraped under one job; a sidecar
exporter per server: one job for the pair), or one for all texts given (a text carries no job). Read from
``redis_instance_info`` (``role``, ``redis_mode``), ``redis_sentinel_master_*`` and ``redis_cluster_*``; the
names are the redis kind's own (``REDIS_EXPORTER``) plus the ones redis_exporter publishes beside them.
"""

from __future__ import annotations

import re

from obsgen.components import redis
from obsgen.init.components import thresholds
from obsgen.init.draft import Draft, Entry, Field
from obsgen.init.scrape import Sample, Scrape
from obsgen.spec.schema import schema

_REF = redis.KIND.defaults("*")
SENTINELS = "redis_sentinel_master_sentinels"
REPLICAS = "redis_sentinel_master_slaves"
QUORUM = "redis_sentinel_master_setting_ckquorum"  # redis_exporter 1.56+
_REDIS_SELECTOR = schema()["$defs"]["redis"]["properties"]["selector"]["default"]
READ = {ref.name for ref in _REF.values()} - {"up"}  # `up` is Prometheus', not the exporter's


def recognise(scrape: Scrape, draft: Draft) -> None:
    ours = [s for s in scrape.samples if s.name in READ]
    if not ours:
        return
    for job in sorted({s.labels.get("job", "") for s in ours}):
        group = [s for s in scrape.samples if s.name.startswith("redis_") and s.labels.get("job", "") == job]
        _component(job, group, scrape, draft)


def _component(job: str, samples: list[Sample], scrape: Scrape, draft: Draft) -> None:
    def named(name: str) -> list[Sample]:
        return [s for s in samples if s.name == name]

    info = named(_REF["instance_info"].name)
    modes = {s.labels.get("redis_mode") for s in info}
    status = named(_REF["sentinel_status"].name)
    masters = sorted({s.labels["master_name"] for s in status if "master_name" in s.labels})
    cluster = [s for s in named("redis_cluster_enabled") if s.value == 1]
    name = _name(job, masters)
    what = f"redis {name}"
    fields = [Field("name", name)]
    cites = [f"redis_instance_info{{redis_mode={','.join(sorted(m or '' for m in modes))}}}" if info else "redis_up"]
    if status or "sentinel" in modes:
        fields.append(Field("topology", "sentinel", "redis_sentinel_master_status: the exporter scrapes a sentinel"))
        if len(masters) == 1:
            fields.append(Field("master_name", masters[0], "the master_name label of redis_sentinel_master_status"))
        sentinels = _most(named(SENTINELS))
        if sentinels:
            fields.append(Field("sentinels", round(sentinels.value), _cite(sentinels)))
            quorum = _most(named(QUORUM))
            if quorum:
                fields.append(Field("quorum", round(quorum.value), _cite(quorum)))
            else:
                fields.append(Field("quorum", round(sentinels.value) // 2 + 1, f"default: a majority; {QUORUM} "
                                    "(redis_exporter 1.56+) is not in the data"))
        replicas = _most(named(REPLICAS))
        if replicas:
            fields.append(Field("replicas", round(replicas.value), _cite(replicas)))
    else:
        if cluster or "cluster" in modes:
            fields.append(Field("topology", "cluster", "redis_cluster_enabled = 1"))
        else:
            fields.append(Field("topology", "standalone", "no sentinel or cluster series; Sentinel shows only in a "
                                "sentinel's own scrape: if Sentinel manages it, add one (redis_exporter "
                                "/scrape?target=redis://<sentinel>:26379) and run init again"))
        masters_info = {s.labels.get("instance") for s in info if s.labels.get("role") == "master"}
        links = [s for s in named(_REF["connected_replicas"].name)
                 if not info or s.labels.get("instance") in masters_info]
        most = _most(links)  # a master's replicas (in a cluster, per master)
        if most and most.value >= 1:
            fields.append(Field("replicas", round(most.value), _cite(most)))
    if job:
        fields.append(Field("selector", {"job": job}, "the job that scrapes the exporter"))
    else:  # a text carries no job: the schema's default, said
        sentinels_too = ", its sentinels' targets too (sentinel_selector)" if status or "sentinel" in modes else ""
        fields.append(Field("selector", _REDIS_SELECTOR, "default: the job Prometheus scrapes the exporter as"
                            f"{sentinels_too} (a scrape text names none); check"))
    fields += thresholds(redis.KIND, "micrometer")  # exporter metrics: the same in every profile
    for sample in samples:
        if sample.name in READ | {SENTINELS, REPLICAS, QUORUM, "redis_cluster_enabled"}:
            draft.recognise(scrape.family_of.get(sample.name, sample.name), what)
    families = {scrape.family_of.get(s.name, s.name) for s in samples}
    draft.entries.append(Entry("redis", name, fields, cites + [f"{len(families)} redis_* families"
                                                               f"{f' of job {job}' if job else ''}"]))


def _name(job: str, masters: list[str]) -> str:
    if job:
        return re.sub(r"[^A-Za-z0-9_.:-]+", "-", job).strip("-_.:")[:63] or "redis"
    return masters[0] if len(masters) == 1 and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}", masters[0]) \
        else "redis"


def _most(samples: list[Sample]) -> Sample | None:
    return max(samples, key=lambda s: s.value, default=None)


def _cite(sample: Sample) -> str:
    return f"{sample.text(('master_name',))} = {sample.value:g}"
