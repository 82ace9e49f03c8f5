"""tinygrad_lstm.tooling.viz: the DOT graph of an unrolled layer and per-step gradient norms."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from dot_parser import DotSyntaxError, parse_dot
from tinygrad_lstm.layers import GRU, LSTM, Recurrent
from tinygrad_lstm.tooling import viz
from tinygrad_lstm.tooling.viz import step_gradient_norms, to_dot

import tinygrad_lstm as tg
from tinygrad_lstm import Module, Parameter, Tensor

STEP = re.compile(r"^layer(\d+)/(forward|reverse)/t(\d+)$")


def step_clusters(graph) -> dict[str, list[str]]:
    return {
        s.attrs["label"]: s.nodes
        for s in graph.root.subgraphs
        if s.name.startswith("cluster_") and STEP.match(s.attrs.get("label", ""))
    }


def test_parser_rejects_what_is_not_dot():
    for bad in [
        "digraph g { a -> ; }",
        "digraph g { a [label=x; }",
        "digraph { subgraph { a }",
        "graph g { a }",
        "digraph g { a } }",
    ]:
        with pytest.raises(DotSyntaxError):
            parse_dot(bad)


def test_expression_graph_has_one_box_per_op_and_one_edge_per_input():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((3, 4)), requires_grad=True)
    y = ((a @ b).tanh() * 2.0).sum()
    graph = parse_dot(to_dot(y))
    labels = sorted(attrs["label"] for attrs in graph.nodes.values())
    assert labels == sorted(
        [
            "leaf\\n(2, 3)",
            "leaf\\n(3, 4)",
            "const\\n()",
            "matmul\\n(2, 4)",
            "tanh\\n(2, 4)",
            "mul\\n(2, 4)",
            "sum\\n()",
        ]
    ), labels
    by_label = {
        attrs["label"].split("\\n")[0] + attrs["label"].split("\\n")[1]: node
        for node, attrs in graph.nodes.items()
    }
    edges = {(s, d) for s, d, _ in graph.edges}
    assert (by_label["matmul(2, 4)"], by_label["tanh(2, 4)"]) in edges
    assert (by_label["const()"], by_label["mul(2, 4)"]) in edges
    assert len(graph.edges) == 2 + 1 + 2 + 1, graph.edges
    assert graph.nodes[by_label["sum()"]].get("style") == "bold", "the output is not marked"
    assert not graph.root.subgraphs, "no scope was used, so there must be no cluster"


def test_multi_output_edges_name_the_output():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    first, _, third = tg.op("unstack").apply(x, axis=0)
    graph = parse_dot(to_dot(first * third))
    assert sorted(attrs.get("label", "") for _, _, attrs in graph.edges) == ["", "[0]", "[2]"]
    unstack = [a["label"] for a in graph.nodes.values() if a["label"].startswith("unstack")]
    assert unstack == ["unstack\\n(2,) (2,)"], "only the outputs used are known and shown"


@pytest.mark.parametrize("seq_len", [1, 3, 12])
def test_lstm_graph_has_one_cluster_per_time_step(seq_len):
    lstm = LSTM(2, 3, rng=np.random.default_rng(0))
    out, (_h, c) = lstm(Tensor(np.ones((seq_len, 1, 2), np.float32)))
    graph = parse_dot(to_dot(out.sum() + c.sum()))
    clusters = step_clusters(graph)
    assert sorted(clusters, key=lambda s: int(STEP.match(s).group(3))) == [
        f"layer0/forward/t{t}" for t in range(seq_len)
    ]
    for label, nodes in clusters.items():
        ops = [graph.nodes[n]["label"].split("\\n")[0] for n in nodes]
        # The LSTM step: 4 gate nonlinearities + tanh(c'), f*c + i*g and o*tanh(c').
        assert ops.count("sigmoid") == 3 and ops.count("tanh") == 2 and "split" in ops, (label, ops)
    declared = set(graph.nodes)
    assert all(s in declared and d in declared for s, d, _ in graph.edges)


def test_clusters_separate_layers_and_directions():
    gru = GRU(2, 3, num_layers=2, bidirectional=True, rng=np.random.default_rng(0))
    out, _ = gru(Tensor(np.ones((4, 2, 2), np.float32)))
    clusters = step_clusters(parse_dot(to_dot(out.sum())))
    expected = {
        f"layer{k}/{d}/t{t}" for k in range(2) for d in ("forward", "reverse") for t in range(4)
    }
    assert set(clusters) == expected
    assert all(clusters.values()), "an empty cluster"


def test_released_graph_is_refused_with_a_hint():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        to_dot(y)


def test_leaf_alone_and_quoting():
    graph = parse_dot(to_dot(Tensor(np.ones(2)), name='my "graph"'))
    assert graph.name == 'my "graph"'
    assert list(graph.nodes.values()) == [{"shape": "ellipse", "label": "const\\n(2,)"}]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_graphviz_accepts_the_text(tmp_path):
    lstm = LSTM(2, 3, rng=np.random.default_rng(0))
    out, _ = lstm(Tensor(np.ones((2, 1, 2), np.float32)))
    src = tmp_path / "g.dot"
    src.write_text(to_dot(out.sum()))
    subprocess.run(["dot", "-Tsvg", str(src), "-o", str(tmp_path / "g.svg")], check=True)


# ---- per-step gradient norms -------------------------------------------------------------
class ScaleCell(Module):
    """h' = w * h + x: dL/dh_t = w ** (T-1-t) * dL/dh_{T-1}, an oracle for the hooks."""

    state_names = ("h",)

    def __init__(self, w: float, size: int):
        super().__init__()
        self.w = Parameter(np.full(size, w))

    def init_state(self, batch: int, dtype=np.float64) -> Tensor:
        return tg.zeros(batch, self.w.shape[0], dtype=dtype)

    def forward(self, x_t, h):
        h = h * self.w + x_t
        return h, h


