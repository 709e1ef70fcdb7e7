"""A fake kernel and misbehaving impls, loaded through HELION_BENCH_EXTRA_MODULES by the runner tests.

The checker and the runner must catch every one of them: wrong numbers, an unwritten output buffer, a zeroed
output, an exception, a hard crash of the process, a hang, and an impl that says it is unavailable.
"""

from __future__ import annotations

import os
import signal
import time
from typing import ClassVar

import torch

from harness.shapes import ModelShapes
from harness.spec import Case, Impl, Inputs, KernelSpec, Prepared, Tolerance


class FakeScaleSpec(KernelSpec):
    id = "fake_scale"
    category = "test"
    catalog_rows = (0,)
    title = "out = 2 * x (runner tests)"
    dtypes: ClassVar[tuple[str, ...]] = ("fp32",)

    def cases(self, model: ModelShapes, quick: bool = False) -> list[Case]:
        return [Case(model.name, "test", {"n": 64})]

    def test_cases(self) -> list[Case]:
        return [Case("test", "test", {"n": 37}), Case("test", "test", {"n": 64})]

    def make_inputs(self, case: Case, dtype: str, device: torch.device, seed: int) -> Inputs:
        g = torch.Generator(device=device).manual_seed(seed)
        return {"x": torch.randn(case.params["n"], generator=g, device=device)}

    def make_output(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return torch.empty_like(inputs["x"])

    def reference(self, inputs: Inputs, case: Case, dtype: str) -> torch.Tensor:
        return inputs["x"].double() * 2

    def tolerance(self, dtype: str) -> Tolerance:
        return Tolerance(1e-6, "fp32 exact scale")

    def flops(self, case: Case) -> float:
        return float(case.params["n"])

    def bytes(self, case: Case, dtype: str) -> float:
        return 8.0 * case.params["n"]


SPEC = FakeScaleSpec()


class _Base(Impl):
    kernel = "fake_scale"

    def available(self) -> str | None:
        return None

    def versions(self) -> dict[str, str]:
        return {"fakeup": "1.2.3"}


class Good(_Base):
    provider = "good"

    def prepare(self, inputs, out, case, dtype):
        x = inputs["x"]
        return Prepared(lambda: torch.mul(x, 2, out=out), {"config": {"BLOCK": 64}, "config_source": "test"})


class Wrong(_Base):
    provider = "wrong"

    def prepare(self, inputs, out, case, dtype):
        x = inputs["x"]
        return Prepared(lambda: torch.mul(x, 2.01, out=out))


class Unwritten(_Base):
    provider = "unwritten"

    def prepare(self, inputs, out, case, dtype):
        x = inputs["x"]
        # writes only the first half: the NaN poison must show in the rest
        return Prepared(lambda: torch.mul(x[: x.numel() // 2], 2, out=out[: x.numel() // 2]))


class Zeroed(_Base):
    provider = "zeroed"

    def prepare(self, inputs, out, case, dtype):
        return Prepared(lambda: out.zero_())


class Raises(_Base):
    provider = "raises"

    def prepare(self, inputs, out, case, dtype):
        def fn():
            raise RuntimeError("kernel launch failed: invalid argument")

        return Prepared(fn)


class Crashes(_Base):
    provider = "crashes"

    def prepare(self, inputs, out, case, dtype):
        if case.params["n"] == 37:
            os.kill(os.getpid(), signal.SIGSEGV)  # the whole process dies, as a bad kernel can make it
        x = inputs["x"]
        return Prepared(lambda: torch.mul(x, 2, out=out))


class Hangs(_Base):
    provider = "hangs"

    def prepare(self, inputs, out, case, dtype):
        if case.params["n"] == 37:
            time.sleep(3600)
        x = inputs["x"]
        return Prepared(lambda: torch.mul(x, 2, out=out))


class Good2(Good):
    """A second correct impl that records the GPU slot it was given (CUDA_VISIBLE_DEVICES) in its notes."""

    provider = "good2"

    def prepare(self, inputs, out, case, dtype):
        prepared = super().prepare(inputs, out, case, dtype)
        prepared.info["notes"] = "slot " + os.environ.get("CUDA_VISIBLE_DEVICES", "-")
        return prepared


class Picky(Good):
    """Runs every case but n=37, which its (pretend) upstream cannot take."""

    provider = "picky"

    def case_reason(self, case, dtype):
        return "picky kernel needs n % 8 == 0" if case.params["n"] % 8 else None


class Crowded(Good):
    """Runs out of GPU memory while other jobs hold theirs: its first attempt at a row raises a CUDA OOM (a marker
    file under $HELION_BENCH_FAKE_OOM_DIR remembers it); `hog` (n=64) runs out of memory every time."""

    provider = "crowded"

    def prepare(self, inputs, out, case, dtype):
        n = case.params["n"]
        marker = os.path.join(os.environ["HELION_BENCH_FAKE_OOM_DIR"], f"crowded-{n}")
        if n == 64 or not os.path.exists(marker):
            open(marker, "a").close()
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 14.00 GiB.")
        return super().prepare(inputs, out, case, dtype)


class Missing(_Base):
    provider = "missing"

    def available(self) -> str | None:
        return "fakeup 9.9 not installed and no cache at .up/fakeup"

    def prepare(self, inputs, out, case, dtype):
        raise AssertionError("never called when unavailable")


IMPLS = [Good(), Good2(), Picky(), Wrong(), Unwritten(), Zeroed(), Raises(), Crashes(), Hangs(), Crowded(), Missing()]
