"""Bad input fails fast: one line naming the valid choices, exit 2."""

from __future__ import annotations

import pytest
import torch

from harness.cli import main


@pytest.mark.parametrize("argv,needle", [
    (["bench", "--category", "nope"], "unknown category 'nope'; valid: "),
    (["bench", "--category", "moe", "--kernel", "nope"], "unknown kernel 'nope'; valid: "),
    (["bench", "--category", "moe", "--model", "nope"], "unknown model 'nope'; valid: "),
    (["bench", "--category", "moe", "--impl", "nope"], "unknown impl 'nope'; valid: "),
    (["bench", "--category", "moe", "--dtype", "fp4"], "unknown dtype 'fp4'; valid: bf16"),
])
def test_unknown_choices(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_no_gpu_points_to_make_report(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "--category", "moe", "--model", "qwen3-235b-a22b"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and "make report" in err


def test_malformed_yaml_names_file_and_key(capsys, monkeypatch, tmp_path):
    import harness.shapes as shapes

    bad = "name: bad\ndisplay_name: Bad\nsource: x\ntp: two\nhidden_size: 8\nregimes: {}\n"
    (tmp_path / "bad.yaml").write_text(bad)
    monkeypatch.setattr(shapes, "SHAPES_DIR", tmp_path)
    monkeypatch.setattr("harness.cli.load_all", lambda: shapes.load_all(tmp_path))
    assert main(["bench", "--category", "moe"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "'tp'" in err


def test_model_without_the_kernel_says_nothing_to_run(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert main(["bench", "--category", "moe", "--model", "gemma3-27b"]) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_catalog_coverage_counts_rows_by_their_upstream():
    from harness.cli import catalog_coverage

    matrix = [
        {"kernel": "fused_moe", "category": "moe", "provider": "vllm", "status": "pass", "reason": ""},
        {"kernel": "fused_moe", "category": "moe", "provider": "sglang", "status": "fail", "reason": "x"},
        {"kernel": "fused_moe", "category": "moe", "provider": "helion", "status": "pass", "reason": ""},
    ]
    cov = catalog_coverage(matrix)
    assert 41 in cov["passing"]  # row 41 is vLLM's fused_moe_kernel
    assert 42 in cov["failing"]  # row 42 is SGLang's: its adapter failed
    assert 19 in cov["no_triton"]  # Qwen gated attention: PyTorch-only
    assert 19 not in cov["triton_rows"]
    parts = ("passing", "failing", "unavailable", "not_run", "no_adapter")
    assert set().union(*(cov[p] for p in parts)) == set(cov["triton_rows"])


def test_make_gpu_targets_stop_early_without_a_gpu(tmp_path):
    """`make bench` on a CPU box must not go on to install a CUDA torch: it stops with a pointer to make report."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: the guard would pass")
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(["make", "-C", str(root), "bench", "CATEGORY=moe", "BENCH_VENV=" + str(tmp_path / "v")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "no NVIDIA GPU" in res.stderr and "make report" in res.stderr
    assert not (tmp_path / "v").exists()  # nothing was installed