def test_norms_follow_the_closed_form_of_a_linear_recurrence():
    steps, w = 9, 0.5
    x = np.random.default_rng(1).standard_normal((steps, 3, 4))
    result = step_gradient_norms(ScaleCell(w, 4), x)
    h_last = sum(w ** (steps - 1 - t) * x[t] for t in range(steps))
    g_last = np.linalg.norm(2 * h_last / h_last.size)  # L = mean(h_T ** 2)
    expected = g_last * w ** np.arange(steps - 1, -1, -1)
    np.testing.assert_allclose(result.norms["h"], expected, rtol=1e-12)
    assert result.ratio() == pytest.approx(w ** (steps - 1), rel=1e-12)
    assert result.loss == pytest.approx(np.mean(h_last**2), rel=1e-12)


def test_loss_on_chosen_steps_adds_direct_gradients_and_nothing_after_the_last():
    w, x = 0.5, np.ones((6, 1, 1))
    result = step_gradient_norms(
        ScaleCell(w, 1), x, loss_fn=lambda outs: outs[0].sum() + outs[1].sum(), loss_steps=[1, 3]
    )
    # L = h_1 + h_3: dL/dh_3 = 1, dL/dh_2 = w, dL/dh_1 = 1 + w^2, dL/dh_0 = w (1 + w^2).
    np.testing.assert_allclose(result.norms["h"], [w * (1 + w * w), 1 + w * w, w, 1, 0, 0])
    assert result.loss_steps == (1, 3)


def test_lstm_norms_match_torch_retain_grad():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    layer = LSTM(2, 5, dtype=np.float64, rng=rng)
    x = rng.standard_normal((7, 3, 2))
    result = step_gradient_norms(layer, x)
    ref = torch.nn.LSTMCell(2, 5).double()
    ref.load_state_dict(
        {k.removesuffix("_l0"): torch.from_numpy(v) for k, v in layer.state_dict().items()}
    )
    h = c = torch.zeros(3, 5, dtype=torch.float64)
    states = []
    for t in range(7):
        h, c = ref(torch.from_numpy(x[t]), (h, c))
        h.retain_grad()
        c.retain_grad()
        states.append((h, c))
    (h * h).mean().backward()
    np.testing.assert_allclose(
        result.norms["h"], [s[0].grad.norm().item() for s in states], rtol=1e-10
    )
    np.testing.assert_allclose(
        result.norms["c"], [s[1].grad.norm().item() for s in states], rtol=1e-10
    )
    assert all(p.grad is None for p in layer.parameters()), "parameter grads were changed"


def test_multi_layer_models_are_refused():
    with pytest.raises(ValueError, match="num_layers=1"):
        step_gradient_norms(Recurrent("rnn", 2, 3, num_layers=2), np.ones((2, 1, 2)))


# ---- per-step parameter contributions ----------------------------------------------------
def test_step_contributions_follow_the_closed_form_of_a_linear_recurrence():
    # h_t = w * h_{t-1} + x_t, L = mean(h_T ** 2): the gradient reaching h_t is
    # g_t = w ** (T-1-t) * g_{T-1}, and step t's use of w contributes C_t = sum_n g_t h_{t-1}.
    steps, w = 6, 0.7
    x = np.random.default_rng(2).standard_normal((steps, 3, 2))
    h = [np.zeros((3, 2))]
    for t in range(steps):
        h.append(w * h[-1] + x[t])
    g_last = 2 * h[-1] / h[-1].size
    expected = np.array(
        [np.sum(w ** (steps - 1 - t) * g_last * h[t], axis=0) for t in range(steps)]
    )
    got = viz.step_param_grads(ScaleCell(w, 2), x, "w")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def make_layer(cell: str, fused: bool = False):
    return Recurrent(cell, 3, 4, dtype=np.float64, rng=np.random.default_rng(5), fused=fused)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "scale"])
