"""A custom cell's way out to PyTorch: its captured step written as PyTorch source.

``torch_source(layer)`` captures the step of each distinct cell of a ``Recurrent`` layer (the
cell compiler's front end, ``tinygrad_lstm.compiler.capture``: every op the step runs, with
its inputs and attributes) and writes it as Python for PyTorch:

- a step function, one line per op (``v7 = torch.sigmoid(v6)``), taking the parameters as
  arguments: PyTorch's autograd differentiates it;
- ``<Cell>Cell(torch.nn.Module)``: the cell alone, its parameters named as ours
  (``weight_ih``), ``forward(x, state) -> (output, new_state)``;
- ``<Cell>Layer(torch.nn.Module)``: the time loop, with our ``Recurrent``'s options
  (num_layers, bidirectional, batch_first), initial state and ``lengths=``, and our flat
  parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``), so ``state_dict()`` moves
  between the two unchanged.

Ops with a PyTorch counterpart are written as it; an elementwise op without one (a plugin's)
is written from its scalar rule. A step that cannot be captured (it reads a tensor's values
or draws random numbers) cannot be written either, and ``NotFusible`` says why.
``export_layer(layer)`` runs the source and returns the layer's torch module, weights copied.
"""

from __future__ import annotations

import ast
import keyword
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from tinygrad_lstm.compiler.capture import Call, StepTrace, capture
from tinygrad_lstm.layers import Recurrent

from tinygrad_lstm import Module, list_cells, op_info
from tinygrad_lstm.registry import OPS

if TYPE_CHECKING:
    import torch

__all__ = ["export_layer", "torch_source"]

# Ops written as one PyTorch expression: {0}, {1}, ... are the inputs, {name} the attributes.
_TORCH = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / {1}",
    "neg": "-{0}",
    "pow": "{0} ** {exponent}",
    "exp": "torch.exp({0})",
    "log": "torch.log({0})",
    "sigmoid": "torch.sigmoid({0})",
    "tanh": "torch.tanh({0})",
    "relu": "torch.relu({0})",
    "abs": "torch.abs({0})",
    "maximum": "torch.maximum({0}, {1})",
    "minimum": "torch.minimum({0}, {1})",
    "where": "torch.where({0} != 0, {1}, {2})",
    "clip": "torch.clamp({0}, {min}, {max})",
    "hardtanh": "F.hardtanh({0}, {min_val}, {max_val})",
    "hardsigmoid": "F.hardsigmoid({0})",
    "leaky_relu": "F.leaky_relu({0}, {negative_slope})",
    "softplus": "F.softplus({0}, {beta}, {threshold})",
    "matmul": "{0} @ {1}",
    "softmax": "torch.softmax({0}, dim={axis})",
    "log_softmax": "torch.log_softmax({0}, dim={axis})",
    "reshape": "{0}.reshape({shape})",
}
_REDUCTIONS = {"sum": "torch.sum", "mean": "torch.mean", "max": "torch.amax"}
# Functions of scalar rules, in PyTorch.
_RULE_FUNCTIONS = {
    "exp": "torch.exp",
    "log": "torch.log",
    "log1p": "torch.log1p",
    "expm1": "torch.expm1",
    "tanh": "torch.tanh",
    "sqrt": "torch.sqrt",
    "abs": "torch.abs",
    "min": "torch.minimum",
    "max": "torch.maximum",
}


def _number(value: float) -> str:
    if np.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    return "math.nan" if np.isnan(value) else repr(float(value))


def _index(index: Any) -> str:
    """Python source of a getitem index (slices, ints, Ellipsis, None, integer arrays)."""
    if isinstance(index, tuple):
        return "(" + "".join(f"{_index(i)}, " for i in index) + ")"
    if isinstance(index, slice):
        return f"slice({index.start!r}, {index.stop!r}, {index.step!r})"
    if index is Ellipsis:
        return "..."
    if isinstance(index, (np.ndarray, list)):
        return f"torch.tensor({np.asarray(index).tolist()!r})"
    return repr(int(index)) if isinstance(index, (int, np.integer)) else repr(index)


