"""The upstream loader and scripts/fetch_upstreams.py, on a fake upstream `fakeup` (CPU only, no network).

Everything lives under tmp_path; no real upstream is used. The loader mutates sys.modules and sys.path by design,
so every test runs inside the `isolated` fixture, which puts both back.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from upstream_adapters import _loader

VERSION = "1.2.3"
THIRD_PARTY = "fakeup_absent_thirdparty_dep"  # must not exist anywhere

# the fake upstream's files, tree-relative (as in its wheel)
FAKEUP_FILES: dict[str, str] = {
    "fakeup/__init__.py": 'raise ImportError("heavy")\n',
    "fakeup/ops/__init__.py": 'raise ImportError("heavy ops")\n',
    "fakeup/ops/helper.py": "def one():\n    return 1\n",
    "fakeup/ops/uses_ext.py": (
        "import fakeup._ext as ext\n\n\ndef call_ext():\n    return ext.fast_op(1)\n"
    ),
    "fakeup/ops/kern.py": (
        f"import {THIRD_PARTY}\n"
        f"from {THIRD_PARTY}.sub import Thing\n"
        "from fakeup.ops import helper\n\n\n"
        "class Derived(Thing):\n    pass\n\n\n"
        "def add_one(x):\n    return helper.one() + x\n"
    ),
    "fakeup/ops/needs_own.py": "import fakeup.not_there\n",
    "fakeup/configs/E=8,N=16,device_name=NVIDIA_H100_80GB_HBM3.json": "{}\n",
    "fakeup/configs/E=8,N=16,device_name=NVIDIA_A100-SXM4-80GB.json": "{}\n",
    "fakeup/configs/N=16,K=32,device_name=NVIDIA_H100_80GB_HBM3,dtype=fp8_w8a8.json": "{}\n",
    "fakeup/configs/N=16,K=32,device_name=NVIDIA_B200,dtype=fp8_w8a8.json": "{}\n",
    "fakeup/configs/defaults.json": "{}\n",
    "fakeup/README.md": "not kept\n",
    f"fakeup-{VERSION}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: fakeup\nVersion: {VERSION}\n",
    f"fakeup-{VERSION}.dist-info/RECORD": "",
}
WHEEL_NAME = f"fakeup-{VERSION}-py3-none-any.whl"
# top-level modules the tests create (the fake vLLM tree included); the isolation fixture removes them again
FAKE_TOPS = frozenset({"fakeup", "fgpkg", "vllm", THIRD_PARTY})


def lock_text(
    *,
    sha256: str = "0" * 64,
    stand_ins: tuple[str, ...] = ("fakeup._ext",),
    false_ops: tuple[str, ...] = (),
    git_commit: str = "1" * 40,
    git_requires: tuple[str, ...] = (),
    extra: str = "",
) -> str:
    def arr(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return f"""
lock_version = 1

[upstream.fakeup]
kind = "wheel"
dist = "fakeup"
version = "{VERSION}"
file = "{WHEEL_NAME}"
sha256 = "{sha256}"
packages = ["fakeup"]
aliases = ["github:nobody/fakeup"]
keep = ["fakeup/**/*.py", "fakeup/**/*.json", "fakeup-{VERSION}.dist-info/METADATA"]
drop = ["fakeup/ops/dropped.py"]
stand_ins = {arr(stand_ins)}
false_ops = {arr(false_ops)}

