"""The fused C++ GRU sequence equals the torch-ops one (outputs and every gradient, float64 and float32, every input
path), and the kernel choice falls back, warns and raises as documented."""

from __future__ import annotations

import warnings

import pytest
import torch

from innerworks.errors import InnerworksError
from innerworks.models.classifier import RNNClassifier
from innerworks.train import _grouped_kernel
from innerworks.train._grouped import GroupedClassifier
from innerworks.train._grouped_kernel import ENV_VAR, GroupedKernel, cpp_available, resolve

needs_cpp = pytest.mark.skipif(not cpp_available(), reason="the C++ grouped GRU extension does not compile here "
                                                            "(no C++ compiler or torch headers)")

TOL = {torch.float64: {"atol": 1e-12, "rtol": 1e-10}, torch.float32: {"atol": 1e-5, "rtol": 1e-4}}


def _run(kernel: str, dtype: torch.dtype, vocab: int, embed_dim: int | None, steps: int, hidden: int
         ) -> list[torch.Tensor]:
    """Logits, states and every stacked parameter's gradient of one seeded grouped GRU with ``kernel``."""
    torch.manual_seed(0)
    members = [RNNClassifier(vocab, 3, "gru", hidden_size=hidden, embed_dim=embed_dim) for _ in range(3)]
    model = GroupedClassifier(members, kernel=kernel).to(dtype)
    with torch.no_grad():  # a non-zero initial state, so the recurrent weights get a gradient at T = 1 too
        model.pdict()["cell.h0"].normal_()
    tokens = torch.randint(1, vocab, (3, 4, steps))
    tokens[:, 0, steps // 2 + 1:] = 0  # a padded row
    tokens[:, 2, steps // 2] = 0  # a padding id inside a row: a zero input
    lengths = torch.randint(1, steps + 1, (3, 4))
    logits = model.last_logits(tokens, lengths)
    states = model.states(tokens)
    (logits.square().sum() + states.sin().sum()).backward()
    with torch.no_grad():  # the forward without saved gates
        eval_states = model.states(tokens)
    grads = [p.grad for p in model.params]
    assert all(g is not None for g in grads)
    return [logits.detach(), states.detach(), eval_states, *grads]


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("vocab", "embed_dim"), [(6, None), (6, 4), (80, 4)])  # one-hot / table / per position
@pytest.mark.parametrize(("steps", "hidden"), [(1, 5), (7, 5), (7, 16), (3, 19)])
def test_cpp_equals_torch(dtype, vocab, embed_dim, steps, hidden):
    ref = _run("torch", dtype, vocab, embed_dim, steps, hidden)
    out = _run("cpp", dtype, vocab, embed_dim, steps, hidden)
    assert len(ref) == len(out) == 3 + len(RNNClassifier(vocab, 3, "gru", 5, embed_dim=embed_dim).state_dict())
    for i, (a, b) in enumerate(zip(ref, out, strict=True)):
        assert a.abs().max() > 0, i  # a gradient that is all zeros would compare equal vacuously
        torch.testing.assert_close(b, a, **TOL[dtype], msg=lambda m, i=i: f"tensor {i}: {m}")


@needs_cpp
def test_cpp_member_matches_standalone_model():
    torch.manual_seed(1)
    members = [RNNClassifier(7, 3, "gru", hidden_size=8) for _ in range(2)]
    grouped = GroupedClassifier(members, kernel="cpp")
    tokens = torch.randint(0, 7, (2, 5, 9))
    lengths = torch.tensor([[9, 3, 5, 9, 1], [2, 9, 9, 4, 6]])
    grouped.last_logits(tokens, lengths).sum().backward()
    for k, model in enumerate(members):
        RNNClassifier.last_logits(model(tokens[k]), lengths[k]).sum().backward()
        for (name, param), stacked in zip(model.named_parameters(), grouped.params, strict=True):
            torch.testing.assert_close(stacked.grad[k], param.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_auto_falls_back_when_the_extension_cannot_compile(monkeypatch):
    def no_compiler():
        raise OSError("no C++ compiler")

    monkeypatch.setattr(_grouped_kernel, "_build", no_compiler)
    _grouped_kernel._load.cache_clear()
    _grouped_kernel._warn_fallback.cache_clear()
    try:
        x = torch.zeros(2)
        assert not cpp_available()
        with pytest.warns(RuntimeWarning, match="no C.. compiler"):
            assert resolve("auto", x) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the warning comes once per process
            assert resolve(GroupedKernel.AUTO, x) is None
        with pytest.raises(InnerworksError, match="does not compile"):
            resolve("cpp", x)
        torch.manual_seed(0)
        members = [RNNClassifier(6, 3, "gru", hidden_size=4) for _ in range(2)]
        tokens, lengths = torch.randint(0, 6, (2, 3, 5)), torch.full((2, 3), 5)
        auto = GroupedClassifier(members).last_logits(tokens, lengths)
        plain = GroupedClassifier(members, kernel="torch").last_logits(tokens, lengths)
        assert torch.equal(auto, plain)
    finally:
        monkeypatch.undo()
        _grouped_kernel._load.cache_clear()
        _grouped_kernel._warn_fallback.cache_clear()


def test_kernel_choice_parsing_and_limits(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "Torch")
    members = [RNNClassifier(6, 3, "gru", hidden_size=4)]
    assert GroupedClassifier(members).kernel is GroupedKernel.TORCH
    assert GroupedClassifier(members, kernel="cpp").kernel is GroupedKernel.CPP
    monkeypatch.delenv(ENV_VAR)
    assert GroupedKernel.parse(None) is GroupedKernel.AUTO
    with pytest.raises(InnerworksError, match="grouped kernel: unknown kernel 'fast'"):
        GroupedKernel.parse("fast")
    monkeypatch.setenv(ENV_VAR, "gpu")
    with pytest.raises(InnerworksError, match=r"\$INNERWORKS_GROUPED_KERNEL: unknown kernel 'gpu'"):
        GroupedKernel.parse(None)
    monkeypatch.delenv(ENV_VAR)
    half = torch.zeros(2, dtype=torch.float16)
    assert resolve("auto", half) is None  # AUTO keeps dtypes the extension does not cover on the torch ops
    with pytest.raises(InnerworksError, match="float32/float64 on the CPU"):
        resolve("cpp", half)
