"""Multi-scale deformable attention (Deformable DETR, Zhu et al. 2021) in pure PyTorch, with its encoder/decoder layers.

Deformable DETR ships a custom CUDA kernel; its repository also carries the pure-PyTorch reference
(``ms_deform_attn_core_pytorch``) that the kernel is tested against. This module follows that reference: every query
looks at ``num_points`` bilinearly sampled locations (``F.grid_sample``) around its reference point on each of
``num_levels`` feature maps, with softmax weights predicted from the query. Nothing is compiled, so it runs on any
device; on a GPU it is slower than the kernel but identical in value.

Coordinates: reference points and sampling locations are ``(x, y)`` in ``[0, 1]`` of the *padded* feature map,
top-left ``(0, 0)``; ``grid_sample`` gets them as ``2 * loc - 1`` with ``align_corners=False`` (the kernel's convention:
pixel centres at ``(i + 0.5) / size``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DeformableDecoderLayer", "DeformableEncoder", "DeformableEncoderLayer", "MultiScaleDeformableAttention",
           "multi_scale_deformable_attention", "valid_ratios"]


def multi_scale_deformable_attention(value: Tensor, spatial_shapes: list[tuple[int, int]],
                                     sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
    """Weighted sum of bilinear samples of ``value`` (the core of deformable attention).

    Args:
        value: (N, S, M, D) float — per-head values of all levels flattened, ``S = sum(h * w)``, M heads of size D.
        spatial_shapes: ``[(h, w), ...]`` of the levels, in the order they are flattened in ``value``.
        sampling_locations: (N, Lq, M, L, P, 2) float — (x, y) in [0, 1] of P points per level and head.
        attention_weights: (N, Lq, M, L, P) float — softmax-normalised over (L, P).

    Returns:
        (N, Lq, M * D) float.
    """
    batch, _, heads, head_dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    samples = []
    for level, (height, width) in enumerate(spatial_shapes):
        # (N, h*w, M, D) -> (N*M, D, h, w)
        value_l = values[level].flatten(2).transpose(1, 2).reshape(batch * heads, head_dim, height, width)
        # (N, Lq, M, P, 2) -> (N*M, Lq, P, 2)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        # (N*M, D, Lq, P)
        samples.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    # (N, Lq, M, L, P) -> (N*M, 1, Lq, L*P)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, num_queries, num_levels * num_points)
    output = (torch.stack(samples, dim=-2).flatten(-2) * weights).sum(-1)  # (N*M, D, Lq)
    return output.view(batch, heads * head_dim, num_queries).transpose(1, 2)


class MultiScaleDeformableAttention(nn.Module):
    """Deformable attention over several feature levels (Deformable DETR's ``MSDeformAttn``).

    Args:
        d_model: channels of queries and values.
        num_levels: feature levels attended to.
        num_heads: attention heads; ``d_model`` must be divisible by it.
        num_points: sampling points per head and level (Deformable DETR: 4).
    """

    def __init__(self, d_model: int, *, num_levels: int, num_heads: int, num_points: int):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.num_levels, self.num_heads, self.num_points = num_levels, num_heads, num_points
        self.sampling_offsets = nn.Linear(d_model, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(d_model, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's init: head h samples along direction 2πh/M at distances 1..P, uniform weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True).values).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: Tensor, reference_points: Tensor, value: Tensor, spatial_shapes: list[tuple[int, int]],
                value_padding_mask: Tensor | None = None) -> Tensor:
        """Attend from each query to sampled locations around its reference point.

        Args:
            query: (N, Lq, C) float, positional embedding already added.
            reference_points: (N, Lq, L, 2) float, (x, y) in [0, 1] per level; or (N, Lq, L, 4) (cx, cy, w, h) boxes,
                in which case offsets are scaled by the box size (Deformable DETR's box refinement).
            value: (N, S, C) float, all levels flattened in ``spatial_shapes`` order.
            spatial_shapes: ``[(h, w), ...]`` per level.
            value_padding_mask: (N, S) bool, True at padding (zeroed values).

        Returns:
            (N, Lq, C) float.
        """
        batch, num_queries, _ = query.shape
        value = self.value_proj(value)
        if value_padding_mask is not None:
            value = value.masked_fill(value_padding_mask[..., None], 0.0)
        value = value.view(batch, value.shape[1], self.num_heads, -1)
        offsets = self.sampling_offsets(query).view(
            batch, num_queries, self.num_heads, self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, self.num_heads, -1).softmax(-1)
        weights = weights.view(batch, num_queries, self.num_heads, self.num_levels, self.num_points)
        if reference_points.shape[-1] == 2:
            # Offsets are in pixels of each level: normalise by (w, h).
            normaliser = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=query.dtype, device=query.device)
            locations = (reference_points[:, :, None, :, None, :]
                         + offsets / normaliser[None, None, None, :, None, :])
        elif reference_points.shape[-1] == 4:
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f"reference_points must end in 2 or 4 values, got {tuple(reference_points.shape)}")
        return self.output_proj(multi_scale_deformable_attention(value, spatial_shapes, locations, weights))


def valid_ratios(padding_mask: Tensor) -> Tensor:
    """Share of real pixels along x and y, from a top-left-aligned padding mask.

    Args:
        padding_mask: (N, h, w) bool, True at padding; real pixels form the top-left rectangle.

    Returns:
        (N, 2) float, (valid_w / w, valid_h / h).
    """
    _, height, width = padding_mask.shape
    valid_h = (~padding_mask[:, :, 0]).sum(1)
    valid_w = (~padding_mask[:, 0, :]).sum(1)
    return torch.stack([valid_w.float() / width, valid_h.float() / height], -1)


class _FeedForward(nn.Module):
    """Post-norm residual FFN: ``norm(x + dropout(W2 dropout(relu(W1 x))))``."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class DeformableEncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then FFN (post-norm, as Deformable DETR)."""

    def __init__(self, d_model: int, *, num_heads: int, num_levels: int, num_points: int, dim_feedforward: int,
                 dropout: float):
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(
            d_model, num_levels=num_levels, num_heads=num_heads, num_points=num_points)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)
        self.ffn = _FeedForward(d_model, dim_feedforward, dropout)

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor, spatial_shapes: list[tuple[int, int]],
                padding_mask: Tensor) -> Tensor:
        """src, pos: (N, S, C); reference_points: (N, S, L, 2); padding_mask: (N, S) bool → (N, S, C)."""
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes, padding_mask)
        return self.ffn(self.norm(src + self.dropout(attended)))


