"""The cell compiler refuses what it cannot prove, and never differs silently from composed.

Each test is a cell written as a user would (the way its paper writes it), run with
``fused=True`` and with ``fused=False`` on the same weights and data. Either the compiled
layer equals the composed one to 1e-12 in float64, or it runs composed with a
``FusionWarning`` that names the reason. Each case here once compiled to something wrong,
fell back blaming the user's step, or raised a traceback.
"""

import warnings

import numpy as np
import pytest
from tinygrad_lstm.compiler import NotFusible, lower
from tinygrad_lstm.layers import Dropout, Recurrent
from tinygrad_lstm.layers.unroll import FusionWarning

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, compiler

TOL = 1e-12


class TwoGates(Module):
    """A cell skeleton: x @ w + h @ u + b, split in two gate blocks of width H."""

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = rng or np.random.default_rng(0)
        self.hidden_size = hidden_size
        self.w = Parameter(rng.uniform(-0.5, 0.5, (input_size, 2 * hidden_size)).astype(dtype))
        self.u = Parameter(rng.uniform(-0.5, 0.5, (hidden_size, 2 * hidden_size)).astype(dtype))
        self.b = Parameter(rng.uniform(-0.5, 0.5, 2 * hidden_size).astype(dtype))

    def init_state(self, batch, dtype=np.float32):
        return tg.zeros(batch, self.hidden_size, dtype=dtype)

    def gates(self, x, h):
        return tg.split(x @ self.w + h @ self.u + self.b, 2, axis=1)


class JANET(TwoGates):
    """JANET as its paper writes it: h' = f h + (1 - f) tanh(g)."""

    def forward(self, x, h):
        f, g = self.gates(x, h)
        f = f.sigmoid()
        h = f * h + (1 - f) * g.tanh()
        return h, h


class NumbersEverywhere(TwoGates):
    """Python numbers on both sides of every kind of op, a one-sided clip, maximum."""

    def forward(self, x, h):
        a, g = self.gates(x, h)
        h = 2 * h * 0.5 * a.sigmoid() + a.clip(min=0.0) / 4 - 1 / (2 + g * g)
        return h, tg.maximum(h, 0.0) - 0.5 * h


class TwoWidths(TwoGates):
    """State parts (N, H) and (N, 1)."""

    def init_state(self, batch, dtype=np.float32):
        return (tg.zeros(batch, self.hidden_size, dtype=dtype), tg.zeros(batch, 1, dtype=dtype))

    def forward(self, x, state):
        h, s = state
        a, g = self.gates(x, h)
        h = a.tanh() * s.sigmoid() + g * 0.1
        return h, (h, s * 0.9 + h[:, 0:1])


class OnesColumn(TwoGates):
    """A bias column made with the batch's size, inside the step."""

    def __init__(self, input_size, hidden_size, bias=True, **kw):
        super().__init__(input_size + 1, hidden_size, bias, **kw)

    def forward(self, x, h):
        x1 = tg.concat([x, tg.ones(x.shape[0], 1, dtype=x.dtype)], axis=1)
        a, g = tg.split(x1 @ self.w + h @ self.u, 2, axis=1)
        h = a.sigmoid() * h + g.tanh() + self.b[:1]
        return h, h


class IgnoresDtype(TwoGates):
    """init_state ignores its dtype (float32 zeros in a float64 layer)."""

    def init_state(self, batch, dtype=np.float32):
        return tg.zeros(batch, self.hidden_size)

    def forward(self, x, h):
        a, g = self.gates(x, h)
        h = a.sigmoid() * h + g.tanh()
        return h, h


