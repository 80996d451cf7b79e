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

import contextlib
from typing import Any

import numpy as np

from tinygan import functional as F
from tinygan.autograd import Tensor
from tinygan.gan.losses import GANLoss, class_nll, info_loss
from tinygan.gan.penalties import dragan_penalty, gradient_penalty, r1_penalty, weight_clip_
from tinygan.gan.unroll import substituted, unrolled_parameters
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
            s = (p.grad._data * p.grad._data).sum()
            total = s if total is None else total + s
    return total if total is not None else np.zeros((), dtype=np.float32)


def d_value(loss: GANLoss, logits: Tensor) -> Tensor:
    """What the log calls D(.): mean sigmoid(l) for the probabilistic losses, the mean raw output otherwise."""
    return F.sigmoid(logits).mean() if loss.probabilistic else logits.mean()


def _critic(D, labels, augment=None):
    """x -> D(x) (logits (N,)), passing the class labels to a conditional discriminator.

    ACGAN's D takes no label (it predicts it).  ``augment`` (DiffAugment's T,
    :class:`tinygan.gan.augment.DiffAugment`) makes it x -> D(T(x)).
    """
    if getattr(D, "auxiliary_classifier", False):                   # ACGAN: the label is a target, not an input
        labels = None
    t = augment if augment is not None else (lambda x: x)
    return (lambda x: D(t(x))) if labels is None else (lambda x: D(t(x), labels=labels))


def _classified(D, augment=None):
    """ACGAN: x -> (l(x) (N,), class logits (N, K)), through DiffAugment's T when given."""
    t = augment if augment is not None else (lambda x: x)
    return lambda x: D(t(x), return_aux=True)


def d_step(D, opt_d, loss: GANLoss, real: Tensor, fake: Tensor, *, labels=None, gp_weight: float | None = None,
           gp_at: str = "interpolates", r1_gamma: float = 0.0, clip_value: float | None = None,
           rng: np.random.Generator | None = None, stats: bool = True, augment=None) -> dict:
    """(1) Update D: maximise log D(x) + log(1 - D(G(z))), i.e. one optimizer step on L_D.

        L_D = loss.d_loss(D(x), D(G(z)))                                   the adversarial objective
              [+ gp_weight E[(||grad D(x_hat)||_2 - 1)^2]]                   WGAN-GP (x_hat between x and G(z)),
                                                                             DRAGAN (gp_at="perturbed": x_hat near x)
              [+ r1_gamma / 2 E[||grad D(x)||^2]]                            R1 on real data
              [+ E[-log P(C=y|x)] + E[-log P(C=y|G(z,y))]]                   ACGAN: -L_C (D maximises L_S + L_C)

    then, for WGAN, every weight of D clamped to [-clip_value, clip_value].
    With ``augment`` (DiffAugment's T, Zhao et al. 2020) D sees T(x) and
    T(G(z)) instead, a fresh draw for each batch.
    ``real`` (N, ...) and ``fake`` (N, ...) are batches on D's device;
    ``fake`` is detached here, so no gradient reaches G.  ``labels`` (N,) go to
    a conditional D, and are the class targets of ACGAN's D (which takes no
    label: the fakes were drawn with the real batch's labels).  ``rng`` draws
    the penalty's interpolation weights.

    Returns device scalars: ``Loss_D`` (with penalties), ``Loss_AC_D`` (ACGAN's -L_C), ``D_x`` and ``D_G_z1``
    (D's verdict on the real and fake batch before the update), ``gp`` / ``r1``
    when used, and ``grad_sq_D`` (sum of D's squared gradients); with
    ``stats=False`` only ``Loss_D`` (the benchmark times the bare step).
    """
    critic = _critic(D, labels, augment)                            # x -> D(x), or D(T(x)) with DiffAugment
    fake = fake.detach()                                            # D's step treats G(z) as data
    acgan = getattr(D, "auxiliary_classifier", False)
    if acgan:                                                       # ACGAN: D's two heads, source and class
        if labels is None:
            raise ValueError("d_step: ACGAN's discriminator also learns the class; pass labels=")
        real_logits, real_cls = _classified(D, augment)(real)       # (N,), (N, K)
        fake_logits, fake_cls = _classified(D, augment)(fake)
    else:
        real_logits = critic(real)                                  # (N,)  l(x)
        fake_logits = critic(fake)                                  # (N,)  l(G(z))
    err_d = loss.d_loss(real_logits, fake_logits)                   # L_D, the paper's objective
    record: dict[str, Any] = {}
    if acgan:                                                       # ACGAN: D maximises L_S + L_C
        ac = class_nll(real_cls, labels) + class_nll(fake_cls, labels)   # -L_C = E[-log P(c|x)] + E[-log P(c|G(z,c))]
        err_d = err_d + ac
        record["Loss_AC_D"] = ac._data
    if gp_weight:                                                   # WGAN-GP, DRAGAN: in the critic's loss only
        if gp_at == "perturbed":                                    # DRAGAN: points around the real data
            gp = dragan_penalty(critic, real, weight=gp_weight, generator=rng)
        else:                                                       # WGAN-GP: points between real and fake
            gp = gradient_penalty(critic, real, fake, weight=gp_weight, generator=rng)
        err_d = err_d + gp
        record["gp"] = gp._data
    if r1_gamma:                                                    # R1: gradient penalty on real data
        r1 = r1_penalty(critic, real, r1_gamma)
        err_d = err_d + r1
        record["r1"] = r1._data
    opt_d.zero_grad()
    err_d.backward()
    params = optimizer_params(opt_d)
    if stats:
        record["grad_sq_D"] = grad_sq_sum(params)
    opt_d.step()
    if clip_value:                                                  # WGAN: clip to [-c, c] after each step
        weight_clip_(params, clip_value)
    record["Loss_D"] = err_d._data
    if stats:
        record.update(D_x=d_value(loss, real_logits)._data, D_G_z1=d_value(loss, fake_logits)._data)
    return record


