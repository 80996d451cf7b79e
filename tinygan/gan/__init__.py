"""GANs on tinygan: losses, penalties, models (DCGAN, MLP, conditional, InfoGAN) and the trainer."""
from tinygan.gan.dcgan import DCGANDiscriminator, DCGANGenerator, weights_init
from tinygan.gan.losses import (LOSS_PRESETS, LOSSES, LSGAN, WGAN, WGANGP, GANLoss, Hinge, Minimax,
                                NonSaturating, get_loss, info_loss)
from tinygan.gan.models import (MODELS, ConditionalDCGANDiscriminator, ConditionalDCGANGenerator,
                                ConditionalMLPDiscriminator, ConditionalMLPGenerator, InfoGANDiscriminator,
                                InfoGANGenerator, InfoGANMLPDiscriminator, InfoGANMLPGenerator,
                                MLPDiscriminator, MLPGenerator, build_gan, sample_grid_inputs)
from tinygan.gan.penalties import gradient_penalty, r1_penalty, weight_clip_

__all__ = [
    "DCGANGenerator", "DCGANDiscriminator", "weights_init",
    "GANLoss", "get_loss", "Minimax", "NonSaturating", "LSGAN", "WGAN", "WGANGP", "Hinge", "LOSSES",
    "LOSS_PRESETS", "info_loss",
    "gradient_penalty", "r1_penalty", "weight_clip_",
    "MLPGenerator", "MLPDiscriminator", "ConditionalMLPGenerator", "ConditionalMLPDiscriminator",
    "ConditionalDCGANGenerator", "ConditionalDCGANDiscriminator", "InfoGANGenerator", "InfoGANDiscriminator",
    "InfoGANMLPGenerator", "InfoGANMLPDiscriminator", "MODELS", "build_gan", "sample_grid_inputs",
]
