"""Safe YAML loading that remembers where every value came from.

PyYAML's constructors forget positions, so the spec is composed into nodes and
converted here by hand. That also gives the safety rules in one place: only
plain YAML values (strings, numbers, booleans, null; a timestamp stays the
string it was written as), duplicate keys are an error (not silently
last-wins), documents, nesting and alias expansion are bounded (billion
laughs, recursive anchors), and there is exactly one document.

Problems that leave the rest of the document readable (a duplicate key, a
forbidden tag, ``.nan``, text that is not valid Unicode) are collected in
:attr:`Source.problems` and the offending value is dropped (its path goes to
:attr:`Source.broken`), so one run reports them together with every schema
and semantic problem. Only unreadable YAML stops loading at once.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

import yaml

from obsgen.errors import Path, Problem, SpecError

MAX_BYTES = 1_000_000
MAX_NODES = 50_000
MAX_DEPTH = 32
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_STR, _TIMESTAMP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"
_SCALAR_TAGS = (_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:null", _TIMESTAMP)
_MERGE = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
# 1:30 (base 60) and 010 (octal) are numbers YAML 1.1 reads unlike anyone else: 90 and 8.
_NOT_DECIMAL = re.compile(r"[-+]?([0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|0[0-7_]+)")


@dataclass
class Source:
    """A loaded spec: plain data plus the position of every key and value.

    ``texts`` keeps how a scalar that YAML did not read as a string was written
    (``no`` became false, ``1:30`` became 90) so messages can show it.
    """

    file: str
    data: object
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    texts: dict[Path, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: set[Path] = field(default_factory=set)
    # numbers YAML versions read differently (1:30, 010): a problem unless the schema already has one there
    ambiguous: dict[Path, str] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column of ``path``; falls back to the nearest enclosing value."""
        table = self.key_positions if key else self.positions
        if path in table:
            return table[path]
        while path:
            path = path[:-1]
            if path in self.positions:
                return self.positions[path]
        return (1, 1)

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, path, message)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose scalars we construct one by one (tags outside YAML's core are refused)."""


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
"""libyaml's parser (with PyYAML's safe constructor) composes a spec some 15x faster than the pure-Python one;
a document it refuses is read again by :class:`_Loader`, whose error messages are the ones users are shown."""


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _unicode_problem(text: str) -> str | None:
    """Why ``text`` is refused, if it is: a character that is not one (an unpaired surrogate from a ``\\ud800``
    escape cannot be written as UTF-8), or an invisible control character (bidi overrides, zero-width
    characters, terminal escapes) that would make a review show something else than obsgen reads.
    Tabs and newlines are fine here; fields that must be one line say so in the schema.
    """
    if text.isascii() and text.isprintable():
        return None  # most of a spec: no surrogate, no control character, nothing to look up one by one
    for ch in text:
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return f"contains \\u{ord(ch):04x}, half of a UTF-16 surrogate pair, which is not a character; remove it"
        if ch not in "\t\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            name = unicodedata.name(ch, "")
            what = f"U+{ord(ch):04X} ({name}), an invisible control character" if name else \
                f"U+{ord(ch):04X}, a control character"
            return f"contains {what}; remove it"
    return None


class _Converter:
    def __init__(self, loader: _Loader, source: Source):
        self.loader = loader
        self.source = source
        self.nodes = 0

    def fail(self, node: yaml.Node, path: Path, message: str) -> SpecError:
        line, col = _mark(node)
        return SpecError([Problem(self.source.file, line, col, path, message)])

    def report(self, node: yaml.Node, path: Path, message: str) -> None:
        line, col = _mark(node)
        self.source.problems.append(Problem(self.source.file, line, col, path, message))

    def drop(self, node: yaml.Node, path: Path, message: str) -> None:
        """Report a problem with one value and leave the value out (None); loading goes on."""
        self.report(node, path, message)
        self.source.broken.add(path)

    def convert(self, node: yaml.Node, path: Path) -> object:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"the document expands to more than {MAX_NODES} values "
                            "(aliases referring to aliases?); write the spec out plainly")
        if len(path) > MAX_DEPTH:
            raise self.fail(node, path, f"values are nested more than {MAX_DEPTH} levels deep (a recursive "
                            "anchor?); a spec nests a few levels at most")
        self.source.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode) and node.tag == _COLLECTION_TAGS[0]:
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _COLLECTION_TAGS[1]:
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _SCALAR_TAGS:
            return self.drop(node, path, f"the tag {node.tag} is not allowed; use plain YAML values "
                             "(strings, numbers, true/false, lists, mappings)")
        if node.tag == _TIMESTAMP:
            return node.value  # 2024-01-01 stays the text it was written as
        if node.tag != _STR:
            self.source.texts[path] = node.value
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - `!!int abc`, `!!bool maybe`: PyYAML raises whatever int()/dict lookups raise
            return self.drop(node, path, f"`{node.value}` is not a valid {node.tag.rsplit(':', 1)[-1]}; "
                             "quote it to make it a string")
        if isinstance(value, float) and not math.isfinite(value):
            return self.drop(node, path, f"expected a finite number, found `{node.value}`")
        if node.tag in _NUMBER_TAGS and _NOT_DECIMAL.fullmatch(node.value):
            other = "text" if ":" in node.value else f"the number {int(node.value.replace('_', ''), 10)}"
            base = "base-60" if ":" in node.value else "octal"
            self.source.ambiguous[path] = (f"`{node.value}` is the {base} number {value} to YAML 1.1 but {other} "
                                           "to YAML 1.2; write the number you mean in decimal")
        if isinstance(value, str) and (why := _unicode_problem(value)):
            return self.drop(node, path, f"the text {why}")
        return value

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        explicit = {id(k) for k, _ in node.value if k.tag != _MERGE}
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<): merged pairs first
        out: dict = {}
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "a mapping" if isinstance(key_node, yaml.MappingNode) else "a list"
                self.report(key_node, path, f"expected a plain string as key, found {kind}")
                continue
            key = key_node.value  # as written: `on:` is the key "on", not true
            if why := _unicode_problem(key):
                self.report(key_node, path, f"the key {why}")
                continue
            if key in out and key not in merged and id(key_node) in explicit:
                first = self.source.key_positions[path + (key,)]
                self.report(key_node, path + (key,), f"duplicate key `{key}` (first at line {first[0]}); "
                            "remove one of them")
                continue
            # Merged-in pairs come first, earlier `<<` sources last: a later pair overrides, as YAML says.
            if id(key_node) in explicit:
                merged.discard(key)
            else:
                merged.add(key)
            self.source.key_positions[path + (key,)] = _mark(key_node)
            self.source.positions.pop(path + (key,), None)
            out[key] = self.convert(value_node, path + (key,))
        return out


