"""Recurrent: turns any registered cell into a sequence layer; RNN, LSTM and GRU are it.

RNN, LSTM and GRU, its ``torch.nn``-shaped front classes, live in layers/rnn_lstm_gru.py; its
input and initial-state checks in layers/checks.py, the ways to run one (layer, direction)
pass in layers/unroll.py.

The full forward, as in PyTorch (layer-outer, so layer k+1 sees both directions of layer k):

    layer_in = x                                     (time-major: (T, N, I))
    for k in layers:
        for d in directions:                         forward: t = 0..T-1, reverse: t = T-1..0
            s = h0[k*D + d];  for t: out_d[t], s = cell_{k,d}(layer_in[t], s);  h_n[k*D + d] = s
        layer_in = concat(out_0, out_1, axis=-1)     then dropout, between layers, in training
    output = layer_in

Parameters are registered as ``<cell parameter>_l{k}[_reverse]`` (``weight_ih_l0``,
``bias_hh_l1_reverse``, ``weight_hr_l0``), layer-major, forward before reverse: PyTorch's
names and order, so ``state_dict()`` moves between this and ``torch.nn.LSTM`` both ways.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, Tensor, TensorLike
from tinygrad_lstm.autograd import gc_paused

from .checks import (
    InitialState,
    check_cell_arguments,
    check_dropout,
    check_initial_state,
    check_sequence_input,
    check_size,
)
from .linear import Dropout
from .packing import State, StepMask, check_lengths, step_masks
from .unroll import FUSED_MODES, FusedMode, pick_runner, run_pass

__all__ = ["InitialState", "Recurrent"]


class Recurrent(Module):
    """A multi-layer, optionally bidirectional sequence layer around any recurrent cell.

    ``cell`` is a registered name (``"lstm"``, or a user's ``"mgu"``) or a cell class; every
    (layer, direction) gets its own cell built as ``cell(in_size, hidden_size, bias,
    dtype=, rng=, **cell_options)``. ``forward(x, state=None, lengths=None)`` takes x of shape
    (T, N, I), (N, T, I) with ``batch_first``, or an unbatched (T, I), and returns
    ``(output, final_state)``: output (T, N, D*H_out) (same batch layout as x) and the final
    state in PyTorch's layout, (D*num_layers, N, .) per state tensor (a tuple for LSTM's
    (h, c)). Dropout acts between layers in training mode only.

    ``fused=True`` runs each (layer, direction) pass as ONE op with a Numba time loop and
    its own BPTT: the cell's hand-written op when it declares one (``fused_op``: the
    built-in RNN, GRU and LSTM without ``proj_size``, ops/fused.py), else the cell compiler
    (``tinygrad_lstm.compiler``), which takes any cell whose step uses fusible ops; with
    ``lengths``, the compiler. ``fused="compiled"`` always takes the compiler. Same results
    as composed, far fewer recorded nodes. A cell the compiler cannot take runs composed,
    with a ``FusionWarning`` that names the op that blocked it (layers/unroll.py).
    """

    # The options as given (checked) in __init__.
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    fused: FusedMode
    cell_class: type[Module]
    cell_options: dict[str, Any]
    # Set past __setattr__ (they are bookkeeping, not parameters or sub-modules).
    _name: str
    _aliases: dict[str, tuple[Module, str]]
    _cells: list[Module]
    _runners: list[str]

    def __init__(
        self,
        cell: str | type[Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator | None = None,
        fused: FusedMode = False,
        **cell_options: Any,
    ):
        super().__init__()
        cls = tg.cell(cell) if isinstance(cell, str) else cell
        if not (inspect.isclass(cls) and callable(getattr(cls, "init_state", None))):
            raise TypeError(
                f"Recurrent: cell must be a registered cell name or a cell class "
                f"with init_state() and forward(), got {cell!r}"
            )
        name = self._layer_name(cell)
        object.__setattr__(self, "_name", name)
        if fused not in FUSED_MODES:
            raise ValueError(f"{name}: fused must be one of {FUSED_MODES}, got {fused!r}")
        self.input_size = check_size(name, "input_size", input_size)
        self.hidden_size = check_size(name, "hidden_size", hidden_size)
        self.num_layers = check_size(name, "num_layers", num_layers)
        check_dropout(name, dropout, num_layers)
        check_cell_arguments(name, cls, input_size, hidden_size, bias, dtype, rng, cell_options)
        self.cell_class, self.cell_options = cls, dict(cell_options)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        rng = tg.default_rng() if rng is None else rng
        self._build_cells(dtype, rng, fused)
        self.fused = fused
        if self.dropout > 0 and self.num_layers > 1:
            self.layer_dropout = Dropout(self.dropout, rng=rng)

    def _build_cells(self, dtype: DTypeLike, rng: np.random.Generator, fused: FusedMode) -> None:
        """One cell per (layer, direction), registered as ``cell_l{k}[_reverse]``, each with
        its runner; PyTorch's flat names (``weight_ih_l0``) become aliases of the cells'
        parameters, resolved when used: one Parameter, whichever name it is assigned through."""
        name, cls = self._name, self.cell_class
        cells, aliases, size, runners = [], {}, self.input_size, []
        object.__setattr__(self, "_aliases", aliases)
        for k in range(self.num_layers):
            for suffix in self._directions():
                try:
                    c = cls(
                        size, self.hidden_size, self.bias, dtype=dtype, rng=rng, **self.cell_options
                    )
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"{name}: {exc}") from None
                cells.append(c)
                if not runners or runners[0] != "composed":
                    runners.append(pick_runner(c, fused, size, dtype, name))
                setattr(self, f"cell_l{k}{suffix}", c)
                for pname, _ in c.named_parameters():
                    aliases[f"{pname.replace('.', '_')}_l{k}{suffix}"] = (c, pname)
            size = len(self._directions()) * getattr(cells[-1], "output_size", self.hidden_size)
        object.__setattr__(self, "_cells", cells)
        object.__setattr__(
            self, "_runners", runners if runners[0] != "composed" else ["composed"] * len(cells)
        )

    def _layer_name(self, cell: str | type[Module]) -> str:
        if type(self) is not Recurrent:
            return type(self).__name__
        return f"Recurrent({cell if isinstance(cell, str) else cell.__name__!r})"

    def _directions(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _alias_owner(self, name: str) -> tuple[Module, str]:
        """(module, attribute) holding the parameter that flat name ``name`` stands for."""
        cell, path = self.__dict__.get("_aliases", {})[name]
        *modules, attribute = path.split(".")
        for module_name in modules:
            cell = getattr(cell, module_name)
        return cell, attribute

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the flat names live in the cells. It returns
        # a Parameter (or None for bias=False), but a type checker reads this hint as the type
        # of every attribute set at run time (cell_l0, layer_dropout, ...), hence Any.
        if name not in self.__dict__.get("_aliases", {}):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(*self._alias_owner(name))

    def __setattr__(self, name: str, value: Any) -> None:
        # lstm.weight_ih_l0 = Parameter(...) goes to the cell that computes with it.
        if name in self.__dict__.get("_aliases", {}):
            setattr(*self._alias_owner(name), value)
        else:
            super().__setattr__(name, value)

    def _parameter_items(self) -> list[tuple[str, Parameter | None]]:
        return [(name, getattr(*self._alias_owner(name))) for name in self._aliases]

    @property
    def output_size(self) -> int:
        """Features per direction in the output (``proj_size`` for a projected LSTM)."""
        return getattr(self._cells[0], "output_size", self.hidden_size)

    def init_state(self, batch_size: int) -> State:
        """Zeros in PyTorch's layout: (D*num_layers, batch_size, .) per state tensor."""
        states = [c.init_state(batch_size, self._dtype()) for c in self._cells]
        return self._stack_states(states)

    def _dtype(self) -> np.dtype:
        # The first cell's own parameters: the layer's flat names are aliases resolved one
        # by one, too slow for a check made on every forward.
        return next(self._cells[0].parameters()).dtype

    def _stack_states(self, states: list[State]) -> State:
        if isinstance(states[0], tuple):
            return tuple(tg.stack([s[j] for s in states], axis=0) for j in range(len(states[0])))
        return tg.stack(states, axis=0)

    # ---- the sequence --------------------------------------------------------------------
    def forward(
        self, x: TensorLike, state: InitialState = None, lengths: ArrayLike | Tensor | None = None
    ) -> tuple[Tensor, State]:
        """x (T, N, I) | (N, T, I) with batch_first | unbatched (T, I); ``state`` as
        ``init_state`` (zeros when None); ``lengths`` one int per sequence (PackedSequence
        semantics: outputs past a sequence's end are zero, its final state is taken at its
        own last step, and the reverse direction starts there).

        Returns (output, final_state) with PyTorch's shapes.
        """
        dtype = self._dtype()
        x, unbatched = check_sequence_input(self._name, x, dtype, self.input_size, self.batch_first)
        steps, batch = x.shape[0], x.shape[1]
        masks = None
        if lengths is not None:
            masks = step_masks(check_lengths(self._name, lengths, steps, batch), steps, x.dtype)
        states = check_initial_state(self._name, self._cells, state, batch, unbatched, dtype)
        with gc_paused():  # the unrolled graph is acyclic: collections would only scan it
            return self._forward(x, states, masks, unbatched)

    def _forward(
        self, x: Tensor, states: list[State], masks: list[StepMask | None] | None, unbatched: bool
    ) -> tuple[Tensor, State]:
        steps = x.shape[0]
        directions = len(self._directions())
        finals, layer_in = [], x
        for k in range(self.num_layers):
            outputs = []
            for d in range(directions):
                label = f"layer{k}/{'forward' if d == 0 else 'reverse'}"
                index = k * directions + d
                cell, state_kd, runner = self._cells[index], states[index], self._runners[index]
                out, final = run_pass(
                    runner, cell, layer_in, state_kd, d == 1, masks, label, self._name
                )
                outputs.append(out)
                finals.append(final)
            layer_in = outputs[0] if directions == 1 else tg.concat(outputs, axis=2)
            if k < self.num_layers - 1 and self.dropout > 0:
                layer_in = self.layer_dropout(layer_in)
        output, final_state = layer_in, self._stack_states(finals)
        if unbatched:
            output = output.reshape(steps, output.shape[2])
            final_state = (
                tuple(s.reshape(s.shape[0], s.shape[2]) for s in final_state)
                if isinstance(final_state, tuple)
                else final_state.reshape(final_state.shape[0], final_state.shape[2])
            )
        elif self.batch_first:
            output = output.transpose(1, 0, 2)
        return output, final_state

    def extra_repr(self) -> str:
        head = "" if type(self) is not Recurrent else f"{self._name[len('Recurrent(') : -1]}, "
        text = f"{head}{self.input_size}, {self.hidden_size}"
        for key, default in (
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        defaults = {k: p.default for k, p in inspect.signature(self.cell_class).parameters.items()}
        return text + "".join(
            f", {k}={v!r}"
            for k, v in self.cell_options.items()
            if defaults.get(k, inspect.Parameter.empty) != v
        )
