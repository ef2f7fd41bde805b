"""Pixel conventions shared by the models and their data: ImageNet normalisation.

Every network in the library (STCN's ResNets and EfficientNet, RF-VNG's backbones) takes RGB in [0, 1] normalised
with the ImageNet mean and std, the statistics their pre-trained weights were trained with::

    pixels = normalise_imagenet(frames.float() / 255)      # (..., 3, H, W)
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalise_imagenet"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise_imagenet(pixels: Tensor) -> Tensor:
    """(..., 3, H, W) float RGB in [0, 1] → ImageNet-normalised, on ``pixels``' device and dtype."""
    if pixels.ndim < 3 or pixels.shape[-3] != 3:
        raise ValueError(f"expected (..., 3, H, W) RGB, got shape {tuple(pixels.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=pixels.dtype, device=pixels.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=pixels.dtype, device=pixels.device).view(3, 1, 1)
    return (pixels - mean) / std
