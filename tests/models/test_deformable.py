"""Pure-PyTorch multi-scale deformable attention: sampling convention, masks and reference points."""

import torch

from vng.models.deformable import (DeformableEncoder, MultiScaleDeformableAttention, multi_scale_deformable_attention,
                                   valid_ratios)


def one_hot_sampling(value, shapes, location, level, heads=1):
    """Attention that puts all its weight on one point of one level."""
    num_levels = len(shapes)
    locations = torch.zeros(1, 1, heads, num_levels, 1, 2)
    locations[..., :] = torch.tensor(location)
    weights = torch.zeros(1, 1, heads, num_levels, 1)
    weights[:, :, :, level] = 1.0
    return multi_scale_deformable_attention(value, shapes, locations, weights)[0, 0]


def test_sampling_a_pixel_centre_returns_that_pixel():
    shapes = [(2, 4), (1, 2)]
    value = torch.arange(10 * 3, dtype=torch.float32).view(1, 10, 1, 3)  # 8 + 2 positions, 1 head of 3 channels
    # Level 0, row 1, column 2: centre at ((2 + 0.5) / 4, (1 + 0.5) / 2).
    assert one_hot_sampling(value, shapes, (2.5 / 4, 1.5 / 2), level=0).tolist() == value[0, 1 * 4 + 2, 0].tolist()
    # Level 1, column 1.
    assert one_hot_sampling(value, shapes, (1.5 / 2, 0.5), level=1).tolist() == value[0, 8 + 1, 0].tolist()


def test_sampling_between_centres_is_bilinear_and_outside_is_zero():
    shapes = [(1, 2)]
    value = torch.tensor([[[[2.0]], [[6.0]]]])  # (1, 2, 1, 1)
    assert one_hot_sampling(value, shapes, (0.5, 0.5), level=0).item() == 4.0
    assert one_hot_sampling(value, shapes, (-0.5, 0.5), level=0).item() == 0.0


def test_module_output_shape_and_padding():
    torch.manual_seed(0)
    attention = MultiScaleDeformableAttention(16, num_levels=2, num_heads=4, num_points=2)
    shapes = [(4, 4), (2, 2)]
    memory = torch.randn(2, 20, 16)
    query = torch.randn(2, 3, 16)
    reference = torch.rand(2, 3, 2, 2)
    output = attention(query, reference, memory, shapes)
    assert output.shape == (2, 3, 16)
    boxes = torch.cat([reference, torch.full_like(reference, 0.3)], -1)
    assert attention(query, boxes, memory, shapes).shape == (2, 3, 16)
    # Padding is zeroed: changing padded memory changes nothing.
    padding = torch.zeros(2, 20, dtype=torch.bool)
    padding[:, 12:16] = True
    changed = memory.clone()
    changed[:, 12:16] += 100
    assert torch.equal(attention(query, reference, memory, shapes, padding),
                       attention(query, reference, changed, shapes, padding))


def test_valid_ratios_and_encoder_reference_points():
    padding = torch.zeros(1, 4, 4, dtype=torch.bool)
    padding[:, :, 2:] = True  # right half padded
    ratios = valid_ratios(padding)
    assert ratios.tolist() == [[0.5, 1.0]]
    points = DeformableEncoder.reference_points([(4, 4)], ratios[:, None])
    # First pixel centre: x = 0.5 / (0.5 * 4) = 0.25 of the real width, then scaled back by the ratio → 0.125.
    assert points[0, 0, 0].tolist() == [0.125, 0.125]
