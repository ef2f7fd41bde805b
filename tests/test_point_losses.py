"""Point-STCN / STCN losses against hand-computed values: point sampling, point cross-entropy, Huberised and
bootstrapped cross-entropy."""

import math

import pytest
import torch

from vng.losses import bootstrapped_cross_entropy, huberised_cross_entropy, point_cross_entropy, sample_at_points


def test_sample_at_points_reads_pixel_centres():
    maps = torch.arange(12, dtype=torch.float32).view(1, 1, 3, 4)  # value = 4 y + x
    xy = torch.tensor([[[0.0, 0.0], [3.0, 2.0], [1.0, 2.0], [1.5, 0.0], [2.0, 0.5]]])
    assert sample_at_points(maps, xy)[0, 0].tolist() == pytest.approx([0, 11, 9, 1.5, 4], abs=1e-5)
    assert sample_at_points(maps.expand(2, 3, 3, 4), xy.expand(2, 5, 2)).shape == (2, 3, 5)


def uniform_logits(values, size=(4, 6)):
    """(1, C, H, W) logits equal to ``values`` (per class) everywhere."""
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1).expand(1, len(values), *size).contiguous()


def test_point_cross_entropy_one_object():
    logits = uniform_logits([0.0, math.log(3.0)])  # p(object) = 0.75
    xy = torch.tensor([[[1.0, 1.0], [4.0, 2.0], [0.0, 3.0]]])
    labels = torch.tensor([[1, 0, -1]])
    loss = point_cross_entropy(logits, xy, torch.ones(1, 3, dtype=torch.long), labels, reduction="none")
    assert loss[0].tolist() == pytest.approx([-math.log(0.75), -math.log(0.25), 0.0], rel=1e-6)
    mean = point_cross_entropy(logits, xy, torch.ones(1, 3, dtype=torch.long), labels)
    assert mean.item() == pytest.approx((-math.log(0.75) - math.log(0.25)) / 2, rel=1e-6)
    # with one object, the background term is the cross-entropy against the background class
    assert loss[0, 1].item() == pytest.approx(torch.nn.functional.cross_entropy(logits[:, :, 2, 4], torch.tensor([0]))
                                              .item(), rel=1e-6)


def test_point_cross_entropy_several_objects_and_no_points():
    logits = uniform_logits([0.0, math.log(2.0), 0.0])  # p = 1/4 (background), 1/2 (object 1), 1/4 (object 2)
    xy = torch.tensor([[[2.0, 2.0], [3.0, 1.0]]])
    loss = point_cross_entropy(logits, xy, torch.tensor([[1, 2]]), torch.tensor([[0, 1]]), reduction="none")
    # background point of object 1: -log(1 - 1/2) (it may lie on object 2); foreground point of object 2
    assert loss[0].tolist() == pytest.approx([math.log(2.0), math.log(4.0)], rel=1e-6)
    logits.requires_grad_(True)
    empty = point_cross_entropy(logits, xy, torch.tensor([[1, 2]]), torch.tensor([[-1, -1]]))
    empty.backward()
    assert empty.item() == 0 and not logits.grad.any()


def test_point_cross_entropy_background_weight():
    logits = uniform_logits([0.0, math.log(3.0)])  # p(object) = 0.75
    xy = torch.tensor([[[1.0, 1.0], [4.0, 2.0], [0.0, 3.0], [2.0, 2.0]]])
    labels = torch.tensor([[1, 0, 0, -1]])
    index = torch.ones(1, 4, dtype=torch.long)
    loss = point_cross_entropy(logits, xy, index, labels, background_weight=3.0, reduction="none")
    assert loss[0].tolist() == pytest.approx([-math.log(0.75), -3 * math.log(0.25), -3 * math.log(0.25), 0.0],
                                             rel=1e-6)
    mean = point_cross_entropy(logits, xy, index, labels, background_weight=3.0)
    assert mean.item() == pytest.approx((-math.log(0.75) - 6 * math.log(0.25)) / 7, rel=1e-6)
    # 3 foreground points and 1 background point on the same pixel: unweighted, the loss is lowest at p = 3/4
    # (the point density's prior); a background weight of 3 moves the minimum to p = 1/2, logit 0
    same = torch.tensor([[[2.0, 1.0]] * 4])
    labels = torch.tensor([[1, 1, 1, 0]])
    for weight, best in ((1.0, math.log(3.0)), (3.0, 0.0)):
        logit = torch.tensor(best, requires_grad=True)
        point_cross_entropy(torch.stack([torch.zeros(()), logit]).view(1, 2, 1, 1).expand(1, 2, 3, 4), same, index,
                            labels, background_weight=weight).backward()
        assert logit.grad.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="background_weight"):
        point_cross_entropy(logits, xy, index, labels, background_weight=0.0)


