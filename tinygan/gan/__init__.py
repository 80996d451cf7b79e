"""GANs on tinygan: the maths of the family, on top of ``tinygan.nn`` and ``tinygan.optim``.

=============  ===========================================================================
module         its one job
=============  ===========================================================================
``losses``     each objective L_D, L_G from D's logits (minimax, non-saturating, LSGAN, WGAN, hinge, relativistic); L_I
``penalties``  WGAN-GP's and DRAGAN's gradient penalties, R1, WGAN's weight clipping
``recipes``    each paper's optimizer, lr, betas, n_critic, clip value, lambda: one line each
``steps``      ``d_step`` / ``g_step``: (1) update D, (2) update G, as PyTorch's DCGAN example
``dcgan``      the DCGAN generator and discriminator (PyTorch's example layout), the paper's init
``models``     MLP, conditional (CGAN), InfoGAN and ACGAN networks; ``build_gan``
``augment``    DiffAugment: differentiable translation, cutout and color of D's inputs
``mbstd``      the minibatch standard-deviation layer
``unroll``     the unrolled GAN's K differentiable optimizer steps of D (functional copies)
``sampling``   drawing from a generator: batches, picture grids, latent walks
=============  ===========================================================================

Running a GAN (config, trainer, run folder, checkpoints) is the layer above: ``tinygan.run``.
"""
from tinygan.gan.dcgan import DCGANDiscriminator, DCGANGenerator, weights_init
from tinygan.gan.losses import (DRAGAN, LOSS_PRESETS, LOSSES, LSGAN, RSGAN, WGAN, WGANGP, GANLoss, Hinge, Minimax,
                                NonSaturating, RaGAN, RaLSGAN, get_loss, info_loss)
from tinygan.gan.models import (MODELS, ConditionalDCGANDiscriminator, ConditionalDCGANGenerator,
                                ConditionalMLPDiscriminator, ConditionalMLPGenerator, InfoGANDiscriminator,
                                InfoGANGenerator, InfoGANMLPDiscriminator, InfoGANMLPGenerator,
                                MLPDiscriminator, MLPGenerator, build_gan, sample_grid_inputs, spectral_normalize)
from tinygan.gan.penalties import dragan_penalty, gradient_penalty, r1_penalty, weight_clip_
from tinygan.gan.recipes import RECIPES, Recipe, recipe_for
from tinygan.gan.sampling import generate, grid_inputs, interpolation_inputs
from tinygan.gan.steps import d_step, g_step
from tinygan.gan.augment import DiffAugment
from tinygan.gan.losses import class_nll
from tinygan.gan.mbstd import MinibatchStdDev
from tinygan.gan.models import ACGANDiscriminator, ACGANMLPDiscriminator
from tinygan.gan.unroll import substituted, unrolled_parameters

__all__ = [
    "DCGANGenerator", "DCGANDiscriminator", "weights_init",
    "GANLoss", "get_loss", "Minimax", "NonSaturating", "LSGAN", "WGAN", "WGANGP", "Hinge", "LOSSES",
    "LOSS_PRESETS", "info_loss", "RSGAN", "RaGAN", "RaLSGAN", "DRAGAN",
    "gradient_penalty", "dragan_penalty", "r1_penalty", "weight_clip_", "spectral_normalize",
    "MLPGenerator", "MLPDiscriminator", "ConditionalMLPGenerator", "ConditionalMLPDiscriminator",
    "ConditionalDCGANGenerator", "ConditionalDCGANDiscriminator", "InfoGANGenerator", "InfoGANDiscriminator",
    "InfoGANMLPGenerator", "InfoGANMLPDiscriminator", "MODELS", "build_gan", "sample_grid_inputs",
    "Recipe", "RECIPES", "recipe_for", "d_step", "g_step", "generate", "grid_inputs", "interpolation_inputs",
    "ACGANDiscriminator", "ACGANMLPDiscriminator", "class_nll", "DiffAugment", "MinibatchStdDev",
    "unrolled_parameters", "substituted",
]