[upstream.fakegit]
kind = "git"
repo = "someone/fakegit"
commit = "{git_commit}"
keep = ["**/*.py"]
requires = {arr(git_requires)}
{extra}
"""


def write_lock(path: Path, **kwargs: object) -> _loader.Lock:
    path.write_text(lock_text(**kwargs))  # type: ignore[arg-type]
    return _loader.read_lock(path)


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        out = root / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def write_stamp(tree: Path, entry: _loader.LockEntry, version: str | None = None) -> None:
    stamp = {"name": entry.name, "version": version or entry.version, "pin": entry.pin}
    (tree / _loader.STAMP_NAME).write_text(json.dumps(stamp))


def build_wheel(path: Path, files: dict[str, str]) -> str:
    """A wheel-shaped zip (all fetch_upstreams needs); returns its sha256."""
    with zipfile.ZipFile(path, "w") as z:
        for rel, text in files.items():
            z.writestr(rel, text)
        z.writestr("fakeup/_ext.cpython-312-x86_64-linux-gnu.so", b"\x7fELF not really")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Fake:
    tmp: Path
    lock_path: Path
    lock: _loader.Lock
    cache: Path  # the cache folder (.up)

    @property
    def tree(self) -> Path:
        return self.cache / "fakeup"

    def relock(self, **kwargs: object) -> _loader.Lock:
        self.lock = write_lock(self.lock_path, **kwargs)
        _loader.forget_loaded()
        return self.lock

    def make_tree(self, version: str | None = None) -> Path:
        write_tree(self.tree, FAKEUP_FILES)
        write_stamp(self.tree, self.lock.entry("fakeup"), version)
        return self.tree

    def load(self, name: str = "fakeup") -> _loader.Upstream:
        return _loader.load(name, lock=self.lock, cache_dir=self.cache)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what loading does to the interpreter: new sys.modules entries, sys.path edits, the load() cache."""
    modules = set(sys.modules)
    path = list(sys.path)
    monkeypatch.delenv(_loader.CACHE_ENV, raising=False)
    _loader.forget_loaded()
    yield
    for name in set(sys.modules) - modules:
        # only what the fakes brought in: dropping e.g. lazily imported torch submodules would break torch
        if name.split(".")[0] in FAKE_TOPS or _loader.is_stand_in(sys.modules[name]):
            del sys.modules[name]
    sys.path[:] = path
    _loader.forget_loaded()
    importlib.invalidate_caches()


@pytest.fixture
def fake(tmp_path: Path) -> Fake:
    lock_path = tmp_path / "upstreams.lock"
    return Fake(tmp=tmp_path, lock_path=lock_path, lock=write_lock(lock_path), cache=tmp_path / ".up")


def git(*args: str, cwd: Path) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_mirror(tmp_path: Path) -> tuple[Path, str]:
    """A local repo laid out as an --offline mirror (DIR/<owner>+<repo>); returns (DIR, commit)."""
    offline = tmp_path / "mirrors"
    repo = offline / "someone+fakegit"
    repo.mkdir(parents=True)
    git("init", "-q", cwd=repo)
    write_tree(repo, {"fgpkg/__init__.py": "", "fgpkg/kern.py": "VALUE = 7\n", "README.md": "x\n"})
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "pinned", cwd=repo)
    commit = git("rev-parse", "HEAD", cwd=repo).strip()
    # a later commit: the fetch must take the pinned one, not HEAD
    (repo / "fgpkg" / "kern.py").write_text("VALUE = 8\n")
    git("commit", "-q", "-am", "later", cwd=repo)
    return offline, commit


REPO_ROOT = Path(__file__).resolve().parents[2]


def _fetch_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_upstreams", REPO_ROOT / "scripts" / "fetch_upstreams.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the script executes
    spec.loader.exec_module(mod)
    return mod


fetch = _fetch_module()
Capsys = pytest.CaptureFixture[str]
WheelSetup = tuple[Fake, Path]


# ---------------------------------------------------------------------------------------------- resolution


def test_missing_upstream_gives_a_specific_reason(fake: Fake) -> None:
    up = fake.load()
    assert not up and up.source is None and up.root is None
    tree = fake.cache / "fakeup"
    assert up.unavailable == (
        f"fakeup {VERSION} not installed and no cache at {tree}: run scripts/fetch_upstreams.py --only fakeup"
    )
    with pytest.raises(_loader.UpstreamUnavailable, match="no cache at"):
        up.import_module("fakeup.ops.helper")


def test_other_installed_version_is_named_in_the_reason(fake: Fake) -> None:
    site = fake.tmp / "site"
    write_tree(site, {"fakeup/__init__.py": "", "fakeup-0.9.dist-info/METADATA": "Name: fakeup\nVersion: 0.9\n"})
    sys.path.insert(0, str(site))
    up = fake.load()
    assert up.unavailable is not None
    assert up.unavailable.startswith(f"fakeup {VERSION} not installed (found 0.9) and no cache at ")


