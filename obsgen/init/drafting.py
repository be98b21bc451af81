"""From a scrape to a :class:`Draft`: the profile, the service, and every component the data shows."""

from __future__ import annotations

import re
from collections import Counter

from obsgen.components import KINDS
from obsgen.errors import UsageError
from obsgen.init import components, http, redis
from obsgen.init.draft import Draft, Field
from obsgen.init.fingerprints import PROFILES, fingerprints, profile_names
from obsgen.init.scrape import Scrape

DEFAULT_TEAM = "sre"
DEFAULT_SERVICE = "service"
_SERVICE = re.compile(r"(?!(con|prn|aux|nul|com[0-9]|lpt[0-9])$)[a-z][a-z0-9-]{0,62}")


def draft(scrape: Scrape, *, service: str | None, team: str | None, profile: str | None) -> Draft:
    if not scrape.families:
        raise UsageError(f"no metric family in {scrape.source}: is it a /metrics scrape (or, with --prometheus, "
                         "does the selector pick the service's series)?")
    chosen, why = _given(scrape, profile) if profile else _profile(scrape)
    out = Draft(service=[], source=scrape.source, profile=chosen, profile_why=why, families=scrape.families)
    for fp in fingerprints(chosen):
        components.recognise(fp, scrape, out)
    http.recognise(chosen, scrape, out)
    redis.recognise(scrape, out)
    if not out.entries and out.waiting:
        kinds = ", ".join(w.kind for w in out.waiting)
        raise UsageError(f"no component recorded yet in {scrape.source}: its {kinds} families are declared with no "
                         "series; send traffic to the service first, then run init again")
    if not out.entries:
        raise UsageError(f"no component recognised in {scrape.source} (profile {chosen}: {len(out.families)} "
                         f"metric families, none of them a kind obsgen knows); try --profile {_other(chosen)}, or check "
                         "the source")
    order = {kind.key: i for i, kind in enumerate(KINDS)}
    out.entries.sort(key=lambda e: order[e.kind])  # stable: spec order within a kind
    out.service = _service(scrape, service, team, chosen, why)
    return out


def _counts(scrape: Scrape) -> dict[str, int]:
    """Per profile, how many of its own metric names (not the other's too: redis_exporter's, health checks')
    the data has, as samples or as families declared without any."""
    present = {s.name for s in scrape.samples} | scrape.declared_names
    return {p: len(present & (profile_names(p) - profile_names(_other(p)))) for p in PROFILES}


def _profile(scrape: Scrape) -> tuple[str, str]:
    """The profile whose metric names explain the most of the scrape (Micrometer on a tie)."""
    counts = _counts(scrape)
    best = max(PROFILES, key=lambda p: counts[p])  # PROFILES order breaks ties
    if not counts[best]:
        return best, "the default: the data has no metric name of either profile's own"
    return best, f"{counts[best]} of its metric names in the data, against {counts[_other(best)]} for {_other(best)}"


def _given(scrape: Scrape, profile: str) -> tuple[str, str]:
    """--profile, and a warning when the data's names fit the other profile better."""
    counts = _counts(scrape)
    if counts[_other(profile)] <= counts[profile]:
        return profile, "--profile"
    return profile, (f"--profile; but the data has {counts[profile]} of its metric names against "
                     f"{counts[_other(profile)]} for {_other(profile)}: check it")


def _other(profile: str) -> str:
    return next(p for p in PROFILES if p != profile)


def _service(scrape: Scrape, name: str | None, team: str | None, profile: str, why: str) -> list[Field]:
    exporters = {s.labels.get("job") for s in scrape.samples if s.name.startswith("redis_")}
    jobs = Counter(s.labels["job"] for s in scrape.samples if "job" in s.labels and s.labels["job"] not in exporters)
    fields = []
    if name:
        fields.append(Field("name", name, "--service"))
    else:
        fields.append(_guess_name(scrape, jobs))
    fields.append(Field("team", team, "--team") if team else
                  Field("team", DEFAULT_TEAM, "default: the data cannot tell; the team its alerts page (--team)"))
    fields.append(Field("description", "", "default: the data cannot tell; say what the service does"))
    if jobs:
        job, _ = jobs.most_common(1)[0]
        others = sorted(set(jobs) - {job})
        fields.append(Field("selector", {"job": job}, "the job of its series" + (
            f" (also seen: {', '.join(others)})" if others else "")))
    else:  # a text carries no job: the schema's default, said
        fields.append(Field("selector", {"job": fields[0].value},
                            "default: the job Prometheus scrapes it as (a scrape text names none); check"))
    fields.append(Field("profile", profile, why))
    return fields


def _guess_name(scrape: Scrape, jobs: Counter) -> Field:
    """Spring's ``application`` common tag, else the scrape job, else the first source's file name, else a
    placeholder; lowercase, as names are. A name the data gives but a spec cannot take is said."""
    apps = Counter(s.labels["application"] for s in scrape.samples if "application" in s.labels)
    refused = []
    for candidates, where in ((apps, "the `application` label of its series"), (jobs, "the job of its series")):
        if candidates:
            value = candidates.most_common(1)[0][0]
            name = _as_name(value)
            if name:
                return Field("name", name, where)
            refused.append(f"{where} is {value!r}, which is no service name")
    why = "; ".join(refused) or "the data names no service"
    stem = _as_name(_stem(scrape.source))
    if stem:
        return Field("name", stem, f"default: the source's file name ({why}); set it (--service)")
    return Field("name", DEFAULT_SERVICE, f"default: {why}; set it (--service)")


def _as_name(value: str) -> str | None:
    name = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:63]
    return name if _SERVICE.fullmatch(name) else None


def _stem(source: str) -> str:
    """The file name of the first source without its extension (a URL's says nothing: its last part is
    `metrics` or `prometheus`)."""
    from pathlib import PurePath

    first = source.split(", ")[0]
    return "" if "://" in first else PurePath(first).stem
