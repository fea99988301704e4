"""eSCAN: concatenated SCAN commands over ``run walk jump left and twice`` (no ``left twice``), separated by ``<.>``
on both sides, with the ground-truth input-output alignment the attention lab compares its attention with.

The commands come from the SCAN grammar (:mod:`innerworks.data.scan_grammar`); :func:`make_escan` draws examples
vectorised over rows, and :func:`escan_alignment` / :func:`escan_offsets` recompute the alignment from the tokens.

>>> len(ESCAN_WORDS), len(ESCAN_ACTIONS), PERIOD
(6, 4, '<.>')
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from innerworks.data import scan_grammar
from innerworks.data.seq2seq.vocab import Seq2SeqVocab
from innerworks.data.types import EOS_ID, SRC_SPECIALS, TGT_SPECIALS, Seq2SeqDataset
from innerworks.errors import DataError

PERIOD = "<.>"
ESCAN_WORDS = ("walk", "run", "jump", "left", "twice", "and")
ESCAN_ACTIONS = ("I_WALK", "I_RUN", "I_JUMP", "I_TURN_LEFT")


def escan_commands() -> list[tuple[str, tuple[str, ...]]]:
    """The eSCAN commands: SCAN commands whose words are all in ``run walk jump left and twice`` (156 of them),
    without ``left twice`` (90 remain), as ``(command, actions)`` in grammar order.

    >>> cmds = escan_commands(); len(cmds), cmds[0]
    (90, ('walk', ('I_WALK',)))
    """
    return list(_escan_commands())


@lru_cache(maxsize=1)
def _escan_subset() -> tuple[str, ...]:
    return tuple(c for c in scan_grammar.enumerate_commands() if set(c.split()) <= set(ESCAN_WORDS))


@lru_cache(maxsize=1)
def _escan_commands() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((c, scan_grammar.interpret(c)) for c in _escan_subset() if "left twice" not in c)


def escan_command_alignment(command: str) -> list[tuple[str, int]]:
    """Ground-truth alignment of one eSCAN command: for each output action, the position (within the command) of
    the input word that produced it.

    The rule: a primitive produces its own action; in ``x left`` (output ``I_TURN_LEFT X``) the turn comes from
    ``left`` and ``X`` from ``x``; in ``x twice`` (output ``X X``) the first ``X`` comes from ``x`` and the second
    from ``twice``; ``and`` produces nothing. So (encoder - decoder) position grows by 1 after each ``and`` and is
    +1/-1 on the two tokens of ``x left``, as in the notes' ``find_scan_offset``.

    >>> escan_command_alignment("jump left and run twice")
    [('I_TURN_LEFT', 1), ('I_JUMP', 0), ('I_RUN', 3), ('I_RUN', 4)]
    """
    words = command.split()
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "and":
            i += 1
            continue
        if w not in ("walk", "run", "jump"):
            raise DataError(f"not an eSCAN command: {command!r}: unexpected {w!r} at word {i}")
        act = f"I_{w.upper()}"
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt == "left":
            if i + 2 < len(words) and words[i + 2] == "twice":
                raise DataError(f"not an eSCAN command: {command!r}: 'left twice' is excluded")
            out += [("I_TURN_LEFT", i + 1), (act, i)]
            i += 2
        elif nxt == "twice":
            out += [(act, i), (act, i + 1)]
            i += 2
        else:
            out.append((act, i))
            i += 1
    if tuple(a for a, _ in out) != scan_grammar.interpret(command):  # the alignment must reproduce SCAN's output
        raise DataError(f"not an eSCAN command: {command!r}")
    return out


def _escan_tables() -> dict[str, Any]:
    """Per-command token ids (with the trailing period) for vectorised assembly."""
    src_vocab = [*SRC_SPECIALS, *ESCAN_WORDS, PERIOD]
    tgt_vocab = [*TGT_SPECIALS, *ESCAN_ACTIONS, PERIOD]
    s_idx, t_idx = {w: i for i, w in enumerate(src_vocab)}, {w: i for i, w in enumerate(tgt_vocab)}
    cmds = escan_commands()
    src_rows = [[s_idx[w] for w in c.split()] + [s_idx[PERIOD]] for c, _ in cmds]
    tgt_rows = [[t_idx[a] for a in acts] + [t_idx[PERIOD]] for _, acts in cmds]
    def table(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lens = torch.tensor([len(r) for r in rows])
        tab = torch.zeros(len(rows), int(lens.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            tab[i, : len(r)] = torch.tensor(r)
        return tab, lens

    (st, sl), (tt, tl) = table(src_rows), table(tgt_rows)
    return {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "src": st, "src_len": sl, "tgt": tt, "tgt_len": tl}


def escan_vocabs() -> tuple[Seq2SeqVocab, Seq2SeqVocab]:
    """The closed eSCAN vocabularies (6 words + ``<.>``; 4 actions + ``<.>``), e.g. to encode your own examples.

    >>> s, t = escan_vocabs(); s.tokens[2:], t.tokens[3:]
    (['walk', 'run', 'jump', 'left', 'twice', 'and', '<.>'], ['I_WALK', 'I_RUN', 'I_JUMP', 'I_TURN_LEFT', '<.>'])
    """
    tabs = _escan_tables()
    return (Seq2SeqVocab(tabs["src_vocab"], "src", "closed", "escan.src"),
            Seq2SeqVocab(tabs["tgt_vocab"], "tgt", "closed", "escan.tgt"))


def escan_length_bounds(min_out: int = 10, max_out: int = 15, max_in: int = 27) -> tuple[int, int, int]:
    """``(shortest input, longest input, longest output)`` an eSCAN example can have (periods counted, ``<eos>``
    not), by dynamic programming over the output length; raise :class:`DataError` if no example fits.

    With the defaults the input cap of 27 never binds: inputs are at most 18 tokens (the dev run padded inputs to
    18), and outputs at most 14 (9 tokens before the last command, which adds at most 5).

    >>> escan_length_bounds()
    (10, 18, 14)
    """
    tabs = _escan_tables()
    ins, outs = tabs["src_len"].tolist(), tabs["tgt_len"].tolist()
    lo: list[float] = [float("inf")] * (max_out + 1)
    hi: list[float] = [-1.0] * (max_out + 1)
    lo[0] = hi[0] = 0
    for o in range(min(min_out, max_out + 1)):  # only unfinished states (output < min_out) can grow
        if hi[o] < 0:
            continue
        for i_c, o_c in zip(ins, outs, strict=True):
            if o + o_c <= max_out:
                lo[o + o_c] = min(lo[o + o_c], lo[o] + i_c)
                hi[o + o_c] = max(hi[o + o_c], hi[o] + i_c)
    final = [o for o in range(min_out, max_out + 1) if hi[o] >= 0]
    if not final or min(lo[o] for o in final) > max_in:
        raise DataError(f"no eSCAN example fits output {min_out}..{max_out} with input <= {max_in}")
    return (int(min(lo[o] for o in final)), int(min(max(hi[o] for o in final), max_in)), max(final))


def make_escan(n: int, generator: torch.Generator, min_out: int = 10, max_out: int = 15,
               max_in: int = 27) -> Seq2SeqDataset:
    """eSCAN examples, vectorised over rows: append uniformly drawn eSCAN commands, each followed by ``<.>`` on both
    sides; skip a command that would make the output longer than ``max_out``; stop once the output has ``>= min_out``
    tokens; reject (and redraw) an example whose input is longer than ``max_in``. Lengths count the periods, and
    ``<eos>`` comes after. Widths are fixed by :func:`escan_length_bounds` (19 source, 15 target by default).

    >>> ds = make_escan(4, torch.Generator().manual_seed(0))
    >>> int(ds.tgt_lengths.min()) >= 11, ds.src_width, ds.tgt_width
    (True, 19, 15)
    """
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    _, in_bound, out_bound = escan_length_bounds(min_out, max_out, max_in)
    tabs = _escan_tables()
    n_cmd = tabs["src"].shape[0]
    src_all, tgt_all, slen_all, tlen_all = [], [], [], []
    need, drawn, rejected, rounds = n, 0, 0, 0
    while need > 0:
        rounds += 1
        if rounds > 50:
            raise DataError(f"eSCAN: only {n - need} of {n} examples fit input <= {max_in} after {drawn} draws")
        m = need + need // 4 + 8  # over-draw a little to cover rejections
        drawn += m
        chosen = []
        out_len, in_len = torch.zeros(m, dtype=torch.long), torch.zeros(m, dtype=torch.long)
        active = torch.ones(m, dtype=torch.bool)
        for _ in range(20 * max_out):
            if not active.any():
                break
            c = torch.randint(0, n_cmd, (m,), generator=generator)
            ok = active & (out_len + tabs["tgt_len"][c] <= max_out)
            chosen.append(torch.where(ok, c, -1))
            out_len += torch.where(ok, tabs["tgt_len"][c], 0)
            in_len += torch.where(ok, tabs["src_len"][c], 0)
            active &= out_len < min_out
        keep = ~active & (in_len <= max_in)
        src, slen = _assemble(chosen, tabs["src"], tabs["src_len"], in_bound + 1)
        tgt, tlen = _assemble(chosen, tabs["tgt"], tabs["tgt_len"], out_bound + 1)
        idx = keep.nonzero().squeeze(1)[:need]
        # rows before the last one taken that failed the input cap (rows after it were never needed)
        rejected += (int(idx[-1]) + 1 - len(idx)) if len(idx) == need else m - len(idx)
        src_all.append(src[idx])
        tgt_all.append(tgt[idx])
        slen_all.append(slen[idx])
        tlen_all.append(tlen[idx])
        need -= len(idx)
    src, tgt = torch.cat(src_all), torch.cat(tgt_all)
    slen, tlen = torch.cat(slen_all), torch.cat(tlen_all)
    rows = torch.arange(n)
    src[rows, slen] = EOS_ID
    tgt[rows, tlen] = EOS_ID
    meta = {"task": "escan", "escan_subset_commands": len(_escan_subset()), "escan_commands": n_cmd,
            "min_out": min_out, "max_out": max_out, "max_in": max_in, "rejected_overlength_input": rejected,
            "alignment": "escan_command_alignment (see escan_alignment)"}
    return Seq2SeqDataset(src, slen + 1, tgt, tlen + 1, tabs["src_vocab"], tabs["tgt_vocab"], meta)


def _assemble(chosen: list[torch.Tensor], table: torch.Tensor, lens: torch.Tensor,
              width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate the chosen commands' token rows (index -1 = nothing this step) into ``[m, width]``."""
    m = chosen[0].shape[0]
    out = torch.zeros(m, width + table.shape[1], dtype=torch.long)  # slack so scatter never overflows
    pos = torch.zeros(m, dtype=torch.long)
    cols = torch.arange(table.shape[1])
    for c in chosen:
        valid = c >= 0
        cc = c.clamp(min=0)
        ln = torch.where(valid, lens[cc], 0)
        toks = torch.where(cols[None] < ln[:, None], table[cc], 0)
        tgt_cols = (pos[:, None] + cols[None]).clamp(max=out.shape[1] - 1)
        # add into the zero slots: positions >= pos are still 0, and masked tokens add 0
        out.scatter_add_(1, tgt_cols, toks)
        pos += ln
    return out[:, :width], pos.clamp(max=width - 1)


