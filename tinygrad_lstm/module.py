"""Module and Parameter: the containers that layers are built from.

A ``Module`` keeps the ``Parameter``\\ s and sub-``Module``\\ s assigned to its attributes in
assignment order, so ``named_parameters()`` and ``state_dict()`` list them in a stable,
predictable order with dotted names (``"head.weight"``). ``load_state_dict`` checks a whole
dictionary before it touches a single parameter: a bad checkpoint leaves the module as it was.

This is engine code: it knows no op and no layer. Layers draw their initial weights from
``default_rng()`` unless given a generator; ``manual_seed`` makes that reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from .tensor import Tensor, TensorLike

__all__ = [
    "IncompatibleKeys",
    "Module",
    "Parameter",
    "StateDictError",
    "default_rng",
    "manual_seed",
]

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the library-wide generator that layers use when their ``rng`` is None."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_rng() -> np.random.Generator:
    """The library-wide ``np.random.Generator`` (weight init, dropout masks)."""
    return _rng


class Parameter(Tensor):
    """A leaf Tensor that a Module owns and trains: ``requires_grad=True``, float dtype.

    ``Parameter(np.zeros((3, 4)))`` keeps the array's dtype (float32 or float64); lists become
    float32. The data is replaced in place by ``load_state_dict`` and ``Module.to``, so an
    optimizer holding the Parameter keeps working.
    """

    __slots__ = ()

    def __init__(
        self, data: TensorLike, requires_grad: bool = True, dtype: DTypeLike | None = None
    ) -> None:
        super().__init__(data, requires_grad=False, dtype=dtype)
        if self.data.dtype not in (np.float32, np.float64):
            raise TypeError(f"Parameter: needs a float32 or float64 array, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(KeyError):
    """A state dict does not fit the module; the message lists every problem at once."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


def _check_name(owner: Module, name: Any) -> None:
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(
            f"{type(owner).__name__}: a parameter or module name must be a non-empty "
            f"string without '.', got {name!r}"
        )


class Module:
    """Base class of every layer: registers Parameters and sub-Modules set as attributes.

    Subclasses call ``super().__init__()`` first, assign ``Parameter``\\ s and ``Module``\\ s as
    attributes, and define ``forward``; calling the module calls ``forward``.
    """

    # Set in __init__ past __setattr__ (which would try to register them).
    _parameters: dict[str, Parameter | None]
    _modules: dict[str, Module]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ---- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(
                f"{type(self).__name__}: call Module.__init__() before assigning attributes"
            )
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            self._modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} "
                    f"to parameter {name!r} (a Parameter or None is expected)"
                )
            params[name] = None
        elif name in self._modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} "
                    f"to sub-module {name!r} (a Module or None is expected)"
                )
            del self._modules[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` as ``name``; None reserves the name (e.g. ``bias=False``)."""
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"{type(self).__name__}.register_parameter({name!r}): expected a "
                f"Parameter or None, got {type(param).__name__}"
            )
        if name not in self._parameters and hasattr(self, name):
            raise KeyError(f"{type(self).__name__}: attribute {name!r} exists already")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    # ---- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each direct sub-module, in assignment order."""
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        """Each direct sub-module, in assignment order."""
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module ("" names it) and all below, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            below = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()]
            stack.extend(reversed(below))

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, each once, depth first."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) for every parameter, each object once (first name wins).

        Order: a module's own parameters in assignment order, then its sub-modules' in turn.
        """
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for name, param in module._parameter_items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{mod_name}.{name}" if mod_name else name), param

    def _parameter_items(self) -> Iterable[tuple[str, Parameter | None]]:
        """(name, Parameter or None) for this module's own parameters; a module that shows
        a sub-module's parameter under a name of its own (``Recurrent``) lists it here."""
        return self._parameters.items()

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter once, in ``named_parameters()`` order."""
        for _, param in self.named_parameters():
            yield param

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's array, keyed as in ``named_parameters()``."""
        return {name: param.data.copy() for name, param in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from ``state`` into the parameters' arrays, in place (a tracked
        in-place write: a graph recorded before the load cannot be backpropagated after it).

        Every key, shape and dtype is checked first; any problem (missing or unexpected keys
        when ``strict``, a shape or dtype that differs, a value that is not a float array)
        raises one ``StateDictError`` listing all of them, and no parameter is changed.
        Returns the missing and unexpected keys (both empty when ``strict``).
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems, updates = [], []
        for key, param in own.items():
            if key not in state:
                continue
            value = state[key]
            value = value.data if isinstance(value, Tensor) else value
            try:
                array = np.asarray(value)
            except (TypeError, ValueError) as exc:  # reported together with the rest
                problems.append(f"{key}: cannot be read as an array ({type(exc).__name__})")
                continue
            if array.shape != param.shape:
                problems.append(f"{key}: expected shape {param.shape}, got {array.shape}")
            elif array.dtype != param.dtype:
                problems.append(
                    f"{key}: expected dtype {param.dtype}, got {array.dtype} "
                    f"(convert the array, or the module with .to())"
                )
            else:
                updates.append((param, array))
        if strict and unexpected:
            problems.insert(0, f"unexpected keys: {', '.join(map(str, unexpected))}")
        if strict and missing:
            problems.insert(0, f"missing keys: {', '.join(missing)}")
        if problems:
            raise StateDictError(
                f"{type(self).__name__}.load_state_dict: the state dict does not "
                "fit (nothing was loaded):\n  " + "\n  ".join(problems)
            )
        for param, array in updates:
            # In place, as PyTorch's copy_: holders of the array (an optimizer, a detached
            # alias) see the new values, and backward through a graph recorded before the load
            # refuses to run on them (an in-place write, see ``versions``).
            if param.data.flags.writeable:
                np.copyto(param.data, array)
                param._mark_written()
            else:
                param.data = array.copy()
        return IncompatibleKeys(missing if not strict else [], unexpected if not strict else [])

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every module below it; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """``train(False)``: dropout becomes the identity."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's accumulated gradient (``grad = None``)."""
        for param in self.parameters():
            param.grad = None

    def to(self, dtype: DTypeLike) -> Module:
        """Convert every parameter (and its gradient) to float32 or float64, in place."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(
                f"{type(self).__name__}.to: dtype must be float32 or float64, got {dtype}"
            )
        for param in self.parameters():
            param.data = param.data.astype(dtype)
            if param.grad is not None:
                param.grad = param.grad.astype(dtype)
        return self

    # ---- calling and printing -------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The text inside ``Name(...)`` in ``repr``; layers show their sizes."""
        return ""

    def __repr__(self) -> str:
        lines = [
            f"  ({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self._modules.items()
        ]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"