class Attributes(TwoGates):
    """Reads a float attribute and a mask Tensor the cell holds."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.beta = 0.5
        self.mask = tg.Tensor(np.ones((1, self.hidden_size), kw.get("dtype", np.float32)))

    def forward(self, x, h):
        a, g = self.gates(x, h)
        h = a.sigmoid() * h * self.beta + g.tanh() * self.mask
        return h, h


class WithDropout(TwoGates):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.drop = Dropout(0.25)

    def forward(self, x, h):
        a, g = self.gates(x, h)
        h = a.sigmoid() * h + self.drop(g.tanh())
        return h, h


def _layers(cls, dtype=np.float64, **kw):
    return [
        Recurrent(cls, 3, 4, dtype=dtype, rng=np.random.default_rng(1), fused=fused, **kw)
        for fused in (True, False)
    ]


def _run(layer, steps=4, batch=3, seed=5, lengths=None, x=None):
    rng = np.random.default_rng(seed)
    dtype = next(layer.parameters()).dtype
    data = rng.uniform(-1, 1, (steps, batch, 3)).astype(dtype) if x is None else x
    xt = tg.Tensor(data, requires_grad=True)
    y, final = layer(xt, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    loss = (y * y).sum() + sum((f * f).sum() for f in finals)
    loss.backward()
    out = [y.data, xt.grad, *(f.data for f in finals)]
    out += [p.grad for p in layer.parameters()]
    layer.zero_grad()
    return out


def _assert_same(got, want, tol=TOL):
    for k, (a, b) in enumerate(zip(got, want)):
        if a is None or b is None:  # a gradient composed does not give: neither may compiled
            assert a is None and b is None, f"array {k}: {a} against {b}"
            continue
        scale = max(1.0, float(np.max(np.abs(b))))
        assert np.max(np.abs(a - b)) / scale <= tol, f"array {k} differs: {np.max(np.abs(a - b))}"


@pytest.mark.parametrize("cls", [JANET, NumbersEverywhere, TwoWidths, OnesColumn, IgnoresDtype])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cells_written_as_papers_write_them_compile_and_equal_composed(cls, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionWarning)
        fused, composed = _layers(cls, dtype, bidirectional=True)
    assert set(fused._runners) == {"compiled"}
    tol = TOL if dtype == np.float64 else 1e-4
    for steps, batch in ((4, 3), (2, 5), (1, 1)):
        _assert_same(_run(fused, steps, batch), _run(composed, steps, batch), tol)


def _warned_and_same(cls, match, **kw):
    with pytest.warns(FusionWarning, match=match):
        fused, composed = _layers(cls, **kw)
    assert fused._runners == ["composed"]
    _assert_same(_run(fused), _run(composed))


@pytest.mark.parametrize(
    "mix", [lambda x: x - x[0:1], lambda x: x[::-1], lambda x: x * x.sum(axis=0, keepdims=True)]
)
def test_what_mixes_the_rows_of_the_batch_is_not_hoisted(mix):
    """x - x[0:1] once compiled as if per row, and gave other numbers than composed."""

    class Mixing(TwoGates):
        def forward(self, x, h):
            a, g = self.gates(mix(x), h)
            h = a.sigmoid() * h + g.tanh()
            return h, h

    _warned_and_same(Mixing, r"mix(es)? the rows of the batch")


READS = {
    ".data": lambda h: h.data.mean(),
    ".item()": lambda h: h.sum().item(),
    ".numpy()": lambda h: h.numpy()[0, 0],
    ".tolist()": lambda h: h.tolist()[0][0],
    "float()": lambda h: float(h.sum()),
    "bool()": lambda h: 1.0 if h.sum() else 0.0,
    "a comparison": lambda h: 1.0 if (h.sum() > 0).numpy() else 0.0,
}


@pytest.mark.parametrize("how", sorted(READS))
def test_reading_a_tensors_values_in_the_step_is_refused_naming_the_line(how):
    """A branch on a value was frozen at capture when both sample runs took one side."""
    read = READS[how]

    class Reads(TwoGates):
        def forward(self, x, h):
            a, g = self.gates(x, h)
            scale = 2.0 if read(h) > 10 else 1.0
            h = a.sigmoid() * h + g.tanh() * scale
            return h, h

    line = read.__code__.co_firstlineno  # where the value is read
    _warned_and_same(Reads, rf"reads a tensor's values with {how}.*test_soundness.py:{line}")


def test_random_draws_in_the_step_are_refused_and_leave_the_generators_alone():
    """Dropout inside a cell had its mask frozen when two sample masks happened to agree."""
    before = tg.default_rng().bit_generator.state
    with pytest.warns(FusionWarning, match=r"draws random numbers \(from tg.default_rng\(\)\)"):
        fused, _ = _layers(WithDropout)
    assert fused._runners == ["composed"]
    assert tg.default_rng().bit_generator.state == before


def test_a_sub_module_switched_to_training_mode_is_compiled_again_and_refused():
    """The cell's dropout starts in eval mode (no draws: it compiles); ``train()`` changes
    what the step does, so the next pass captures it again and runs composed."""

    class EvalDropout(WithDropout):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.drop.eval()

    fused, composed = _layers(EvalDropout)
    assert fused._runners == ["compiled"]
    _assert_same(_run(fused), _run(composed))
    fused.train()
    with pytest.warns(FusionWarning, match="draws random numbers"):
        _run(fused)
    fused.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionWarning)
        _assert_same(_run(fused), _run(composed))


def test_attributes_the_step_reads_are_guards_not_frozen_constants():
    fused, composed = _layers(Attributes)
    _assert_same(_run(fused), _run(composed))
    for layer in (fused, composed):
        layer.cell_l0.beta = 2.0
    _assert_same(_run(fused), _run(composed))
    for layer in (fused, composed):
        layer.cell_l0.mask.data[0, :2] = 0.0  # in place, untracked
    _assert_same(_run(fused), _run(composed))
    for layer in (fused, composed):
        layer.cell_l0.mask = tg.Tensor(np.full((1, 4), 3.0))
    _assert_same(_run(fused), _run(composed))


class Scaled(JANET):
    """JANET with a learnable per-unit scale on the state, a vector the backward reads."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.scale = Parameter(np.full(self.hidden_size, 0.9, kw.get("dtype", np.float32)))

    def forward(self, x, h):
        return super().forward(x, h * self.scale)


