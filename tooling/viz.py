"""Seeing BPTT: the unrolled graph as Graphviz DOT, and the gradient norm at every time step.

``to_dot(loss)`` draws the recorded graph, one box per op node labelled with its op name and
output shape, grouped in one cluster per ``tg.scope`` label (the ``Recurrent`` runner
records each time step in ``layer{k}/{forward|reverse}/t{t}``, so the unrolled structure of
backpropagation through time is visible).

``step_gradient_norms(cell, x, ...)`` returns ``||dL/dh_t||`` (and ``||dL/dc_t||`` for an
LSTM) for every t: how much of the loss's gradient survives the trip back through time;
``step_param_grads(model, x, "weight_hh")`` each step's contribution to a weight's gradient.
Both live in ``tinygrad_lstm.tooling.step_gradients`` and are re-exported here. This module is
tooling: it may import the layer plugins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from tinygrad_lstm.layers import Recurrent

from tinygrad_lstm.tensor import Tensor

from .step_gradients import (
    StepGradients,
    UnrolledGradients,
    step_gradient_norms,
    step_param_grads,
    unrolled_gradients,
)

__all__ = [
    "StepGradients",
    "UnrolledGradients",
    "graph_ops",
    "step_gradient_norms",
    "step_param_grads",
    "to_dot",
    "unrolled_gradients",
    "unrolled_graph",
]


def _quote(*lines: str) -> str:
    """A DOT string literal; several lines are joined by DOT's centred line break ``\\n``."""
    return '"' + "\\n".join(s.replace("\\", "\\\\").replace('"', '\\"') for s in lines) + '"'


def _natural_key(label: str) -> list:
    """Sort key putting ``t2`` before ``t10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label)]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class _Graph:
    """The recorded graph behind a tensor as ``to_dot`` walks it: op nodes (root first),
    leaves, edges (source id, target id, label), the DOT id of every node and leaf, and the
    shape of each output of a node that something consumed."""

    root_id: str = "n0"
    nodes: list = field(default_factory=list)
    leaves: list[Tensor] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)
    out_shapes: dict[int, dict[int, tuple[int, ...]]] = field(default_factory=dict)

    def leaf_id(self, t: Tensor) -> str:
        if id(t) not in self.ids:
            self.ids[id(t)] = f"l{len(self.leaves)}"
            self.leaves.append(t)
        return self.ids[id(t)]

    def node_id(self, t: Tensor) -> tuple[str, bool]:
        """The id of the node that made ``t`` and whether the walk meets it for the first
        time; records the shape of that output."""
        node = t._node
        new = id(node) not in self.ids
        if new:
            self.ids[id(node)] = f"n{len(self.out_shapes)}"
            self.out_shapes[id(node)] = {}
        self.out_shapes[id(node)][t._idx] = t.shape
        return self.ids[id(node)], new


def _walk(tensor: Tensor) -> _Graph:
    """Every node and leaf ``tensor`` depends on, depth first from its node."""
    graph = _Graph()
    if tensor._node is None:
        graph.root_id = graph.leaf_id(tensor)
        return graph
    graph.node_id(tensor)
    stack = [tensor._node]
    while stack:
        node = stack.pop()
        graph.nodes.append(node)
        if node.inputs is None:
            raise RuntimeError(
                f"to_dot: the graph through op {node.name!r} was released by "
                "backward(); draw it before, or call backward(retain_graph=True)"
            )
        for t in node.inputs:
            if t._node is None:
                src, label = graph.leaf_id(t), ""
            else:
                src, new = graph.node_id(t)
                if new:
                    stack.append(t._node)
                label = f"[{t._idx}]" if t._node.n_out > 1 else ""
            graph.edges.append((src, graph.ids[id(node)], label))
    return graph


def graph_ops(tensor: Tensor) -> list[str]:
    """The names of the ops recorded in ``tensor``'s graph, each once, nearest first."""
    return list(dict.fromkeys(node.name for node in _walk(tensor).nodes))


