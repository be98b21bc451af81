"""``obsgen verify``: check specs against what the services really expose, before anything is deployed.

Every alert and panel obsgen writes rests on assumptions about metric names,
labels, types, histogram buckets and scrape intervals; its promtool tests check
the rules against obsgen's own picture of the metrics, so a wrong assumption
passes them and ships an alert that can never fire. Verify reads every selector
of the rules, recordings and dashboards a spec produces (:mod:`.uses`), asks a
Prometheus-compatible server, or reads saved scrapes, for what exists
(:mod:`.prometheus`, :mod:`.exposition`), and reports each mismatch at the spec
field to change, with the alerts and panels it blinds (:mod:`.checks`, :mod:`.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from obsgen.spec import Spec
from obsgen.verify.checks import Finding, check
from obsgen.verify.inventory import Inventory
from obsgen.verify.uses import Use, uses


@dataclass(frozen=True)
class Result:
    findings: list[Finding]  # notes included (Finding.note)
    checked: dict

    @property
    def clean(self) -> bool:
        return not any(not f.note for f in self.findings)


def verify(specs: list[Spec], inventory_for: Callable[[set[str]], Inventory], *, lookback: str = "1h",
           at: str | None = None, advance: Callable[[], None] = lambda: None) -> Result:
    """Check ``specs`` against the inventory ``inventory_for`` fetches for the metric names their selectors read.

    ``advance`` is called once per spec analysed (a progress bar); the fetch is one step whatever the number
    of specs.
    """
    all_uses: list[Use] = []
    for spec in specs:
        all_uses += uses(spec)
        advance()
    inv = inventory_for({u.read.metric for u in all_uses})
    findings = check(all_uses, inv, lookback)
    skipped = []
    if inv.intervals is None and any(u.read.range and not u.read.grafana_range for u in all_uses):
        skipped.append(f"windows against scrape intervals: {inv.intervals_unknown}")
    checked = {
        "specs": len(specs),
        "components": len({(u.file, u.kind, u.component) for u in all_uses}),
        "signals": len({(u.file, u.kind, u.component, u.signal) for u in all_uses}),
        "selectors": len({(u.file, u.read.selector) for u in all_uses}),
        "source": inv.source,
        "at": at,
        "lookback": lookback if inv.present is not None else None,
        "skipped": skipped,
    }
    return Result(findings, checked)