def g_step(D, opt_g, loss: GANLoss, fake: Tensor, *, real: Tensor | None = None, labels=None,
           codes: dict | None = None, info_lambda: float = 0.0, stats: bool = True, augment=None,
           unroll: int = 0, opt_d=None) -> dict:
    """(2) Update G: maximise log D(G(z)) (non-saturating), i.e. one optimizer step on L_G.

        L_G = loss.g_loss(D(G(z)))  [+ info_lambda L_I(Q(G(z, c)), c)]    InfoGAN's mutual-information term
                                    [+ E[-log P(C=y|G(z,y))]]              ACGAN: G maximises L_C - L_S

    With ``augment`` D sees T(G(z)) (DiffAugment; G's gradient goes through
    T).  With ``unroll`` = K > 0 (Metz et al. 2017), D is evaluated at
    theta_D^K(theta_G), K differentiable steps of ``opt_d`` on L_D(D(x),
    D(G(z))) from D's current weights on this ``real`` batch and these fakes
    (:func:`tinygan.gan.unroll.unrolled_parameters`), and G descends
    dL_G(theta_G, theta_D^K(theta_G))/dtheta_G; D itself, its optimizer's
    state and its batch-norm statistics are left as they were.

    ``fake`` = G(z) *with* its graph (the batch D was just trained on, as in
    PyTorch's example).  A relativistic loss (``loss.relativistic``) compares
    with D's scores of a real batch: ``real`` (the last critic step's), scored
    here by the updated D, ``L_G = loss.g_loss(D(G(z)), D(x))``.  D's own weights are constants of this step
    (:func:`tinygan.nn.frozen`: their gradients are not even computed); the
    parameters ``opt_g`` updates are G's, plus InfoGAN's Q head, which shares
    D's body but is trained with G on L_I.  ``codes`` are the InfoGAN codes
    G was fed (``{"c_cat", "c_cont"}``) when ``info_lambda`` > 0.

    Returns device scalars: ``Loss_G`` (with L_I), ``D_G_z2`` (D's verdict on
    the same fake batch after D's update), ``Loss_Info`` for InfoGAN, ``Loss_AC_G`` for ACGAN, and
    ``grad_sq_G``; with ``stats=False`` only ``Loss_G`` and ``Loss_Info``.
    """
    trained = {id(p) for p in optimizer_params(opt_g)}
    d_only = [p for p in D.parameters() if id(p) not in trained]    # D's weights; not Q's head
    record: dict[str, Any] = {}
    if loss.relativistic and real is None:
        raise ValueError(f"g_step: --loss {loss.name} is relativistic: G's loss compares with D's scores of a "
                         "real batch; pass real=")
    adversarial = loss.g_loss
    critic = _critic(D, labels, augment)                            # x -> D(x), or D(T(x)) with DiffAugment
    at_k = contextlib.nullcontext()
    if unroll:                                                      # Unrolled GAN: D as it will be K steps on
        if real is None or opt_d is None:
            raise ValueError("g_step: unroll=K needs real= and opt_d= (D's batch and optimizer)")
        theta_k = unrolled_parameters(D, d_only, opt_d, lambda: loss.d_loss(critic(real), critic(fake)), unroll)
        at_k = substituted(D, d_only, theta_k)                      # D computes with theta_D^K(theta_G)
    with frozen(d_only), at_k:                                      # D's weights are constants in this step
        if loss.relativistic:                                       # RSGAN, RaGAN: L_G(l(G(z)), l(x))
            real_logits = critic(real)                              # (N,)  l(x): reaches G only through an unrolled D
            adversarial = lambda fake_logits: loss.g_loss(fake_logits, real_logits)   # noqa: E731
        if info_lambda:
            t = augment if augment is not None else (lambda x: x)
            fake_logits, q = D(t(fake), return_q=True)              # (N,), {"cat_logits", "cont_mean"}
            info = info_loss(q, codes)                              # L_I = -(lower bound on I(c; G(z, c)))
            err_g = adversarial(fake_logits) + info_lambda * info
            record["Loss_Info"] = info._data
        elif getattr(D, "auxiliary_classifier", False):            # ACGAN: G maximises L_C - L_S
            if labels is None:
                raise ValueError("g_step: ACGAN's generator is also scored on the class; pass labels=")
            fake_logits, fake_cls = _classified(D, augment)(fake)   # (N,), (N, K)
            ac = class_nll(fake_cls, labels)                        # G's part of -L_C: E[-log P(c|G(z,c))]
            err_g = adversarial(fake_logits) + ac
            record["Loss_AC_G"] = ac._data
        else:
            fake_logits = critic(fake)                              # (N,)  l(G(z))
            err_g = adversarial(fake_logits)                        # L_G, e.g. -E[log D(G(z))]
        opt_g.zero_grad()
        err_g.backward()
    if stats:
        record["grad_sq_G"] = grad_sq_sum(optimizer_params(opt_g))
    opt_g.step()
    record["Loss_G"] = err_g._data
    if stats:
        record["D_G_z2"] = d_value(loss, fake_logits)._data
    return record
