"""ops/rule_ufuncs.py: ufuncs generated from scalar rules compute the rule, in the dtype
asked, stably; the float32 fast variant is scalar_math's function; an edited rule never
runs old code, in this process or the next; bad requests say what was expected."""

import decimal
import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest
from tinygrad_lstm.ops import scalar_math
from tinygrad_lstm.ops.rule_function import RuleFunction
from tinygrad_lstm.ops.rule_ufuncs import rule_arguments, rule_source, rule_ufunc

import tinygrad_lstm as tg

DTYPES = [np.float32, np.float64]
LARGE = [-1e4, -1e3, -100.0, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 30.0, 100.0, 1e3, 1e4]


def close(got, want, dtype, ulps=4):
    """Equal to a few units in the last place (subnormal results: to the smallest normal)."""
    info = np.finfo(dtype)
    np.testing.assert_allclose(got, want, rtol=ulps * info.eps, atol=info.tiny)


def strict():
    """Overflow, invalid and divide raise; underflow stays ignored, as by NumPy's default:
    sigmoid(-1e4) rounding to 0 (or to a subnormal) is the correct result."""
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


def exact_sigmoid(values, dtype):
    with decimal.localcontext(decimal.Context(prec=50)):
        return np.array(
            [float(1 / (1 + (-decimal.Decimal(float(v))).exp())) for v in values], dtype
        )


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_stable_and_correct_for_large_inputs(dtype, fast):
    x = np.array(LARGE, dtype)
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = rule_ufunc("sigmoid", "y", np.dtype(dtype), fast=fast)(x)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    close(y, exact_sigmoid(LARGE, dtype), dtype)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[LARGE.index(0.0)] == 0.5


@pytest.mark.parametrize("size", [7, 4000])  # a scalar loop, and a vectorized one
@pytest.mark.parametrize(
    "dtype, fast", [(np.float32, True), (np.float32, False), (np.float64, False)]
)
def test_sigmoid_passes_nan_through_without_a_warning(dtype, fast, size):
    """sigmoid(nan) = nan, sigmoid(+-inf) = 1, 0 as in PyTorch, and quietly: a diverged
    model's evaluation runs sigmoid on NaN, where the float32 fast function's float-to-int
    step alone would raise the invalid flag (NumPy would warn)."""
    x = np.full(size, np.nan, dtype)
    x[:3] = [np.inf, -np.inf, 0.0]
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        y = rule_ufunc("sigmoid", "y", np.dtype(dtype), fast=fast)(x)
    assert list(y[:3]) == [1.0, 0.0, 0.5] and np.all(np.isnan(y[3:]))


def test_float32_fast_sigmoid_is_scalar_maths_function_exactly():
    """The fast variant is not a second statement of the math: it calls sigmoid_fast."""
    x = np.concatenate([np.linspace(-100, 100, 4001), np.geomspace(1e-10, 20, 300)]).astype(
        np.float32
    )
    y = rule_ufunc("sigmoid", "y", np.dtype(np.float32), fast=True)(x)
    compiled = numba.njit(lambda v: scalar_math.sigmoid_fast(v))
    want = np.array([compiled(v) for v in x], np.float32)
    np.testing.assert_array_equal(y, want)
    assert "return sigmoid_fast(_number)" in rule_source("sigmoid", "y", np.float32, fast=True)


def test_fast_changes_only_the_float32_forward_of_ops_that_have_a_variant():
    f64 = rule_source("sigmoid", "y", np.float64, fast=True)
    assert "sigmoid_fast" not in f64.split("def ")[-1] and "math.exp" in f64
    assert rule_source("sigmoid", "dx", np.float32, fast=True) == rule_source(
        "sigmoid", "dx", np.float32
    )
    assert rule_source("relu", "y", np.float32, fast=True) == rule_source("relu", "y", np.float32)


