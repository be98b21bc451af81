"""``obsgen diff``: what a change does to alerting, in the reviewer's words.

Reads two build outputs (:mod:`.outputs`), compares them into typed changes (:mod:`.compare`,
:mod:`.model`), flags the risky ones (:mod:`.risk`) and renders Markdown, text or JSON (:mod:`.render`).
:mod:`.base` builds both sides from a git ref and the work tree; :mod:`.command` is the CLI command.
Nothing here reads obsgen's internals: only the files ``obsgen build`` writes.
"""
