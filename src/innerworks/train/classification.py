"""The ``classification`` task: a recurrent text classifier on synthetic or natural text.

Recipe sections:

- ``data.source: synthetic`` plus the fields of :class:`innerworks.data.synthetic.SyntheticConfig`, or
  ``data.source: natural`` plus the fields of :class:`innerworks.data.natural.NaturalConfig`.
- ``model``: :class:`ClassifierConfig`.

>>> ClassifierConfig(cell="lstm", hidden_size=16).embed_dim is None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from innerworks.data.types import DataSplits, TextDataset
from innerworks.models.classifier import RNNClassifier
from innerworks.models.names import CellType
from innerworks.train.tasks import Task, register_task


class ClassifierConfig(BaseModel):
    """Model section for the classification task."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    cell: CellType = Field(CellType.GRU, validate_default=True)
    hidden_size: int = Field(128, ge=1)
    embed_dim: int | None = Field(None, ge=1, description="null: one-hot inputs (synthetic tasks)")
    readout_bias: bool = True


def _sub_config(source: str) -> type[BaseModel]:
    if source == "synthetic":
        from innerworks.data.synthetic import SyntheticConfig

        return SyntheticConfig
    from innerworks.data.natural import NaturalConfig

    return NaturalConfig


class ClassificationDataConfig(BaseModel):
    """Data section: ``source`` picks the generator/loader; the other fields are validated by that config class."""

    model_config = ConfigDict(extra="allow")

    source: Literal["synthetic", "natural"]

    def resolved(self) -> BaseModel:
        """The validated source-specific config."""
        return _sub_config(self.source).model_validate(self.model_extra or {})


@register_task
class ClassificationTask(Task):
    """Train on the last valid token's logits: softmax cross-entropy, or per-label BCE for multi-label data."""

    name = "classification"
    DataConfig = ClassificationDataConfig
    ModelConfig = ClassifierConfig
    primary_metric = "accuracy"

    def validate_data(self, raw: dict[str, Any]) -> BaseModel:
        cfg = ClassificationDataConfig.model_validate(raw)
        cfg.resolved()  # raises ValidationError for a bad source-specific field
        return cfg

    def build_data(self, data_cfg: BaseModel, seed: int, run_dir: Path | None) -> DataSplits:
        cfg = ClassificationDataConfig.model_validate(data_cfg.model_dump() if isinstance(data_cfg, BaseModel)
                                                      else data_cfg)
        sub = cfg.resolved()
        if cfg.source == "synthetic":
            from innerworks.data.synthetic import make_splits

            return make_splits(sub, seed)
        from innerworks.data.natural import load_natural

        tok_path = None if run_dir is None else Path(run_dir) / "tokenizer.json"
        splits, _ = load_natural(sub, seed, tokenizer_path=tok_path)
        return splits

    def build_model(self, model_cfg: BaseModel, data: DataSplits) -> RNNClassifier:
        cfg = ClassifierConfig.model_validate(model_cfg.model_dump() if isinstance(model_cfg, BaseModel)
                                              else model_cfg)
        return RNNClassifier(vocab_size=data.train.vocab_size, num_classes=data.train.num_classes, cell=cfg.cell,
                             hidden_size=cfg.hidden_size, embed_dim=cfg.embed_dim, readout_bias=cfg.readout_bias)

    def sample_batch(self, dataset: TextDataset, batch_size: int, generator: torch.Generator) -> Any:
        idx = torch.randint(len(dataset), (batch_size,), generator=generator)
        lengths = dataset.lengths[idx]
        width = int(lengths.max())
        return dataset.tokens[idx, :width], lengths, dataset.labels[idx]

    def loss(self, model: nn.Module, batch: Any, device: torch.device) -> torch.Tensor:
        tokens, lengths, labels = (t.to(device) for t in batch)
        logits = RNNClassifier.last_logits(model(tokens), lengths)
        if labels.dim() == 2:  # multi-label
            return F.binary_cross_entropy_with_logits(logits, labels.float())
        return F.cross_entropy(logits, labels)

    def evaluate(self, model: nn.Module, dataset: TextDataset, device: torch.device,
                 batch_size: int = 512) -> dict[str, float]:
        correct, exact, total, loss_sum = 0.0, 0.0, 0, 0.0
        for tokens, lengths, labels in dataset.batches(batch_size):
            width = int(lengths.max())
            tokens, lengths, labels = tokens[:, :width].to(device), lengths.to(device), labels.to(device)
            logits = RNNClassifier.last_logits(model(tokens), lengths)
            if labels.dim() == 2:
                pred = (logits > 0).float()
                correct += float((pred == labels).float().mean(dim=1).sum())
                exact += float((pred == labels).all(dim=1).sum())
                loss_sum += float(F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum"))
            else:
                correct += float((logits.argmax(-1) == labels).sum())
                loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            total += labels.shape[0]
        out = {"accuracy": correct / total, "loss": loss_sum / total, "n": float(total)}
        if dataset.multilabel:
            out["exact_match"] = exact / total
        return out