def test_installed_exact_version_wins_over_the_cache(fake: Fake) -> None:
    fake.make_tree()
    site = fake.tmp / "site"
    write_tree(site, {"fakeup/__init__.py": "", "fakeup/ops/helper.py": "def one():\n    return 'installed'\n",
                      f"fakeup-{VERSION}.dist-info/METADATA": f"Name: fakeup\nVersion: {VERSION}\n"})
    sys.path.insert(0, str(site))
    up = fake.load()
    assert (up.source, up.root, up.version) == ("installed", site.resolve(), VERSION)
    assert up.import_module("fakeup.ops.helper").one() == "installed"


def test_cache_tree_resolves_and_goes_first_on_sys_path(fake: Fake) -> None:
    fake.make_tree()
    up = fake.load()
    assert up.unavailable is None
    assert (up.source, up.root, up.version) == ("cache", fake.tree.resolve(), VERSION)
    assert sys.path[0] == str(fake.tree.resolve())
    assert fake.load() is up  # once per process
    assert _loader.load("github:nobody/fakeup", lock=fake.lock, cache_dir=fake.cache) is up  # alias


def test_cache_env_var_points_the_loader_elsewhere(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.make_tree()
    monkeypatch.setenv(_loader.CACHE_ENV, str(fake.cache))
    assert _loader.default_cache_dir() == fake.cache
    assert _loader.load("fakeup", lock=fake.lock).source == "cache"


def test_cache_built_for_another_version_is_refused(fake: Fake) -> None:
    fake.make_tree(version="1.0.0")
    up = fake.load()
    assert up.unavailable is not None
    assert "holds 1.0.0, the lock wants fakeup 1.2.3" in up.unavailable
    assert "--only fakeup" in up.unavailable


def test_unknown_upstream_name_lists_the_known_ones(fake: Fake) -> None:
    with pytest.raises(KeyError, match="known: fakegit, fakeup"):
        fake.load("nope")


# ------------------------------------------------------------------------------------------------- imports


def test_parent_package_init_files_are_bypassed(fake: Fake) -> None:
    fake.make_tree()
    up = fake.load()
    helper = up.import_module("fakeup.ops.helper")
    assert helper.one() == 1
    assert Path(helper.__file__) == fake.tree.resolve() / "fakeup" / "ops" / "helper.py"
    parent = sys.modules["fakeup.ops"]
    assert parent.__path__ == [str(fake.tree.resolve() / "fakeup" / "ops")]
    assert getattr(parent, "__helion_bench_parent_stub__", False)
    assert sys.modules["fakeup"].ops is parent
    assert sys.modules["fakeup"].__version__ == VERSION  # what kernel modules read from a skipped __init__


def test_without_stub_parents_the_heavy_init_runs(fake: Fake) -> None:
    fake.make_tree()
    with pytest.raises(ImportError, match="heavy"):
        fake.load().import_module("fakeup.ops.helper", stub_parents=False)


def test_compiled_extension_stand_in_raises_when_used(fake: Fake) -> None:
    fake.make_tree()
    up = fake.load()
    mod = up.import_module("fakeup.ops.uses_ext")
    assert up.stand_ins == ["fakeup._ext"]
    with pytest.raises(NotImplementedError) as info:
        mod.call_ext()
    assert str(info.value) == "fakeup._ext.fast_op needs a compiled extension (not loadable here)"


def test_missing_third_party_module_fails_without_stub_missing(fake: Fake) -> None:
    fake.make_tree()
    up = fake.load()
    with pytest.raises(ModuleNotFoundError) as info:
        up.import_module("fakeup.ops.kern")
    assert info.value.name == THIRD_PARTY
    assert up.stubbed == []


def test_stub_missing_stands_in_for_third_party_and_records_it(fake: Fake) -> None:
    fake.make_tree()
    up = fake.load()
    kern = up.import_module("fakeup.ops.kern", stub_missing=True)
    assert kern.add_one(41) == 42
    assert up.stubbed == [THIRD_PARTY, f"{THIRD_PARTY}.sub"]
    assert THIRD_PARTY in up.describe()
    assert issubclass(kern.Derived, kern.Thing)  # stand-in attributes can be subclassed at import time
    with pytest.raises(NotImplementedError, match=f"{THIRD_PARTY}.sub.Thing is a stand-in for missing"):
        kern.Thing()
    with pytest.raises(NotImplementedError, match=f"Derived is a stand-in for missing '{THIRD_PARTY}.sub'"):
        kern.Derived()


def test_stub_missing_never_stands_in_for_the_upstreams_own_modules(fake: Fake) -> None:
    fake.make_tree()
    up = fake.load()
    with pytest.raises(ModuleNotFoundError) as info:
        up.import_module("fakeup.ops.needs_own", stub_missing=True)
    assert info.value.name == "fakeup.not_there"
    assert up.stubbed == []


def test_import_outside_the_upstream_is_refused(fake: Fake) -> None:
    fake.make_tree()
    with pytest.raises(ValueError, match="not part of upstream fakeup"):
        fake.load().import_module("json")


def test_same_named_package_from_elsewhere_is_detected(fake: Fake) -> None:
    fake.make_tree()
    other = types.ModuleType("fakeup")
    other.__path__ = [str(fake.tmp / "elsewhere" / "fakeup")]
    sys.modules["fakeup"] = other
    with pytest.raises(ImportError, match="already imported from"):
        fake.load().import_module("fakeup.ops.helper")


def test_false_ops_are_defined_once_and_return_false(fake: Fake) -> None:
    torch = pytest.importorskip("torch")
    ns = "helion_bench_test_ns"
    fake.relock(false_ops=(f"{ns}::supports_thing(int cap) -> bool",))
    fake.make_tree()
    up = fake.load()
    up.import_module("fakeup.ops.helper")
    assert getattr(torch.ops, ns).supports_thing(90) is False
    assert up.false_ops == [f"{ns}::supports_thing"]
    # a second resolution (e.g. another process state) must not redefine it
    _loader.forget_loaded()
    again = fake.load()
    again.import_module("fakeup.ops.helper")
    assert again.false_ops == []


def test_packed_zip_is_unpacked_into_the_cache(fake: Fake) -> None:
    src = fake.tmp / "src" / "fakeup"
    write_tree(src, FAKEUP_FILES)
    write_stamp(src, fake.lock.entry("fakeup"))
    fake.cache.mkdir()
    with zipfile.ZipFile(fake.cache / "fakeup.zip", "w") as z:
        for p in src.rglob("*"):
            if p.is_file():
                z.write(p, f"fakeup/{p.relative_to(src).as_posix()}")
    up = fake.load()
    assert up.source == "cache" and up.root == fake.tree.resolve()
    assert up.import_module("fakeup.ops.helper").one() == 1
    assert not [p for p in fake.cache.iterdir() if "partial" in p.name]


def test_zip_for_another_version_is_not_unpacked(fake: Fake) -> None:
    src = fake.tmp / "src" / "fakeup"
    write_tree(src, {"fakeup/ops/helper.py": ""})
    write_stamp(src, fake.lock.entry("fakeup"), version="0.1")
    fake.cache.mkdir()
    with zipfile.ZipFile(fake.cache / "fakeup.zip", "w") as z:
        for p in src.rglob("*"):
            z.write(p, f"fakeup/{p.relative_to(src).as_posix()}")
    up = fake.load()
    assert up.unavailable is not None and "holds 0.1, the lock wants 1.2.3" in up.unavailable
    assert not fake.tree.exists()


def test_required_upstream_is_loaded_first_and_its_absence_explained(fake: Fake, git_mirror: tuple[Path, str]) -> None:
    offline, commit = git_mirror
    fake.relock(git_commit=commit, git_requires=("fakeup",))
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakegit")) == 0
    up = fake.load("fakegit")
    assert up.unavailable == f"someone/fakegit@{commit[:12]} needs fakeup: fakeup {VERSION} not installed and no " \
        f"cache at {fake.tree}: run scripts/fetch_upstreams.py --only fakeup"
    _loader.forget_loaded()
    fake.make_tree()
    up = fake.load("fakegit")
    assert up.source == "cache" and [r.name for r in up.requires] == ["fakeup"]
    assert sys.path.index(str(up.root)) < sys.path.index(str(fake.tree.resolve()))
    # a required upstream's module is never replaced by a stand-in
    assert not up._may_stub("fakeup.anything") and up._may_stub(THIRD_PARTY)


# ---------------------------------------------------------------------------------------------------- lock


def test_lock_parses_entries_and_aliases(fake: Fake) -> None:
    e = fake.lock.entry("fakeup")
    assert (e.kind, e.dist, e.version, e.file, e.packages) == ("wheel", "fakeup", VERSION, WHEEL_NAME, ("fakeup",))
    assert fake.lock.entry("github:nobody/fakeup") is e
    g = fake.lock.entry("fakegit")
    assert (g.kind, g.version, g.pin, g.label) == ("git", "1" * 40, "1" * 40, "someone/fakegit@111111111111")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('sha256 = "' + "0" * 64 + '"', ""), r"\[upstream.fakeup\]: missing 'sha256'"),
        (lambda t: t.replace('sha256 = "' + "0" * 64, 'sha256 = "abc'), r"\[upstream.fakeup\]: 'sha256' must be"),
        (lambda t: t.replace('kind = "git"', 'kind = "svn"'), r"\[upstream.fakegit\]: 'kind' must be one of"),
        (lambda t: t.replace('commit = "' + "1" * 40, 'commit = "main'), r"\[upstream.fakegit\]: 'commit' must be"),
        (lambda t: t.replace('keep = ["**/*.py"]', 'keep = ["**/*.py"]\nkeeep = []'),
         r"\[upstream.fakegit\]: unknown key\(s\) keeep"),
        (lambda t: t.replace('keep = ["**/*.py"]', 'keep = "**/*.py"'), r"\[upstream.fakegit\]: 'keep' must be a list"),
        (lambda t: t.replace("lock_version = 1", "lock_version = 2"), "lock_version must be 1"),
        (lambda t: t + "\n[upstream.broken\n", "not valid TOML"),
        (lambda t: t.replace('stand_ins = ["fakeup._ext"]', 'stand_ins = ["torch._C"]'),
         r"\[upstream.fakeup\]: stand-in 'torch._C' would replace a core module"),
        (lambda t: t.replace("requires = []", 'requires = ["nope"]'),
         r"\[upstream.fakegit\]: requires unknown upstream 'nope'"),
        (lambda t: t.replace("requires = []", 'requires = ["fakegit"]'),
         r"\[upstream.fakegit\]: 'requires' loops: fakegit -> fakegit"),
    ],
)
def test_bad_lock_names_the_entry(tmp_path: Path, edit: object, message: str) -> None:
    path = tmp_path / "upstreams.lock"
    path.write_text(edit(lock_text()))  # type: ignore[operator]
    with pytest.raises(_loader.LockError, match=message):
        _loader.read_lock(path)


