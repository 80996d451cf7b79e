"""Benchmarks of tinygan against PyTorch: per-kernel rows and a whole DCGAN training iteration.

Run them with ``tinygan bench`` (see ``docs/benchmarks.md``):

* :mod:`tinygan.benchmark.kernels` -- each op of a DCGAN (conv2d, conv_transpose2d,
  batch_norm, leaky_relu, linear, Adam, BCE-with-logits), forward and backward,
  at the layer shapes of the actual tinygan models;
* :mod:`tinygan.benchmark.step` -- one training iteration (D step, G step) in
  both frameworks from identical weights and data, parity-checked first;
* :mod:`tinygan.benchmark.timing` -- warm-up, repetitions, median and spread,
  CUDA events on the GPU, and the machine's GEMM and copy ceilings;
* :mod:`tinygan.benchmark.isolated` -- on the CPU, each framework timed in its
  own processes, alternating (one library's spinning threads never steal the
  other's cores);
* :mod:`tinygan.benchmark.report` -- the markdown tables, JSON and the
  "where we stand vs targets" section;
* :mod:`tinygan.benchmark.cli` -- the ``bench`` sub-command.

This sub-package is the only place in tinygan that uses PyTorch, and it
imports ``torch`` lazily, inside the functions that run a benchmark:
``import tinygan`` (or ``import tinygan.benchmark``) never imports torch.
Install it with ``pip install -e ".[bench]"``.
"""
