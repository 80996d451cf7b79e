"""GAN objectives, each computed from discriminator *logits* (raw outputs) in a numerically stable form.

Notation: ``l(x)`` is the discriminator's raw output (a logit, shape (N,));
for the probabilistic losses D(x) = sigmoid(l(x)), and

    log D(x)       = log sigmoid(l)  = -softplus(-l)
    log(1 - D(x))  = log sigmoid(-l) = -softplus(l)

with softplus(t) = log(1 + e^t) evaluated as max(t, 0) + log1p(e^-|t|), so no
logit is too large (sigmoid-then-log would give log(0) = -inf at |l| ~ 100 in
float32).  The other losses (LSGAN, WGAN, hinge) use l(x) directly: there is
no sigmoid anywhere.  Expectations E[.] are means over the batch.

Every loss below is something to *minimise*: ``d_loss`` by the discriminator
(the critic, for WGAN), ``g_loss`` by the generator.  How each paper trained
with its loss (optimizer, learning rate, betas, critic steps, clipping, the
penalty's lambda) is not here but in :mod:`tinygan.gan.recipes`, one line per paper.

InfoGAN's mutual-information term (:func:`info_loss`) is here too: it is
added to the generator's loss, whatever adversarial loss is chosen.
"""
from __future__ import annotations

import numpy as np

from tinygan import functional as F
from tinygan.autograd import Tensor
from tinygan.backend import get_array_module, to_device

__all__ = [
    "GANLoss", "Minimax", "NonSaturating", "LSGAN", "WGAN", "WGANGP", "Hinge",
    "RSGAN", "RaGAN", "RaLSGAN", "DRAGAN",
    "LOSSES", "LOSS_PRESETS", "get_loss", "info_loss",
]


class GANLoss:
    """A pair of objectives: ``d_loss`` for the discriminator (critic), ``g_loss`` for the generator.

    ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)`` take the
    discriminator's raw outputs, shape (N,), and return a scalar Tensor.

    ``name`` is the loss's command-line name (its recipe's key in
    :data:`tinygan.gan.recipes.RECIPES`); ``probabilistic`` says whether
    sigmoid(l) is a probability (then the log shows D(x) = mean sigmoid(l)).

    ``relativistic`` losses (Jolicoeur-Martineau 2019) compare real and fake
    scores, so G's objective needs the real logits too:
    ``g_loss(fake_logits, real_logits)``; the G step computes l(x) for them.
    """

    name = "gan"
    probabilistic = False
    relativistic = False

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NonSaturating(GANLoss):
    """The GAN paper's practical objective (Goodfellow et al. 2014, sec. 3), DCGAN's recipe.

    D maximises  E[log D(x)] + E[log(1 - D(G(z)))], i.e. minimises

        L_D = E[softplus(-l(x))] + E[softplus(l(G(z)))]

    G maximises  E[log D(G(z))] instead of minimising E[log(1 - D(G(z)))]
    (same fixed point, strong gradients early on when D rejects G's samples):

        L_G = E[softplus(-l(G(z)))]

    Both are binary cross-entropies on logits: real labelled 1, fake 0 for D;
    fake labelled 1 for G.
    """

    name = "nonsaturating"
    probabilistic = True

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()   # -log D(x) - log(1 - D(G(z)))

    def g_loss(self, fake_logits):
        return F.softplus(-fake_logits).mean()                                     # -log D(G(z))


class Minimax(NonSaturating):
    """The original minimax game min_G max_D V(D, G) (Goodfellow et al. 2014, eq. 1).

        V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]

    D's loss is the non-saturating one's (-V).  G minimises the second term itself:

        L_G = E[log(1 - D(G(z)))] = -E[softplus(l(G(z)))]

    It *saturates*: when D confidently rejects a fake (l -> -inf),
    dL_G/dl = -sigmoid(l) -> 0 and G learns nothing.
    """

    name = "minimax"

    def g_loss(self, fake_logits):
        return -F.softplus(fake_logits).mean()                                     # log(1 - D(G(z)))


