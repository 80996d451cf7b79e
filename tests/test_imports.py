"""Imports flow one way: no cycle inside ``tinygan/``, and every import points down the layers.

The graph is read from the source (``ast``), module-level and function-level imports alike, so a
cycle cannot hide inside a function.  The layers, bottom first (a module may import its own layer
and those below):

    0  backend, io, random, kernels          arrays in, arrays out; files
    1  autograd, ops, creation, functional   the engine
    2  nn, optim, testing                    modules, optimizers, gradient checks
    3  data, viz                             datasets and pictures (viz draws with the engine)
    4  gan, theory                           the GAN family's maths; the papers' equations in numbers
    5  run                                   config, trainer, run folder, checkpoints
    6  metrics, benchmark                    what is measured of runs and kernels
    7  cli, __main__                         the command line

``python tests/test_imports.py`` prints the module graph's layer violations and cycles.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tinygan"
LAYERS = [("backend", "io", "random", "kernels"), ("autograd", "ops", "creation", "functional"),
          ("nn", "optim", "testing"), ("data", "viz"), ("gan", "theory"), ("run",), ("metrics", "benchmark"),
          ("cli", "__main__")]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(name: str) -> str | None:
    """The tinygan module that ``name`` denotes (a module or a package), or None when it is not one."""
    path = ROOT.joinpath(*name.split("."))
    if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
        return name
    return None


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def imports_of(path: Path) -> set[str]:
    """Every tinygan module ``path`` imports (a ``from pkg import name`` of a submodule counts as that module)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "tinygan")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "tinygan":
                continue
            for a in node.names:
                found.add(resolve(f"{base}.{a.name}") or base)
    return {m for m in (resolve(x) or x for x in found) if m != me}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PKG.rglob("*.py"))}


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tinygan"


def violations(g) -> list[str]:
    """Imports that point up the layers (the root package's re-exports are exempt)."""
    bad = []
    for src, targets in g.items():
        if src == "tinygan":
            continue
        for dst in targets:
            a, b = component(src), component(dst)
            if b == "tinygan":
                bad.append(f"{src} imports the root package tinygan (import the module it needs)")
            elif LAYER[b] > LAYER[a]:
                bad.append(f"{src} (layer {LAYER[a]}, {a}) imports {dst} (layer {LAYER[b]}, {b})")
    return sorted(bad)


def cycles(g) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a cycle of imports."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def _without_package_reexports(g):
    """A package's ``__init__`` importing its own children is how packages re-export; drop those edges."""
    return {src: {d for d in dst if not (d.startswith(src + ".") and (ROOT / src.replace(".", "/")).is_dir())}
            for src, dst in g.items()}


def test_every_layer_is_known():
    comps = {component(m) for m in graph()} - {"tinygan"}
    assert comps <= set(LAYER), f"add {sorted(comps - set(LAYER))} to LAYERS"


def test_imports_point_down_the_layers():
    assert not violations(graph()), "\n".join(violations(graph()))


def test_no_import_cycle():
    found = cycles(_without_package_reexports(graph()))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_cycles_and_upward_imports():
    g = {"tinygan.nn.module": {"tinygan.gan.losses"}, "tinygan.gan.losses": {"tinygan.nn.module"}}
    assert cycles(g) == [["tinygan.gan.losses", "tinygan.nn.module"]]
    assert violations(g) == ["tinygan.nn.module (layer 2, nn) imports tinygan.gan.losses (layer 4, gan)"]


def test_import_tinygan_reaches_the_pytorch_shaped_namespaces():
    code = ("import tinygan as tg; tg.nn.Linear; tg.optim.Adam; tg.functional.conv2d; tg.gan.DCGANGenerator; "
            "tg.run.TrainConfig; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


def test_import_tinygan_lets_openblas_threads_sleep_unless_told_otherwise():
    """``OPENBLAS_THREAD_TIMEOUT`` is 12 before NumPy loads (tinygan/__init__.py); a value already set wins."""
    code = ("import os, sys; assert 'numpy' not in sys.modules; import tinygan; "
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))")
    import os
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    for preset, expected in ((None, "12"), ("20", "20")):
        run_env = env if preset is None else {**env, "OPENBLAS_THREAD_TIMEOUT": preset}
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                           env=run_env)
        assert r.stdout.strip() == expected, r.stderr


if __name__ == "__main__":
    g = graph()
    print("\n".join(violations(g)) or "no upward imports")
    print("\n".join(" <-> ".join(c) for c in cycles(_without_package_reexports(g))) or "no cycles")
