"""Planted faults: Helion ports gone wrong in the ways a port can pass a weak gate, loaded through
HELION_BENCH_EXTRA_MODULES by tests/runner/test_planted_faults.py and run in Helion's interpret mode on CPU through
the real runner.  Each must end `incorrect`, with no time.

The kernel is a small two-output contract (`planted_pair`: y = x * w over columns, s = x + r), so the faults that
need a second output or a weight can be planted; the zeroed-row fault also runs on the real silu_and_mul port at a
large row count, where one row moves the global error ratio by only ~1/sqrt(rows).
"""

from __future__ import annotations

from typing import ClassVar

import helion
import helion.language as hl
import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Impl, Inputs, KernelSpec, Outputs, Prepared, Tolerance
from ports._port import Configs, HelionPort, Launch


class PlantedPairSpec(KernelSpec):
    id = "planted_pair"
    category = "test"
    catalog_rows = (0,)
    title = "y = x * w, s = x + r (planted-fault tests)"
    dtypes: ClassVar[tuple[str, ...]] = ("fp32",)
    token_dim = "T"

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return [Case(model.name, "test", {"T": 4096, "H": 64})]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"T": 4096, "H": 64})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        g = torch.Generator(device=device).manual_seed(seed)
        t, h = case.params["T"], case.params["H"]
        return {"x": torch.randn(t, h, generator=g, device=device),
                "r": torch.randn(t, h, generator=g, device=device),
                "w": 0.5 + torch.rand(h, generator=g, device=device)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> Outputs:
        return {"y": torch.empty_like(inputs["x"]), "s": torch.empty_like(inputs["x"])}

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> Outputs:
        x = inputs["x"].double()
        return {"y": x * inputs["w"].double(), "s": x + inputs["r"].double()}

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(3e-2, "planted: loose global bound, so only the local bound can catch one bad row")

    def flops(self, case: Case) -> float:
        return 2.0 * case.params["T"] * case.params["H"]

    def bytes(self, case: Case, dtype: str) -> float:
        return 4.0 * 5 * case.params["T"] * case.params["H"]


SPEC = PlantedPairSpec()


@helion.kernel(static_shapes=False)
def planted_pair_kernel(x: torch.Tensor, r: torch.Tensor, w: torch.Tensor, y: torch.Tensor,
                        s: torch.Tensor) -> None:
    for tile_t, tile_h in hl.tile([x.size(0), x.size(1)]):
        v = x[tile_t, tile_h]
        y[tile_t, tile_h] = v * w[tile_h][None, :]
        s[tile_t, tile_h] = v + r[tile_t, tile_h]


class GoodPair(HelionPort):
    """The correct port (control)."""

    kernel = "planted_pair"
    provider = "good_port"

    def default_configs(self, dims, dtype: str) -> Configs:
        return {"planted_pair_kernel": {"block_sizes": [16, 64], "num_warps": 4}}

    def launches(self, inputs: Inputs, out: Outputs, case: Case, dtype: str, configs: Configs) -> list[Launch]:
        assert isinstance(out, dict)
        return [Launch(planted_pair_kernel, (inputs["x"], inputs["r"], inputs["w"], out["y"], out["s"]))]


class _Planted(Impl):
    kernel = "planted_pair"
    port = GoodPair()

    def available(self) -> str | None:
        return self.port.available()

    def port_fn(self, inputs, out, case, dtype):
        return self.port.prepare(inputs, out, case, dtype).fn


class ZeroRow(_Planted):
    provider = "zero_row"

    def prepare(self, inputs, out, case, dtype):
        fn = self.port_fn(inputs, out, case, dtype)

        def call() -> None:
            fn()
            out["y"][case.params["T"] // 2].zero_()

        return Prepared(call)


class IgnoresWeights(_Planted):
    provider = "ignores_weights"

    def prepare(self, inputs, out, case, dtype):
        ones = {**inputs, "w": torch.ones_like(inputs["w"])}
        return Prepared(self.port_fn(ones, out, case, dtype))


class Precomputed(_Planted):
    """Runs the port in prepare and only copies its result in the timed call (a huge fake speedup)."""

    provider = "precomputed"

    def prepare(self, inputs, out, case, dtype):
        self.port_fn(inputs, out, case, dtype)()
        saved = {k: v.clone() for k, v in out.items()}

        def call() -> None:
            for k, v in saved.items():
                out[k].copy_(v)

        return Prepared(call)


class UnwrittenSecond(_Planted):
    provider = "unwritten_second"

    def prepare(self, inputs, out, case, dtype):
        scratch = torch.empty_like(out["s"])
        return Prepared(self.port_fn(inputs, {"y": out["y"], "s": scratch}, case, dtype))


class StaleAfterN(_Planted):
    """Right for its first calls, then replays a cached output (what a wrong graph-capture trick can do)."""

    provider = "stale_after_n"

    def prepare(self, inputs, out, case, dtype):
        fn = self.port_fn(inputs, out, case, dtype)
        state = {"calls": 0, "cache": None}

        def call() -> None:
            state["calls"] += 1
            if state["calls"] <= 3:
                fn()
                state["cache"] = {k: v.clone() for k, v in out.items()}
            else:
                for k, v in state["cache"].items():
                    out[k].copy_(v)

        return Prepared(call)


class SiluZeroRow(Impl):
    """The real silu_and_mul Helion port with one row zeroed, at a large row count."""

    kernel = "silu_and_mul"
    provider = "zero_row"

    def available(self) -> str | None:
        return None

    def prepare(self, inputs, out, case, dtype):
        from ports.activation.silu_and_mul import IMPL

        fn = IMPL.prepare(inputs, out, case, dtype).fn

        def call() -> None:
            fn()
            out[out.shape[0] // 3].zero_()

        return Prepared(call)


IMPLS = [GoodPair(), ZeroRow(), IgnoresWeights(), Precomputed(), UnwrittenSecond(), StaleAfterN(), SiluZeroRow()]