class LSGAN(GANLoss):
    """Least-squares GAN (Mao et al. 2017, eq. 2), on the raw outputs l (no sigmoid).

        L_D = 1/2 E[(l(x) - b)^2] + 1/2 E[(l(G(z)) - a)^2]
        L_G = 1/2 E[(l(G(z)) - c)^2]

    a is the target for fakes, b for reals, c the value G wants D to believe.
    Defaults a=0, b=1, c=1 (the paper's experiments, "0-1 coding");
    ``preset="pearson"`` (or ``get_loss("lsgan-pearson")``) picks a=-1, b=1, c=0,
    for which b - c = 1 and b - a = 2 make minimising the objectives minimise
    the Pearson chi^2 divergence between p_data + p_g and 2 p_g (paper, sec. 3.2).

    An MSE adversarial loss *is* this loss: a CGAN or InfoGAN trained with it
    is an LSGAN and should be called one.
    """

    name = "lsgan"
    PRESETS = {"binary": (0.0, 1.0, 1.0), "pearson": (-1.0, 1.0, 0.0)}

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, preset: str | None = None):
        if preset is not None:
            if preset not in self.PRESETS:
                raise ValueError(f"LSGAN: unknown preset {preset!r}; choose from {sorted(self.PRESETS)}")
            a, b, c = self.PRESETS[preset]
        self.a, self.b, self.c = float(a), float(b), float(c)

    def d_loss(self, real_logits, fake_logits):
        real_term = (real_logits - self.b).square().mean()         # E[(l(x) - b)^2]
        fake_term = (fake_logits - self.a).square().mean()         # E[(l(G(z)) - a)^2]
        return 0.5 * real_term + 0.5 * fake_term

    def g_loss(self, fake_logits):
        return 0.5 * (fake_logits - self.c).square().mean()        # 1/2 E[(l(G(z)) - c)^2]

    def __repr__(self) -> str:
        return f"LSGAN(a={self.a:g}, b={self.b:g}, c={self.c:g})"