def test_device_wheels_must_be_unique_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "upstreams.lock"
    sha = "a" * 64
    wheel = f'[[device_wheels.wheels]]\nname = "pydantic"\nversion = "2.0"\nfile = "p.whl"\nsha256 = "{sha}"\n'
    path.write_text(lock_text(extra="[device_wheels]\n" + wheel + wheel.replace("pydantic", "Pydantic")))
    with pytest.raises(_loader.LockError, match="Pydantic is listed twice"):
        _loader.read_lock(path)
    path.write_text(lock_text(extra="[device_wheels]\n" + wheel.replace('version = "2.0"\n', "")))
    with pytest.raises(_loader.LockError, match=r"#1 \(pydantic\): missing 'version'"):
        _loader.read_lock(path)


def test_the_repository_lock_is_valid() -> None:
    lock = _loader.read_lock()
    assert {"vllm", "sglang", "fla", "flashinfer", "mamba_ssm", "sageattention"} <= set(lock.upstreams)
    assert lock.entry("vllm").version == "0.33.0" and "vllm._C" in lock.entry("vllm").stand_ins
    assert {_loader.normalize_dist(w.name) for w in lock.wheels} >= {"helion", "filecheck"}


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("vllm/**/*.py", "vllm/__init__.py", True),
        ("vllm/**/*.py", "vllm/a/b/c.py", True),
        ("vllm/**/*.py", "vllmx/a.py", False),
        ("vllm/**/*.py", "vllm/a.pyc", False),
        ("vllm/*.py", "vllm/a/b.py", False),
        ("sglang/kernels/jit/**", "sglang/kernels/jit/include/x/y.cuh", True),
        ("vllm-0.33.0.dist-info/METADATA", "vllm-0.33.0.dist-info/METADATA", True),
        ("LICENSE*", "LICENSE.txt", True),
        ("LICENSE*", "sub/LICENSE", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, hit: bool) -> None:
    assert bool(_loader.glob_regex(pattern).match(path)) is hit