@pytest.mark.parametrize("name", ["u", "scale"])
def test_a_parameter_changed_in_place_before_backward_is_refused_as_composed_does(name):
    """A weight (u) or a vector (scale) the backward reads, changed by a tracked in-place
    write between forward and backward: the compiled op once returned wrong gradients."""
    for layer in _layers(Scaled):
        y, _ = layer(np.random.default_rng(0).standard_normal((3, 2, 3)))
        getattr(layer.cell_l0, name).data -= 0.1  # what an optimizer step does
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_a_parameter_the_backward_does_not_read_may_change_as_in_composed():
    """A bias that is only added: its value is not in any gradient, so neither layer
    refuses, and both give the same gradients."""
    grads = []
    for layer in _layers(Scaled):
        y, _ = layer(np.random.default_rng(0).standard_normal((3, 2, 3)))
        layer.cell_l0.b.data -= 0.1
        (y * y).sum().backward()
        grads.append([p.grad for p in layer.parameters()])
    _assert_same(*grads)


def test_nan_in_the_padding_reaches_no_output_and_no_gradient():
    """lengths=: a sequence's padding is never read (PyTorch's packed sequences), so NaN
    there changes nothing: each sequence's results equal running it alone."""
    fused, composed = _layers(JANET, bidirectional=True)
    x = np.random.default_rng(3).uniform(-1, 1, (5, 2, 3))
    x[3:, 1] = np.nan
    got = _run(fused, x=x, lengths=[5, 3])
    alone = _run(fused, x=np.ascontiguousarray(x[:3, 1:]))
    assert all(np.isfinite(a).all() for a in got)
    np.testing.assert_allclose(got[0][:3, 1], alone[0][:, 0], rtol=1e-12, atol=1e-14)
    assert np.all(got[0][3:, 1] == 0) and np.all(got[1][3:, 1] == 0)


def test_a_failure_of_the_compiler_is_reported_as_the_compilers_naming_the_stage(monkeypatch):
    def broken(*args):
        raise KeyError("_c1")

    monkeypatch.setattr(compiler.pipeline, "render", broken)
    monkeypatch.setattr(compiler.pipeline, "_STEPS", {})
    with pytest.warns(FusionWarning, match=r"internal compiler error in code generation.*report"):
        fused, composed = _layers(JANET)
    assert fused._runners == ["composed"]
    _assert_same(_run(fused), _run(composed))


def test_a_step_that_raises_on_sample_inputs_is_reported_as_the_steps():
    class Fails(TwoGates):
        def forward(self, x, h):
            raise ZeroDivisionError("only on Tuesdays")

    with pytest.raises(NotFusible, match="sample inputs .* raised ZeroDivisionError: only on"):
        lower(Fails(3, 4), 3, np.float32)


class FeedsItself(TwoGates):
    """A new state part that the step also uses: c' = tanh(c), h' = c' @ U (part widths
    H and 2H); once read back from memory the step never wrote."""

    def init_state(self, batch, dtype=np.float32):
        H = self.hidden_size
        return (tg.zeros(batch, H, dtype=dtype), tg.zeros(batch, 2 * H, dtype=dtype))

    def forward(self, x, state):
        h, c = state
        c = (c + x @ self.w).tanh()
        h = c[:, : self.hidden_size] @ self.u[:, : self.hidden_size]
        return h, (h, c)


class PassesOn(TwoGates):
    """Parts passed on as they were, or twice the same value, and the output a state part:
    once refused ("distinct values computed from the state")."""

    def init_state(self, batch, dtype=np.float32):
        zeros = [tg.zeros(batch, self.hidden_size, dtype=dtype) for _ in range(4)]
        return tuple(zeros)

    def forward(self, x, state):
        h, c, d, e = state
        a, g = self.gates(x, h)
        h = a.sigmoid() * c + g.tanh()
        return d, (h, c, h, h)