class WGAN(GANLoss):
    """Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1).

    The critic f = l (no sigmoid, not a probability) estimates
    W(p_data, p_g) = max_{||f||_L <= 1} E[f(x)] - E[f(G(z))]; minimising:

        L_critic = E[l(G(z))] - E[l(x)]
        L_G      = -E[l(G(z))]

    The Lipschitz constraint is enforced by clipping every critic weight to
    [-0.01, 0.01] after each critic update (the recipe's ``clip_value``; the D
    step calls :func:`tinygan.gan.penalties.weight_clip_`).  Recipe
    (:data:`tinygan.gan.recipes.WGAN`): RMSprop, lr 5e-5, n_critic 5; its critic
    keeps DCGAN's batch norm.
    """

    name = "wgan"

    def d_loss(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean()             # E[f(G(z))] - E[f(x)]

    def g_loss(self, fake_logits):
        return -fake_logits.mean()                                 # -E[f(G(z))]


class WGANGP(WGAN):
    """WGAN with gradient penalty (Gulrajani et al. 2017, Algorithm 1).

    The same objectives as :class:`WGAN`, with no weight clipping; instead the
    *critic's* loss gets  lambda E[(||grad_x_hat f(x_hat)||_2 - 1)^2]  on random
    interpolates x_hat (:func:`tinygan.gan.penalties.gradient_penalty`, added
    by the D step).  The penalty belongs to the critic's loss only: it does
    not appear in L_G.  Recipe (:data:`tinygan.gan.recipes.WGAN_GP`): Adam lr
    1e-4, betas (0, 0.9), n_critic 5, lambda 10, and no batch norm in the
    critic (the penalty is per sample; batch norm mixes samples), layer norm
    instead.
    """

    name = "wgan-gp"


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, SN-GAN, eq. 16-17).

        L_D = E[relu(1 - l(x))] + E[relu(1 + l(G(z)))]
        L_G = -E[l(G(z))]

    D is a margin classifier: real outputs above +1 and fakes below -1 cost
    nothing.  G's loss is WGAN's.  Defaults here are the DCGAN recipe (SN-GAN's
    own, with spectral norm, differ).
    """

    name = "hinge"

    def d_loss(self, real_logits, fake_logits):
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()


class RSGAN(GANLoss):
    """Relativistic standard GAN (Jolicoeur-Martineau 2019, Algorithm 1).

    D estimates the probability that a real sample is more realistic than a
    paired fake one, sigmoid(l(x_r) - l(x_f)), with the pairs (x_r, x_f) the
    i-th real and i-th fake sample of the batch:

        L_D = E[softplus(-(l(x_r) - l(x_f)))]      = -E[log sigmoid(l(x_r) - l(x_f))]
        L_G = E[softplus(-(l(x_f) - l(x_r)))]      = -E[log sigmoid(l(x_f) - l(x_r))]

    G's loss depends on the real scores too (``relativistic``).  Recipe:
    DCGAN's (the paper's lr 2e-4, betas (0.5, 0.999), n_D = 1).
    """

    name = "rsgan"
    relativistic = True

    def d_loss(self, real_logits, fake_logits):
        _paired(real_logits, fake_logits)
        return F.softplus(fake_logits - real_logits).mean()                        # -log sigmoid(l(x_r) - l(x_f))

    def g_loss(self, fake_logits, real_logits):
        _paired(real_logits, fake_logits)
        return F.softplus(real_logits - fake_logits).mean()                        # -log sigmoid(l(x_f) - l(x_r))


def _paired(real_logits: Tensor, fake_logits: Tensor) -> None:
    if real_logits.shape != fake_logits.shape:
        raise ValueError(f"RSGAN pairs the i-th real sample with the i-th fake one: got {real_logits.shape[0]} "
                         f"real and {fake_logits.shape[0]} fake logits (use --loss ragan for batches of two sizes)")


class RaGAN(GANLoss):
    """Relativistic average standard GAN, RaSGAN (Jolicoeur-Martineau 2019, Algorithm 2).

    Each sample is compared with the *average* score of the other kind,
    D~(x_r) = sigmoid(l(x_r) - E[l(x_f)]) and D~(x_f) = sigmoid(l(x_f) - E[l(x_r)]):

        L_D = -E[log D~(x_r)] - E[log(1 - D~(x_f))]
            = E[softplus(-(l(x_r) - E l(x_f)))] + E[softplus(l(x_f) - E l(x_r))]
        L_G = -E[log D~(x_f)] - E[log(1 - D~(x_r))]
            = E[softplus(-(l(x_f) - E l(x_r)))] + E[softplus(l(x_r) - E l(x_f))]

    (the paper's sums; its reference code halves both, which Adam's steps do
    not see).  Recipe: DCGAN's (lr 2e-4, betas (0.5, 0.999), n_D = 1).
    """

    name = "ragan"
    relativistic = True

    def d_loss(self, real_logits, fake_logits):
        real_rel = real_logits - fake_logits.mean()                                # l(x_r) - E[l(x_f)]
        fake_rel = fake_logits - real_logits.mean()                                # l(x_f) - E[l(x_r)]
        return F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean()          # -log D~(x_r) - log(1 - D~(x_f))

    def g_loss(self, fake_logits, real_logits):
        real_rel = real_logits - fake_logits.mean()
        fake_rel = fake_logits - real_logits.mean()
        return F.softplus(-fake_rel).mean() + F.softplus(real_rel).mean()          # -log D~(x_f) - log(1 - D~(x_r))


class RaLSGAN(GANLoss):
    """Relativistic average LSGAN (Jolicoeur-Martineau 2019, appendix: RaLSGAN).

        L_D = E[(l(x_r) - E l(x_f) - 1)^2] + E[(l(x_f) - E l(x_r) + 1)^2]
        L_G = E[(l(x_f) - E l(x_r) - 1)^2] + E[(l(x_r) - E l(x_f) + 1)^2]

    on the raw outputs (no sigmoid).  Recipe: DCGAN's.
    """

    name = "ralsgan"
    relativistic = True

    def d_loss(self, real_logits, fake_logits):
        real_rel = real_logits - fake_logits.mean()                                # l(x_r) - E[l(x_f)]
        fake_rel = fake_logits - real_logits.mean()                                # l(x_f) - E[l(x_r)]
        return (real_rel - 1.0).square().mean() + (fake_rel + 1.0).square().mean()

    def g_loss(self, fake_logits, real_logits):
        real_rel = real_logits - fake_logits.mean()
        fake_rel = fake_logits - real_logits.mean()
        return (fake_rel - 1.0).square().mean() + (real_rel + 1.0).square().mean()


class DRAGAN(NonSaturating):
    """DRAGAN (Kodali et al. 2017): the standard GAN plus a gradient penalty around the data.

    The objectives are the non-saturating GAN's; the D step adds

        lambda E[(||grad_x_hat D(x_hat)||_2 - 1)^2],   x_hat = x + alpha delta,
        delta = 0.5 std(x) u,  u ~ U[0, 1)^d,  alpha ~ U[0, 1] per sample

    (points perturbed around the *real* data only, the reference code's
    perturbation; :func:`tinygan.gan.penalties.dragan_penalty`).  Recipe
    (:data:`tinygan.gan.recipes.DRAGAN`): lambda 10, Adam lr 1e-4, betas
    (0.5, 0.9), n_critic 1, no batch norm in D (the penalty is per sample).
    """

    name = "dragan"


LOSSES: dict[str, type[GANLoss]] = {
    "minimax": Minimax,
    "nonsaturating": NonSaturating,
    "lsgan": LSGAN,
    "wgan": WGAN,
    "wgan-gp": WGANGP,
    "hinge": Hinge,
    "rsgan": RSGAN,
    "ragan": RaGAN,
    "ralsgan": RaLSGAN,
    "dragan": DRAGAN,
}

# Extra names for preset configurations: name -> (registry name, keyword arguments).
LOSS_PRESETS: dict[str, tuple[str, dict]] = {
    "lsgan-pearson": ("lsgan", {"preset": "pearson"}),    # a=-1, b=1, c=0
}


def get_loss(name: str, **kwargs) -> GANLoss:
    """The loss called ``name`` (a key of ``LOSSES`` or ``LOSS_PRESETS``), built with ``kwargs``.

    >>> get_loss("lsgan", a=-1, b=1, c=0)
    LSGAN(a=-1, b=1, c=0)
    """
    if name in LOSS_PRESETS:
        base, preset_kwargs = LOSS_PRESETS[name]
        return LOSSES[base](**{**preset_kwargs, **kwargs})
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES) + sorted(LOSS_PRESETS)}")
    return LOSSES[name](**kwargs)


# ---------------------------------------------------------------------------
# InfoGAN: the mutual-information term
# ---------------------------------------------------------------------------

def _as_tensor_like(value, like: Tensor, dtype=None) -> Tensor:
    """``value`` (a Tensor or an array) as a constant Tensor on ``like``'s device."""
    if isinstance(value, Tensor):
        return value if dtype is None or value.dtype == dtype else value.to(dtype=dtype)
    arr = np.asarray(value) if get_array_module(value) is np else value
    if dtype is not None:
        arr = arr.astype(dtype)
    return Tensor(to_device(arr, like.device))


