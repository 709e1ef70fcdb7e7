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


@pytest.mark.parametrize("tokens,needle", [
    ("abc", "--tokens abc: 'abc' is not a positive integer"),
    ("1,-3", "'-3' is not a positive integer"),
    ("5", "--tokens 5: not a token count of the selection; valid: 1, 8, 32, 128, 512, 2048, 8192"),
])
def test_bad_tokens_are_one_line_naming_the_valid_counts(capsys, tokens, needle):
    # before any GPU check: bad input is reported the same on every machine
    assert main(["bench", "--category", "moe", "--kernel", "fused_moe", "--model", "qwen3-235b-a22b",
                 "--tokens", tokens]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert "no model in the selection" not in err


def test_kernel_of_another_category_names_its_category(capsys):
    assert main(["bench", "--category", "activation", "--kernel", "fused_moe"]) == 2
    err = capsys.readouterr().err.strip()
    assert "kernel 'fused_moe' belongs to category 'moe'" in err and "unknown" not in err
    assert len(err.splitlines()) == 1


def test_list_works_without_gpu_and_names_missing_trees(capsys, monkeypatch):
    """`harness list` on a CPU machine whose upstream trees are missing: every row still listed, the tree
    column tells "missing" from "present", and the missing trees are named with the command to fetch them."""
    import upstream_adapters._loader as loader

    real_load = loader.load

    def fake_load(name, **kw):
        up = real_load(name, **kw)
        if up.name != "vllm":
            return up
        missing = loader.Upstream(name=up.name, version=up.version, entry=up.entry)
        missing.unavailable = "vllm 0.33.0 not installed and no cache at .up/vllm: run scripts/fetch_upstreams.py"
        return missing

    monkeypatch.setattr(loader, "load", fake_load)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("fused_moe ")]
    by_provider = {r[3]: r for r in rows}
    assert by_provider["vllm"][4] == "missing" and by_provider["helion"][4] == "port"
    assert by_provider["sglang"][4] in ("present", "missing")
    assert "vllm: vllm 0.33.0 not installed and no cache at .up/vllm: run scripts/fetch_upstreams.py" in out
    assert "GPU: no CUDA GPU on this machine" in out
    assert "(the upstream Triton kernel is" not in out  # the old cut-off "unavailable: needs a CUDA GPU" cell


def test_make_list_needs_no_gpu_venv_or_upstream_fetch():
    """`make list` must not build the GPU venv or fetch trees (it did: `list: upstreams`)."""
    import shutil
    import subprocess
    from pathlib import Path

    if not shutil.which("make"):
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(["make", "-n", "-C", str(root), "list", "BENCH_VENV=/nonexistent-bench-venv"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "fetch_upstreams" not in res.stdout and "/nonexistent-bench-venv" not in res.stdout
    assert "-m harness list" in res.stdout
