"""`harness upstreams`: the lock entries a selection's upstream adapters import (what pack-carry packs)."""

from __future__ import annotations

import pytest

from harness import cli


def test_a_selection_names_its_adapters_upstreams_with_what_they_require() -> None:
    assert cli.needed_upstreams(["sageattn"], None) == ["sageattention"]
    # NVlabs' GatedDeltaNet imports fla.utils: its lock entry requires fla, so fla travels too
    assert cli.needed_upstreams(["gated_delta_rule_chunk"], ["gated-delta-net"]) == ["fla", "gated-delta-net"]
    assert cli.needed_upstreams(["w8a8_block_fp8_matmul"], ["vllm"]) == ["vllm"]
    assert cli.needed_upstreams(["w8a8_block_fp8_matmul", "sageattn"], ["helion"]) == []  # a port needs none


def test_the_command_prints_one_name_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["upstreams", "--kernel", "w8a8_block_fp8_matmul,sageattn"]) == 0
    assert capsys.readouterr().out.split() == ["sageattention", "sglang", "vllm"]
    assert cli.main(["upstreams", "--kernel", "no_such_kernel"]) == 2
    assert "unknown kernel 'no_such_kernel'" in capsys.readouterr().err
