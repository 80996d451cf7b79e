"""Shared test configuration: hypothesis profiles, the ``torch`` fixture and backend parametrisation.

Hypothesis profiles (pick one with ``HYPOTHESIS_PROFILE=dev pytest ...``):

* ``ci`` (default): derandomized (the same examples on every run and every
  machine), no deadline (timings on shared CI runners are noise), a modest
  number of examples, and ``print_blob`` so a failure prints the
  ``@reproduce_failure`` line to replay it.
* ``dev``: random examples, five times as many; run it now and then to look
  for new counterexamples (failures are saved in ``.hypothesis/``).

Backends: ``BACKENDS`` lists the array backends available here, ``DEVICES``
the matching tinygan device names as ``pytest.param``s (the CuPy one marked
``gpu``).  Parametrise a test with ``@pytest.mark.parametrize("device",
DEVICES)`` (``from conftest import DEVICES``) or request the session-scoped
``device`` fixture, which is already parametrised that way and, being
session-scoped, is safe to combine with ``@given``.

Shared helpers (``from conftest import ...``): ``examples(n)`` scales a
per-test example count to the profile; ``seeds`` and ``conv_cases`` are
hypothesis strategies used by the gradcheck and parity tests;
``dcgan_examples()`` pins the DCGAN layer shapes (kernel 4, stride 2, padding 1
at 7 -> 14 -> 28 and 8 -> 16 -> 32, the 4x4 <-> 1x1 ends, 8 channels at 16x16,
batch 1) as ``@example``s of a test that draws ``case=conv_cases()``.

PyTorch is a second witness, not optional: ``require_torch()`` (and the
``torch`` fixture, which calls it) *fails* the test when PyTorch cannot be
imported, so a CI run without it cannot pass by skipping the parity tests.
Set ``TINYGAN_ALLOW_NO_TORCH=1`` to skip them instead, on a machine where
PyTorch cannot be installed (the torch-free witnesses, tests/test_semantics.py
and the gradchecks, still run).

The CPU stand-in for CuPy (``tests/fakecupy``): with ``TINYGAN_FAKE_CUPY=1``
in the environment, the fake ``cupy`` package is put first on ``sys.path``
before tinygan asks for CuPy, so ``GPU`` is True here and every ``cuda``
parametrisation and ``gpu``-marked test runs, on NumPy arrays posing as
device arrays (``FAKE_CUPY`` is True then; the ``fake_cupy`` fixture says
so too).  ``tests/test_cuda_standin.py`` runs such a pass from the default
``pytest``.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st

import fakecupy

FAKE_CUPY = fakecupy.requested()
if FAKE_CUPY:          # before tinygan first imports cupy
    fakecupy.activate()

import tinygan  # noqa: E402

# --- hypothesis profiles ---------------------------------------------------------

CI_EXAMPLES = 12

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    max_examples=CI_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    derandomize=False,
    deadline=None,
    print_blob=True,
    max_examples=5 * CI_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n: int) -> int:
    """Scale a per-test example count to the active profile (n in ci, 5 n in dev)."""
    return max(1, round(n * settings.default.max_examples / CI_EXAMPLES))


# --- backends -----------------------------------------------------------------------

GPU = tinygan.backend.gpu_available()
BACKENDS = ["numpy"] + (["cupy"] if GPU else [])
_DEVICE_OF = {"numpy": "cpu", "cupy": "cuda"}
# One pytest.param per available backend, named by tinygan device; CuPy's marked gpu.
DEVICES = [pytest.param(_DEVICE_OF[b], id=_DEVICE_OF[b], marks=[pytest.mark.gpu] if b == "cupy" else [])
           for b in BACKENDS]
BACKEND_PARAMS = [pytest.param(b, id=b, marks=[pytest.mark.gpu] if b == "cupy" else []) for b in BACKENDS]


@pytest.fixture(scope="session", params=DEVICES)
def device(request) -> str:
    """``"cpu"``, and ``"cuda"`` (marked ``gpu``) when CuPy sees a GPU."""
    return request.param


@pytest.fixture(scope="session", params=BACKEND_PARAMS)
def backend(request) -> str:
    """``"numpy"``, and ``"cupy"`` (marked ``gpu``) when CuPy sees a GPU."""
    return request.param


@pytest.fixture(params=["numpy", "numba"])
def kernel_path(request):
    """Run a test on batch norm's and LeakyReLU's NumPy kernels, then on the compiled ones (numba, [fast]).

    With numba installed the compiled kernels are the default (``tinygan/kernels/jit.py``), so the tests
    of those kernels take this fixture to keep checking the NumPy code too.  Hypothesis tests that use
    it suppress ``HealthCheck.function_scoped_fixture``: the switch holds no per-example state.
    """
    from tinygan.kernels import jit
    if request.param == "numba" and not jit.available():
        pytest.skip('numba is not installed (pip install -e ".[fast]")')
    previous = jit._ENABLED
    jit._ENABLED = request.param == "numba"
    yield request.param
    jit._ENABLED = previous


@pytest.fixture(scope="session")
def fake_cupy() -> bool:
    """True when ``cuda`` is the CPU stand-in for CuPy (``TINYGAN_FAKE_CUPY=1``), not a GPU."""
    return FAKE_CUPY


ALLOW_NO_TORCH = os.environ.get("TINYGAN_ALLOW_NO_TORCH", "") not in ("", "0")


def require_torch():
    """The torch module.  When PyTorch cannot be imported the test fails, naming the opt-out:
    ``TINYGAN_ALLOW_NO_TORCH=1`` skips it instead.  At module level (``torch = require_torch()``)
    a failure is a collection error of that file, so the run fails as well."""
    try:
        import torch
    except ImportError as e:
        if ALLOW_NO_TORCH:
            pytest.skip(f"PyTorch is not importable ({e}) and TINYGAN_ALLOW_NO_TORCH is set",
                        allow_module_level=True)
        pytest.fail(f"PyTorch is needed for the parity tests and cannot be imported ({e}); install the test "
                    "extra (pip install -e '.[test]') or set TINYGAN_ALLOW_NO_TORCH=1 to skip them",
                    pytrace=False)
    return torch


@pytest.fixture(scope="session")
def torch():
    """The torch module; fails (or, with ``TINYGAN_ALLOW_NO_TORCH=1``, skips) without PyTorch."""
    return require_torch()


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu``-marked tests when no GPU is visible (they are not even parametrised then)."""
    if GPU:
        return
    skip = pytest.mark.skip(reason="needs CuPy and a visible GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)



# --- shared strategies ----------------------------------------------------------------

seeds = st.integers(0, 2**32 - 1)


@st.composite
def conv_cases(draw, max_batch=4, max_ch=5, max_k=5, extra=4, transposed=False):
    """A valid conv problem: batch 1-4, channels 1-5, kernel 1-5, stride 1-3, padding 0-2,
    output_padding < stride, non-square (often odd) spatial sizes.

    For a transposed conv, (h, w) is its input size, chosen so that the output
    (h - 1) s - 2 p + k + output_padding is at least 1."""
    n = draw(st.integers(1, max_batch))
    c = draw(st.integers(1, max_ch))
    o = draw(st.integers(1, max_ch))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    if transposed:   # smallest input with a non-empty output: (h - 1) s >= 2 p - k - op + 1
        lo_h = 1 + max(0, -(-(2 * ph - kh - oph + 1) // sh))
        lo_w = 1 + max(0, -(-(2 * pw - kw - opw + 1) // sw))
        extra = min(extra, 3)
    else:            # smallest input a kernel fits into: h + 2 p >= k
        lo_h, lo_w = max(1, kh - 2 * ph), max(1, kw - 2 * pw)
    h = draw(st.integers(lo_h, lo_h + extra))
    w = draw(st.integers(lo_w, lo_w + extra))
    bias = draw(st.booleans())
    seed = draw(seeds)
    return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), s=(sh, sw), p=(ph, pw), op=(oph, opw),
                bias=bias, seed=seed)


# DCGAN's layer shapes, as conv_cases() dicts; (h, w) is the *input* size, also for a
# transposed conv.  "light" ones keep a float64 gradcheck cheap (few channels where the
# image is large); the others (8 channels at 16x16) are for references and parity.
_DCGAN_CONV = [  # discriminator side: conv2d
    dict(n=1, c=1, o=2, h=28, w=28, k=(4, 4), s=(2, 2), p=(1, 1), light=True),    # 28 -> 14
    dict(n=2, c=2, o=3, h=14, w=14, k=(4, 4), s=(2, 2), p=(1, 1), light=True),    # 14 -> 7
    dict(n=1, c=1, o=2, h=32, w=32, k=(4, 4), s=(2, 2), p=(1, 1), light=True),    # 32 -> 16
    dict(n=1, c=2, o=2, h=16, w=16, k=(4, 4), s=(2, 2), p=(1, 1), light=True),    # 16 -> 8
    dict(n=2, c=4, o=1, h=4, w=4, k=(4, 4), s=(1, 1), p=(0, 0), light=True),      # the head: 4x4 -> 1x1
    dict(n=1, c=8, o=8, h=16, w=16, k=(4, 4), s=(2, 2), p=(1, 1), light=False),   # 8 channels at 16x16
    dict(n=2, c=8, o=1, h=4, w=4, k=(4, 4), s=(1, 1), p=(0, 0), light=False),     # head, 8 channels
]
_DCGAN_TRANSPOSED = [  # generator side: conv_transpose2d
    dict(n=2, c=4, o=3, h=1, w=1, k=(4, 4), s=(1, 1), p=(0, 0), light=True),      # 1x1 -> 4x4
    dict(n=1, c=2, o=2, h=7, w=7, k=(4, 4), s=(2, 2), p=(1, 1), light=True),      # 7 -> 14
    dict(n=1, c=2, o=1, h=14, w=14, k=(4, 4), s=(2, 2), p=(1, 1), light=True),    # 14 -> 28
    dict(n=1, c=2, o=2, h=8, w=8, k=(4, 4), s=(2, 2), p=(1, 1), light=True),      # 8 -> 16
    dict(n=1, c=1, o=1, h=16, w=16, k=(4, 4), s=(2, 2), p=(1, 1), light=True),    # 16 -> 32
    dict(n=1, c=2, o=2, h=7, w=7, k=(3, 3), s=(2, 2), p=(1, 1), op=(1, 1), light=True),  # 7 -> 14, output_padding
    dict(n=1, c=8, o=8, h=8, w=8, k=(4, 4), s=(2, 2), p=(1, 1), light=False),     # 8 -> 16, 8 channels
    dict(n=1, c=8, o=4, h=16, w=16, k=(4, 4), s=(2, 2), p=(1, 1), light=False),   # 16 -> 32, 8 channels
]


def dcgan_cases(transposed: bool = False, light_only: bool = False, max_hw: int | None = None) -> list[dict]:
    """DCGAN layer shapes as ``conv_cases()`` dicts (bias on every other one, fixed seeds).

    ``light_only``: only the few-channel ones (for float64 gradchecks); ``max_hw``: only inputs
    at most that tall (for second-order checks)."""
    out = []
    for i, spec in enumerate(_DCGAN_TRANSPOSED if transposed else _DCGAN_CONV):
        if (light_only and not spec["light"]) or (max_hw is not None and spec["h"] > max_hw):
            continue
        case = {k: v for k, v in spec.items() if k != "light"}
        case.setdefault("op", (0, 0))
        case.update(bias=i % 2 == 0, seed=1000 + i)
        out.append(case)
    return out


def dcgan_examples(transposed: bool = False, light_only: bool = False, max_hw: int | None = None,
                   name: str = "case"):
    """Decorator: every ``dcgan_cases(...)`` as an ``@example(case=...)`` of a hypothesis test."""
    def decorate(test):
        for case in reversed(dcgan_cases(transposed, light_only, max_hw)):
            test = example(**{name: case})(test)
        return test
    return decorate
