"""Each paper's training recipe, one line each: optimizer, learning rate, Adam's betas, critic steps, constraint.

A loss (``tinygan.gan.losses``) is only an objective; *how* a paper trained
with it lives here, in :data:`RECIPES`, and nowhere else.  The trainer, the
benchmark, the examples and the CLI's help all read this table; a command-line
value (``--lr``, ``--beta1``, ``--beta2``, ``--n-critic``) replaces the recipe's.

=============  =========  ======  ============  ========  ==========  =========  ===========
loss           optimizer  lr      betas         n_critic  clip_value  gp_weight  critic_norm
=============  =========  ======  ============  ========  ==========  =========  ===========
minimax        adam       2e-4    (0.5, 0.999)  1         -           -          batch
nonsaturating  adam       2e-4    (0.5, 0.999)  1         -           -          batch
lsgan          adam       2e-4    (0.5, 0.999)  1         -           -          batch
hinge          adam       2e-4    (0.5, 0.999)  1         -           -          batch
wgan           rmsprop    5e-5    -             5         0.01        -          batch
wgan-gp        adam       1e-4    (0.0, 0.9)    5         -           10         layer
rsgan          adam       2e-4    (0.5, 0.999)  1         -           -          batch
ragan          adam       2e-4    (0.5, 0.999)  1         -           -          batch
ralsgan        adam       2e-4    (0.5, 0.999)  1         -           -          batch
dragan         adam       1e-4    (0.5, 0.9)    1         -           10 (x+d)   layer
=============  =========  ======  ============  ========  ==========  =========  ===========

``gp_at`` says where the gradient penalty is taken: ``"interpolates"`` between
real and fake samples (WGAN-GP), ``"perturbed"`` around the real data (DRAGAN).
"""
from __future__ import annotations

import dataclasses

__all__ = ["Recipe", "DCGAN", "WGAN", "WGAN_GP", "DRAGAN", "RECIPES", "recipe_for"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a paper trains its GAN.

    ``optimizer``: ``"adam"`` or ``"rmsprop"`` (the same for G and D);
    ``lr``: the learning rate of both; ``betas``: Adam's (beta1, beta2), None for
    RMSprop; ``n_critic``: discriminator (critic) updates per generator
    update; ``clip_value``: WGAN's weight clipping c (critic weights clamped to
    [-c, c] after every critic update), or None; ``gp_weight``: WGAN-GP's
    lambda, or None; ``critic_norm``: the discriminator's normalisation
    (``"batch"``; ``"layer"`` where a per-sample gradient penalty forbids batch
    norm); ``gp_at``: where the penalty is taken (``"interpolates"`` between real and
    fake, WGAN-GP; ``"perturbed"`` around the real data, DRAGAN); ``source``: where
    the numbers come from.
    """

    optimizer: str
    lr: float
    betas: tuple[float, float] | None
    n_critic: int
    clip_value: float | None = None
    gp_weight: float | None = None
    critic_norm: str = "batch"
    gp_at: str = "interpolates"
    source: str = ""


# The three recipes of the papers the family comes from (one line each).
DCGAN = Recipe("adam", 2e-4, (0.5, 0.999), 1, source="Radford et al. 2016, sec. 4")
WGAN = Recipe("rmsprop", 5e-5, None, 5, clip_value=0.01, source="Arjovsky et al. 2017, Algorithm 1")
WGAN_GP = Recipe("adam", 1e-4, (0.0, 0.9), 5, gp_weight=10.0, critic_norm="layer",
                 source="Gulrajani et al. 2017, Algorithm 1")
DRAGAN = Recipe("adam", 1e-4, (0.5, 0.9), 1, gp_weight=10.0, critic_norm="layer", gp_at="perturbed",
                source="Kodali et al. 2017 and their reference code (lambda 10, delta = 0.5 std(x) U[0, 1))")

# Loss name -> its recipe.  LSGAN and the hinge loss were published with DCGAN's settings.
RECIPES: dict[str, Recipe] = {
    "minimax": DCGAN,
    "nonsaturating": DCGAN,
    "lsgan": DCGAN,
    "lsgan-pearson": DCGAN,
    "hinge": DCGAN,
    "wgan": WGAN,
    "wgan-gp": WGAN_GP,
    "rsgan": DCGAN,           # Jolicoeur-Martineau 2019: lr 2e-4, betas (0.5, 0.999), n_D = 1, as DCGAN
    "ragan": DCGAN,
    "ralsgan": DCGAN,
    "dragan": DRAGAN,
}


def recipe_for(loss) -> Recipe:
    """The recipe of a loss, given by name (``"wgan-gp"``) or as a loss object (its ``name``)."""
    name = loss if isinstance(loss, str) else getattr(loss, "name", None)
    if name not in RECIPES:
        raise ValueError(f"no training recipe for loss {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]
