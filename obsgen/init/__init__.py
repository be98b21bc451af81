"""``obsgen init``: draft a spec from what a service already exposes.

:mod:`~obsgen.init.scrape` reads the samples (exposition texts or a Prometheus), :mod:`~obsgen.init.drafting`
picks the profile and finds the components, by the fingerprints each kind declares
(:mod:`~obsgen.init.fingerprints`; :mod:`~obsgen.init.components`, :mod:`~obsgen.init.http` and
:mod:`~obsgen.init.redis` read the settings the data tells), :mod:`~obsgen.init.writer` writes the spec with a
comment on every entry and :mod:`~obsgen.init.report` says what was and was not recognised.
"""