def test_step_contributions_sum_to_the_layers_grad(cell):
    """The per-step pieces, taken from a step-by-step run of the cell, add up to what the
    composed layer's own backward (input projection for all steps in one matmul) gives."""
    x = np.random.default_rng(3).standard_normal((7, 2, 3))
    if cell == "scale":
        model, names = ScaleCell(0.9, 3), ["w"]
        out = model.init_state(2)
        for t in range(7):
            out, _ = model(Tensor(x[t]), out)
        (out * out).mean().backward()
    else:
        model = make_layer(cell)
        names = [n for n, _ in model.cell_l0.named_parameters()]
        out, _ = model(Tensor(x))
        (out[6] * out[6]).mean().backward()
    params = dict((model if cell == "scale" else model.cell_l0).named_parameters())
    for name in names:
        contributions = viz.step_param_grads(model, x, name)
        assert contributions.shape == (7, *params[name].shape)
        np.testing.assert_allclose(
            contributions.sum(axis=0),
            params[name].grad,
            rtol=1e-12,
            atol=1e-15,
            err_msg=f"{cell}: {name}",
        )
        per_step = np.abs(contributions).reshape(7, -1).sum(axis=1)
        # Only weight_hh's first use is free: it multiplies h_{-1} = 0.
        assert np.count_nonzero(per_step) >= 6, f"{cell}: steps contributed nothing to {name}"


def test_step_contributions_leave_grads_alone_and_take_layer_names():
    layer = make_layer("lstm")
    x = np.random.default_rng(4).standard_normal((3, 1, 3))
    by_cell = viz.step_param_grads(layer, x, "weight_hh")
    by_layer = viz.step_param_grads(layer, x, "weight_hh_l0")
    np.testing.assert_array_equal(by_cell, by_layer)
    assert all(p.grad is None for p in layer.parameters()), "parameter grads were changed"


def test_loss_on_chosen_steps_leaves_later_steps_out():
    x = np.ones((5, 1, 3))
    got = viz.step_param_grads(make_layer("gru"), x, "weight_ih", loss_steps=[1, 2])
    assert np.all(got[3:] == 0) and np.all(np.abs(got[:3]) > 0)


def test_fused_layer_and_unknown_names_are_refused():
    x = np.ones((2, 1, 3))
    with pytest.raises(ValueError, match="fused=True.*build it with fused=False"):
        viz.step_param_grads(make_layer("lstm", fused=True), x, "weight_hh")
    with pytest.raises(ValueError, match=r"no parameter 'weight_xx' in LSTMCell; it has \["):
        viz.step_param_grads(make_layer("lstm"), x, "weight_xx")


class CachingCell(ScaleCell):
    """Keeps its own reference to its weight, made at construction: the per-step split
    cannot see those uses, and must say so rather than return pieces that do not add up."""

    def __init__(self, w: float, size: int):
        super().__init__(w, size)
        object.__setattr__(self, "kept", self.w)

    def forward(self, x_t, h):
        h = h * self.kept + x_t
        return h, h


def test_a_weight_reused_behind_the_cells_back_is_refused():
    with pytest.raises(RuntimeError, match="'w' reached the graph other than as the cell's"):
        viz.step_param_grads(CachingCell(0.5, 2), np.ones((3, 1, 2)), "w")


@pytest.mark.parametrize("view", ["step_param_grads", "step_gradient_norms"])
def test_a_batch_first_layer_is_stepped_along_time_not_the_batch(view):
    """x is (N, T, I) for a batch_first layer: the per-step contributions still sum to the
    layer's own .grad, and both views equal those of the same layer fed (T, N, I)."""
    x = np.random.default_rng(6).standard_normal((2, 5, 3))  # N=2, T=5
    layer = Recurrent(
        "lstm", 3, 4, dtype=np.float64, rng=np.random.default_rng(5), batch_first=True
    )
    time_major = make_layer("lstm")
    time_major.load_state_dict(layer.state_dict())
    out, _ = layer(Tensor(x))
    (out[:, 4] * out[:, 4]).mean().backward()
    if view == "step_param_grads":
        got = viz.step_param_grads(layer, x, "weight_hh")
        assert got.shape == (5, 16, 4)
        np.testing.assert_allclose(
            got.sum(axis=0), layer.cell_l0.weight_hh.grad, rtol=1e-12, atol=1e-15
        )
        want = viz.step_param_grads(time_major, x.transpose(1, 0, 2), "weight_hh")
        np.testing.assert_array_equal(got, want)
    else:
        got = step_gradient_norms(layer, x).norms["h"]
        want = step_gradient_norms(time_major, x.transpose(1, 0, 2)).norms["h"]
        assert got.shape == (5,)
        np.testing.assert_array_equal(got, want)
