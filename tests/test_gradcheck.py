"""gradcheck: passes correct gradients at tight tolerances, and reports wrong ones by input,
element and value; refuses float32."""

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Function, Tensor, register_op
from tinygrad_lstm.gradcheck import GradcheckError, gradcheck

TIGHT = {"rtol": 1e-6, "atol": 1e-9}


def leaf(*shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_correct_gradients_pass_tight_tolerances():
    a, b = leaf(3, 4), leaf(4, 2, seed=1)
    result = gradcheck(lambda a, b: tg.tanh(a @ b) * a.sum(), a, b, **TIGHT)
    assert [r.name for r in result.inputs] == ["input 0", "input 1"]
    assert all(r.checked == "every element" for r in result.inputs)
    assert result.worst_rel_error < 1e-6


def test_wrong_gradient_names_input_element_and_values(scratch_registry):
    @register_op("_test_wrong_at_one", arity=1)
    class WrongAtOne(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3.0

        @staticmethod
        def backward(ctx, g):
            out = g * 3.0
            out[1, 2] *= 1.001  # one element off by 0.1 %
            return out

    x = leaf(2, 4)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: WrongAtOne.apply(t), x, names=["weight"], **TIGHT)
    message = str(info.value)
    assert "weight" in message and "(2, 4)" in message and "element (1, 2)" in message
    assert "analytic" in message and "numeric" in message


def test_random_upstream_gradient_catches_errors_that_cancel_in_a_plain_sum(scratch_registry):
    @register_op("_test_flipped", arity=1)
    class Flipped(Function):
        """y = x, with a backward that returns g reversed: right for g = ones only."""

        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, g):
            return g[::-1].copy()

    x = leaf(5)
    (Flipped.apply(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, 1.0)  # the all-ones check is fooled
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: Flipped.apply(t), x, **TIGHT)


def test_every_output_is_checked(scratch_registry):
    @register_op(
        "_test_two_outputs", arity=1, kind="shape", shapes=lambda dims, attrs: [(dims[0],)]
    )
    class TwoOutputs(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0, x * 3.0

        @staticmethod
        def backward(ctx, g0, g1):
            g0 = 0.0 if g0 is None else g0
            g1 = 0.0 if g1 is None else g1
            return 2.0 * g0 + 4.0 * g1  # d(3x)/dx is 3, not 4

    with pytest.raises(GradcheckError):
        gradcheck(lambda t: TwoOutputs.apply(t), leaf(3), **TIGHT)
    assert gradcheck(lambda t: TwoOutputs.apply(t)[0], leaf(3), **TIGHT)


def test_non_contiguous_inputs_are_perturbed_in_place():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2)).T, requires_grad=True)
    assert not x.data.flags.c_contiguous
    assert gradcheck(lambda t: t * t, x, **TIGHT).worst_rel_error < 1e-6


def test_large_inputs_use_random_directions():
    x = leaf(20, 30)
    result = gradcheck(lambda t: tg.sigmoid(t) * t, x, max_elements=100, n_directions=8, **TIGHT)
    assert result.inputs[0].checked == "8 random directions"
    with pytest.raises(GradcheckError, match="direction"):
        gradcheck(lambda t: tg.sigmoid(t.detach()) * t, x, max_elements=100, **TIGHT)


def test_inputs_and_their_grads_are_left_as_found():
    x = leaf(2, 3)
    before, old_grad = x.data.copy(), np.full((2, 3), 7.0)
    x.grad = old_grad
    gradcheck(lambda t: tg.exp(t), x, **TIGHT)
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is old_grad and np.all(old_grad == 7.0)


def test_float32_inputs_are_refused_with_an_explanation():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float32.*float64"):
        gradcheck(lambda t: t * t, x)


def test_nothing_to_check_and_non_finite_gradients():
    with pytest.raises(ValueError, match="no input"):
        gradcheck(lambda t: t * t, Tensor(np.ones(3)))
    with pytest.raises(GradcheckError, match="non-finite"), np.errstate(all="ignore"):
        gradcheck(lambda t: tg.log(t), Tensor(np.array([0.0, 1.0]), requires_grad=True))
    with pytest.raises(GradcheckError, match="no output"):
        gradcheck(lambda t: t.detach() * 2.0, leaf(2))