@pytest.mark.parametrize(
    ("path", "device"),
    [
        ("a/E=128,N=384,device_name=NVIDIA_H100_80GB_HBM3.json", "NVIDIA_H100_80GB_HBM3"),
        ("a/N=1536,K=1536,device_name=NVIDIA_H100_80GB_HBM3,dtype=fp8_w8a8,block_shape=[128,128].json",
         "NVIDIA_H100_80GB_HBM3"),
        ("a/lora_expand,K=1024,R=64,S=1,device=NVIDIA_H200.json", "NVIDIA_H200"),
        ("a/E=384,N=128,device_name=,dtype=int4_w4a16.json", None),
        ("a/helion/configs/silu_mul_fp8/nvidia_h100.json", None),
        ("a/device_name=NVIDIA_H100_80GB_HBM3.py", None),
    ],
)
def test_config_device(path: str, device: str | None) -> None:
    assert _loader.config_device(path) == device


# ------------------------------------------------------------------------------------------ fetch_upstreams


@pytest.fixture
def wheel_setup(fake: Fake) -> tuple[Fake, Path]:
    """The fake upstream as a wheel in an --offline folder, and a lock pinning its sha256."""
    offline = fake.tmp / "offline"
    offline.mkdir()
    sha = build_wheel(offline / WHEEL_NAME, FAKEUP_FILES)
    fake.relock(sha256=sha)
    return fake, offline