class _RuleToTorch(ast.NodeTransformer):
    """A scalar rule's forward as a PyTorch expression on whole tensors."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            return ast.parse(self.names[node.id], mode="eval").body
        if node.id in _RULE_FUNCTIONS:
            return ast.parse(_RULE_FUNCTIONS[node.id], mode="eval").body
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        self.generic_visit(node)
        where = ast.parse("torch.where", mode="eval").body
        return ast.Call(where, [node.test, node.body, node.orelse], [])

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        op = ast.BitAnd() if isinstance(node.op, ast.And) else ast.BitOr()
        result = node.values[0]
        for value in node.values[1:]:
            result = ast.BinOp(result, op, value)
        return result


class _Writer:
    """Writes the lines of one step function from a trace."""

    def __init__(self, trace: StepTrace) -> None:
        self.trace = trace
        self.params = [v for v in trace.values if v.source == "param"]
        self.consts = [v for v in trace.values if v.source == "const" and v.tensor.ndim > 0]
        self.names: dict[int, str] = {trace.x: "x"}
        for k, s in enumerate(trace.states):
            self.names[s] = f"s{k}"
        for v in self.params:
            self.names[v.id] = _python_name(v.name)
        for v in self.consts:
            base = f"const{v.id}"
            self.names[v.id] = (
                f"{base}.expand(x.shape[0], *{base}.shape[1:])" if v.batched else base
            )
        for v in trace.values:
            if v.source == "const" and v.tensor.ndim == 0:
                self.names[v.id] = _number(float(v.tensor._data))

    def arg(self, vid: int, like: str) -> str:
        """Input ``vid``; a number becomes a tensor where a torch function needs one."""
        name = self.names[vid]
        if self.trace.values[vid].source == "const" and self.trace.values[vid].tensor.ndim == 0:
            return f"torch.full((), {name}, dtype={like}.dtype)"
        return name

    def expression(self, call: Call) -> str:
        args = [self.names[i] for i in call.inputs]
        attrs, op = call.attrs, call.op
        first = next(
            (self.names[i] for i in call.inputs if self.trace.values[i].tensor.ndim > 0), "x"
        )
        if op in ("maximum", "minimum", "where"):
            args = [self.arg(i, first) for i in call.inputs]
        if op in _TORCH:
            fields = {
                k: (_number(v) if isinstance(v, float) else repr(v)) for k, v in attrs.items()
            }
            if op == "clip":
                fields = {
                    k: _number(attrs.get(k, np.inf if k == "max" else -np.inf))
                    for k in ("min", "max")
                }
            return _TORCH[op].format(*(f"({a})" if " " in a else a for a in args), **fields)
        if op in _REDUCTIONS:
            axis, keep = attrs.get("axis"), attrs.get("keepdims", False)
            if axis is None:
                whole = f"{_REDUCTIONS[op]}({args[0]})"
                return f"{whole}.reshape([1] * {args[0]}.dim())" if keep else whole
            return f"{_REDUCTIONS[op]}({args[0]}, dim={axis!r}, keepdim={keep!r})"
        if op == "logsumexp":
            axis, keep = attrs.get("axis"), attrs.get("keepdims", False)
            dims = f"tuple(range({args[0]}.dim()))" if axis is None else repr(axis)
            return f"torch.logsumexp({args[0]}, dim={dims}, keepdim={keep!r})"
        if op == "transpose":
            axes = attrs.get("axes")
            if axes is None and self.trace.values[call.inputs[0]].tensor.ndim == 2:
                return f"{args[0]}.T"
            order = f"tuple(range({args[0]}.dim()))[::-1]" if axes is None else repr(tuple(axes))
            return f"{args[0]}.permute({order})"
        if op == "getitem":
            return f"{args[0]}[{_index(attrs['index'])}]"
        if op in ("concat", "stack"):
            fn = "torch.cat" if op == "concat" else "torch.stack"
            return f"{fn}([{', '.join(args)}], dim={attrs.get('axis', 0)!r})"
        if op == "unstack":
            return f"torch.unbind({args[0]}, dim={attrs.get('axis', 0)!r})"
        if op == "split":
            sections, axis = attrs.get("sections", 2), attrs.get("axis", 0)
            size = (
                f"{args[0]}.shape[{axis!r}] // {sections!r}"
                if isinstance(sections, (int, np.integer))
                else repr(list(sections))
            )
            return f"torch.split({args[0]}, {size}, dim={axis!r})"
        if op == "cast":
            dtype = attrs.get("dtype")
            return args[0] if dtype is None else f"{args[0]}.to(torch.{np.dtype(dtype).name})"
        return self.from_rule(call, args)

    def from_rule(self, call: Call, args: list[str]) -> str:
        info = op_info(call.op) if call.op in OPS else None
        if info is None or info.kind != "elementwise" or info.scalar is None:
            raise TypeError(
                f"to_torch: op {call.op!r} has no PyTorch counterpart and no scalar rule to "
                "write it from"
            )
        names = dict(zip(info.scalar.inputs, args))
        names.update({k: _number(v) for k, v in call.attrs.items() if isinstance(v, float)})
        tree = _RuleToTorch(names).visit(ast.parse(info.scalar.forward, mode="eval"))
        return ast.unparse(tree)

    def function(self, name: str) -> list[str]:
        trace = self.trace
        params = ", ".join(self.names[v.id] for v in self.params)
        consts = "".join(f", const{v.id}" for v in self.consts)
        states = [self.names[s] for s in trace.states]
        lines = [f"def {name}(x, state, {params}{consts}):"]
        unpack = f"({', '.join(states)},) = state" if trace.tupled else f"{states[0]} = state"
        lines.append(f"    {unpack}")
        for call in trace.calls:
            outs = [f"v{o}" for o in call.outputs]
            for o in call.outputs:
                self.names[o] = f"v{o}"
            several = len(outs) > 1 or call.op in ("split", "unstack")
            target = ", ".join(outs) + ("," if len(outs) == 1 and several else "")
            lines.append(f"    {target} = {self.expression(call)}")
        new = [self.names[s] for s in trace.new_states]
        result = f"({', '.join(new)},)" if trace.tupled else new[0]
        lines.append(f"    return {self.names[trace.output]}, {result}")
        return lines


def _python_name(name: str) -> str:
    safe = name.replace(".", "__")
    return f"{safe}_" if keyword.iskeyword(safe) else safe


_LAYER_TEMPLATE = '''

class {cls}Layer(torch.nn.Module):
    """{cls} over a sequence, as tinygrad_lstm's Recurrent runs it: (T, N, I) in (or
    (N, T, I) with batch_first), (output, final state) out, state parts (L*D, N, width)."""

    # What from_torch rebuilds it as.
    tinygrad_lstm = {origin}

    def __init__(self):
        super().__init__()
        self.num_layers = {layers}
        self.bidirectional, self.batch_first = {bidirectional}, {batch_first}
        self.widths = {widths}
{parameters}

    def forward(self, x, state=None, lengths=None):
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[0], x.shape[1]
        if state is None:
            state = tuple(x.new_zeros(len(self.cells), batch, w) for w in self.widths)
        elif not isinstance(state, tuple):
            state = (state,)
        finals = [[] for _ in self.widths]
        for k in range(self.num_layers):
            outputs = []
            for d in range(2 if self.bidirectional else 1):
                index = k * (2 if self.bidirectional else 1) + d
                step, names = self.cells[index]
                params = [getattr(self, n) for n in names]
                s = tuple(part[index] for part in state)
                ys = [None] * steps
                for t in (range(steps - 1, -1, -1) if d else range(steps)):
                    y, new = step(x[t], s if len(s) > 1 else s[0], *params)
                    new = new if isinstance(new, tuple) else (new,)
                    if lengths is not None:
                        keep = (t < torch.as_tensor(lengths)).unsqueeze(1)
                        new = tuple(torch.where(keep, n, o) for n, o in zip(new, s))
                        y = torch.where(keep, y, torch.zeros_like(y))
                    ys[t], s = y, new
                outputs.append(torch.stack(ys))
                for j, part in enumerate(s):
                    finals[j].append(part)
            x = torch.cat(outputs, dim=2)
        output = x.transpose(0, 1) if self.batch_first else x
        final = tuple(torch.stack(parts) for parts in finals)
        return output, {final}
'''


def _cell_class(name: str, function: str, writer: _Writer) -> list[str]:
    lines = [
        "",
        "",
        f"class {name}Cell(torch.nn.Module):",
        f'    """One step: forward(x, state) -> (output, new_state), by {function}."""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
    ]
    for v in writer.params:
        shape = tuple(v.shape)
        lines += _parameter_lines("self", v.name, shape, v.tensor.dtype)
    for v in writer.consts:
        row = v.row() if v.batched else v.tensor._data
        lines.append(f"        self.register_buffer('const{v.id}', {_tensor(row)})")
    args = "".join(f", {_attribute('self', v.name)}" for v in writer.params)
    args += "".join(f", self.const{v.id}" for v in writer.consts)
    lines += ["", "    def forward(self, x, state):", f"        return {function}(x, state{args})"]
    return lines


def _tensor(array: np.ndarray) -> str:
    return f"torch.tensor({array.tolist()!r}, dtype=torch.{array.dtype.name})"


def _attribute(owner: str, name: str) -> str:
    return owner + "".join(f".{part}" for part in name.split("."))


def _parameter_lines(owner: str, name: str, shape: tuple, dtype: np.dtype) -> list[str]:
    lines, path = [], owner
    for part in name.split(".")[:-1]:
        lines.append(f"        if not hasattr({path}, {part!r}):")
        lines.append(f"            {path}.{part} = torch.nn.Module()")
        path += f".{part}"
    leaf = name.split(".")[-1]
    lines.append(
        f"        {path}.{leaf} = torch.nn.Parameter(torch.zeros({shape!r}, "
        f"dtype=torch.{np.dtype(dtype).name}))"
    )
    return lines


def _traces(layer: Recurrent) -> list[tuple[str, StepTrace, Module]]:
    """(suffix, trace, cell) for each (layer, direction) cell of ``layer``."""
    out = []
    for k in range(layer.num_layers):
        for suffix in layer._directions():
            cell = getattr(layer, f"cell_l{k}{suffix}")
            weight = next(cell.parameters())
            size = layer.input_size if k == 0 else len(layer._directions()) * layer.output_size
            out.append((f"_l{k}{suffix}", capture(cell, size, weight.dtype), cell))
    return out


def _origin(layer: Recurrent) -> dict[str, Any]:
    """The ``Recurrent`` a generated layer stands for: its registered cell and options."""
    names = [c.name for c in list_cells() if c.cls is layer.cell_class]
    return {
        "cell": names[0] if names else None,
        "input_size": layer.input_size,
        "hidden_size": layer.hidden_size,
        "num_layers": layer.num_layers,
        "bias": layer.bias,
        "batch_first": layer.batch_first,
        "bidirectional": layer.bidirectional,
        "cell_options": dict(layer.cell_options),
    }


def torch_source(layer: Recurrent) -> str:
    """PyTorch source for ``layer``'s cells: the step function(s), ``<Cell>Cell`` and
    ``<Cell>Layer`` (see the module docstring). ``NotFusible`` if a step cannot be captured."""
    if not isinstance(layer, Recurrent):
        raise TypeError(f"torch_source: expected a Recurrent layer, got {type(layer).__name__}")
    name = layer.cell_class.__name__.removesuffix("Cell")
    lines = [
        f'"""{name}, exported from tinygrad_lstm by tinygrad_lstm.tooling.torch_export."""',
        "",
        "import math",
        "",
        "import torch",
        "import torch.nn.functional as F",
    ]
    functions: dict[str, str] = {}
    cells, layer_params, first_writer = [], [], None
    for suffix, trace, _cell in _traces(layer):
        writer = _Writer(trace)
        body = writer.function("STEP")
        text = "\n".join(body)
        if text not in functions:
            fname = f"{name.lower()}_step{len(functions) or ''}"
            functions[text] = fname
            lines += ["", "", *(line.replace("STEP", fname, 1) for line in body)]
        first_writer = first_writer or (functions[text], writer)
        names = [f"{v.name.replace('.', '_')}{suffix}" for v in writer.params]
        for v, flat in zip(writer.params, names):
            layer_params += _parameter_lines("self", flat, tuple(v.shape), v.tensor.dtype)
        for v in writer.consts:
            row = v.row() if v.batched else v.tensor._data
            buffer = f"const{v.id}{suffix}"
            layer_params.append(f"        self.register_buffer({buffer!r}, {_tensor(row)})")
            names.append(buffer)
        cells.append(f"({functions[text]}, {names!r})")
    function, writer = first_writer
    lines += _cell_class(name, function, writer)
    trace = writer.trace
    widths = [trace.values[s].shape[1] for s in trace.states]
    layer_params.append(f"        self.cells = [{', '.join(cells)}]")
    lines += _LAYER_TEMPLATE.format(
        cls=name,
        layers=layer.num_layers,
        bidirectional=layer.bidirectional,
        batch_first=layer.batch_first,
        widths=widths,
        parameters="\n".join(layer_params),
        final="final" if trace.tupled else "final[0]",
        origin=repr(_origin(layer)),
    ).splitlines()
    return "\n".join(lines).rstrip() + "\n"


def load_source(source: str, name: str = "tinygrad_lstm_export") -> ModuleType:
    """Run generated ``source`` as a new module (it is ours, written above: no user code)."""
    module = ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102
    return module


def export_layer(layer: Recurrent) -> torch.nn.Module:
    """``layer`` as a torch module: ``<Cell>Layer`` from ``torch_source``, weights copied,
    ``requires_grad`` and the training flag kept."""
    import torch

    module = load_source(torch_source(layer))
    cls = layer.cell_class.__name__.removesuffix("Cell")
    target = getattr(module, f"{cls}Layer")()
    params = dict(target.named_parameters())
    with torch.no_grad():
        for flat, param in layer.named_parameters():
            params[flat].copy_(torch.from_numpy(param.data))
            params[flat].requires_grad_(param.requires_grad)
    target.train(layer.training)
    return target
