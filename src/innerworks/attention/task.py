"""The ``seq2seq`` training task: recipes with ``task: seq2seq`` train the attention lab's models.

Recipe sections:

- ``data``: :class:`innerworks.data.seq2seq.Seq2SeqTaskConfig` (one_to_one, reversal, sort, escan, scan,
  translation).
- ``model``: :class:`innerworks.models.seq2seq.Seq2SeqConfig` (ved, aed, ao, aed_qkv, aed_mha, ao_qkv, ao_mha,
  transformer).

Training minimises the masked cross-entropy over target tokens up to ``<eos>``, decoding with teacher forcing or
greedily as ``model.teacher_forcing`` says (the notes' default is greedy). Evaluation always decodes greedily and
reports ``phrase_accuracy`` (primary), ``word_accuracy``, ``loss`` (cross-entropy of the greedy logits) and, for
translation, ``bleu``. A split longer than :data:`EVAL_MAX_ROWS` rows (the paper-scale training split) is evaluated on a
fixed, seeded sample of that many rows; ``metrics.json`` says so per split (``n``, ``split_rows``, ``sampled``,
``sample_seed``).

>>> import torch
>>> task = Seq2SeqTask()
>>> data = task.build_data(task.validate_data({"task": "one_to_one", "min_length": 2, "max_length": 4,
...                                            "n_train": 16, "n_val": 4, "n_test": 4}), seed=0, run_dir=None)
>>> model = task.build_model(Seq2SeqConfig(arch="aed", hidden_size=8), data)
>>> batch = task.sample_batch(data.train, 4, torch.Generator().manual_seed(0))
>>> float(task.loss(model, batch, torch.device("cpu")).detach()) > 0
True
>>> sorted(task.evaluate(model, data.val, torch.device("cpu")))
['loss', 'n', 'phrase_accuracy', 'sampled', 'split_rows', 'word_accuracy']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from innerworks.data.seq2seq import Seq2SeqSplits, Seq2SeqTaskConfig, make_seq2seq_splits, parse_task_config
from innerworks.data.types import Seq2SeqDataset
from innerworks.errors import ConfigError
from innerworks.models.seq2seq import Seq2SeqBatch, Seq2SeqConfig, Seq2SeqModel, build_seq2seq
from innerworks.models.seq2seq_metrics import bleu, phrase_accuracy, sequence_loss, target_mask, word_accuracy
from innerworks.train.tasks import Task, register_task

# Extra greedy steps past the reference length when scoring BLEU, so longer hypotheses are not cut at the reference.
BLEU_SLACK = 10
# A split longer than this (in practice the 128k-row training split of the paper-scale recipes) is evaluated on a
# fixed, seeded sample of this many rows: greedy decoding of all of it took longer than training on a CPU.
EVAL_MAX_ROWS = 5000
# The sample's seed: the data seed plus this, so every run of one recipe evaluates the same rows.
EVAL_SAMPLE_SEED = 0


def eval_rows(dataset: Seq2SeqDataset, max_rows: int = EVAL_MAX_ROWS) -> tuple[Seq2SeqDataset, dict[str, float]]:
    """The rows :meth:`Seq2SeqTask.evaluate` decodes: the whole split when it has at most ``max_rows`` rows, else a
    fixed sample of ``max_rows`` rows (without replacement, in split order) drawn from the data seed, plus what
    ``metrics.json`` records about it (``split_rows``, ``sampled`` 0/1, ``sample_seed``).

    >>> from innerworks.data.seq2seq import make_seq2seq_splits
    >>> s = make_seq2seq_splits({"task": "one_to_one", "min_length": 2, "max_length": 4, "n_train": 30, "n_val": 2,
    ...                          "n_test": 2}, seed=0)
    >>> rows, info = eval_rows(s.train, 10); len(rows), info["sampled"], info["split_rows"]
    (10, 1.0, 30.0)
    >>> torch.equal(eval_rows(s.train, 10)[0].src, rows.src), eval_rows(s.train)[1]["sampled"]
    (True, 0.0)
    """
    n = len(dataset)
    if n <= max_rows:
        return dataset, {"split_rows": float(n), "sampled": 0.0}
    seed = int(dataset.meta.get("seed", 0)) + EVAL_SAMPLE_SEED
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_rows].sort().values
    return dataset.subset(idx), {"split_rows": float(n), "sampled": 1.0, "sample_seed": float(seed)}


def _trim(src: torch.Tensor, src_lengths: torch.Tensor, tgt: torch.Tensor, tgt_lengths: torch.Tensor) -> Seq2SeqBatch:
    """A batch cut to its longest source and target (padding beyond them changes nothing)."""
    return Seq2SeqBatch(src[:, : int(src_lengths.max())], src_lengths, tgt[:, : int(tgt_lengths.max())], tgt_lengths)


@register_task
class Seq2SeqTask(Task):
    """Sequence-to-sequence training on :class:`~innerworks.data.types.Seq2SeqDataset` splits."""

    name = "seq2seq"
    DataConfig = Seq2SeqTaskConfig
    ModelConfig = Seq2SeqConfig
    primary_metric = "phrase_accuracy"

    def __init__(self) -> None:
        self._vocabs: Seq2SeqSplits | None = None  # kept from build_data: BLEU needs the tokenizer to detokenize

    def validate_data(self, raw: dict[str, Any]) -> BaseModel:
        """Validate the recipe's ``data`` section; :class:`ConfigError` names the bad field."""
        return parse_task_config(raw)

    def build_data(self, data_cfg: BaseModel, seed: int, run_dir: Path | None) -> Seq2SeqSplits:
        """Generate or load the splits; vocabularies go to ``run_dir`` (``src_vocab.json``, ``tgt_vocab.json``)."""
        cfg = parse_task_config(data_cfg.model_dump() if isinstance(data_cfg, BaseModel) else data_cfg)
        splits = make_seq2seq_splits(cfg, seed, tokenizer_dir=run_dir)
        self._vocabs = splits
        return splits

    def build_model(self, model_cfg: BaseModel, data: Any) -> Seq2SeqModel:
        """A model sized for ``data``'s vocabularies, initialised from the data's seed (``data.train.meta['seed']``)."""
        cfg = model_cfg if isinstance(model_cfg, Seq2SeqConfig) else Seq2SeqConfig.model_validate(
            model_cfg.model_dump() if isinstance(model_cfg, BaseModel) else model_cfg)
        train: Seq2SeqDataset = data.train
        widest = max(max(ds.src_width, ds.tgt_width) for ds in (data.train, data.val, data.test))
        if widest > cfg.max_len:
            raise ConfigError(f"field 'model.max_len': {cfg.max_len} is shorter than the data's longest sequence "
                              f"({widest} tokens)")
        model = build_seq2seq(cfg, len(train.src_vocab), len(train.tgt_vocab), seed=int(train.meta.get("seed", 0)))
        model.check_vocab(train.src_vocab, train.tgt_vocab)
        return model

    def sample_batch(self, dataset: Seq2SeqDataset, batch_size: int, generator: torch.Generator) -> Seq2SeqBatch:
        """``batch_size`` rows drawn with replacement using only ``generator``, trimmed to their longest sequences."""
        idx = torch.randint(len(dataset), (batch_size,), generator=generator)
        return _trim(dataset.src[idx], dataset.src_lengths[idx], dataset.tgt[idx], dataset.tgt_lengths[idx])

    def loss(self, model: nn.Module, batch: Seq2SeqBatch, device: torch.device) -> torch.Tensor:
        """Masked cross-entropy (tokens up to ``<eos>``), decoding as ``model.cfg.teacher_forcing`` says."""
        b = batch.to(device)
        assert b.tgt is not None and b.tgt_lengths is not None
        logits = model(b.src, b.src_lengths, b.tgt, teacher_forcing=model.cfg.teacher_forcing)
        return sequence_loss(logits, b.tgt, b.tgt_lengths)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Seq2SeqDataset, device: torch.device,
                 batch_size: int = 256) -> dict[str, float]:
        """Greedy decoding of the split (a fixed, seeded sample of :data:`EVAL_MAX_ROWS` rows when it is longer, see
        :func:`eval_rows`): phrase/word accuracy, loss, BLEU for translation, and ``n`` (rows decoded),
        ``split_rows``, ``sampled`` (1.0 when a sample was decoded) and ``sample_seed``."""
        model.check_vocab(dataset.src_vocab, dataset.tgt_vocab)
        dataset, info = eval_rows(dataset)
        translation = dataset.meta.get("task") == "translation"
        n_rows = correct_rows = 0
        n_tokens = correct_tokens = 0
        loss_sum = 0.0
        preds: list[list[int]] = []
        for start in range(0, len(dataset), batch_size):
            sl = slice(start, start + batch_size)
            b = _trim(dataset.src[sl], dataset.src_lengths[sl], dataset.tgt[sl], dataset.tgt_lengths[sl]).to(device)
            assert b.tgt is not None and b.tgt_lengths is not None
            width = b.tgt.shape[1]
            steps = min(width + BLEU_SLACK, model.cfg.max_len) if translation else width
            logits = model(b.src, b.src_lengths, b.tgt, max_len=steps)
            pred = logits.argmax(-1)
            rows, tokens = b.batch_size, int(target_mask(b.tgt_lengths, width).sum())
            correct_rows += round(phrase_accuracy(pred, b.tgt, b.tgt_lengths) * rows)
            correct_tokens += round(word_accuracy(pred, b.tgt, b.tgt_lengths) * tokens)
            n_rows, n_tokens = n_rows + rows, n_tokens + tokens
            loss_sum += float(sequence_loss(logits[:, :width], b.tgt, b.tgt_lengths)) * tokens
            if translation:
                preds += pred.cpu().tolist()
        out = {"phrase_accuracy": correct_rows / n_rows, "word_accuracy": correct_tokens / n_tokens,
               "loss": loss_sum / n_tokens, "n": float(n_rows), **info}
        if translation:
            vocab: Any = dataset.tgt_vocab
            if self._vocabs is not None and self._vocabs.tgt_vocab.tokens == list(dataset.tgt_vocab):
                vocab = self._vocabs.tgt_vocab  # detokenizes subwords properly
            out["bleu"] = bleu(preds, dataset.tgt.tolist(), vocab)
        return out


__all__ = ["EVAL_MAX_ROWS", "Seq2SeqTask", "eval_rows"]