def info_loss(q: dict, inputs: dict, lambda_cat: float = 1.0, lambda_cont: float = 0.1) -> Tensor:
    """InfoGAN's L_I (Chen et al. 2016, eq. 4-5), as a loss to minimise (with G and Q).

    The mutual information between the codes c and the sample G(z, c) is
    bounded below by

        I(c; G(z, c)) >= E_{c ~ P(c), x ~ G(z, c)}[log Q(c | x)] + H(c)

    and H(c) is a constant.  With Q(c|x) a categorical distribution for the
    categorical code and a Gaussian with unit variance for each continuous
    code, -log Q(c | x) is (up to constants)

        L_I = lambda_cat  * E[CE(cat_logits, c_cat)]
            + lambda_cont * E[ sum_j 1/2 (cont_mean_j - c_cont_j)^2 ]

    where CE(s, k) = -log softmax(s)_k.  ``q`` is the Q head's output
    ``{"cat_logits": (N, k), "cont_mean": (N, n_cont)}``; ``inputs`` holds
    the codes G was fed: ``"c_cat"`` int (N,) and ``"c_cont"`` float
    (N, n_cont), Tensors or arrays.  Either part may be missing (no
    categorical, or no continuous code).  ``lambda_cont`` = 0.1 follows the
    paper's advice to weigh continuous codes less (sec. 6).
    """
    total = None
    if "cat_logits" in q and "c_cat" in inputs:
        logits = q["cat_logits"]                                            # (N, k)
        ce = F.cross_entropy(logits, _as_tensor_like(inputs["c_cat"], logits))   # E[-log Q(c_cat | x)]
        total = lambda_cat * ce
    if "cont_mean" in q and "c_cont" in inputs:
        mean = q["cont_mean"]                                               # (N, n_cont)
        c = _as_tensor_like(inputs["c_cont"], mean, dtype=mean.dtype)
        nll = 0.5 * (mean - c).square().sum(axis=1).mean()                  # E[sum_j 1/2 (mu_j - c_j)^2]
        total = lambda_cont * nll if total is None else total + lambda_cont * nll
    if total is None:
        raise ValueError("info_loss: found no code to score; q needs 'cat_logits' (with inputs['c_cat']) "
                         "or 'cont_mean' (with inputs['c_cont'])")
    return total


# ---------------------------------------------------------------------------
# ACGAN: the class log-likelihood
# ---------------------------------------------------------------------------

__all__ += ["class_nll"]


def class_nll(class_logits: Tensor, labels) -> Tensor:
    """-E[log P(C = c | x)]: ACGAN's class log-likelihood as a loss (Odena et al. 2017, eq. 2-3).

    The paper's two log-likelihoods are

        L_S = E[log P(S = real | X_real)] + E[log P(S = fake | X_fake)]
        L_C = E[log P(C = c | X_real)]    + E[log P(C = c | X_fake)]

    and D maximises L_S + L_C while G maximises L_C - L_S.  With
    P(C | x) = softmax(class_logits), each term of L_C is minus this
    function: ``class_nll(c(x), y) = E[-log softmax(c(x))_y]``.  The D step
    adds ``class_nll(c(x_real), y) + class_nll(c(G(z, y)), y)`` (-L_C) to its
    loss, the G step ``class_nll(c(G(z, y)), y)`` (G's part of -L_C); L_S is
    whichever adversarial loss was chosen (the paper's is the GAN's, the
    non-saturating form for G).  ``class_logits`` (N, K); ``labels`` int (N,),
    a Tensor or an array.
    """
    return F.cross_entropy(class_logits, _as_tensor_like(labels, class_logits))   # E[-log P(C = y | x)]