def test_float32_kernels_compute_in_float32_with_typed_constants():
    """A bare 1.0 would make float32 arithmetic float64: every constant is np.float32."""
    source = rule_source("sigmoid", "dx", np.float32)
    body = source.split("def ")[-1]
    assert "np.float32(1.0)" in source and "1.0" not in body and "np.float64" not in source
    assert "float32(float32, float32)" in source


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_matches_libm_formula_in_float64_and_float32(dtype):
    x = np.random.default_rng(0).uniform(-30, 30, 500).astype(dtype)
    y = rule_ufunc("sigmoid", "y", np.dtype(dtype))(x)
    close(y, exact_sigmoid(x, dtype), dtype, ulps=2 if dtype == np.float64 else 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_derivative_ufuncs_equal_their_formulas(dtype):
    rng = np.random.default_rng(0)
    g, x = rng.standard_normal(50).astype(dtype), rng.uniform(-3, 3, 50).astype(dtype)
    one = dtype(1)
    y_sig, y_tanh = rule_ufunc("sigmoid", "y", np.dtype(dtype))(x), np.tanh(x)
    np.testing.assert_array_equal(
        rule_ufunc("sigmoid", "dx", np.dtype(dtype))(g, y_sig), g * y_sig * (one - y_sig)
    )
    np.testing.assert_array_equal(
        rule_ufunc("tanh", "dx", np.dtype(dtype))(g, y_tanh), g * (one - y_tanh * y_tanh)
    )
    np.testing.assert_array_equal(
        rule_ufunc("relu", "dx", np.dtype(dtype))(g, x), np.where(x > 0, g, 0)
    )
    pos, p = np.abs(x) + dtype(0.5), dtype(-1.5)
    close(rule_ufunc("pow", "dx", np.dtype(dtype))(g, pos, p), g * p * pos ** (p - one), dtype)
    b = np.abs(x) + dtype(0.5)
    np.testing.assert_array_equal(
        rule_ufunc("div", "db", np.dtype(dtype))(g, x, b), -g * (x / b / b)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_for_large_inputs(dtype):
    x = np.array(LARGE, dtype)
    with strict():
        np.testing.assert_array_equal(rule_ufunc("relu", "y", np.dtype(dtype))(x), np.maximum(x, 0))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_ufuncs_run_the_dtype_asked_float16_in_float32(dtype):
    kernel = rule_ufunc("pow", "dx", np.dtype(dtype))
    args = [np.full(3, 0.5, dtype) for _ in range(kernel.nin)]
    want = np.float32 if dtype == np.float16 else dtype
    assert kernel(*args).dtype == want


def test_a_float64_array_is_refused_by_the_float32_kernel():
    with pytest.raises(TypeError, match="safely coerced"):
        rule_ufunc("sigmoid", "dx", np.dtype(np.float32))(np.ones(2), np.ones(2))


def test_ufuncs_broadcast_and_write_to_out():
    g, y = np.ones((3, 1)), np.full((1, 4), 0.5)
    out = np.empty((3, 4))
    result = rule_ufunc("sigmoid", "dx", np.dtype(np.float64))(g, y, out=out)
    assert result is out and np.all(out == 0.25)
    assert isinstance(rule_ufunc("sigmoid", "dx", np.dtype(np.float64)), np.ufunc)
    assert rule_ufunc("sigmoid", "dx", np.dtype(np.float64)).__name__ == "sigmoid_dx"


def test_arguments_are_g_then_inputs_then_y_then_attributes():
    assert rule_arguments("sigmoid", "dx") == ("g", "y")
    assert rule_arguments("relu", "dx") == ("g", "x")
    assert rule_arguments("pow", "dx") == ("g", "x", "exponent")
    assert rule_arguments("div", "db") == ("g", "a", "b")
    assert rule_arguments("where", "y") == ("mask", "a", "b")


def test_a_plugin_rule_with_two_inputs_and_an_attribute(scratch_registry):
    @tg.register_op(
        "lerp_test",
        arity=2,
        attrs={"w": [0.25]},
        scalar={"y": "a + w * (b - a)", "da": "g * (1 - w)", "db": "g * w"},
    )
    class Lerp(tg.Function):
        @staticmethod
        def forward(ctx, a, b, w):
            return a + w * (b - a)

        @staticmethod
        def backward(ctx, g):
            return None, None

    assert rule_arguments("lerp_test", "y") == ("a", "b", "w")
    a, b = np.array([[0.0], [1.0]]), np.array([2.0, 4.0, 8.0])
    y = rule_ufunc("lerp_test", "y", np.dtype(np.float64))(a, b, 0.25)
    np.testing.assert_array_equal(y, a + 0.25 * (b - a))
    np.testing.assert_array_equal(
        rule_ufunc("lerp_test", "da", np.dtype(np.float64))(np.ones(3), 0.25), np.full(3, 0.75)
    )


def test_re_registering_a_rule_in_the_same_process_runs_the_new_rule(scratch_registry):
    def register(expr):
        @tg.register_op("scaled_test", arity=1, replace=True, scalar={"y": expr, "dx": "g"})
        class Scaled(tg.Function):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def backward(ctx, g):
                return g

    register("x * 2")
    assert rule_ufunc("scaled_test", "y", np.dtype(np.float64))(np.ones(1))[0] == 2.0
    register("x * 3")
    assert rule_ufunc("scaled_test", "y", np.dtype(np.float64))(np.ones(1))[0] == 3.0, (
        "the ufunc of the first rule was returned after the op was registered again"
    )


_EDITED_RULE = """
import sys
import numpy as np
import tinygrad_lstm as tg
from tinygrad_lstm.ops.rule_ufuncs import rule_ufunc

@tg.register_op("edited_test", arity=1, scalar={"y": sys.argv[1], "dx": "g"})
class Edited(tg.Function):
    @staticmethod
    def forward(ctx, x):
        return x
    @staticmethod
    def backward(ctx, g):
        return g

print(rule_ufunc("edited_test", "y", np.dtype(np.float32))(np.float32(1.5)))
"""


def test_an_edited_rule_never_runs_the_old_code_in_a_new_process(tmp_path):
    """Numba's on-disk cache and the generated modules are shared between processes (same
    NUMBA_CACHE_DIR and kernel cache): a rule edited between two runs must run as edited,
    and going back to the first text must run that one again (loaded from the cache)."""
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
        TINYGRAD_LSTM_KERNEL_CACHE=str(tmp_path / "kernels"),
    )

    def run(expr: str) -> float:
        proc = subprocess.run(
            [sys.executable, "-c", _EDITED_RULE, expr],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return float(proc.stdout.split()[-1])

    assert run("x * 2") == 3.0
    assert run("x * 3") == 4.5, "the second process ran the first rule's cached code"
    assert run("x * 2") == 3.0
    assert len(list((tmp_path / "kernels").glob("*edited_test*.py"))) == 2
    assert list((tmp_path / "numba").rglob("*.nbi")), "nothing was cached on disk"


@pytest.mark.parametrize(
    "op, key, dtype, error, match",
    [
        (
            "sigmoid",
            "dz",
            np.float64,
            ValueError,
            r"'sigmoid' has no expression 'dz'.*\['y', 'dx'\]",
        ),
        ("where", "dmask", np.float64, ValueError, "has no expression 'dmask'"),
        ("matmul", "y", np.float64, ValueError, "'matmul' declares no scalar rule"),
        ("sigmoid", "y", np.int64, TypeError, "float32 or float64.*got int64"),
        ("no_such_op", "y", np.float64, tg.RegistryError, "unknown op 'no_such_op'"),
    ],
)
def test_bad_requests_say_what_was_expected(op, key, dtype, error, match):
    with pytest.raises(error, match=match):
        rule_ufunc(op, key, np.dtype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "op, key",
    [("maximum", "y"), ("maximum", "da"), ("minimum", "db"), ("clip", "y"), ("hardtanh", "dx")],
)
def test_comparing_two_values_raises_no_flag_at_nan(op, key, dtype):
    """A vectorized a < b raises the invalid flag at NaN, and NumPy would warn after the
    ufunc (these ops ran NumPy's quiet maximum and where before they ran their rules): the
    generated compares are quiet ones, with Python's values (False at NaN)."""
    info = tg.op_info(op)
    expr = {
        "y": info.scalar.forward,
        **{f"d{n}": e for n, e in zip(info.scalar.inputs, info.scalar.grads)},
    }[key]
    args = rule_arguments(op, key)
    pattern = np.array([np.nan, 1.5, -0.5, np.nan, 2.0, np.inf, -np.inf, 0.25], dtype)
    arrays = [  # 4000 values of each input, the attributes' first choices
        dtype(info.attrs[name][0]) if name in info.attrs else np.tile(np.roll(pattern, 3 * k), 500)
        for k, name in enumerate(args)
    ]
    with strict(), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = rule_ufunc(op, key, np.dtype(dtype))(*arrays)
    want = [
        eval(expr, {"__builtins__": {}}, dict(zip(args, map(float, v))))  # noqa: S307
        for v in zip(*(np.broadcast_to(a, (4000,))[:8] for a in arrays))
    ]
    np.testing.assert_array_equal(got[:8], np.array(want, dtype))


def test_a_rule_written_over_several_lines_is_quoted_on_one(scratch_registry):
    """The fast variant quotes the rule in a comment: a line break would end the comment."""

    @tg.register_op(
        "sigmoid",
        arity=1,
        replace=True,
        scalar={"y": "(1\n/ (1 + exp(-x)))", "dx": "g * y * (1 - y)"},
    )
    class Sigmoid(RuleFunction):
        """sigmoid, its rule on two lines."""

    x = np.array([-1.0, 0.0, 2.0], np.float32)
    source = rule_source("sigmoid", "y", np.float32, fast=True)
    assert "variant of (1 / (1 + exp(-x)))\n" in source
    y = rule_ufunc("sigmoid", "y", np.dtype(np.float32), fast=True)(x)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
