"""The kernels a compiled loop launches per iteration, counted from XLA's optimized HLO text.

After fusion every instruction of a computation that is not plumbing (parameters, tuples,
constants, bitcasts) is one kernel the runtime launches: a fusion, a library matrix product
(a `kCustom` fusion), a copy, a scatter, or a control flow op (`while`, `conditional`) whose
own computations launch more. On an accelerator each costs a launch; on a CPU a dispatch.
"""

import collections
import re
from typing import NamedTuple

import jax

PLUMBING = frozenset({"parameter", "get-tuple-element", "tuple", "constant", "bitcast",
                      "opt-barrier", "after-all", "add-dependency"})
"""Opcodes that launch no kernel."""

_HEADER = re.compile(r"^(ENTRY )?%?([\w.\-]+) \(.*\) -> .*\{$")
_CALLED = re.compile(r"(?:body|condition|true_computation|false_computation)=%?([\w.\-]+)"
                     r"|branch_computations=\{([^}]*)\}")


class LoopKernels(NamedTuple):
    """Kernels of a while loop's body: `body`, launched by the body itself on every iteration
    (a `conditional` or inner `while` counts once); `nested`, inside those conditionals and
    inner loops (launched on some iterations, or once per inner pass); `opcodes`, the body's
    own kernels by opcode (fusions by kind, e.g. "fusion:kLoop")."""

    body: int
    nested: int
    opcodes: dict


def _computations(hlo_text: str):
    """{name: instruction lines} of an HLO module's text, and the entry computation's name."""
    computations, entry, name = {}, None, None
    for line in hlo_text.splitlines():
        header = _HEADER.match(line)
        if header:
            name = header.group(2)
            computations[name] = []
            entry = name if header.group(1) else entry
        elif line.startswith("}"):
            name = None
        elif name is not None and " = " in line:
            computations[name].append(line)
    return computations, entry


def _opcode(line: str) -> str:
    """The opcode of an instruction line: what follows its shape (a tuple shape has spaces)."""
    rhs = line.split(" = ", 1)[1]
    if rhs.startswith("("):
        depth = 0
        for i, char in enumerate(rhs):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                rhs = rhs[i + 1:]
                break
    else:
        rhs = rhs.split(" ", 1)[1]
    opcode = rhs.strip().split("(", 1)[0]
    kind = re.search(r"kind=(k\w+)", rhs)
    return f"{opcode}:{kind.group(1)}" if opcode == "fusion" and kind else opcode


def _called(line: str) -> list[str]:
    names = []
    for single, branches in _CALLED.findall(line):
        names += [single] if single else [b.strip().lstrip("%") for b in branches.split(",")]
    return names


def _kernels(computations, name) -> tuple[int, int, collections.Counter]:
    own, nested, opcodes = 0, 0, collections.Counter()
    for line in computations[name]:
        opcode = _opcode(line)
        if opcode in PLUMBING:
            continue
        own += 1
        opcodes[opcode] += 1
        for called in _called(line):
            inner_own, inner_nested, _ = _kernels(computations, called)
            nested += inner_own + inner_nested
    return own, nested, opcodes


def _first_loop(computations, name):
    """The first `while` of computation `name`, or of a computation it `call`s (XLA:CPU wraps
    a small loop in a call)."""
    for line in computations.get(name, []):
        opcode = _opcode(line)
        if opcode == "while":
            return line
        called = re.search(r"to_apply=%?([\w.\-]+)", line)
        if opcode == "call" and called and (inner := _first_loop(computations, called.group(1))):
            return inner
    return None


def loop_kernels(hlo_text: str) -> LoopKernels:
    """The kernels of the first `while` loop of the entry computation (or of one it calls),
    per iteration.

    **Arguments:**

    - `hlo_text`: a compiled module's HLO text (`jax.jit(f).lower(...).compile().as_text()`).

    **Returns:** a `LoopKernels`; a `ValueError` where the entry computation has no loop.
    """
    computations, entry = _computations(hlo_text)
    loop = _first_loop(computations, entry)
    if loop is None:
        raise ValueError("`hlo_text` has no while loop in its entry computation: expected "
                         "the compiled text of a function that runs one.")
    body = re.search(r"body=%?([\w.\-]+)", loop).group(1)
    own, nested, opcodes = _kernels(computations, body)
    return LoopKernels(own, nested, dict(opcodes))


def compiled_loop_kernels(fn, *args) -> LoopKernels:
    """`loop_kernels` of `fn` compiled for `args` (arrays; use `equinox.filter_jit`-style
    closures for anything else), on the default backend."""
    return loop_kernels(jax.jit(fn).lower(*args).compile().as_text())
