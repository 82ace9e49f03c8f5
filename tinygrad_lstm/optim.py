"""Optimizers (SGD, Adam, Adagrad), with PyTorch's update rules.

An optimizer holds a list of tensors (usually ``module.parameters()``) and updates their
``.data`` in place from their ``.grad``; a parameter whose ``.grad`` is None is skipped, as in
``torch.optim``. Its ``state_dict()`` holds only NumPy arrays and plain numbers, so a
checkpoint can store it without pickle. A step is a tracked in-place write (``p.data -= ...``,
see ``versions``): a graph recorded before ``step()`` cannot be backpropagated after it, as in
PyTorch. Hyperparameters are checked (finite, in range) wherever they are set.

Gradient clipping (``clip_grad_norm_``, ``clip_grad_value_``, ``grad_norm``) is in
``grad_clipping.py``; it reads its arguments as the optimizers do (``_as_list``,
``_in_range``, here).

Engine level: works on arrays and never looks up an op.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from .tensor import Tensor

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "Optimizer"]


def _as_list(params: Iterable[Tensor] | Tensor) -> list[Tensor]:
    """The tensors to work on: one tensor, or an iterable of them."""
    return [params] if isinstance(params, Tensor) else list(params)


def _in_range(
    what: str, value: Any, low: float, high: float = math.inf, closed: bool = True
) -> float:
    """``value`` as a float, or a ValueError naming ``what`` unless it is a finite real in
    [low, high] (``[low, high)`` when not ``closed``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and low <= value and (value <= high if closed else value < high)
    if not ok:
        bound = (
            f"be >= {low:g} and finite"
            if high == math.inf
            else f"lie in [{low:g}, {high:g}{']' if closed else ')'}"
        )
        raise ValueError(f"{what} must {bound}, got {value!r}")
    return value


# hyperparameter -> (low, high, high included?): the range its value must lie in.
Limits = dict[str, tuple[float, float, bool]]


class Optimizer:
    """Base class: ``step()`` applies one update, ``zero_grad()`` clears every ``.grad``.

    Subclasses set ``defaults`` (the hyperparameters, plain numbers) and implement
    ``_update(p, grad, state)`` for one parameter, where ``state`` is that parameter's dict
    of running buffers (NumPy arrays) and counters (ints).
    """

    name = "optimizer"

    limits: ClassVar[Limits] = {}

    def __init__(self, params: Iterable[Tensor], **defaults: Any):
        self.params = _as_list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is a "
                    f"{type(p).__name__}, expected a Tensor"
                )
        self.defaults = self._checked(defaults)
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def _checked(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """``defaults`` with every limited hyperparameter a float (a tuple of floats for
        ``betas``) inside its range; a ``ValueError`` naming the optimizer, the parameter
        and the value otherwise (NaN and inf included)."""
        checked = dict(defaults)
        for key, (low, high, closed) in self.limits.items():
            if key not in defaults:
                continue
            value = defaults[key]
            if isinstance(value, (tuple, list)):
                checked[key] = tuple(
                    _in_range(f"{type(self).__name__}: {key}", v, low, high, closed) for v in value
                )
            else:
                checked[key] = _in_range(f"{type(self).__name__}: {key}", value, low, high, closed)
        return checked

    def __getattr__(self, key: str) -> Any:
        defaults = self.__dict__.get("defaults", {})
        if key in defaults:
            return defaults[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    @property
    def lr(self) -> float:
        """The learning rate; assign ``opt.lr = x`` to change it (a schedule)."""
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.defaults["lr"] = self._checked({"lr": value})["lr"]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (PyTorch's ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p, p.grad.astype(p.data.dtype, copy=False), state)

    def _update(self, p: Tensor, grad: np.ndarray, state: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """``{"name", "defaults", "state"}``: hyperparameters and per-parameter buffers, as
        NumPy arrays and plain numbers only (copies)."""
        state = [
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for s in self.state
        ]
        return {"name": self.name, "defaults": dict(self.defaults), "state": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s contents; checks everything before changing anything."""
        cls = type(self).__name__
        if state_dict.get("name") != self.name:
            raise ValueError(
                f"{cls}.load_state_dict: the state is for optimizer "
                f"{state_dict.get('name')!r}, not {self.name!r}"
            )
        states = state_dict.get("state", [])
        if len(states) != len(self.params):
            raise ValueError(
                f"{cls}.load_state_dict: the state has {len(states)} parameter "
                f"entries, this optimizer holds {len(self.params)} parameters"
            )
        unknown = set(state_dict.get("defaults", {})) - set(self.defaults)
        if unknown:
            raise ValueError(f"{cls}.load_state_dict: unknown hyperparameters {sorted(unknown)}")
        defaults = self._checked({**self.defaults, **state_dict.get("defaults", {})})
        new_state = []
        for i, (p, s) in enumerate(zip(self.params, states)):
            entry = {}
            for key, value in s.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"{cls}.load_state_dict: buffer {key!r} of parameter "
                            f"{i} has shape {value.shape}, the parameter has "
                            f"{p.data.shape}"
                        )
                    value = value.astype(p.data.dtype, copy=True)
                entry[key] = value
            new_state.append(entry)
        self.defaults = defaults
        self.state = new_state


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, weight decay and Nesterov.

    ``g = grad + weight_decay * p``;  with momentum ``b = g`` on the first step, then
    ``b = momentum * b + g``;  ``g = g + momentum * b`` (Nesterov) or ``g = b``;
    ``p -= lr * g``  (``torch.optim.SGD`` with ``dampening=0``).
    """

    name = "sgd"
    limits: ClassVar[Limits] = {
        "lr": (0.0, math.inf, True),
        "momentum": (0.0, math.inf, True),
        "weight_decay": (0.0, math.inf, True),
    }

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=bool(nesterov)
        )
        if nesterov and self.defaults["momentum"] <= 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")

    def _update(self, p: Tensor, grad: np.ndarray, state: dict) -> None:
        d = self.defaults
        if d["weight_decay"]:
            grad = grad + d["weight_decay"] * p.data
        if d["momentum"]:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= d["momentum"]
                buf += grad
            grad = grad + d["momentum"] * buf if d["nesterov"] else buf
        p.data -= d["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` without amsgrad.

    ``g = grad + weight_decay * p``;  ``m = b1 m + (1 - b1) g``;  ``v = b2 v + (1 - b2) g²``;
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    name = "adam"
    limits: ClassVar[Limits] = {
        "lr": (0.0, math.inf, True),
        "betas": (0.0, 1.0, False),
        "eps": (0.0, math.inf, True),
        "weight_decay": (0.0, math.inf, True),
    }

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _update(self, p: Tensor, grad: np.ndarray, state: dict) -> None:
        d = self.defaults
        b1, b2 = d["betas"]
        if d["weight_decay"]:
            grad = grad + d["weight_decay"] * p.data
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1.0 - b1) * (grad - m)
        v *= b2
        v += (1.0 - b2) * grad * grad
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**t) + d["eps"]
        p.data -= (d["lr"] / (1.0 - b1**t)) * m / denom


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), the classic char-RNN optimizer, as ``torch.optim.Adagrad``.

    ``g = grad + weight_decay * p``;  ``s += g²``;
    ``p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``.
    """

    name = "adagrad"
    limits: ClassVar[Limits] = {
        "lr": (0.0, math.inf, True),
        "lr_decay": (0.0, math.inf, True),
        "weight_decay": (0.0, math.inf, True),
        "eps": (0.0, math.inf, True),
    }

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        eps: float = 1e-10,
    ):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)

    def _update(self, p: Tensor, grad: np.ndarray, state: dict) -> None:
        d = self.defaults
        if not state:
            state.update(step=0, sum=np.zeros_like(p.data))
        state["step"] += 1
        if d["weight_decay"]:
            grad = grad + d["weight_decay"] * p.data
        clr = d["lr"] / (1.0 + (state["step"] - 1) * d["lr_decay"])
        state["sum"] += grad * grad
        p.data -= clr * grad / (np.sqrt(state["sum"]) + d["eps"])


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad}
