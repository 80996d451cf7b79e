"""Optimizer update kernels: in-place array updates, one parameter tensor at a time.

Each matches its ``torch.optim`` counterpart step for step (same order of
operations, so float32 trajectories agree to rounding).  ``p``, ``g`` and the
state arrays have the parameter's shape and dtype; updates happen in place.
"""
from __future__ import annotations

import math

import numpy

from tinygan.backend import get_array_module
from tinygan.kernels import cuda as _cuda
from tinygan.kernels import threads as _threads


def adam_step_(p, g, m, v, *, lr: float, beta1: float, beta2: float, eps: float, step: int,
               weight_decay: float = 0.0) -> None:
    """One Adam step (Kingma & Ba 2015, as ``torch.optim.Adam``), in place::

        g     = g + wd p                      (L2 weight decay, if any)
        m     = b1 m + (1 - b1) g             (first moment)
        v     = b2 v + (1 - b2) g^2           (second moment)
        m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
        p     = p - lr m_hat / (sqrt(v_hat) + eps)
    """
    xp = get_array_module(p)
    if xp is not numpy:  # CuPy: one fused kernel over p, m and v (kernels/cuda)
        return _cuda.adam_step_(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=eps, step=step,
                                weight_decay=weight_decay)
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    m *= dt(beta1)                                  # m = b1 m + (1 - b1) g
    m += dt(1 - beta1) * g
    v *= dt(beta2)                                  # v = b2 v + (1 - b2) g^2
    v += dt(1 - beta2) * (g * g)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
    denom = xp.sqrt(v)                              # sqrt(v_hat) + eps = sqrt(v) / sqrt(1 - b2^t) + eps
    denom /= dt(bias_correction2_sqrt)
    denom += dt(eps)
    step_size = lr / bias_correction1               # lr / (1 - b1^t), folded on the host
    p -= dt(step_size) * (m / denom)                # p = p - lr m_hat / (sqrt(v_hat) + eps)


def sgd_step_(p, g, buf, *, lr: float, momentum: float, dampening: float, weight_decay: float,
              nesterov: bool, first: bool):
    """One SGD step (``torch.optim.SGD``); returns the momentum buffer (None without momentum)::

        g   = g + wd p
        buf = g                              (first step)
        buf = mu buf + (1 - dampening) g     (later steps)
        d   = g + mu buf if nesterov else buf
        p   = p - lr d
    """
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    if momentum:
        if first:
            buf = g.copy()
        else:
            buf *= dt(momentum)
            buf += dt(1 - dampening) * g
        g = g + dt(momentum) * buf if nesterov else buf
    p -= dt(lr) * g
    return buf


def rmsprop_step_(p, g, v, buf, gavg, *, lr: float, alpha: float, eps: float, weight_decay: float,
                  momentum: float, centered: bool) -> None:
    """One RMSprop step (``torch.optim.RMSprop``), in place::

        v   = a v + (1 - a) g^2
        avg = sqrt(v - gavg^2) + eps  (centered, gavg = a gavg + (1 - a) g)   else sqrt(v) + eps
        buf = mu buf + g / avg;  p = p - lr buf      (momentum)   else   p = p - lr g / avg
    """
    xp = get_array_module(p)
    if xp is not numpy:  # CuPy: one fused kernel over p, v (and buf, gavg) (kernels/cuda)
        return _cuda.rmsprop_step_(p, g, v, buf, gavg, lr=lr, alpha=alpha, eps=eps,
                                   weight_decay=weight_decay, momentum=momentum, centered=centered)
    dt = p.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * p
    v *= dt(alpha)
    v += dt(1 - alpha) * (g * g)
    if centered:
        gavg *= dt(alpha)
        gavg += dt(1 - alpha) * g
        avg = xp.sqrt(v - gavg * gavg)
    else:
        avg = xp.sqrt(v)
    avg += dt(eps)
    if momentum > 0:
        buf *= dt(momentum)
        buf += g / avg
        p -= dt(lr) * buf
    else:
        p -= dt(lr) * (g / avg)


# --- the CPU path: every parameter of a group in one threaded pass ------------------
#
# ``tinygan.optim`` keeps each group's optimizer state in one flat buffer per
# state name (each parameter's ``exp_avg`` is a view into it) and calls the
# ``*_multi_`` kernels below once per group, with NumPy arrays.  They cut every
# parameter into blocks of about threads.BLOCK_BYTES (1 MiB, :mod:`tinygan.kernels.threads`) and
# run the blocks on every core; within a block the update is *the same
# sequence of NumPy operations* as the one-parameter kernel above, so the
# floats are identical to ``adam_step_`` / ``sgd_step_`` / ``rmsprop_step_``
# (the tests compare them with ``array_equal``), on any number of threads.
# A block's temporaries stay in cache, so a step reads p, g and the state
# once from memory and writes p and the state once.
#
# Parameters must be C-contiguous (module-owned weights are); a gradient in
# another layout (a convolution's weight gradient is a transposed view) is
# copied block by block into a scratch buffer, in cache.


