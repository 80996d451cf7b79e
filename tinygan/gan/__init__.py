"""GANs on tinygan: losses, models (DCGAN, MLP, conditional, InfoGAN) and the trainer."""
from tinygan.gan.dcgan import DCGANDiscriminator, DCGANGenerator, weights_init
from tinygan.gan.losses import GANLoss, get_loss

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "weights_init", "GANLoss", "get_loss"]
