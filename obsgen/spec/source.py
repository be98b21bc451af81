"""Safe YAML loading that remembers where every value came from.

PyYAML's constructors forget positions, so the spec is composed into nodes and
converted here by hand. That also gives the safety rules in one place: only the
standard scalar tags, duplicate keys are an error (not silently last-wins),
documents and alias expansion are bounded (billion-laughs), and there is
exactly one document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from obsgen.errors import Path, Problem, SpecError

MAX_BYTES = 1_000_000
MAX_NODES = 50_000
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass
class Source:
    """A loaded spec: plain data plus the position of every key and value."""

    file: str
    data: object
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

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


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    def __init__(self, loader: _Loader, source: Source):
        self.loader = loader
        self.source = source
        self.nodes = 0

    def fail(self, node: yaml.Node, path: Path, message: str) -> SpecError:
        line, col = _mark(node)
        return SpecError([Problem(self.source.file, line, col, path, message)])

    def convert(self, node: yaml.Node, path: Path) -> object:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, path, f"the document expands to more than {MAX_NODES} values "
                            "(aliases referring to aliases?); write the spec out plainly")
        self.source.positions.setdefault(path, _mark(node))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            raise self.fail(node, path, f"the tag {node.tag} is not allowed; use plain YAML values")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self.fail(node, path, f"the tag {node.tag} is not allowed; use plain YAML values") from None

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, path, "keys must be plain strings")
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                first = self.source.key_positions[path + (key,)]
                raise self.fail(key_node, path + (key,),
                                f"duplicate key `{key}` (first at line {first[0]}); remove one of them")
            self.source.key_positions[path + (key,)] = _mark(key_node)
            out[key] = self.convert(value_node, path + (key,))
        return out


def load(text: str, file: str) -> Source:
    """Parse one YAML document into a :class:`Source`, or raise :class:`SpecError`."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Problem(file, 1, 1, (), f"the spec is larger than {MAX_BYTES} bytes; split the service")])
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
        raise SpecError([Problem(file, line, col, (), f"invalid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, 1, 1, (), f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return source
