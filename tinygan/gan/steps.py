"""The two halves of a GAN training iteration, as in PyTorch's DCGAN example: (1) update D, (2) update G.

Every trainer in tinygan (``tinygan.run.Trainer``, the benchmark's step, the
examples that use the library) calls these two functions, so there is one
place where each objective meets its optimizer:

    for each of n_critic critic updates:
        x   ~ p_data,  z ~ p(z),  fake = G(z)
        (1) d_step: minimise L_D(D(x), D(fake))  [+ penalty]; D's optimizer steps  [; clip D's weights]
    (2) g_step: minimise L_G(D(fake))  [+ lambda L_I]; G's optimizer steps, D held fixed

``L_D`` and ``L_G`` come from the loss object (``tinygan.gan.losses``: for the
non-saturating GAN, L_D = -E[log D(x)] - E[log(1 - D(G(z)))] and
L_G = -E[log D(G(z))]); the penalty, the clipping value and the optimizers'
settings come from the paper's recipe (``tinygan.gan.recipes``).

Both functions return what the log records, as *device* scalars (0-d arrays
on the GPU): reading them would wait for the GPU, so the caller decides when.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygan import functional as F
from tinygan.autograd import Tensor
from tinygan.gan.losses import GANLoss, info_loss
from tinygan.gan.penalties import gradient_penalty, r1_penalty, weight_clip_
from tinygan.nn import frozen

__all__ = ["d_step", "g_step", "d_value", "optimizer_params", "grad_sq_sum"]


def optimizer_params(opt) -> list:
    """Every parameter an optimizer updates, in order."""
    return [p for group in opt.param_groups for p in group["params"]]


def grad_sq_sum(params) -> Any:
    """sum_p ||grad p||^2 over ``params`` (a device scalar: no host sync here; 0 if no gradient)."""
    total = None
    for p in params:
        if p.grad is not None:
            s = (p.grad.data * p.grad.data).sum()
            total = s if total is None else total + s
    return total if total is not None else np.zeros((), dtype=np.float32)


def d_value(loss: GANLoss, logits: Tensor) -> Tensor:
    """What the log calls D(.): mean sigmoid(l) for the probabilistic losses, the mean raw output otherwise."""
    return F.sigmoid(logits).mean() if loss.probabilistic else logits.mean()


def _critic(D, labels):
    """x -> D(x) (logits (N,)), passing the class labels to a conditional discriminator."""
    return (lambda x: D(x)) if labels is None else (lambda x: D(x, labels=labels))


def d_step(D, opt_d, loss: GANLoss, real: Tensor, fake: Tensor, *, labels=None, gp_weight: float | None = None,
           r1_gamma: float = 0.0, clip_value: float | None = None,
           rng: np.random.Generator | None = None, stats: bool = True) -> dict:
    """(1) Update D: maximise log D(x) + log(1 - D(G(z))), i.e. one optimizer step on L_D.

        L_D = loss.d_loss(D(x), D(G(z)))                                   the adversarial objective
              [+ gp_weight E[(||grad D(x_hat)||_2 - 1)^2]]                   WGAN-GP (x_hat between x and G(z))
              [+ r1_gamma / 2 E[||grad D(x)||^2]]                            R1 on real data

    then, for WGAN, every weight of D clamped to [-clip_value, clip_value].
    ``real`` (N, ...) and ``fake`` (N, ...) are batches on D's device;
    ``fake`` is detached here, so no gradient reaches G.  ``labels`` (N,) go to
    a conditional D.  ``rng`` draws the penalty's interpolation weights.

    Returns device scalars: ``Loss_D`` (with penalties), ``D_x`` and ``D_G_z1``
    (D's verdict on the real and fake batch before the update), ``gp`` / ``r1``
    when used, and ``grad_sq_D`` (sum of D's squared gradients); with
    ``stats=False`` only ``Loss_D`` (the benchmark times the bare step).
    """
    critic = _critic(D, labels)
    fake = fake.detach()                                            # D's step treats G(z) as data
    real_logits = critic(real)                                      # (N,)  l(x)
    fake_logits = critic(fake)                                      # (N,)  l(G(z))
    err_d = loss.d_loss(real_logits, fake_logits)                   # L_D, the paper's objective
    record: dict[str, Any] = {}
    if gp_weight:                                                   # WGAN-GP: in the critic's loss only
        gp = gradient_penalty(critic, real, fake, weight=gp_weight, generator=rng)
        err_d = err_d + gp
        record["gp"] = gp.data
    if r1_gamma:                                                    # R1: gradient penalty on real data
        r1 = r1_penalty(critic, real, r1_gamma)
        err_d = err_d + r1
        record["r1"] = r1.data
    opt_d.zero_grad()
    err_d.backward()
    params = optimizer_params(opt_d)
    if stats:
        record["grad_sq_D"] = grad_sq_sum(params)
    opt_d.step()
    if clip_value:                                                  # WGAN: clip to [-c, c] after each step
        weight_clip_(params, clip_value)
    record["Loss_D"] = err_d.data
    if stats:
        record.update(D_x=d_value(loss, real_logits).data, D_G_z1=d_value(loss, fake_logits).data)
    return record


def g_step(D, opt_g, loss: GANLoss, fake: Tensor, *, labels=None, codes: dict | None = None,
           info_lambda: float = 0.0, stats: bool = True) -> dict:
    """(2) Update G: maximise log D(G(z)) (non-saturating), i.e. one optimizer step on L_G.

        L_G = loss.g_loss(D(G(z)))  [+ info_lambda L_I(Q(G(z, c)), c)]    InfoGAN's mutual-information term

    ``fake`` = G(z) *with* its graph (the batch D was just trained on, as in
    PyTorch's example).  D's own weights are constants of this step
    (:func:`tinygan.nn.frozen`: their gradients are not even computed); the
    parameters ``opt_g`` updates are G's, plus InfoGAN's Q head, which shares
    D's body but is trained with G on L_I.  ``codes`` are the InfoGAN codes
    G was fed (``{"c_cat", "c_cont"}``) when ``info_lambda`` > 0.

    Returns device scalars: ``Loss_G`` (with L_I), ``D_G_z2`` (D's verdict on
    the same fake batch after D's update), ``Loss_Info`` for InfoGAN, and
    ``grad_sq_G``; with ``stats=False`` only ``Loss_G`` and ``Loss_Info``.
    """
    trained = {id(p) for p in optimizer_params(opt_g)}
    d_only = [p for p in D.parameters() if id(p) not in trained]    # D's weights; not Q's head
    record: dict[str, Any] = {}
    with frozen(d_only):                                            # D's weights are constants in this step
        if info_lambda:
            fake_logits, q = D(fake, return_q=True)                 # (N,), {"cat_logits", "cont_mean"}
            info = info_loss(q, codes)                              # L_I = -(lower bound on I(c; G(z, c)))
            err_g = loss.g_loss(fake_logits) + info_lambda * info
            record["Loss_Info"] = info.data
        else:
            fake_logits = _critic(D, labels)(fake)                  # (N,)  l(G(z))
            err_g = loss.g_loss(fake_logits)                        # L_G, e.g. -E[log D(G(z))]
        opt_g.zero_grad()
        err_g.backward()
    if stats:
        record["grad_sq_G"] = grad_sq_sum(optimizer_params(opt_g))
    opt_g.step()
    record["Loss_G"] = err_g.data
    if stats:
        record["D_G_z2"] = d_value(loss, fake_logits).data
    return record