def _fetch_args(fake: Fake, offline: Path, *extra: str) -> list[str]:
    return ["--lock", str(fake.lock_path), "--offline", str(offline), "--dest", str(fake.cache),
            "--downloads", str(fake.tmp / "dlcache"), *extra]


def test_fetch_offline_builds_a_python_only_tree(wheel_setup: WheelSetup, capsys: Capsys) -> None:
    fake, offline = wheel_setup
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakeup")) == 0
    out = capsys.readouterr().out
    assert "fakeup: fakeup 1.2.3: 13 files" in out and "(built)" in out  # 6 .py, 5 .json, METADATA, stamp
    files = sorted(p.relative_to(fake.tree).as_posix() for p in fake.tree.rglob("*") if p.is_file())
    assert f"fakeup-{VERSION}.dist-info/METADATA" in files
    assert "fakeup/README.md" not in files and not [f for f in files if f.endswith(".so")]
    stamp = json.loads((fake.tree / _loader.STAMP_NAME).read_text())
    assert stamp["pin"] == fake.lock.entry("fakeup").sha256 and stamp["configs_for"] == []

    # idempotent: the stamp matches, nothing is rewritten
    mtime = (fake.tree / "fakeup" / "ops" / "helper.py").stat().st_mtime_ns
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakeup")) == 0
    assert "(up to date)" in capsys.readouterr().out
    assert (fake.tree / "fakeup" / "ops" / "helper.py").stat().st_mtime_ns == mtime

    # and the loader takes the tree (dist-info present: importlib.metadata sees the version)
    up = fake.load()
    assert up.source == "cache" and up.import_module("fakeup.ops.helper").one() == 1
    assert importlib.metadata.version("fakeup") == VERSION


def test_fetch_sha256_mismatch_is_a_clear_error(wheel_setup: WheelSetup, capsys: Capsys) -> None:
    fake, offline = wheel_setup
    fake.relock(sha256="f" * 64)
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakeup")) == 1
    err = capsys.readouterr().err
    assert f"fakeup: sha256 mismatch for {WHEEL_NAME}: got " in err and "the lock says " + "f" * 64 in err
    assert not fake.tree.exists()


