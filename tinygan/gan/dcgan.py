"""DCGAN (Radford, Metz & Chintala 2016), laid out as PyTorch's ``examples/dcgan/main.py``.

The architecture rules of the paper, all visible below:

* no pooling: the discriminator halves the resolution with stride-2
  convolutions, the generator doubles it with stride-2 transposed ones;
* batch norm in both networks, except the generator's output layer and the
  discriminator's input layer;
* no hidden fully connected layers: z (N, nz, 1, 1) is the input of a
  transposed convolution, and D ends with a convolution to one number;
* ReLU in the generator with Tanh at its output; LeakyReLU(0.2) in D.

For 64x64 images the layers, their order and their ``state_dict`` keys
(``main.0.weight`` ...) equal the PyTorch example's, so its weights load one
to one.  Other sizes add or remove a doubling stage: ``image_size`` must be
``4 * 2^k`` (8, 16, 32, 64, 128, ...) or ``7 * 2^k`` (14, 28, 56, ...), k >= 1.
The discriminator returns *logits* of shape (N,); the losses apply the
sigmoid inside a numerically stable softplus (the example's final ``Sigmoid``
layer has no parameters, so leaving it out changes no key).
"""
from __future__ import annotations

import numpy as np

from tinygan import nn
from tinygan.autograd import Tensor
from tinygan.gan.mbstd import MinibatchStdDev


def stages(image_size: int, who: str = "DCGAN") -> tuple[int, int]:
    """``(base, k)`` with ``image_size = base * 2^k``, base in {4, 7}, k >= 1; else a clear error."""
    for base in (4, 7):
        k, size = 0, base
        while size < image_size:
            size, k = size * 2, k + 1
        if size == image_size and k >= 1:
            return base, k
    raise ValueError(f"{who}: cannot build image_size={image_size}: it must be 4 * 2^k or 7 * 2^k with k >= 1 "
                     "(for example 28, 32 or 64)")


def weights_init(m: nn.Module) -> None:
    """The paper's initialisation: conv weights ~ N(0, 0.02), batch-norm weight ~ N(1, 0.02), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """z (N, nz, 1, 1) or (N, nz) -> image (N, nc, image_size, image_size) in [-1, 1].

    64x64: nz -> ngf*8 (4x4) -> ngf*4 (8x8) -> ngf*2 (16x16) -> ngf (32x32) -> nc (64x64).
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, image_size: int = 64, in_features: int | None = None):
        super().__init__()
        base, k = stages(image_size, "DCGANGenerator")
        self.nz, self.ngf, self.nc, self.image_size = nz, ngf, nc, image_size
        self.in_features = nz if in_features is None else in_features   # nz plus any conditioning
        mult = 2 ** (k - 1)
        layers: list[nn.Module] = [
            # (N, nz, 1, 1) -> (N, ngf*mult, base, base)
            nn.ConvTranspose2d(self.in_features, ngf * mult, base, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            # (N, ngf*mult, s, s) -> (N, ngf*mult/2, 2s, 2s)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2),
                       nn.ReLU(True)]
            mult //= 2
        # (N, ngf, s, s) -> (N, nc, 2s, 2s), squashed to [-1, 1]
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply_init()

    def apply_init(self) -> None:
        for m in self.modules():
            weights_init(m)

    def sample_inputs(self, n: int, rng: np.random.Generator) -> dict:
        """G's inputs for ``n`` samples, drawn on the host: ``{"z": float32 (n, nz)}``, z ~ N(0, I)."""
        return {"z": rng.standard_normal((n, self.nz)).astype(np.float32)}

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim == 2:
            z = z.reshape(z.shape[0], z.shape[1], 1, 1)          # (N, nz) -> (N, nz, 1, 1)
        if z.ndim != 4 or z.shape[1:] != (self.in_features, 1, 1):
            raise ValueError(f"DCGANGenerator: expected z of shape (N, {self.in_features}, 1, 1) or "
                             f"(N, {self.in_features}), got {z.shape}")
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    """image (N, nc, image_size, image_size) -> logits (N,).

    64x64: nc (64x64) -> ndf (32x32) -> ndf*2 (16x16) -> ndf*4 (8x8) -> ndf*8 (4x4) -> 1 (1x1).
    ``batch_norm=False`` (or ``norm="layer"``) builds the critic WGAN-GP asks for.
    """

    def __init__(self, nc: int = 3, ndf: int = 64, image_size: int = 64, norm: str = "batch",
                 in_channels: int | None = None, mbstd: bool = False):
        super().__init__()
        base, k = stages(image_size, "DCGANDiscriminator")
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"DCGANDiscriminator: norm must be 'batch', 'layer' or 'none', got {norm!r}")
        self.nc, self.ndf, self.image_size, self.norm = nc, ndf, image_size, norm
        self.in_channels = nc if in_channels is None else in_channels     # nc plus any conditioning maps
        layers: list[nn.Module] = [
            # (N, nc, S, S) -> (N, ndf, S/2, S/2); no batch norm on the input layer
            nn.Conv2d(self.in_channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult, size = 1, image_size // 2
        for _ in range(k - 1):
            # (N, ndf*mult, s, s) -> (N, ndf*mult*2, s/2, s/2)
            size //= 2
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                       self._norm_layer(ndf * mult * 2, size),
                       nn.LeakyReLU(0.2, inplace=True)]
            mult *= 2
        if mbstd:   # Karras et al. 2018: the group's stddev as one more map before the last layer
            layers += [MinibatchStdDev()]                                 # -> (N, ndf*mult + 1, base, base)
        self.features_channels = ndf * mult + int(bool(mbstd))
        # (N, ndf*mult, base, base) -> (N, 1, 1, 1): one logit per image
        layers += [nn.Conv2d(self.features_channels, 1, base, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        for m in self.modules():
            weights_init(m)

    def _norm_layer(self, channels: int, size: int) -> nn.Module:
        if self.norm == "batch":
            return nn.BatchNorm2d(channels)
        if self.norm == "layer":
            return nn.LayerNorm((channels, size, size))
        return nn.Identity()

    def forward(self, x: Tensor, labels=None) -> Tensor:
        if labels is not None:
            raise ValueError("DCGANDiscriminator: this discriminator is unconditional; got labels "
                             "(use the conditional models in tinygan.gan.models)")
        self._check_images(x, self.in_channels)
        return self.main(x).reshape(x.shape[0])                   # (N, 1, 1, 1) -> (N,)

    # The pieces for discriminators with a second head on the body's features (InfoGAN's Q, ACGAN's class).
    def _check_images(self, x: Tensor, channels: int) -> None:
        """A ``ValueError`` naming the class unless x is (N, channels, S, S)."""
        s = self.image_size
        if x.ndim != 4 or x.shape[1:] != (channels, s, s):
            raise ValueError(f"{type(self).__name__}: expected images of shape (N, {channels}, {s}, {s}), "
                             f"got {x.shape}")

    def _features(self, x: Tensor) -> Tensor:
        """The shared body, every layer but the last: (N, C_in, S, S) -> (N, C_f, base, base)."""
        for layer in list(self.main)[:-1]:
            x = layer(x)
        return x

    def _logits(self, h: Tensor) -> Tensor:
        """The last layer on the body's features: (N, C_f, base, base) -> (N, 1, 1, 1) -> (N,)."""
        return self.main[-1](h).reshape(h.shape[0])
