"""Adapters of SGLang's LoRA kernels (upstream_adapters/lora/sglang_*.py).

On a CPU-only machine every IMPL's `available()` returns a one-line reason; where the SGLang cache tree exists
its kernel modules import through the loader (in a subprocess, with the adapters' own set-up), skipped with the
reason when device wheels (msgspec, ...) are absent from the CPU venv.  The LoRABatchInfo builders, which re-state
SGLang's backend segment logic, are checked against the invariants the kernels rely on.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harness.registry import specs
from upstream_adapters.lora._sglang import csgmv_batch_info, pool, sgemm_routing, triton_batch_info

ADAPTER_MODULES = [
    "upstream_adapters.lora.sglang_chunked_lora_shrink",
    "upstream_adapters.lora.sglang_chunked_lora_expand",
    "upstream_adapters.lora.sglang_qkv_lora_b",
    "upstream_adapters.lora.sglang_gate_up_lora_b",
    "upstream_adapters.lora.sglang_sgemm_lora_a",
    "upstream_adapters.lora.sglang_sgemm_lora_b",
]
DEVICE_WHEELS = ("msgspec", "pydantic")
FAKE_UTILS = SimpleNamespace(LoRABatchInfo=SimpleNamespace)  # keyword constructor, attribute access


def _impls():
    out = []
    for name in ADAPTER_MODULES:
        mod = importlib.import_module(name)
        out += [pytest.param(impl, id=f"{impl.kernel}-{impl.provider}") for impl in mod.IMPLS]
    return out


@pytest.mark.parametrize("impl", _impls())
def test_impl_matches_a_spec(impl):
    spec = specs()[impl.kernel]
    assert set(impl.dtypes or ()) <= set(spec.dtypes)
    assert impl.provider == "sglang" and impl.package == "sglang" and impl.backend in ("csgmv", "triton")
    assert "sglang.srt.lora.utils" in impl.modules


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
@pytest.mark.parametrize("impl", _impls())
def test_available_gives_a_reason_on_cpu(impl):
    reason = impl.available()
    assert isinstance(reason, str) and reason and "\n" not in reason


_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
import importlib
impl = importlib.import_module({adapter!r}).IMPLS[0]
reason = impl.import_reason()
up = impl._up
if up is not None and up.unavailable:
    print(json.dumps({{"unavailable": up.unavailable}}))
    raise SystemExit(0)
print(json.dumps({{"reason": reason, "batch_info": repr(getattr(sys.modules.get("sglang.srt.lora.utils"),
                                                                "LoRABatchInfo", None))}}))
"""


def _missing_device_wheels() -> list[str]:
    missing = []
    for name in DEVICE_WHEELS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


@pytest.mark.parametrize("adapter", ADAPTER_MODULES)
def test_upstream_modules_import_through_loader(adapter: str) -> None:
    """Each adapter in its own interpreter, so stand-ins do not leak into other tests."""
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(root=root, adapter=adapter)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        pytest.skip(f"sglang cache absent: {result['unavailable']}")
    missing = _missing_device_wheels()
    if result["reason"] and missing:
        pytest.skip(f"{adapter}: needs device wheels absent from the CPU venv ({', '.join(missing)}): "
                    f"{result['reason']}")
    assert result["reason"] is None, result["reason"]
    assert "sglang.srt.lora.utils.LoRABatchInfo" in result["batch_info"]  # the real dataclass, not a stand-in


def _tokens(seg_lens, slots):
    return torch.repeat_interleave(torch.tensor(slots), torch.tensor(seg_lens))


def test_csgmv_segments_cover_tokens_sorted_by_slot():
    seg_lens, slots = [3, 20, 1, 40, 2], [0, 2, 0, 1, 2]
    info = csgmv_batch_info(FAKE_UTILS, seg_lens, slots, [0, 16, 16], [0.0, 0.5, 0.75], 16, torch.device("cpu"))
    tokens = _tokens(seg_lens, slots)
    perm = info.permutation.long()
    assert sorted(perm.tolist()) == list(range(66)) and tokens[perm].tolist() == sorted(tokens.tolist())
    indptr = info.seg_indptr.tolist()
    # slot 0: 4 tokens (1 chunk), slot 1: 40 (3 chunks of <= 16), slot 2: 22 (2 chunks)
    assert indptr[0] == 0 and indptr[-1] == 66 and info.num_segments == len(indptr) - 1 == 6
    for i, w in enumerate(info.weight_indices.tolist()):
        rows = perm[indptr[i]:indptr[i + 1]]
        assert 1 <= len(rows) <= 16 and set(tokens[rows].tolist()) == {w}
    assert info.max_len == 16 and info.lora_ranks.dtype == torch.int32 and info.bs == 5
    assert info.req_seg_indptr.tolist() == [0, 3, 23, 24, 64, 66]


def test_triton_prefill_segments_are_requests_and_decode_routing_sorts():
    seg_lens, slots = [1] * 9, [0, 2, 1, 2, 0, 0, 1, 2, 2]
    info = triton_batch_info(FAKE_UTILS, seg_lens, slots, [0, 16, 16], [0.0, 0.5, 0.75], torch.device("cpu"))
    assert info.permutation is None and info.seg_indptr.tolist() == list(range(10)) and info.max_len == 1
    assert info.lora_ranks.dtype == torch.int64  # as TritonLoRABackend allocates them
    routed = sgemm_routing(FAKE_UTILS, info, 3)
    assert routed.bs == routed.num_segments == 3 and routed.max_len == 9
    assert routed.weight_indices.tolist() == [0, 1, 2] and routed.seg_lens.tolist() == [3, 2, 4]
    perm = routed.permutation.long()
    indptr = routed.seg_indptr.tolist()
    for slot in range(3):
        assert {slots[i] for i in perm[indptr[slot]:indptr[slot + 1]].tolist()} == {slot}


def test_pool_puts_the_base_model_in_slot_zero():
    w = torch.randn(3, 4, 5, dtype=torch.bfloat16)
    p = pool(w)
    assert p.shape == (4, 4, 5) and p.is_contiguous() and not p[0].any() and torch.equal(p[1:], w)
