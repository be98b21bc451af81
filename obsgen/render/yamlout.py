"""Deterministic, readable YAML: block style, multi-line strings as literal blocks, keys in given order."""

from __future__ import annotations

import re

import yaml


class _Dumper(yaml.SafeDumper):
    pass


# Characters PyYAML writes into plain or block scalars although a reader folds or drops them (NEL and the
# Unicode line separators are line breaks to YAML 1.1), and other control characters: double-quoted style
# writes them as escapes, so every string reads back exactly.
_QUOTE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# Plain scalars a YAML 1.2 reader (Prometheus, in Go) would not read as strings although YAML 1.1 does.
_YAML12_NOT_STRING = re.compile(r"[-+]?(0o[0-7]+|0x[0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\.[0-9]+"
                                r"([eE][-+]?[0-9]+)?|\.(inf|Inf|INF|nan|NaN|NAN))")


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if _QUOTE.search(value):
        style = '"'
    elif "\n" in value:
        style = "|"
    elif _YAML12_NOT_STRING.fullmatch(value):
        style = "'"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