def _param_blocks(params, grads):
    """``(param index, start, stop, by_rows)`` blocks over every parameter, in order."""
    out = []
    for k, (p, g) in enumerate(zip(params, grads)):
        if g.flags.c_contiguous or p.ndim == 0:
            out += [(k, s, e, False) for s, e in _threads.blocks(p.size, p.itemsize)]
        else:                                   # a row range of g is a view: copy it into scratch, in order
            row = p.size // p.shape[0]
            out += [(k, s, e, True) for s, e in _threads.blocks(p.shape[0], row * p.itemsize)]
    return out


def _block(arrays, g, k, s, e, by_rows, dt):
    """Flat views of block (s, e) of each array in ``arrays`` (all C-contiguous) and of the gradient."""
    if by_rows:
        views = [a[s:e].reshape(-1) for a in arrays]
        gb = _threads.scratch(views[0].shape, dt, slot=2)
        gb.reshape(g[s:e].shape)[...] = g[s:e]
        return views, gb
    views = [a.reshape(-1)[s:e] for a in arrays]
    return views, g.reshape(-1)[s:e]


def _check_multi(name, params, grads, *states):
    for group in (grads,) + states:
        if len(group) != len(params):
            raise ValueError(f"{name}: got {len(params)} parameters and a list of {len(group)}")
    for k, p in enumerate(params):
        if get_array_module(p) is not numpy or not p.flags.c_contiguous:
            raise ValueError(f"{name}: parameter {k} must be a C-contiguous NumPy array")
        for st in states:
            if st[k] is not None and (st[k].shape != p.shape or not st[k].flags.c_contiguous):
                raise ValueError(f"{name}: state of parameter {k} must be C-contiguous of shape {p.shape}")


def adam_multi_(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr: float, beta1: float, beta2: float,
                eps: float, weight_decay: float = 0.0) -> None:
    """:func:`adam_step_` for many NumPy parameters at once, threaded; the same floats.

    ``steps[k]`` is parameter k's step count (its bias corrections).
    """
    _check_multi("adam_multi_", params, grads, exp_avgs, exp_avg_sqs)
    if not params:
        return
    dt = params[0].dtype.type
    scal = []
    for t in steps:
        scal.append((dt(lr / (1 - beta1 ** t)), dt(math.sqrt(1 - beta2 ** t))))
    b1, b1c, b2, b2c, wd, eps_ = dt(beta1), dt(1 - beta1), dt(beta2), dt(1 - beta2), dt(weight_decay), dt(eps)
    blocks = _param_blocks(params, grads)

    def block(i):
        k, s, e, by_rows = blocks[i]
        (p, m, v), g = _block((params[k], exp_avgs[k], exp_avg_sqs[k]), grads[k], k, s, e, by_rows, dt)
        t = _threads.scratch(p.shape, dt)
        if weight_decay:
            u = _threads.scratch(p.shape, dt, slot=3)
            numpy.multiply(p, wd, out=u)                      # g = g + wd p
            numpy.add(g, u, out=u)
            g = u
        numpy.multiply(m, b1, out=m)                          # m = b1 m + (1 - b1) g
        numpy.multiply(g, b1c, out=t)
        numpy.add(m, t, out=m)
        numpy.multiply(v, b2, out=v)                          # v = b2 v + (1 - b2) g^2
        numpy.multiply(g, g, out=t)
        numpy.multiply(t, b2c, out=t)
        numpy.add(v, t, out=v)
        step_size, bc2_sqrt = scal[k]
        numpy.sqrt(v, out=t)                                  # denom = sqrt(v) / sqrt(1 - b2^t) + eps
        numpy.divide(t, bc2_sqrt, out=t)
        numpy.add(t, eps_, out=t)
        numpy.divide(m, t, out=t)                             # p = p - step_size m / denom
        numpy.multiply(t, step_size, out=t)
        numpy.subtract(p, t, out=p)

    _threads.run(block, len(blocks), sum(p.nbytes for p in params) * 4)