def escan_alignment(ds: Seq2SeqDataset) -> torch.Tensor:
    """Ground-truth alignment ``LongTensor [N, T]``: for each target position, the source position of the input
    word that produced it (:func:`escan_command_alignment` per command; ``<.>`` aligns to the input's ``<.>``,
    ``<eos>`` to the input's ``<eos>``); -1 at padding. Recomputed from the tokens, so it is valid for any subset;
    raises :class:`DataError` if a row is not eSCAN or its target disagrees with the rule.

    >>> from innerworks.data.seq2seq import encode_pairs
    >>> ds = encode_pairs(["run left and walk <.>"], ["I_TURN_LEFT I_RUN I_WALK <.>"], *escan_vocabs())
    >>> escan_alignment(ds).tolist()
    [[1, 0, 3, 4, 5]]
    """
    if PERIOD not in ds.src_vocab or PERIOD not in ds.tgt_vocab:
        raise DataError("escan_alignment needs an eSCAN dataset (no <.> token in its vocabularies)")
    sv, tv = ds.src_vocab, ds.tgt_vocab
    s_period, t_period = sv.index(PERIOD), tv.index(PERIOD)
    t_index = {w: i for i, w in enumerate(tv)}
    # per command (tuple of source ids): its target ids and the relative source position of each
    cache: dict[tuple[int, ...], tuple[list[int], list[int]]] = {}
    align = np.full(tuple(ds.tgt.shape), -1, dtype=np.int64)
    src_rows, tgt_rows = ds.src.tolist(), ds.tgt.tolist()
    src_len, tgt_len = ds.src_lengths.tolist(), ds.tgt_lengths.tolist()
    for r in range(len(ds)):
        ids = src_rows[r][: src_len[r] - 1]
        out_ids: list[int] = []
        pos: list[int] = []
        start = 0
        ends = [j for j, i in enumerate(ids) if i == s_period]
        if not ends or ends[-1] != len(ids) - 1:
            ends.append(len(ids))  # a last command without its period
        for j in ends:
            key = tuple(ids[start:j])
            if key not in cache:
                try:
                    pairs = escan_command_alignment(" ".join(sv[i] for i in key))
                    cache[key] = ([t_index[a] for a, _ in pairs], [p for _, p in pairs])
                except (DataError, KeyError) as exc:
                    raise DataError(f"row {r}: {exc}") from None
            t_ids, rel = cache[key]
            out_ids += t_ids
            pos += [start + p for p in rel]
            if j < len(ids):
                out_ids.append(t_period)
                pos.append(j)
            start = j + 1
        if out_ids != tgt_rows[r][: tgt_len[r] - 1]:
            words, acts = (" ".join(v[i] for i in x[r][: n[r] - 1]) for v, x, n in
                           ((sv, src_rows, src_len), (tv, tgt_rows, tgt_len)))
            raise DataError(f"row {r}: target {acts!r} is not the eSCAN output of {words!r}")
        align[r, : len(pos)] = pos
        align[r, len(pos)] = src_len[r] - 1  # <eos> -> <eos>
    return torch.from_numpy(align)


