"""Modules and layers, shaped like ``torch.nn``.

Weight layouts and ``state_dict`` key names follow PyTorch (conv weight
``(out, in, kh, kw)``, transposed conv ``(in, out, kh, kw)``, batch norm
``weight, bias, running_mean, running_var, num_batches_tracked``), so a
PyTorch state_dict of the same architecture loads one to one.
"""
from tinygan.nn import init, utils
from tinygan.nn.layers import (BatchNorm1d, BatchNorm2d, BCELoss, BCEWithLogitsLoss, Conv2d, ConvTranspose2d,
                               CrossEntropyLoss, Dropout, Embedding, Flatten, Identity, L1Loss, LayerNorm, LeakyReLU,
                               Linear, MSELoss, ReLU, Sigmoid, Tanh, Unflatten, Upsample)
from tinygan.nn.module import IncompatibleKeys, Module, ModuleList, Parameter, Sequential, frozen
from tinygan.nn.spectral_norm import remove_spectral_norm, spectral_norm

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "Linear", "Conv2d", "ConvTranspose2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "LeakyReLU", "ReLU", "Tanh", "Sigmoid", "Embedding",
    "Flatten", "Unflatten", "Identity", "Dropout", "Upsample", "init", "frozen", "IncompatibleKeys",
    "BCEWithLogitsLoss", "BCELoss", "MSELoss", "L1Loss", "CrossEntropyLoss",
    "spectral_norm", "remove_spectral_norm", "utils",
]
