"""Attention adapters of the GitHub-only upstreams (FlashMLA's Triton MLA decode, MaxLSB/flash-attn2's
sliding-window forward/backward) and vLLM's chunked_prefill_paged_decode, on a machine without a GPU: every impl
gives a one-line reason, and each upstream module it launches imports through the loader (in its own interpreter)
where that upstream's cache tree exists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import registry
from upstream_adapters._loader import default_cache_dir, read_lock

PAIRS = {("mla_decode_attention", "flashmla"), ("swa_attention", "flash-attn2"),
         ("swa_attention_bwd", "flash-attn2"), ("chunked_prefill_paged_decode", "vllm")}
IMPLS = [registry.get_impl(k, p) for k, p in sorted(PAIRS)]
ROOT = str(Path(__file__).resolve().parents[2])


def _id(impl) -> str:
    return f"{impl.kernel}-{impl.provider}"


def test_pairs_registered_and_specs_list_the_rows():
    specs = registry.specs()
    for kernel, provider in PAIRS:
        assert provider in registry.providers(kernel)
        impl = registry.get_impl(kernel, provider)
        assert set(impl.dtypes or ()) <= set(specs[kernel].dtypes)
        assert impl.provider in registry.PROVIDERS or impl.provider in read_lock().upstreams
    # catalog coverage looks rows up by (spec listing the row, provider named after the row's source)
    assert {2, 3} <= set(specs["mla_decode_attention"].catalog_rows)
    assert specs["swa_attention"].catalog_rows == (4,) and specs["swa_attention_bwd"].catalog_rows == (5,)
    assert specs["chunked_prefill_paged_decode"].catalog_rows == (14,)
    assert read_lock().entry("github:deepseek-ai/FlashMLA").name == "flashmla"
    assert read_lock().entry("github:MaxLSB/flash-attn2").name == "flash-attn2"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU reason; this machine has a GPU")
@pytest.mark.parametrize("impl", IMPLS, ids=_id)
def test_available_gives_a_one_line_reason_without_gpu(impl):
    reason = impl.available()
    assert isinstance(reason, str) and reason and "\n" not in reason
    assert "CUDA" in reason


def _cache_tree(name: str) -> Path:
    path = default_cache_dir() / name
    if not path.exists():
        pytest.skip(f"{name} cache tree absent ({path}); scripts/fetch_upstreams.py fetches it")
    return path


def _probe(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_FA2_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from harness import registry
impl = registry.get_impl("swa_attention", "flash-attn2")
fa = impl.mod("src.flash_attention.flash_attention").FlashAttention
fwd = sys.modules["src.flash_attention.forward"]
bwd = sys.modules["src.flash_attention.backward"]
print(json.dumps({{"file": fa.forward.__code__.co_filename, "version": impl.versions(),
                   "kernels": [hasattr(fwd, "_attn_fwd"), hasattr(bwd, "_attn_bwd_dk_dv"), hasattr(bwd, "_attn_bwd_dq"),
                               hasattr(bwd, "_attn_bwd_preprocess")],
                   "backward": callable(getattr(fa, "backward", None))}}))
"""


def test_flash_attn2_imports_through_loader():
    tree = _cache_tree("flash-attn2")
    r = _probe(_FA2_PROBE.format(root=ROOT))
    assert r["file"].startswith(str(tree)) and all(r["kernels"]) and r["backward"]
    assert r["version"] == {"flash-attn2": read_lock().entry("flash-attn2").version}


# bench_flash_mla.py builds its benchmark shape table with CUDA tensors at import (torch.tensor(..., device="cuda")),
# so on a CPU-only torch the probe maps that one device argument to the CPU while the module imports.
_FLASHMLA_PROBE = """
import inspect, json, sys
sys.path.insert(0, {root!r})
import torch
from harness import registry
impl = registry.get_impl("mla_decode_attention", "flashmla")
real = torch.tensor
torch.tensor = lambda *a, **k: real(*a, **{{**k, "device": "cpu"}} if k.get("device") == "cuda" else k)
try:
    mod = impl.mod("benchmark.bench_flash_mla")
finally:
    torch.tensor = real
src = inspect.getsource(mod.mla_decode_triton)
print(json.dumps({{"file": mod.__file__, "ext_stand_in": impl._ext_stand_in, "stubbed": impl._up.stubbed,
                   "launchers": [callable(getattr(mod, n, None)) for n in ("mla_decode_triton", "_mla_attn",
                                                                           "_mla_softmax_reducev")],
                   "two_stages": "_mla_attn(" in src and "_mla_softmax_reducev(" in src,
                   "notes": impl.notes()}}))
"""


def test_flashmla_triton_path_imports_with_extension_stand_in():
    tree = _cache_tree("flashmla")
    r = _probe(_FLASHMLA_PROBE.format(root=ROOT))
    assert r["file"].startswith(str(tree)) and all(r["launchers"])
    # row 3 (_mla_softmax_reducev) is covered because row 2's launcher runs it as its second stage
    assert r["two_stages"]
    assert r["ext_stand_in"] and "flashinfer" in r["stubbed"]


_VLLM_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from harness import registry
impl = registry.get_impl("chunked_prefill_paged_decode", "vllm")
try:
    mod = impl.mod("vllm.v1.attention.ops.chunked_prefill_paged_decode")
except Exception as e:
    print(json.dumps({{"error": type(e).__name__ + ": " + str(e).splitlines()[0][:200]}}))
    raise SystemExit(0)
pp = sys.modules["vllm.v1.attention.ops.prefix_prefill"]
print(json.dumps({{"file": mod.__file__, "launcher": callable(getattr(mod, "chunked_prefill_paged_decode", None)),
                   "kernels": [hasattr(mod, "kernel_paged_attention_2d"), hasattr(pp, "_fwd_kernel")]}}))
"""


def test_vllm_chunked_prefill_imports_through_loader():
    tree = _cache_tree("vllm")
    r = _probe(_VLLM_PROBE.format(root=ROOT))
    if "error" in r:
        pytest.fail(r["error"])
    assert r["file"].startswith(str(tree)) and r["launcher"] and all(r["kernels"])


def test_rocm_attn_backend_calls_the_launcher_as_the_adapter_does():
    """The adapter replays RocmAttentionImpl.forward's call; the pinned source must still make it that way."""
    text = (_cache_tree("vllm") / "vllm/v1/attention/backends/rocm_attn.py").read_text()
    assert "chunked_prefill_paged_decode(" in text
    assert "sliding_window=1 + self.sliding_window[0]" in text
    assert "kv_cache_dtype=self.kv_cache_dtype" in text