def _reader_position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _fast_load(text: str, file: str) -> Source | None:
    """The document through libyaml, or None when anything goes wrong: then the pure loader reads it again and
    reports the problem in the words (and at the place) users are shown."""
    try:
        loader = _FAST_LOADER(text)  # type: ignore[misc]
    except Exception:  # noqa: BLE001  (text it cannot even encode: an unpaired surrogate)
        return None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        source = Source(file=file, data=None)
        source.data = _Converter(loader, source).convert(node, ())  # type: ignore[arg-type]
        return source
    except Exception:  # noqa: BLE001  any refusal is the pure loader's to explain
        return None
    finally:
        loader.dispose()


def load(text: str, file: str) -> Source:
    """Parse one YAML document into a :class:`Source`, or raise :class:`SpecError` when it cannot be read."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError([Problem(file, 1, 1, (), f"expected a spec of at most {MAX_BYTES} bytes, found {size} "
                                 "bytes; split the service")])
    if _FAST_LOADER is not None and (source := _fast_load(text, file)) is not None:
        return source
    source = Source(file=file, data=None)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([Problem(file, 1, 1, (), "the file is empty; a spec starts with `apiVersion: obsgen/v1`")])
        source.data = _Converter(loader, source).convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            start = f" started at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            what = f"{exc.context}{start}, {exc.problem}" if exc.problem.startswith("but ") else \
                f"{exc.problem} ({exc.context}{start})"
        if "'\\t'" in what:  # PyYAML's words for a tab where indentation is expected
            what = "a tab where YAML allows only spaces (it indents with spaces, never tabs); replace it with spaces"
        raise SpecError([Problem(file, line, col, (), f"invalid YAML: {what}")]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _reader_position(text, exc.position)
        raise SpecError([Problem(file, line, col, (), f"invalid YAML: the character U+{exc.character:04X} is not "
                                 "allowed in YAML; remove it")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, 1, 1, (), f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SpecError([Problem(file, 1, 1, (), f"invalid YAML: values are nested too deeply; a spec nests a "
                                 f"few levels at most ({MAX_DEPTH} is the limit)")]) from None
    finally:
        loader.dispose()
    return source