class DeformableEncoder(nn.Module):
    """A stack of :class:`DeformableEncoderLayer`; every pixel of every level is a query at its own centre."""

    def __init__(self, layers: list[DeformableEncoderLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def reference_points(spatial_shapes: list[tuple[int, int]], ratios: Tensor) -> Tensor:
        """Pixel centres of every level, normalised by the real (unpadded) size, as seen from every level.

        Args:
            ratios: (N, L, 2) float, :func:`valid_ratios` of each level.

        Returns:
            (N, S, L, 2) float (x, y).
        """
        points = []
        for level, (height, width) in enumerate(spatial_shapes):
            ys, xs = torch.meshgrid(
                torch.linspace(0.5, height - 0.5, height, dtype=ratios.dtype, device=ratios.device),
                torch.linspace(0.5, width - 0.5, width, dtype=ratios.dtype, device=ratios.device), indexing="ij")
            xs = xs.reshape(-1)[None] / (ratios[:, None, level, 0] * width)
            ys = ys.reshape(-1)[None] / (ratios[:, None, level, 1] * height)
            points.append(torch.stack([xs, ys], -1))
        return torch.cat(points, 1)[:, :, None] * ratios[:, None]

    def forward(self, src: Tensor, pos: Tensor, spatial_shapes: list[tuple[int, int]], ratios: Tensor,
                padding_mask: Tensor) -> Tensor:
        """src, pos: (N, S, C); ratios: (N, L, 2); padding_mask: (N, S) bool → memory (N, S, C)."""
        reference_points = self.reference_points(spatial_shapes, ratios)
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, padding_mask)
        return src


class DeformableDecoderLayer(nn.Module):
    """Self-attention among the queries, deformable cross-attention into the memory, FFN (post-norm)."""

    def __init__(self, d_model: int, *, num_heads: int, num_levels: int, num_points: int, dim_feedforward: int,
                 dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attn = MultiScaleDeformableAttention(
            d_model, num_levels=num_levels, num_heads=num_heads, num_points=num_points)
        self.dropout2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = _FeedForward(d_model, dim_feedforward, dropout)

    def forward(self, tgt: Tensor, query_pos: Tensor, reference_points: Tensor, memory: Tensor,
                spatial_shapes: list[tuple[int, int]], memory_padding_mask: Tensor) -> Tensor:
        """tgt, query_pos: (N, Q, C); reference_points: (N, Q, L, 2 or 4); memory: (N, S, C) → (N, Q, C)."""
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, k, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, reference_points, memory, spatial_shapes, memory_padding_mask)
        tgt = self.norm2(tgt + self.dropout2(attended))
        return self.ffn(tgt)