def test_point_cross_entropy_interpolates_between_pixels():
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 1, 0, 1] = 2.0  # object logit 0 at x = 0, 2 at x = 1
    loss = point_cross_entropy(logits, torch.tensor([[[0.5, 0.0]]]), torch.ones(1, 1, dtype=torch.long),
                               torch.ones(1, 1, dtype=torch.long))
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))), rel=1e-6)  # logit 1 halfway


def logits_for(p: float) -> torch.Tensor:
    """(1, 2, 1, 1) logits whose class-1 probability is p."""
    return torch.tensor([0.0, math.log(p / (1 - p))]).view(1, 2, 1, 1)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.2, 0.25, 0.5, 0.9])
def test_huberised_cross_entropy_by_hand(p):
    tau = 4.0
    loss = huberised_cross_entropy(logits_for(p), torch.ones(1, 1, 1, dtype=torch.long), tau=tau)
    expected = -tau * p + math.log(tau) + 1 if p <= 1 / tau else -math.log(p)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_huberised_cross_entropy_is_continuous_and_bounded():
    tau = 10.0
    target = torch.ones(1, 1, 1, dtype=torch.long)
    below = huberised_cross_entropy(logits_for(0.1 - 1e-6), target, tau=tau).item()
    above = huberised_cross_entropy(logits_for(0.1 + 1e-6), target, tau=tau).item()
    assert below == pytest.approx(math.log(10), abs=1e-4) and above == pytest.approx(math.log(10), abs=1e-4)
    # confidently wrong: linear (at most log(tau) + 1), where plain CE grows without bound
    assert huberised_cross_entropy(logits_for(1e-6), target, tau=tau).item() == pytest.approx(math.log(10) + 1, 1e-4)
    logits = torch.tensor([[[[5.0, 0.0]], [[-5.0, 0.0]]]])  # (1, 2, 1, 2); target 1
    elementwise = huberised_cross_entropy(logits, torch.ones(1, 1, 2, dtype=torch.long), tau=tau, reduction="none")
    assert elementwise.shape == (1, 1, 2) and elementwise[0, 0, 1].item() == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError):
        huberised_cross_entropy(logits, torch.ones(1, 1, 2, dtype=torch.long), tau=1.0)


def test_bootstrapped_cross_entropy_by_hand():
    # Two samples of 20 pixels, target 1 everywhere; pixel i of sample b has class-1 logit z = i / 4 + b:
    # cross-entropy softplus(-z) falls with i, so the hardest pixels are the first ones of each sample.
    z = torch.arange(20, dtype=torch.float32).view(1, 1, 20) / 4 + torch.tensor([0.0, 1.0]).view(2, 1, 1)
    logits = torch.stack([torch.zeros_like(z), z], 1)  # (2, 2, 1, 20)
    target = torch.ones(2, 1, 20, dtype=torch.long)
    ce = torch.nn.functional.softplus(-z).view(2, 20)

    loss, p = bootstrapped_cross_entropy(logits, target, 19_999)
    assert p == 1.0 and loss.item() == pytest.approx(ce.mean().item(), rel=1e-6)
    loss, p = bootstrapped_cross_entropy(logits, target, 45_000)  # halfway: p = 0.15 + 0.85 / 2 = 0.575
    assert p == pytest.approx(0.575)
    assert loss.item() == pytest.approx(ce[:, :11].mean().item(), rel=1e-6)  # int(20 * 0.575) = 11 per sample
    loss, p = bootstrapped_cross_entropy(logits, target, 70_001)
    assert p == 0.15 and loss.item() == pytest.approx(ce[:, :3].mean().item(), rel=1e-6)  # int(20 * 0.15) = 3
    loss, p = bootstrapped_cross_entropy(logits, target, 20_000)  # the annealing starts from all pixels
    assert p == 1.0 and loss.item() == pytest.approx(ce.mean().item(), rel=1e-6)
