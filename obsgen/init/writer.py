"""A :class:`Draft` as spec YAML: block style, a comment above each entry citing its series, one after each
field saying where its value came from (or that it is a default). Same draft, same bytes."""

from __future__ import annotations

import yaml

from obsgen.errors import printable
from obsgen.init.draft import Draft, Entry, Field

HEADER = """\
# Drafted by `obsgen init` from {source}.
# Each entry cites the series it was found in; each value says where it came from. "default" marks what the
# data cannot tell (thresholds, team, descriptions): review those before you build.
"""


def render(d: Draft) -> str:
    out = [HEADER.format(source=_one_line(d.source)), "apiVersion: obsgen/v1\n", "service:\n"]
    out += [_field(f, "  ") for f in d.service]
    kind = None
    for entry in d.entries:
        if entry.kind != kind:
            kind = entry.kind
            out.append(f"\n{kind}:\n")
        out.append(_entry(entry))
    return "".join(out)


def _entry(entry: Entry) -> str:
    lines = [f"  # {_one_line(cite)}\n" for cite in entry.cites]
    first, *rest = entry.fields
    lines.append(_field(first, "  - "))
    lines += [_field(f, "    ") for f in rest]
    return "".join(lines)


def _field(f: Field, indent: str) -> str:
    note = f"  # {_one_line(f.note)}" if f.note else ""
    return f"{indent}{f.key}: {_scalar(f.value)}{note}\n"


def _scalar(value: object) -> str:
    """One value in flow style (``{layer: L1}``, ``5m``, ``''``): YAML's own quoting, never a line break."""
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31, allow_unicode=True, sort_keys=True)
    return text.removesuffix("\n").removesuffix("\n...")


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))