def _leaf_lines(graph: _Graph, leaf_names: Mapping[str, Tensor] | None) -> list[str]:
    """One ellipse per leaf, labelled with its name (or leaf/const) and shape."""
    known = {id(t): key for key, t in (leaf_names or {}).items()}
    lines = []
    for t in graph.leaves:
        kind = known.get(id(t), "leaf" if t.requires_grad else "const")
        lines.append(
            f"  {graph.ids[id(t)]} [shape=ellipse, label={_quote(kind, _shape_text(t.shape))}];"
        )
    return lines


def _node_lines(graph: _Graph) -> list[str]:
    """One box per op node (the root in bold), those recorded in a scope grouped into one
    cluster per scope label, clusters in natural order."""
    lines, clusters = [], {}
    for node in reversed(graph.nodes):
        shapes = graph.out_shapes[id(node)]
        shown = " ".join(_shape_text(shapes[i]) for i in sorted(shapes))
        node_id = graph.ids[id(node)]
        style = ", style=bold" if node_id == graph.root_id else ""
        stmt = f"{node_id} [shape=box{style}, label={_quote(node.name, shown)}];"
        if node.scope is None:
            lines.append("  " + stmt)
        else:
            clusters.setdefault(node.scope, []).append(stmt)
    for k, label in enumerate(sorted(clusters, key=_natural_key)):
        lines += [
            f"  subgraph cluster_{k} {{",
            f"    label={_quote(label)};",
            '    style=rounded; color="#888888";',
            *("    " + s for s in clusters[label]),
            "  }",
        ]
    return lines


def _edge_lines(graph: _Graph) -> list[str]:
    return [
        f"  {src} -> {dst}" + (f" [label={_quote(label)}]" if label else "") + ";"
        for src, dst, label in graph.edges
    ]


def to_dot(
    tensor: Tensor, name: str = "graph", leaf_names: Mapping[str, Tensor] | None = None
) -> str:
    """The graph that produced ``tensor`` as Graphviz DOT text (``dot -Tsvg`` renders it).

    Op nodes are boxes labelled ``op_name`` and the output shape(s); leaves are ellipses
    (labelled with their name in ``leaf_names``, e.g. ``dict(model.named_parameters())``,
    else ``leaf`` for tensors that require grad and ``const`` for the others); edges
    run from an input to the op that consumed it (labelled ``[i]`` when the input is output i
    of a multi-output op). Nodes recorded inside ``tg.scope(label)`` go into one
    ``subgraph cluster_k`` per distinct label, in natural order (``t2`` before ``t10``).
    The graph must not have been released by ``backward()`` (use ``retain_graph=True``).
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    graph = _walk(tensor)
    lines = [
        f"digraph {_quote(name)} {{",
        '  node [fontname="Helvetica", fontsize=10];',
        "  edge [fontsize=8];",
        *_leaf_lines(graph, leaf_names),
        *_node_lines(graph),
        *_edge_lines(graph),
        "}",
    ]
    return "\n".join(lines) + "\n"


def unrolled_graph(
    cell: str,
    seq_len: int,
    input_size: int = 2,
    hidden_size: int = 3,
    batch: int = 1,
    num_layers: int = 1,
    bidirectional: bool = False,
    seed: int = 0,
) -> str:
    """DOT text of ``sum(output) + sum(final state)`` of ``Recurrent(cell, ...)`` run over
    ones of shape (seq_len, batch, input_size): the unrolled graph BPTT walks back through,
    one cluster per (layer, direction, time step)."""
    layer = Recurrent(
        cell,
        input_size,
        hidden_size,
        num_layers,
        bidirectional=bidirectional,
        rng=np.random.default_rng(seed),
    )
    out, state = layer(Tensor(np.ones((seq_len, batch, input_size), np.float32)))
    loss = out.sum()
    for part in state if isinstance(state, tuple) else (state,):
        loss = loss + part.sum()
    return to_dot(
        loss,
        name=f"{cell} unrolled over {seq_len} steps",
        leaf_names=dict(layer.named_parameters()),
    )