def test_fetch_configs_for_keeps_only_that_device(wheel_setup: WheelSetup, capsys: Capsys) -> None:
    fake, offline = wheel_setup
    args = _fetch_args(fake, offline, "--only", "fakeup", "--configs-for", "NVIDIA_H100_80GB_HBM3")
    assert fetch.main(args) == 0
    assert "2 tuned configs for other devices left out" in capsys.readouterr().out
    configs = sorted(p.name for p in (fake.tree / "fakeup" / "configs").iterdir())
    assert configs == [
        "E=8,N=16,device_name=NVIDIA_H100_80GB_HBM3.json",
        "N=16,K=32,device_name=NVIDIA_H100_80GB_HBM3,dtype=fp8_w8a8.json",
        "defaults.json",
    ]
    assert fake.load().configs_for == ["NVIDIA_H100_80GB_HBM3"]  # adapters can say why a config is missing
    _loader.forget_loaded()
    # a different filter is a different tree: rebuilt, not "up to date"
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakeup")) == 0
    assert "(built)" in capsys.readouterr().out
    assert len(list((fake.tree / "fakeup" / "configs").iterdir())) == 5


def test_fetch_zip_packs_a_tree_the_loader_unpacks(wheel_setup: WheelSetup) -> None:
    fake, offline = wheel_setup
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakeup", "--zip")) == 0
    archive = fake.cache / "fakeup.zip"
    assert zipfile.ZipFile(archive).namelist()[0].startswith("fakeup/")
    shutil.rmtree(fake.tree)  # as on the GPU box: only the zip travelled
    assert fake.load().source == "cache" and (fake.tree / "fakeup" / "ops" / "helper.py").is_file()


def test_fetch_git_source_from_an_offline_mirror(fake: Fake, git_mirror: tuple[Path, str],
                                                 capsys: Capsys) -> None:
    offline, commit = git_mirror
    fake.relock(git_commit=commit)
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakegit")) == 0
    tree = fake.cache / "fakegit"
    assert (tree / "fgpkg" / "kern.py").read_text() == "VALUE = 7\n"  # the pinned commit, not HEAD
    assert not (tree / "README.md").exists()
    up = fake.load("fakegit")
    assert up.source == "cache" and up.own_packages() == ("fgpkg",)
    assert up.import_module("fgpkg.kern").VALUE == 7


def test_fetch_git_failure_is_reported_and_the_rest_continues(wheel_setup: WheelSetup,
                                                             capsys: Capsys) -> None:
    fake, offline = wheel_setup  # holds the wheel but no git mirror
    assert fetch.main(_fetch_args(fake, offline, "--only", "fakegit", "fakeup")) == 1
    captured = capsys.readouterr()
    assert "fakegit: FAILED: fakegit: no git mirror holding 111111111111 under --offline" in captured.out
    assert "fakeup: fakeup 1.2.3:" in captured.out and fake.tree.is_dir()
    up = fake.load("fakegit")
    assert up.unavailable == (
        f"someone/fakegit@111111111111 (GitHub source) has no cache at {fake.cache / 'fakegit'}: "
        "run scripts/fetch_upstreams.py --only fakegit"
    )


def test_fetch_unknown_name_is_a_usage_error(fake: Fake, capsys: Capsys) -> None:
    assert fetch.main(["--lock", str(fake.lock_path), "--only", "nope", "--dest", str(fake.cache)]) == 2
    assert "no upstream 'nope'" in capsys.readouterr().err


def _wheel_lock(fake: Fake, offline: Path, name: str, version: str) -> str:
    file = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(offline / file, "w") as z:
        z.writestr(f"{name}/__init__.py", "")
    sha = hashlib.sha256((offline / file).read_bytes()).hexdigest()
    fake.lock_path.write_text(lock_text(extra=(
        '[device_wheels]\npython_version = "3.12"\n'
        f'[[device_wheels.wheels]]\nname = "{name}"\nversion = "{version}"\nfile = "{file}"\nsha256 = "{sha}"\n'
        'for = ["fakeup"]\n'
    )))
    return file


