"""GAN objectives, each computed from discriminator *logits* in a numerically stable form.

With D(x) = sigmoid(l(x)) for a logit l:  log D(x) = -softplus(-l),
log(1 - D(x)) = -softplus(l).  Every loss below is something to *minimise*.
"""
from __future__ import annotations

from tinygan import functional as F
from tinygan.autograd import Tensor


class GANLoss:
    """A pair of objectives: ``d_loss`` for the discriminator (critic), ``g_loss`` for the generator."""

    name = "gan"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class NonSaturating(GANLoss):
    """The GAN paper's practical objective (DCGAN's recipe).

    D maximises  E[log D(x)] + E[log(1 - D(G(z)))], i.e. minimises
        E[softplus(-l(x))] + E[softplus(l(G(z)))]
    G maximises  E[log D(G(z))], i.e. minimises  E[softplus(-l(G(z)))].
    """

    name = "nonsaturating"

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits):
        return F.softplus(-fake_logits).mean()


class Minimax(NonSaturating):
    """The original minimax game: G minimises E[log(1 - D(G(z)))] = -E[softplus(l(G(z)))] (saturates)."""

    name = "minimax"

    def g_loss(self, fake_logits):
        return -F.softplus(fake_logits).mean()


LOSSES = {"nonsaturating": NonSaturating, "minimax": Minimax}


def get_loss(name: str, **kwargs) -> GANLoss:
    """The loss called ``name`` (see ``LOSSES``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    return LOSSES[name](**kwargs)
