"""A broken plugin is contained: a warning names it, its half-made registrations are undone,
and the built-in ops and the other plugins keep working.

Broken plugins are simulated with fake entry points (``registry._entry_points`` patched), so
no broken package is ever installed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import Function, PluginWarning, register_cell, register_op, registry


@dataclass
class FakeDist:
    name: str


@dataclass
class FakeEntryPoint:
    """Quacks like ``importlib.metadata.EntryPoint``; ``load`` runs ``body``, not an import."""

    name: str
    value: str
    dist: FakeDist
    body: Callable[[], None]

    def load(self):
        self.body()


@pytest.fixture
def fake_plugins(monkeypatch, scratch_registry):
    """Install fake entry points for one ``load_plugins()`` call; restore the registry after."""

    def install(*bodies: tuple[str, Callable[[], None]]) -> list[FakeEntryPoint]:
        eps = [
            FakeEntryPoint(name, f"fake_{name}_module", FakeDist(f"fake-dist-{name}"), body)
            for name, body in bodies
        ]
        monkeypatch.setattr(registry, "_entry_points", lambda: eps)
        return eps

    return install


def load_expecting(match: str) -> list[str]:
    with pytest.warns(PluginWarning, match=match) as record:
        loaded = tg.load_plugins()
    assert record, "no PluginWarning was issued"
    return loaded


def builtins_still_work() -> None:
    x = tg.Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    tg.sigmoid(x).sum().backward()
    y = 1.0 / (1.0 + np.exp(-x.data))
    np.testing.assert_allclose(x.grad, y * (1 - y), rtol=1e-12)
    assert tg.op("sigmoid").__module__ == "tinygrad_lstm.ops.elementwise"


class Softsignish(Function):
    """y = x / (1 + |x|)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + np.abs(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + np.abs(x)) ** 2


def test_import_error_names_distribution_and_entry_point(fake_plugins):
    def body():
        raise ImportError("No module named 'fake_missing_dependency'")

    fake_plugins(("broken", body))
    loaded = load_expecting(
        r"fake-dist-broken:broken \(entry point broken = fake_broken_module\)"
        r".*ImportError.*fake_missing_dependency"
    )
    assert loaded == []
    builtins_still_work()


def test_registering_a_taken_name_is_refused_and_the_builtin_kept(fake_plugins):
    def body():
        register_op("sigmoid", arity=1)(Softsignish)

    fake_plugins(("squatter", body))
    load_expecting(
        r"fake-dist-squatter:squatter.*'sigmoid' is already registered by "
        r"tinygrad-lstm:ops"
    )
    builtins_still_work()


def test_half_registered_plugin_is_rolled_back(fake_plugins):
    class NoShapes(Softsignish):
        """A reduction registered without shapes=: tests could not draw inputs for it."""

    def body():
        register_op("fake_softsign", arity=1)(Softsignish)
        register_op("fake_reduce", arity=1, kind="reduction")(NoShapes)

    fake_plugins(("half", body))
    load_expecting(r"fake-dist-half:half.*'fake_reduce'.*needs shapes=")
    names = [i.name for i in tg.list_ops()]
    assert "fake_softsign" not in names, "the op registered before the failure was kept"
    assert "fake_reduce" not in names
    builtins_still_work()


@pytest.mark.parametrize(
    "register, match",
    [
        (lambda: register_op("fake_noarity")(Softsignish), r"missing.*'arity'"),
        (
            lambda: register_op("fake_kind", arity=1, kind="bogus")(Softsignish),
            r"kind must be one of",
        ),
        (
            lambda: register_op("fake_nobackward", arity=1)(
                type("NoBackward", (Function,), {"forward": lambda ctx, x: x})
            ),
            r"'fake_nobackward'.*defines no backward",
        ),
        (
            lambda: register_cell("fake_cell")(
                type("NoInitState", (), {"forward": lambda s, x, h: x})
            ),
            r"'fake_cell'.*has no init_state",
        ),
    ],
    ids=["no-arity", "bad-kind", "no-backward", "cell-without-init_state"],
)
def test_missing_or_bad_metadata_is_a_contained_failure(fake_plugins, register, match):
    fake_plugins(("meta", register))
    load_expecting(r"fake-dist-meta:meta \(entry point meta = fake_meta_module\).*" + match)
    assert "fake_cell" not in [c.name for c in tg.list_cells()]
    builtins_still_work()


def test_good_plugin_after_a_broken_one_still_loads(fake_plugins):
    def broken():
        raise RuntimeError("boom")

    def good():
        register_op("fake_good_softsign", arity=1)(Softsignish)

    fake_plugins(("a_broken", broken), ("b_good", good))
    loaded = load_expecting(r"fake-dist-a_broken:a_broken.*RuntimeError: boom")
    assert loaded == ["fake-dist-b_good:b_good"]
    info = tg.op_info("fake_good_softsign")
    assert info.origin.startswith("fake-dist-b_good:b_good"), info.origin
    y = tg.op("fake_good_softsign").apply(tg.Tensor(np.array([3.0])))
    assert math.isclose(float(y.data[0]), 0.75)


def test_replacing_an_op_on_purpose_is_announced(fake_plugins):
    def body():
        register_op("tanh", arity=1, replace=True)(Softsignish)

    fake_plugins(("replacer", body))
    loaded = load_expecting(
        r"fake-dist-replacer:replacer replaces op 'tanh' registered by "
        r"tinygrad-lstm:ops"
    )
    assert loaded == ["fake-dist-replacer:replacer"]


def test_a_clean_plugin_gives_no_warning(fake_plugins):
    def body():
        register_op("fake_clean", arity=1)(Softsignish)

    fake_plugins(("clean", body))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        assert tg.load_plugins() == ["fake-dist-clean:clean"]


@pytest.mark.parametrize(
    "exc",
    [SystemExit(2), GeneratorExit(), BaseException("odd")],
    ids=["SystemExit", "GeneratorExit", "BaseException"],
)
def test_a_plugin_exiting_at_import_is_contained(fake_plugins, exc):
    """argparse at a plugin's module level raises SystemExit; the library must survive it."""

    def exiting():
        register_op("fake_exiting", arity=1)(Softsignish)
        raise exc

    def good():
        register_op("fake_after_exit", arity=1)(Softsignish)

    fake_plugins(("a_exiting", exiting), ("b_good", good))
    loaded = load_expecting(rf"fake-dist-a_exiting:a_exiting.*{type(exc).__name__}")
    assert loaded == ["fake-dist-b_good:b_good"]
    assert "fake_exiting" not in [i.name for i in tg.list_ops()]
    builtins_still_work()


def test_ctrl_c_during_a_plugin_import_still_interrupts(fake_plugins):
    def interrupted():
        raise KeyboardInterrupt

    fake_plugins(("ctrl_c", interrupted))
    with pytest.raises(KeyboardInterrupt):
        tg.load_plugins()
