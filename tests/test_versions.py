"""versions.py: an array an op saved, changed in place before backward, is refused as in
PyTorch ("modified by an inplace operation"), never silently used; writes that change nothing
an op saved still backpropagate."""

import numpy as np
import pytest
from tinygrad_lstm.layers import LSTM, Linear

import tinygrad_lstm as tg
from tinygrad_lstm import Parameter, Tensor
from tinygrad_lstm.optim import SGD, Adagrad, Adam

INPLACE = "modified by an inplace operation"


def leaf(*shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return Parameter(rng.standard_normal(shape).astype(dtype))


# ---- what PyTorch refuses, refused here with the op, the array and the versions named -------
@pytest.mark.parametrize("optimizer", [SGD, Adam, Adagrad])
def test_optimizer_step_before_backward_is_refused(optimizer):
    """PyTorch is the reference: its step bumps the parameter's version and backward raises."""
    x = leaf(3)
    y = x * x
    x.grad = np.ones(3)
    optimizer([x], lr=0.1).step()
    with pytest.raises(RuntimeError, match=INPLACE) as info:
        y.sum().backward()
    message = str(info.value)
    for part in (
        "backward of mul",
        "shape (3,)",
        "float64",
        "input 0 of the op",
        "at version 1",
        "mul saw version 0",
    ):
        assert part in message, message
    assert np.array_equal(x.grad, np.ones(3)), "a refused backward must not touch .grad"
    assert y._node.saved != () and y._node.inputs is not None, "nor release the graph"


def test_torch_refuses_the_same_case():
    """The behaviour copied: torch raises for y = x * x; optimizer step; y.backward()."""
    torch = pytest.importorskip("torch")
    x = torch.nn.Parameter(torch.randn(3, dtype=torch.float64))
    y = x * x
    x.grad = torch.ones(3, dtype=torch.float64)
    torch.optim.SGD([x], lr=0.1).step()
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()


def test_augmented_assignment_to_data_is_an_inplace_write():
    x = leaf(2, 3)
    y = tg.sigmoid(x) * x
    x.data -= 1.0
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()
    assert x._version == 1


def test_write_to_an_op_output_that_op_saved_is_refused():
    x = leaf(4)
    y = tg.tanh(x)  # tanh saves its output
    z = y + 2.0  # add saves nothing
    y.data *= 3.0
    with pytest.raises(RuntimeError, match=r"backward of tanh.*at version 1, tanh saw version 0"):
        z.sum().backward()


def test_a_view_and_a_detached_alias_share_the_version_of_their_array():
    """A matmul with W.T saves a view of W; a write into W is a write into the view."""
    w = leaf(4, 3)
    x = Tensor(np.ones((2, 3)))
    y = x @ w.T
    alias = w.detach()
    alias.data += 1.0
    with pytest.raises(RuntimeError, match=r"backward of matmul.*shape \(3, 4\)"):
        y.sum().backward()
    assert w._version == alias._version == 1


def test_second_backward_after_a_step_is_refused():
    x = leaf(3)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    SGD([x], lr=0.1).step()
    with pytest.raises(RuntimeError, match=INPLACE):
        loss.backward()


@pytest.mark.parametrize("fused", [False, True])
def test_lstm_step_before_backward_is_refused_composed_and_fused(fused):
    lstm = LSTM(3, 4, fused=fused, dtype=np.float64, rng=np.random.default_rng(0))
    out, _ = lstm(Tensor(np.random.default_rng(1).standard_normal((5, 2, 3))))
    for p in lstm.parameters():
        p.grad = np.ones_like(p.data)
    Adam(lstm.parameters(), lr=0.01).step()
    with pytest.raises(RuntimeError, match=INPLACE):
        out.sum().backward()


def test_load_state_dict_before_backward_is_refused():
    """As torch, whose load_state_dict copies into the parameters in place."""
    layer = Linear(3, 2, dtype=np.float64, rng=np.random.default_rng(0))
    weight = layer.weight.data
    y = layer(Tensor(np.ones((1, 3))))
    layer.load_state_dict({k: v + 1.0 for k, v in layer.state_dict().items()})
    assert layer.weight.data is weight, "load_state_dict copies into the parameter's array"
    with pytest.raises(RuntimeError, match=INPLACE):
        y.sum().backward()


# ---- writes that leave every saved array as it was: backward runs and is right -------------
def test_a_write_to_an_input_the_op_did_not_save_is_fine():
    """add saves nothing: torch too backpropagates after the step."""
    x = leaf(3)
    y = x + 1.0
    x.grad = np.ones(3)
    SGD([x], lr=0.1).step()
    x.grad = None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_assigning_a_new_array_to_data_leaves_the_saved_one_alone():
    x = leaf(3)
    before = x.data.copy()
    y = x * x
    x.data = x.data + 1.0  # a new array: what mul saved is untouched
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * before, rtol=1e-15)


def test_plus_equals_on_a_tensor_makes_a_new_tensor():
    """``t += 1`` rebinds the name (Tensor has no in-place operators), so nothing is written."""
    x = leaf(3)
    original, values = x, x.data.copy()
    y = x * x
    x += 1.0
    assert x is not original and original._version == 0
    y.sum().backward()
    np.testing.assert_allclose(original.grad, 2 * values, rtol=1e-15)


def test_the_usual_loop_forward_backward_step_runs_every_step():
    x = leaf(3)
    opt = SGD([x], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (x * x).sum().backward()
        opt.step()
    assert x._version == 3


def test_writes_into_the_array_itself_are_not_seen():
    """The documented limit: NumPy tells no one about ``x.data[:] += 1``."""
    x = leaf(3)
    x.data[:] += 1.0
    assert x._version == 0