def sgd_multi_(params, grads, bufs, *, lr: float, momentum: float, dampening: float, weight_decay: float,
               nesterov: bool, first) -> None:
    """:func:`sgd_step_` for many NumPy parameters at once, threaded; the same floats.

    ``bufs[k]`` is parameter k's momentum buffer (ignored without momentum),
    updated in place; ``first[k]`` says it is its first step (buf = g).
    """
    _check_multi("sgd_multi_", params, grads, bufs if momentum else [None] * len(params))
    if not params:
        return
    dt = params[0].dtype.type
    lr_, mu, damp, wd = dt(lr), dt(momentum), dt(1 - dampening), dt(weight_decay)
    blocks = _param_blocks(params, grads)

    def block(i):
        k, s, e, by_rows = blocks[i]
        arrays = (params[k], bufs[k]) if momentum else (params[k],)
        views, g = _block(arrays, grads[k], k, s, e, by_rows, dt)
        p = views[0]
        t = _threads.scratch(p.shape, dt)
        if weight_decay:
            u = _threads.scratch(p.shape, dt, slot=3)
            numpy.multiply(p, wd, out=u)
            numpy.add(g, u, out=u)
            g = u
        if momentum:
            buf = views[1]
            if first[k]:
                buf[...] = g                                  # buf = g (a copy)
            else:
                numpy.multiply(buf, mu, out=buf)              # buf = mu buf + (1 - dampening) g
                numpy.multiply(g, damp, out=t)
                numpy.add(buf, t, out=buf)
            if nesterov:                                      # d = g + mu buf
                numpy.multiply(buf, mu, out=t)
                numpy.add(g, t, out=t)
                d = t
            else:
                d = buf
            numpy.multiply(d, lr_, out=t)                     # p = p - lr d
        else:
            numpy.multiply(g, lr_, out=t)
        numpy.subtract(p, t, out=p)

    _threads.run(block, len(blocks), sum(p.nbytes for p in params) * 3)


def rmsprop_multi_(params, grads, square_avgs, bufs, grad_avgs, *, lr: float, alpha: float, eps: float,
                   weight_decay: float, momentum: float, centered: bool) -> None:
    """:func:`rmsprop_step_` for many NumPy parameters at once, threaded; the same floats."""
    n = len(params)
    _check_multi("rmsprop_multi_", params, grads, square_avgs, bufs if momentum > 0 else [None] * n,
                 grad_avgs if centered else [None] * n)
    if not params:
        return
    dt = params[0].dtype.type
    a, ac, eps_, lr_, wd, mu = dt(alpha), dt(1 - alpha), dt(eps), dt(lr), dt(weight_decay), dt(momentum)
    blocks = _param_blocks(params, grads)

    def block(i):
        k, s, e, by_rows = blocks[i]
        arrays = [params[k], square_avgs[k]]
        if momentum > 0:
            arrays.append(bufs[k])
        if centered:
            arrays.append(grad_avgs[k])
        views, g = _block(arrays, grads[k], k, s, e, by_rows, dt)
        p, v = views[0], views[1]
        t = _threads.scratch(p.shape, dt)
        u = _threads.scratch(p.shape, dt, slot=3)
        if weight_decay:
            numpy.multiply(p, wd, out=u)
            numpy.add(g, u, out=u)
            g = u
        numpy.multiply(v, a, out=v)                           # v = a v + (1 - a) g^2
        numpy.multiply(g, g, out=t)
        numpy.multiply(t, ac, out=t)
        numpy.add(v, t, out=v)
        if centered:
            gavg = views[-1]
            numpy.multiply(gavg, a, out=gavg)                 # gavg = a gavg + (1 - a) g
            numpy.multiply(g, ac, out=t)
            numpy.add(gavg, t, out=gavg)
            numpy.multiply(gavg, gavg, out=t)                 # avg = sqrt(v - gavg^2) + eps
            numpy.subtract(v, t, out=t)
            numpy.sqrt(t, out=t)
        else:
            numpy.sqrt(v, out=t)
        numpy.add(t, eps_, out=t)
        if momentum > 0:
            buf = views[2]
            numpy.multiply(buf, mu, out=buf)                  # buf = mu buf + g / avg
            numpy.divide(g, t, out=t)
            numpy.add(buf, t, out=buf)
            numpy.multiply(buf, lr_, out=t)                   # p = p - lr buf
        else:
            numpy.divide(g, t, out=t)                         # p = p - lr g / avg
            numpy.multiply(t, lr_, out=t)
        numpy.subtract(p, t, out=p)

    _threads.run(block, len(blocks), sum(p.nbytes for p in params) * 4)


def adam_step_ref(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0):
    """Slow reference: the Adam equations element by element in float64; returns new (p, m, v)."""
    p, g, m, v = (numpy.asarray(a, dtype=numpy.float64).ravel().copy() for a in (p, g, m, v))
    for i in range(p.size):
        gi = g[i] + weight_decay * p[i]
        m[i] = beta1 * m[i] + (1 - beta1) * gi
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
        m_hat = m[i] / (1 - beta1 ** step)
        v_hat = v[i] / (1 - beta2 ** step)
        p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return p, m, v