def escan_offsets(ds: Seq2SeqDataset, include_eos: bool = True) -> torch.Tensor:
    """Mean (encoder position - decoder position) of the ground-truth alignment per decoder position, ``[T]``
    (NaN where no row reaches that position). The attention lab compares it with the lag of the argmax of the
    temporal attention. ``include_eos=False`` leaves the ``<eos>`` step out of the average.

    On 100,000 default examples the curve is 0.33, 0.07, 1.01, 0.76, 1.08, 1.25, 1.50, 1.83, 1.89, 2.14, 2.29, 2.71,
    2.72, 2.93, 2.98. The notes' dev run reports about 0.3, 0.3, 1.0, 1.1, 1.0, 1.2, 1.4, 1.7, 2.0, 2.0, 2.1, 2.3,
    2.6, 3.0, 3.1 with an unpublished implementation of the same stated rule: same rise, RMS gap 0.18, largest at
    positions 1 and 3 (0.07 vs 0.3, 0.76 vs 1.1). Position 0 (1/3: the first command starts with ``x left``) and
    position 1 (1/15, from this alignment) follow analytically from uniform sampling of the 90 commands.

    >>> from innerworks.data.seq2seq import encode_pairs
    >>> ds = encode_pairs(["run left and walk <.>"], ["I_TURN_LEFT I_RUN I_WALK <.>"], *escan_vocabs())
    >>> escan_offsets(ds).tolist()
    [1.0, -1.0, 1.0, 1.0, 1.0]
    """
    align = escan_alignment(ds)
    valid = align >= 0
    if not include_eos:
        valid &= torch.arange(ds.tgt_width)[None] < (ds.tgt_lengths - 1)[:, None]
    off = (align - torch.arange(ds.tgt_width)[None]).float()
    count = valid.sum(0)
    total = torch.where(valid, off, 0.0).sum(0)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan)