def test_wheelhouse_keeps_exactly_the_locked_wheels(fake: Fake, capsys: Capsys) -> None:
    offline = fake.tmp / "offline"
    offline.mkdir()
    file = _wheel_lock(fake, offline, "tinydep", "1.0")
    house = fake.tmp / "whl"
    house.mkdir()
    (house / "tinydep-0.9-py3-none-any.whl").write_bytes(b"old")  # a second version would break the install
    args = ["--lock", str(fake.lock_path), "--offline", str(offline), "--wheelhouse", str(house),
            "--python-version", "3.12"]
    assert fetch.main(args) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in house.iterdir()) == [file]
    assert "wheelhouse: 1/1 wheels" in out and not fake.cache.exists()  # --wheelhouse alone builds no trees

    assert fetch.main([*args[:-1], "3.13"]) == 1
    assert "pins device wheels for Python 3.12, not 3.13" in capsys.readouterr().err

    (offline / file).write_bytes(b"tampered")
    (house / file).unlink()
    assert fetch.main(args) == 1
    assert f"tinydep: sha256 mismatch for {file}" in capsys.readouterr().err


def test_pip_target_args_pin_the_locked_wheel_tags() -> None:
    assert fetch.pip_target_args("sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl")[1:] == [
        "--platform", "manylinux_2_34_x86_64", "--implementation", "cp", "--python-version", "3.11", "--abi", "cp311"]
    abi3 = fetch.pip_target_args("vllm-0.33.0-cp38-abi3-manylinux_2_28_x86_64.whl")
    assert abi3[-4:] == ["--implementation", "cp", "--abi", "abi3"]
    assert fetch.pip_target_args("fla_core-0.6.0-py3-none-any.whl")[:3] == ["--only-binary=:all:", "--platform", "any"]


# --------------------------------------------------------------------------------------------- vllm_platform


_FAKE_VLLM = {
    "vllm/__init__.py": 'raise ImportError("heavy")\n',
    "vllm/platforms/__init__.py": (
        "class UnspecifiedPlatform:\n    def is_cuda(self):\n        return False\n\n\n"
        "current_platform = UnspecifiedPlatform()\n_current_platform = current_platform\n"
    ),
    "vllm/platforms/cuda.py": (
        "class CudaPlatform:\n    def is_cuda(self):\n        return True\n\n"
        "    def get_device_name(self):\n        return 'NVIDIA H100 80GB HBM3'\n"
    ),
    "vllm/kernel.py": "from vllm.platforms import current_platform\n",
    "vllm-0.33.0.dist-info/METADATA": "Name: vllm\nVersion: 0.33.0\n",
}


@pytest.fixture
def fake_vllm(tmp_path: Path) -> _loader.Upstream:
    lock = write_lock(tmp_path / "upstreams.lock", extra=(
        '[upstream.vllm]\nkind = "wheel"\ndist = "vllm"\nversion = "0.33.0"\nfile = "vllm-0.33.0-py3-none-any.whl"\n'
        f'sha256 = "{"2" * 64}"\npackages = ["vllm"]\nkeep = ["vllm/**"]\n'
    ))
    tree = tmp_path / ".up" / "vllm"
    write_tree(tree, _FAKE_VLLM)
    write_stamp(tree, lock.entry("vllm"))
    return _loader.load("vllm", lock=lock, cache_dir=tmp_path / ".up")


def test_vllm_platform_on_cpu_reports_without_forcing(fake_vllm: _loader.Upstream,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    info = _loader.vllm_platform(fake_vllm)
    assert info == {"cuda_available": False, "forced": False, "error": None, "platform": "UnspecifiedPlatform",
                    "is_cuda": False}


def test_vllm_platform_forces_cuda_when_a_gpu_is_there(fake_vllm: _loader.Upstream,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    kernel = fake_vllm.import_module("vllm.kernel")  # bound the old platform before the fix
    info = _loader.vllm_platform(fake_vllm)
    assert (info["platform"], info["is_cuda"], info["forced"]) == ("CudaPlatform", True, True)
    assert info["device_name"] == "NVIDIA H100 80GB HBM3" and info["patched"] == ["vllm.kernel"]
    platforms = sys.modules["vllm.platforms"]
    assert platforms.current_platform.is_cuda() and kernel.current_platform is platforms.current_platform
