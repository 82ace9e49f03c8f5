"""A small parser for the DOT language subset ``to_dot`` may use, written for the tests.

Grammar (Graphviz's, minus ports, HTML strings and ``strict``/undirected graphs):

    graph     : 'digraph' [ID] '{' stmt_list '}'
    stmt_list : [stmt [';'] stmt_list]
    stmt      : ('node' | 'edge' | 'graph') attr_list    attribute defaults
              | ID '=' ID                                 graph attribute
              | 'subgraph' [ID] '{' stmt_list '}'
              | ID ('->' ID)+ [attr_list]                 edge
              | ID [attr_list]                            node
    attr_list : '[' [ID '=' ID [(';' | ',')]]* ']'
    ID        : [A-Za-z_][A-Za-z_0-9]* | number | "quoted string with \\" escapes"

Anything else raises ``DotSyntaxError``, so a test using it checks that the text parses.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r'\s*(?:(->)|([{}\[\];=,])|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z_0-9]*'
    r"|-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)))",
    re.DOTALL,
)


class DotSyntaxError(ValueError):
    """The text is not DOT (of the supported subset)."""


@dataclass
class Subgraph:
    """A ``subgraph``: its name, its attributes, the nodes declared directly in it."""

    name: str | None
    attrs: dict[str, str] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    subgraphs: list[Subgraph] = field(default_factory=list)


@dataclass
class DotGraph:
    """The parsed graph: node id -> attributes, edges (src, dst, attrs), top-level subgraphs."""

    name: str | None
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    root: Subgraph = field(default_factory=lambda: Subgraph(None))


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise DotSyntaxError(f"unexpected character at offset {pos}: {text[pos : pos + 20]!r}")
        arrow, punct, quoted, ident = m.groups()
        if arrow or punct:
            out.append(("p", arrow or punct))
        else:
            value = quoted[1:-1].replace('\\"', '"') if quoted else ident
            out.append(("id", value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        return self.toks[self.i + k] if self.i + k < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise DotSyntaxError(f"expected {value or kind} at token {self.i}, got {tok}")
        self.i += 1
        return tok[1]

    def attr_list(self) -> dict[str, str]:
        attrs: dict[str, str] = {}
        self.take("p", "[")
        while self.peek() != ("p", "]"):
            key = self.take("id")
            self.take("p", "=")
            attrs[key] = self.take("id")
            if self.peek() in (("p", ","), ("p", ";")):
                self.i += 1
        self.take("p", "]")
        return attrs

    def stmt_list(self, graph: DotGraph, sub: Subgraph) -> None:
        self.take("p", "{")
        while self.peek() != ("p", "}"):
            if self.peek() is None:
                raise DotSyntaxError("unbalanced braces: end of text inside a block")
            self.stmt(graph, sub)
            if self.peek() == ("p", ";"):
                self.i += 1
        self.take("p", "}")

    def stmt(self, graph: DotGraph, sub: Subgraph) -> None:
        tok = self.take("id")
        if tok in ("node", "edge", "graph") and self.peek() == ("p", "["):
            self.attr_list()
        elif tok == "subgraph":
            child = Subgraph(self.take("id") if self.peek()[0] == "id" else None)
            self.stmt_list(graph, child)
            sub.subgraphs.append(child)
        elif self.peek() == ("p", "="):
            self.i += 1
            sub.attrs[tok] = self.take("id")
        elif self.peek() == ("p", "->"):
            chain = [tok]
            while self.peek() == ("p", "->"):
                self.i += 1
                chain.append(self.take("id"))
            attrs = self.attr_list() if self.peek() == ("p", "[") else {}
            graph.edges.extend((a, b, attrs) for a, b in itertools.pairwise(chain))
        else:
            attrs = self.attr_list() if self.peek() == ("p", "[") else {}
            if tok in graph.nodes:
                raise DotSyntaxError(f"node {tok} declared twice")
            graph.nodes[tok] = attrs
            sub.nodes.append(tok)


def parse_dot(text: str) -> DotGraph:
    """Parse ``text``; raises ``DotSyntaxError`` unless it is one well-formed digraph."""
    parser = _Parser(text)
    parser.take("id", "digraph")
    graph = DotGraph(parser.take("id") if parser.peek() and parser.peek()[0] == "id" else None)
    parser.stmt_list(graph, graph.root)
    if parser.peek() is not None:
        raise DotSyntaxError(f"text after the closing brace: {parser.toks[parser.i :][:3]}")
    return graph
