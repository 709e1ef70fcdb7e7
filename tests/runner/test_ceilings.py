"""measure_ceilings never costs a run: a ceiling that fails is null with its reason (CPU: every one fails)."""

from __future__ import annotations

import torch

from harness import timing


def test_failed_ceilings_are_null_with_their_reason(monkeypatch):
    def ok(device):
        return 4512.34, "planted method"

    def boom(device):
        raise RuntimeError("no fp8 tensor cores here\nsecond line")

    monkeypatch.setattr(timing, "_CEILINGS", {"read_gbps": ok, "fp8_tflops": boom})
    monkeypatch.setattr(timing, "_bf16_tflops", boom)  # the warm-up fails too
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    values, method = timing.measure_ceilings(torch.device("cpu"))
    assert values == {"read_gbps": 4512.3, "fp8_tflops": None}
    assert method["read_gbps"] == "planted method"
    assert method["fp8_tflops"] == "not measured: RuntimeError: no fp8 tensor cores here"
    assert method["warmup"].startswith("failed: RuntimeError")


def test_every_ceiling_the_report_reads_is_measured():
    from harness import report

    keys = set(timing._CEILINGS)
    assert {"read_gbps", "copy_gbps", "bf16_tflops", "fp8_tflops", "int8_tops"} <= keys
    ceilings = dict.fromkeys(keys, 1.0)
    for dtype in ("bf16", "fp16", "fp8_w8a8_block128", "int8_w8a8", "w4a16"):
        key, _ = report.compute_ceiling(dtype, ceilings)
        assert key in keys
    assert report.bandwidth_ceiling(ceilings)[0] == "read_gbps"
    # the streaming read buffer is far larger than any L2 and at least the 2 GiB the method promises
    assert timing.READ_BYTES >= timing.MIN_READ_BYTES >= 2 << 30
