"""The coverage report of ``obsgen init``: what it recognised, what it does not watch, what it left out and why."""

from __future__ import annotations

from collections import Counter

from obsgen.errors import printable
from obsgen.init.draft import Draft

GROUP = 8  # unrecognised families sharing a prefix, from which on they are one line


def text(d: Draft) -> str:
    recognised, unknown = sorted(d.recognised), d.unrecognised
    lines = [f"obsgen init: profile {d.profile} ({d.profile_why})",
             f"recognised {len(recognised)} of {len(d.families)} metric families:"]
    lines += [f"  {family}: {', '.join(sorted(d.recognised[family]))}" for family in recognised]
    if unknown:
        lines.append(f"not recognised, so not watched ({len(unknown)}):")
        lines += [f"  {group}" for group in _grouped(unknown)]
    if d.waiting:
        lines.append(f"declared but not yet recorded ({len(d.waiting)}): send traffic first, then run init again:")
        lines += [f"  {w.kind}: {', '.join(w.families)} declared with no series yet; a component is named by "
                  f"its `{w.label}` label, which a series carries from its first use" for w in d.waiting]
    if d.skipped:
        lines.append(f"skipped ({len(d.skipped)}):")
        lines += [f"  {s.kind} {s.name}: {s.why}" for s in d.skipped]
    return "".join(printable(line) + "\n" for line in lines)


def _grouped(families: list[str], at_least: int = GROUP) -> list[str]:
    """Families one by one, except prefixes shared by many (an exporter's ``redis_*``, ``jvm_*``): one line each."""
    prefixes = Counter(f.split("_", 1)[0] for f in families)
    out, shown = [], set()
    for family in families:
        prefix = family.split("_", 1)[0]
        if prefixes[prefix] < at_least:
            out.append(family)
        elif prefix not in shown:
            shown.add(prefix)
            members = [f for f in families if f.split("_", 1)[0] == prefix]
            out.append(f"{prefix}_* ({len(members)} families: {', '.join(members[:3])}, …)")
    return out


def verified(findings: list) -> str:
    """The draft checked against the data it came from: what it reads that the data lacks, and what to do."""
    from obsgen.verify.report import line

    if not findings:
        return "obsgen init: the draft verifies clean against the same data\n"
    return "".join([f"obsgen init: the draft reads {len(findings)} signal(s) the data lacks (obsgen verify):\n",
                    *(f"  {line(f)}\n" for f in findings)])