class WidthOneSliceInAConcat(TwoGates):
    """A width-1 slice of the state joined to x, then a matmul: once a Numba typing error."""

    def __init__(self, input_size, hidden_size, bias=True, **kw):
        super().__init__(input_size, hidden_size, bias, **kw)
        self.v = Parameter(np.full((hidden_size, input_size + 1), 0.3, kw.get("dtype")))

    def init_state(self, batch, dtype=np.float32):
        H = self.hidden_size
        return (tg.zeros(batch, H, dtype=dtype), tg.zeros(batch, 1, dtype=dtype))

    def forward(self, x, state):
        h, c = state
        c = h[:, 0:1]
        out = tg.concat([x, c], axis=1) @ self.v.T
        return out, ((h @ self.u[:, :4]).tanh() + out, c)


class ConcatsEverywhere(TwoGates):
    """Ops on concats of concats, three parts with starts that are no width of the step."""

    def forward(self, x, h):
        joined = tg.concat([x, tg.concat([h, h * 0.5], axis=1)], axis=1)
        mixed = (joined.tanh() - joined * 0.25).sigmoid()
        return tg.split(mixed[:, 3:], 2, axis=1)[1] @ self.u[:, :4] + h, h.tanh()


@pytest.mark.parametrize("cls", [FeedsItself, PassesOn, WidthOneSliceInAConcat, ConcatsEverywhere])
def test_steps_the_random_cells_found_compile_and_equal_composed(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionWarning)
        fused, composed = _layers(cls, bidirectional=True)
    assert set(fused._runners) == {"compiled"}
    for lengths in (None, [4, 2, 1]):
        _assert_same(_run(fused, lengths=lengths), _run(composed, lengths=lengths))


class IgnoresItsInput(TwoGates):
    """x is not read, so layer 0's output reaches no loss in a two-layer stack."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.v = Parameter(np.full((self.hidden_size, self.hidden_size), 0.3, kw.get("dtype")))

    def forward(self, x, h):
        h = (h @ self.u[:, : self.hidden_size]).tanh()
        return h @ self.v, h


def test_a_parameter_no_loss_reaches_gets_no_gradient_as_in_composed():
    """composed gives None (an optimizer skips the parameter), compiled gave zeros."""
    grads = []
    for layer in _layers(IgnoresItsInput, num_layers=2):
        y, _ = layer(np.random.default_rng(0).standard_normal((3, 2, 3)))
        (y * y).sum().backward()
        grads.append({n: p.grad for n, p in layer.named_parameters()})
    assert grads[1]["v_l0"] is None and grads[0]["v_l0"] is None
    assert {n for n, g in grads[0].items() if g is None} == {
        n for n, g in grads[1].items() if g is None
    }


class Float32StateFirst(IgnoresDtype):
    """A float32 initial state (init_state ignores its dtype) read elementwise before any
    float64 operand: composed computes that part of the first step in float32."""

    def forward(self, x, h):
        a = (0.1 + 6.0 * h.sigmoid()).log()
        return a @ self.u[:, : self.hidden_size], a @ self.u[:, : self.hidden_size]


def test_a_first_step_composed_computes_in_another_dtype_runs_composed_and_says_why():
    """Found by the random-cell property (dev profile): the compiled op computed it all in
    float64 and differed by 1e-8. IgnoresDtype above still compiles: there every use of the
    state meets a float64 weight first, as composed promotes it."""
    fused, composed = _layers(Float32StateFirst)
    with pytest.warns(FusionWarning, match="composed computes v\\d+ of the first step in float32"):
        got = _run(fused)
    _assert_same(got, _run(composed))


class UnreadPart(TwoGates):
    """A state part the step never reads (its new value comes from h alone)."""

    def init_state(self, batch, dtype=np.float32):
        return (tg.zeros(batch, self.hidden_size, dtype=dtype), tg.zeros(batch, 1, dtype=dtype))

    def forward(self, x, state):
        h, _ = state
        a, g = self.gates(x, h)
        h = a.sigmoid() * h + g.tanh()
        return h, (h, h[:, :1] * 2.0)


def test_an_unread_state_parts_initial_value_gets_no_gradient_even_when_held():
    """With lengths, the reverse direction holds a short sequence's initial state until its
    last step, which then replaces the part without reading it: composed's graph links the
    initial value to nothing the loss reads, so its gradient is None, and so it is compiled
    (the part the step reads gets its gradient, the same)."""
    fused, composed = _layers(UnreadPart, bidirectional=True)
    x = np.random.default_rng(4).uniform(-1, 1, (4, 2, 3))
    results = []
    for layer in (fused, composed):
        h0 = tuple(tg.Tensor(np.full(s, 0.5), requires_grad=True) for s in ((2, 2, 4), (2, 2, 1)))
        y, (h, c) = layer(tg.Tensor(x), h0, lengths=[4, 1])
        ((y * y).sum() + (c * 3.0).sum()).backward()
        results.append([h0[0].grad, h0[1].grad])
    _assert_same(*results)
    assert results[0][1] is None and results[0][0] is not None
