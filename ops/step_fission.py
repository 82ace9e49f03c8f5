"""Loop fission at the float32 fast sigmoid/tanh of a generated forward kernel.

One column loop that computes everything of a stage does not vectorize: it reads and
writes too many arrays for LLVM's runtime alias checks, so each fast sigmoid/tanh runs one
lane at a time. The hand-written kernels run each activation as its own pass over a row,
in place; this does the same to a generated loop. Every scalar of the loop gets a *depth*,
the number of fast activations on its path from the loads; sub-loop k computes the scalars
of depth k, and before it each activation of depth k runs as one vectorized pass over a
scratch row that sub-loop k - 1 filled with its argument:

    for j: ... w3[j] = x2                 (sub-loop 0: the argument of x3 = sigmoid(x2))
    for j: w3[j] = sigmoid_fast(w3[j])    (the pass)
    for j: x3 = w3[j] ...                 (sub-loop 1)

A scalar of an earlier sub-loop that a later one reads goes through a scratch row too;
loads are simply read again.
"""

from __future__ import annotations

__all__ = ["fissioned_loop"]


def fissioned_loop(loop, value, fast: dict, width: str, dtype: str,
                   writes: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(scratch allocations, loop lines) of ``loop`` split at its fast activations.

    ``value(local)`` is a local's right-hand side; ``fast`` maps a fast local's var to the
    function name; ``writes`` are (var, statement) stores of the loop (targets and saves),
    each placed in the sub-loop that computes its var."""
    by_var = {loc["var"]: loc for loc in loop.locals}
    depth = {}
    for loc in loop.locals:
        below = max((depth[v] for v in loc["operands"] if v in depth), default=0)
        depth[loc["var"]] = below + (loc["var"] in fast)
    deepest = max(depth.values(), default=0)
    stored: set[str] = set()
    bodies: dict[int, list[str]] = {}

    def ensure(var: str, k: int, done: set, body: list) -> None:
        if var not in by_var or var in done:
            return
        loc = by_var[var]
        done.add(var)
        if loc["kind"] == "load":
            body.append(f"{var} = {value(loc)}")
        elif var in fast and depth[var] <= k:
            body.append(f"{var} = w{var}[j]")
        elif depth[var] < k:
            stored.add(var)
            body.append(f"{var} = w{var}[j]")
        else:
            for operand in loc["operands"]:
                ensure(operand, k, done, body)
            body.append(f"{var} = {value(loc)}")

    for k in range(deepest, -1, -1):
        done: set = set()
        body: list = []
        for var, statement in writes:
            if depth.get(var, 0) == k:
                ensure(var, k, done, body)
                body.append(statement)
        for var in fast:
            if depth[var] == k + 1:
                argument = by_var[var]["operands"][0]
                ensure(argument, k, done, body)
                body.append(f"w{var}[j] = {argument}")
        for var in sorted(stored):
            if depth[var] == k and by_var[var]["kind"] == "op" and var not in fast:
                ensure(var, k, done, body)
                body.append(f"w{var}[j] = {var}")
        bodies[k] = body
    lines = []
    for k in range(deepest + 1):
        for var, function in fast.items():
            if depth[var] == k and k > 0:
                lines += [f"        for j in range({width}):",
                          f"            w{var}[j] = {function}(w{var}[j])"]
        if bodies[k]:
            lines.append(f"        for j in range({width}):")
            lines += [f"            {line}" for line in bodies[k]]
    scratch = sorted(set(fast) | {v for v in stored if v not in fast})
    allocations = [f"    w{var} = np.empty({width}, np.{dtype})" for var in scratch]
    return allocations, lines
