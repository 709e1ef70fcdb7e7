"""The Gumbel-sample contract: the torch murmur3 vs plain-python uint32 arithmetic, greedy rows, sampling law."""

from __future__ import annotations

import math

import torch

from harness.correctness import compare
from harness.shapes import load_model
from harness.spec import Case
from harness.specs.sampling.gumbel_sample import SPEC, murmur3_hash32, murmur3_uniform32

CPU = torch.device("cpu")
M = 0xFFFFFFFF


def py_hash(seed: int, pos: int, offset: int) -> int:
    """murmur3_hash32 of vLLM's gumbel.py in Python integers (independent of the torch lanes)."""
    def rotl(v: int, s: int) -> int:
        return ((v << s) | (v >> (32 - s))) & M

    def mix(h: int, k: int) -> int:
        k = (k * 0xCC9E2D51) & M
        k = rotl(k, 15)
        k = (k * 0x1B873593) & M
        h = rotl(h ^ k, 13)
        return (h * 5 + 0xE6546B64) & M

    h = 0
    for key in (seed & M, (seed >> 32) & M, pos & M, offset & M):
        h = mix(h, key)
    h ^= 16
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    return h ^ (h >> 16)


def test_hash_matches_python_integers():
    seeds = torch.tensor([0, 1, 2**40 + 12345, 2**62 - 1], dtype=torch.int64)[:, None]
    pos = torch.tensor([0, 7, 31999, 5], dtype=torch.int64)[:, None]
    offs = torch.tensor([0, 1, 1023, 151935], dtype=torch.int64)[None, :]
    got = murmur3_hash32(seeds, pos, offs)
    for i in range(4):
        for j in range(4):
            assert int(got[i, j]) == py_hash(int(seeds[i, 0]), int(pos[i, 0]), int(offs[0, j]))
    u = murmur3_uniform32(seeds, pos, offs)
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0


def test_greedy_rows_take_the_argmax_and_output_is_exact():
    case = SPEC.check_cases()[0]
    inp = SPEC.make_inputs(case, "fp32", CPU, seed=1)
    ref = SPEC.reference(inp, case, "fp32")
    temps = inp["temperature"][inp["mapping"].long()]
    greedy = temps == 0
    assert greedy.any() and (~greedy).any()
    assert torch.equal(ref[greedy].long(), inp["logits"][greedy].argmax(1))
    assert compare(ref.long(), ref, SPEC.tolerance("fp32")).ok
    assert not compare(inp["logits"].argmax(1), ref, SPEC.tolerance("fp32")).ok  # noise ignored everywhere


def test_samples_follow_the_softmax():
    """Over many positions, the sampled token of one 4-token row follows softmax(logits / T)."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    n = 4000
    inp = {"logits": logits.expand(n, 4).contiguous(), "mapping": torch.zeros(n, dtype=torch.int32),
           "temperature": torch.tensor([1.5]), "seeds": torch.tensor([12345]), "pos": torch.arange(n)}
    ids = SPEC.reference(inp, Case("t", "test", {"B": n, "V": 4}), "fp32").long()
    freq = torch.bincount(ids, minlength=4).double() / n
    want = torch.softmax(logits[0].double() / 1.5, 0)
    assert torch.all((freq - want).abs() < 4 * torch.sqrt(want * (1 - want) / n) + 1e-3), (freq, want)


def test_cases_from_model():
    assert SPEC.cases(load_model("qwen3-235b-a22b"), quick=True)[0].params == {"B": 1, "V": 151936}
    assert math.isfinite(SPEC.flops(SPEC.check_cases()[0]))
