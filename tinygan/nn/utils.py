"""``torch.nn.utils``'s names that GAN code uses, so ``nn.utils.spectral_norm(conv)`` reads as in PyTorch.

The implementation lives in :mod:`tinygan.nn.spectral_norm` (also exported as
``tinygan.nn.spectral_norm``); this module only gives it PyTorch's address.
"""
from tinygan.nn.spectral_norm import remove_spectral_norm, spectral_norm

__all__ = ["spectral_norm", "remove_spectral_norm"]
