"""``obsgen verify``: check specs against what the services really expose, before anything is deployed.

Every alert and panel obsgen writes rests on assumptions about metric names,
labels, types, histogram buckets and scrape intervals; its promtool tests check
the rules against obsgen's own picture of the metrics, so a wrong assumption
passes them and ships an alert that can never fire. Verify reads every selector
of the rules, recordings and dashboards a spec produces (:mod:`.uses`), asks a
Prometheus-compatible server, or reads saved scrapes, for what exists
(:mod:`.prometheus`, :mod:`.exposition`), and reports each mismatch at the spec
field to change, with the alerts and panels it blinds (:mod:`.checks`, :mod:`.report`).
:mod:`.run` ties one run together; :mod:`.command` is the CLI command (every ``obsgen`` run imports it, so
this package imports nothing).
"""
