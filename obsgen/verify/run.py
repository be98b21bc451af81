"""One verify run: the uses of every spec, one inventory for all of them, the findings and what was checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from obsgen.spec import Spec
from obsgen.verify.checks import check
from obsgen.verify.finding import Finding
from obsgen.verify.grouping import grouped, no_targets
from obsgen.verify.inventory import Inventory
from obsgen.verify.uses import UP, Use, uses


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
    findings = grouped([(use, check(use, inv, lookback)) for use in all_uses],
                       lookback if inv.scraped else None)
    if inv.scraped and not inv.has_series(UP):
        findings = no_targets(findings, inv.source)
    skipped = []
    if inv.intervals is None and any(u.read.range and not u.read.grafana_range for u in all_uses):
        skipped.append(f"windows against scrape intervals: {inv.intervals_unknown}")
    if not inv.scraped:
        selected = sorted({k for spec in specs for k in spec.service.selector})
        if selected:
            skipped.append(f"service selector ({', '.join(selected)}): an exposition text has no scrape labels "
                           "(check it with --prometheus)")
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
