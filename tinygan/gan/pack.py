"""PacGAN's packing (Lin et al. 2018): the discriminator judges M samples at once.

Lin, Khetan, Fanti, Oh, "PacGAN: The power of two samples in generative
adversarial networks", NeurIPS 2018, sec. 3: instead of D(x), train
D(x_1, ..., x_M) on *packs* of M samples that are either all real or all
generated (each drawn independently).  A generator that collapses onto a few
modes produces packs with tell-tale repetitions, which a packed D sees and
a single-sample D cannot, so mode collapse is penalised.  The loss, the
optimizer and the generator are untouched; only D's input changes.

:class:`Packed` does it for any discriminator and any loss: it reshapes a
batch of N samples into N / M packs of M consecutive samples,

    vectors  (N, d)        -> (N/M, M d)          the M feature vectors concatenated
    images   (N, C, H, W)  -> (N/M, M C, H, W)    the M images stacked along the channels
                                                  (the paper's image experiments)

(one rule: the first non-batch axis grows M-fold, which for a C-contiguous
array is a free reshape) and hands the packs to the inner discriminator,
whose input is built M times as wide (:func:`tinygan.gan.models.build_gan`
with ``pack=M``).  The logits are (N/M,), one per pack; every loss of
:mod:`tinygan.gan.losses` takes means, so it needs no change.  The samples
of a batch are independent, so consecutive samples form independent packs,
as in the paper.

Penalties call D on (N, ...) inputs as before (``gradient_penalty``,
``r1_penalty``): the interpolation weight is drawn per sample and the
gradient norm is taken per sample, i.e. per member of a pack (see
``docs/theory.md``, section 12, for what that means for WGAN-GP and R1).

Conditional models (CGAN) and InfoGAN are refused: a pack holds M samples
of M different labels or codes, and neither the label input of D nor
InfoGAN's per-sample Q head has a meaning for it yet.
"""
from __future__ import annotations

import operator

from tinygan import nn
from tinygan.autograd import Tensor
from tinygan.backend import get_array_module, to_device

__all__ = ["Packed", "pack_samples", "check_pack"]


def check_pack(pack, who: str = "pack") -> int:
    """``pack`` as an int >= 1, or a ``ValueError`` naming ``who``."""
    try:
        if isinstance(pack, bool):
            raise TypeError
        pack = operator.index(pack)
    except TypeError:
        raise ValueError(f"{who}: the pack size must be an integer >= 1, got {pack!r}") from None
    if pack < 1:
        raise ValueError(f"{who}: the pack size must be an integer >= 1, got {pack}")
    return pack


def pack_samples(x: Tensor, pack: int, who: str = "Packed") -> Tensor:
    """(N, s_1, s_2, ...) -> (N/M, M s_1, s_2, ...): each group of M consecutive samples concatenated.

    For vectors the M feature vectors follow each other; for images (N, C, H, W)
    the M images are stacked along the channels (sample j of a pack occupies
    channels j C .. (j + 1) C - 1).  N must be a multiple of M.
    """
    if x.ndim < 2:
        raise ValueError(f"{who}: expected a batch of shape (N, ...) with at least one feature axis, got {x.shape}")
    n = x.shape[0]
    if n % pack:
        raise ValueError(f"{who}: a batch of {n} samples cannot be cut into packs of {pack} "
                         f"(the batch size must be a multiple of the pack size)")
    if pack == 1:
        return x
    return x.reshape((n // pack, pack * x.shape[1]) + tuple(x.shape[2:]))


class Packed(nn.Module):
    """D_pack(x_1, ..., x_M) = inner(concat(x_1, ..., x_M)): a discriminator on packs of M samples.

    ``forward(x)`` takes the usual batch (N, *in_shape), N a multiple of M, and
    returns logits (N/M,).  ``inner`` is any discriminator whose input is the
    packed shape (M * in_shape[0], *in_shape[1:]); :func:`tinygan.gan.models.build_gan`
    builds it with ``pack=M``.  Its ``state_dict`` keys are the inner
    network's with the prefix ``inner.``.
    """

    conditional = False

    def __init__(self, inner: nn.Module, pack: int):
        super().__init__()
        self.pack = check_pack(pack, type(self).__name__)
        if getattr(inner, "conditional", False) or hasattr(inner, "q_parameters"):
            raise ValueError(f"{type(self).__name__}: packing is for unconditional discriminators; "
                             f"{type(inner).__name__} takes labels or codes per sample")
        self.inner = inner

    def forward(self, x: Tensor, labels=None) -> Tensor:
        if labels is not None:
            raise ValueError(f"{type(self).__name__}: a packed discriminator is unconditional; got labels")
        return self.inner(pack_samples(x, self.pack, type(self).__name__))          # (N/M,)

    def on_copies(self) -> "PackedCopies":
        """A view that scores single points: D_pack(x, x, ..., x) for each x (N,) -> (N,), for pictures of D's field."""
        return PackedCopies(self)

    def extra_repr(self) -> str:
        return f"pack={self.pack}"


class PackedCopies:
    """``D(x)`` = the packed discriminator on M copies of each point: (N, ...) -> (N,).

    A packed D has no value at a single point; to draw its field
    (:func:`tinygan.viz.toy.discriminator_on`) each point is scored as a
    pack of M identical samples.  Shares the packed D's weights; not a Module
    of its own (nothing is registered twice).
    """

    def __init__(self, packed: Packed):
        self.packed = packed

    @property
    def training(self) -> bool:
        return self.packed.training

    @property
    def device(self) -> str:
        return self.packed.device

    def train(self, mode: bool = True):
        self.packed.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x: Tensor) -> Tensor:
        m = self.packed.pack
        xp = get_array_module(x._data)
        data = xp.repeat(x._data, m, axis=0)                                          # (N M, ...): x_i M times in a row
        return self.packed(Tensor(to_device(data, x.device)))                        # (N,)
