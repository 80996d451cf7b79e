"""GANs on tinygan: the maths of the family, on top of ``tinygan.nn`` and ``tinygan.optim``.

=============  ===========================================================================
module         its one job
=============  ===========================================================================
``losses``     each objective L_D, L_G from D's logits (minimax, non-saturating, LSGAN, WGAN, hinge); L_I
``penalties``  WGAN-GP's gradient penalty, R1, WGAN's weight clipping
``recipes``    each paper's optimizer, lr, betas, n_critic, clip value, lambda: one line each
``steps``      ``d_step`` / ``g_step``: (1) update D, (2) update G, as PyTorch's DCGAN example
``dcgan``      the DCGAN generator and discriminator (PyTorch's example layout), the paper's init
``models``     MLP, conditional (CGAN) and InfoGAN networks; ``build_gan``
``sampling``   drawing from a generator: batches, picture grids, latent walks
=============  ===========================================================================

Running a GAN (config, trainer, run folder, checkpoints) is the layer above: ``tinygan.run``.
"""
from tinygan.gan.dcgan import DCGANDiscriminator, DCGANGenerator, weights_init
from tinygan.gan.losses import (LOSS_PRESETS, LOSSES, LSGAN, WGAN, WGANGP, GANLoss, Hinge, Minimax,
                                NonSaturating, get_loss, info_loss)
from tinygan.gan.models import (MODELS, ConditionalDCGANDiscriminator, ConditionalDCGANGenerator,
                                ConditionalMLPDiscriminator, ConditionalMLPGenerator, InfoGANDiscriminator,
                                InfoGANGenerator, InfoGANMLPDiscriminator, InfoGANMLPGenerator,
                                MLPDiscriminator, MLPGenerator, build_gan, sample_grid_inputs)
from tinygan.gan.penalties import gradient_penalty, r1_penalty, weight_clip_
from tinygan.gan.recipes import RECIPES, Recipe, recipe_for
from tinygan.gan.sampling import generate, grid_inputs, interpolation_inputs
from tinygan.gan.steps import d_step, g_step

__all__ = [
    "DCGANGenerator", "DCGANDiscriminator", "weights_init",
    "GANLoss", "get_loss", "Minimax", "NonSaturating", "LSGAN", "WGAN", "WGANGP", "Hinge", "LOSSES",
    "LOSS_PRESETS", "info_loss",
    "gradient_penalty", "r1_penalty", "weight_clip_",
    "MLPGenerator", "MLPDiscriminator", "ConditionalMLPGenerator", "ConditionalMLPDiscriminator",
    "ConditionalDCGANGenerator", "ConditionalDCGANDiscriminator", "InfoGANGenerator", "InfoGANDiscriminator",
    "InfoGANMLPGenerator", "InfoGANMLPDiscriminator", "MODELS", "build_gan", "sample_grid_inputs",
    "Recipe", "RECIPES", "recipe_for", "d_step", "g_step", "generate", "grid_inputs", "interpolation_inputs",
]
