"""Find and import the pinned upstream sources named in `upstreams.lock`.

Upstreams are never pip-installed into the bench environment: their torch pins break each other, and their
compiled extensions are built for other torch ABIs. Instead `scripts/fetch_upstreams.py` unpacks the python files
(and tuned-config JSONs) of each locked release into a cache tree `.up/<name>/`, and this module imports kernel
modules from there:

    up = load("vllm")                       # Upstream; .unavailable holds a one-line reason if it can't be used
    fm = up.import_module("vllm.model_executor.layers.fused_moe.fused_moe", stub_missing=True)

Resolution order of `load(name)`:
1. an installed distribution whose `importlib.metadata.version` equals the lock (a real environment wins);
2. the cache tree `<cache>/<name>/` built for this lock entry (`<cache>` = $HELION_BENCH_UPSTREAM_CACHE or
   `<repo>/.up`), or `<cache>/<name>.zip` packed by `fetch_upstreams.py --zip` (extracted into the cache once);
3. otherwise an `Upstream` whose `.unavailable` says why and what to run.

Nothing here installs packages or writes outside the cache folder. torch is imported lazily (only to define the
capability ops vLLM queries), so `scripts/fetch_upstreams.py` can use the lock parser without torch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import sys
import types
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pyproject allows 3.10, which has no tomllib
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_PATH = REPO_ROOT / "upstreams.lock"
CACHE_ENV = "HELION_BENCH_UPSTREAM_CACHE"
#: written by fetch_upstreams.py into every tree; the loader trusts a tree only if it matches the lock
STAMP_NAME = ".helion-bench-stamp.json"

Kind = Literal["wheel", "sdist", "git"]
_KINDS: tuple[str, ...] = ("wheel", "sdist", "git")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_COMMIT = re.compile(r"[0-9a-f]{40}\Z")

# Modules whose absence is a broken environment, not an optional third-party dependency: stub_missing never
# replaces them (a stand-in torch would only move the failure somewhere confusing).
_NEVER_STUB = frozenset({"torch", "triton", "numpy"})


# --------------------------------------------------------------------------------------------------- the lock


class LockError(ValueError):
    """upstreams.lock is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class LockEntry:
    """One `[upstream.<name>]` table of upstreams.lock."""

    name: str
    kind: Kind
    version: str  # the distribution version; for git sources the commit
    packages: tuple[str, ...]  # top-level import names that belong to this upstream
    keep: tuple[str, ...]  # globs (tree-relative, `**` = any depth) of files the cache tree keeps
    drop: tuple[str, ...] = ()  # globs removed again after `keep`
    dist: str | None = None  # PyPI distribution name (wheel / sdist)
    file: str | None = None  # exact file name downloaded
    sha256: str | None = None
    repo: str | None = None  # owner/name on GitHub (git)
    commit: str | None = None
    stand_ins: tuple[str, ...] = ()  # compiled-extension modules replaced by stand-ins
    false_ops: tuple[str, ...] = ()  # torch.library schemas ("ns::op(args) -> bool") defined to return False
    aliases: tuple[str, ...] = ()  # other names load() accepts (e.g. upstream_map.yaml `source:` values)
    requires: tuple[str, ...] = ()  # other lock entries whose packages this one imports (loaded first)
    pip_args: tuple[str, ...] = ()  # extra `pip download` arguments (sdists that need a metadata build)
    pip_env: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pin(self) -> str:
        """What identifies the exact source bytes: the archive's sha256, or the git commit."""
        return self.commit if self.kind == "git" else self.sha256  # type: ignore[return-value]

    @property
    def label(self) -> str:
        if self.kind == "git":
            return f"{self.repo}@{self.version[:12]}"
        return f"{self.dist} {self.version}"

    def entry_hash(self) -> str:
        """Hash of the whole table: any edit (globs, stand-ins) makes fetch_upstreams rebuild the tree."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class DeviceWheel:
    """One `[[device_wheels.wheels]]` entry: a runtime wheel the GPU image lacks."""

    name: str
    version: str
    file: str
    sha256: str
    needed_by: tuple[str, ...]  # upstream names, or "bench" for the harness itself
    why: str = ""


@dataclass(frozen=True)
class Lock:
    path: Path
    upstreams: Mapping[str, LockEntry]
    wheels: tuple[DeviceWheel, ...] = ()
    wheel_python: str = "3.12"
    wheel_platforms: tuple[str, ...] = ()

    def entry(self, name: str) -> LockEntry:
        """The entry called `name` or aliased to it; KeyError lists the known names."""
        if name in self.upstreams:
            return self.upstreams[name]
        for entry in self.upstreams.values():
            if name in entry.aliases:
                return entry
        raise KeyError(f"no upstream {name!r} in {self.path} (known: {', '.join(sorted(self.upstreams))})")


_ENTRY_KEYS = {
    "kind", "version", "packages", "keep", "drop", "dist", "file", "sha256", "repo", "commit", "stand_ins",
    "false_ops", "aliases", "requires", "pip_args", "pip_env", "note",
}
_REQUIRED = {
    "wheel": ("dist", "version", "file", "sha256", "packages", "keep"),
    "sdist": ("dist", "version", "file", "sha256", "packages", "keep"),
    "git": ("repo", "commit", "keep"),
}
_WHEEL_KEYS = {"name", "version", "file", "sha256", "for", "why"}


def _strs(where: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LockError(f"{where}: '{key}' must be a list of strings, got {value!r}")
    return tuple(value)


def _str(where: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise LockError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _parse_entry(path: Path, name: str, table: object) -> LockEntry:
    where = f"{path.name}: [upstream.{name}]"
    if not isinstance(table, dict):
        raise LockError(f"{where}: must be a table")
    unknown = set(table) - _ENTRY_KEYS
    if unknown:
        raise LockError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    kind = table.get("kind")
    if kind not in _KINDS:
        raise LockError(f"{where}: 'kind' must be one of {', '.join(_KINDS)}, got {kind!r}")
    missing = [k for k in _REQUIRED[kind] if k not in table]
    if missing:
        raise LockError(f"{where}: missing {', '.join(repr(k) for k in missing)} (required for kind {kind!r})")
    sha = table.get("sha256")
    if sha is not None and not _SHA256.match(str(sha)):
        raise LockError(f"{where}: 'sha256' must be 64 lowercase hex digits, got {sha!r}")
    commit = table.get("commit")
    if commit is not None and not _COMMIT.match(str(commit)):
        raise LockError(f"{where}: 'commit' must be a full 40-hex-digit commit, got {commit!r}")
    if kind == "wheel" and not str(table["file"]).endswith(".whl"):
        raise LockError(f"{where}: kind 'wheel' needs a .whl file, got {table['file']!r}")
    if kind == "sdist" and not str(table["file"]).endswith((".tar.gz", ".zip")):
        raise LockError(f"{where}: kind 'sdist' needs a .tar.gz or .zip file, got {table['file']!r}")
    pip_env = table.get("pip_env", {})
    if not isinstance(pip_env, dict) or not all(isinstance(v, str) for v in pip_env.values()):
        raise LockError(f"{where}: 'pip_env' must be a table of strings")
    repo = table.get("repo")
    if repo is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", str(repo)):
        raise LockError(f"{where}: 'repo' must be owner/name, got {repo!r}")
    packages = _strs(where, "packages", table.get("packages", []))
    for mod in _strs(where, "stand_ins", table.get("stand_ins", [])):
        if mod.split(".")[0] in _NEVER_STUB:
            raise LockError(f"{where}: stand-in {mod!r} would replace a core module")
    return LockEntry(
        name=name,
        kind=kind,
        version=_str(where, "commit" if kind == "git" else "version", commit if kind == "git" else table["version"]),
        packages=packages,
        keep=_strs(where, "keep", table["keep"]),
        drop=_strs(where, "drop", table.get("drop", [])),
        dist=table.get("dist"),
        file=table.get("file"),
        sha256=sha,
        repo=repo,
        commit=commit,
        stand_ins=_strs(where, "stand_ins", table.get("stand_ins", [])),
        false_ops=_strs(where, "false_ops", table.get("false_ops", [])),
        aliases=_strs(where, "aliases", table.get("aliases", [])),
        requires=_strs(where, "requires", table.get("requires", [])),
        pip_args=_strs(where, "pip_args", table.get("pip_args", [])),
        pip_env=dict(pip_env),
        note=str(table.get("note", "")),
        raw=table,
    )


def _parse_wheels(path: Path, table: object) -> tuple[tuple[DeviceWheel, ...], str, tuple[str, ...]]:
    where = f"{path.name}: [device_wheels]"
    if not isinstance(table, dict):
        raise LockError(f"{where}: must be a table")
    python = _str(where, "python_version", table.get("python_version", "3.12"))
    platforms = _strs(where, "platforms", table.get("platforms", []))
    wheels = []
    seen: set[str] = set()
    for i, w in enumerate(table.get("wheels", [])):
        name = w.get("name") if isinstance(w, dict) else None
        wwhere = f"{path.name}: [[device_wheels.wheels]] #{i + 1} ({name or '?'})"
        if not isinstance(w, dict):
            raise LockError(f"{wwhere}: must be a table")
        unknown = set(w) - _WHEEL_KEYS
        if unknown:
            raise LockError(f"{wwhere}: unknown key(s) {', '.join(sorted(unknown))}")
        missing = [k for k in ("name", "version", "file", "sha256") if k not in w]
        if missing:
            raise LockError(f"{wwhere}: missing {', '.join(repr(k) for k in missing)}")
        if not _SHA256.match(str(w["sha256"])):
            raise LockError(f"{wwhere}: 'sha256' must be 64 lowercase hex digits")
        key = normalize_dist(w["name"])
        if key in seen:
            # two versions of one project stop `pip install --no-deps DIR/*.whl` on the device
            raise LockError(f"{wwhere}: {w['name']} is listed twice")
        seen.add(key)
        wheels.append(
            DeviceWheel(
                name=_str(wwhere, "name", w["name"]),
                version=_str(wwhere, "version", w["version"]),
                file=_str(wwhere, "file", w["file"]),
                sha256=w["sha256"],
                needed_by=_strs(wwhere, "for", w.get("for", ["bench"])),
                why=str(w.get("why", "")),
            )
        )
    return tuple(wheels), python, platforms


def read_lock(path: Path | str | None = None) -> Lock:
    """Parse and validate upstreams.lock; LockError names the entry at fault."""
    path = Path(path) if path is not None else LOCK_PATH
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LockError(f"{path}: lock file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise LockError(f"{path.name}: not valid TOML: {e}") from None
    unknown = set(data) - {"lock_version", "upstream", "device_wheels"}
    if unknown:
        raise LockError(f"{path.name}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    if data.get("lock_version") != 1:
        raise LockError(f"{path.name}: lock_version must be 1, got {data.get('lock_version')!r}")
    tables = data.get("upstream", {})
    if not isinstance(tables, dict) or not tables:
        raise LockError(f"{path.name}: no [upstream.<name>] tables")
    upstreams = {name: _parse_entry(path, name, t) for name, t in tables.items()}
    aliases: dict[str, str] = {}
    for e in upstreams.values():
        for a in e.aliases:
            if a in upstreams or a in aliases:
                raise LockError(f"{path.name}: [upstream.{e.name}]: alias {a!r} is already a name or alias")
            aliases[a] = e.name
    for e in upstreams.values():
        _check_requires(path, upstreams, e.name, ())
    wheels, python, platforms = _parse_wheels(path, data.get("device_wheels", {}))
    for w in wheels:
        bad = [n for n in w.needed_by if n != "bench" and n not in upstreams]
        if bad:
            raise LockError(f"{path.name}: device wheel {w.name}: 'for' names unknown upstream(s) {bad}")
    return Lock(path=path, upstreams=upstreams, wheels=wheels, wheel_python=python, wheel_platforms=platforms)


def _check_requires(path: Path, upstreams: Mapping[str, LockEntry], name: str, chain: tuple[str, ...]) -> None:
    if name in chain:
        raise LockError(f"{path.name}: [upstream.{chain[0]}]: 'requires' loops: {' -> '.join((*chain, name))}")
    for req in upstreams[name].requires:
        if req not in upstreams:
            raise LockError(f"{path.name}: [upstream.{name}]: requires unknown upstream {req!r}")
        _check_requires(path, upstreams, req, (*chain, name))


def normalize_dist(name: str) -> str:
    """PEP 503 name normalisation (wheel files use '_', PyPI '-')."""
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------------------------------------- tree contents


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a tree-relative glob: `*` and `?` stay inside one path segment, `**` spans any number of them."""
    parts = pattern.split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:.*/)?")
            continue
        seg = ""
        for ch in part:
            seg += "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch)
        out.append(seg if last else seg + "/")
    return re.compile("".join(out) + r"\Z")


def path_filter(keep: Iterable[str], drop: Iterable[str] = ()) -> Callable[[str], bool]:
    """A predicate on tree-relative paths: kept by some `keep` glob and by no `drop` glob."""
    keep_re = [glob_regex(p) for p in keep]
    drop_re = [glob_regex(p) for p in drop]

    def accept(path: str) -> bool:
        return any(r.match(path) for r in keep_re) and not any(r.match(path) for r in drop_re)

    return accept


# Tuned Triton configs carry the GPU in their file name: vLLM/SGLang `...,device_name=NVIDIA_H100_80GB_HBM3.json`
# (also mid-name, before `,dtype=`), SGLang LoRA `...,device=NVIDIA_H200.json`.
_DEVICE_IN_NAME = re.compile(r"(?:^|,)device(?:_name)?=([^,/]+?)(?=,|\.json\Z)")


def config_device(path: str) -> str | None:
    """The device a tuned-config JSON is for, or None for JSONs that are not per-device."""
    if not path.endswith(".json"):
        return None
    m = _DEVICE_IN_NAME.search(path.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def read_stamp(tree: Path) -> dict[str, Any] | None:
    try:
        return json.loads((tree / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def stamp_matches(stamp: Mapping[str, Any] | None, entry: LockEntry) -> bool:
    """Does a tree hold the locked bytes? (Globs may differ: that changes what was kept, not the version.)"""
    return bool(stamp) and stamp.get("version") == entry.version and stamp.get("pin") == entry.pin


# ------------------------------------------------------------------------------------------------ stand-ins


class StandInModule(types.ModuleType):
    """A module that imports fine but whose every attribute fails when used.

    Attributes are classes (not functions) so upstream code can still subclass them, subscript them in type
    hints and read nested attributes at import time; calling one raises NotImplementedError naming what is
    missing, so a kernel path that really needs the module fails loudly instead of computing garbage.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, f"helion-bench stand-in: {reason}")
        self.__helion_bench_stand_in__ = reason
        # a package, so `import name.sub` reaches the finders (and stub_missing) instead of failing oddly
        self.__path__: list[str] = []
        self.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        value = _missing_attr(f"{self.__name__}.{attr}", self.__helion_bench_stand_in__)
        setattr(self, attr, value)
        return value


class _MissingMeta(type):
    def __call__(cls, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError(f"{cls.__qualname__} {cls._reason}")

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return _missing_attr(f"{cls.__qualname__}.{attr}", cls._reason)

    def __getitem__(cls, item: object) -> Any:
        return cls

    def __or__(cls, other: object) -> Any:
        return cls

    __ror__ = __or__


def _missing_attr(qualname: str, reason: str) -> type:
    return _MissingMeta(qualname.rsplit(".", 1)[-1], (), {"__qualname__": qualname, "_reason": reason})


def _register(name: str, module: types.ModuleType) -> None:
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        # `import a.b` binds through the parent's attribute; a stand-in parent would otherwise hand back a class
        setattr(sys.modules[parent], child, module)


def is_stand_in(module: object) -> bool:
    return isinstance(module, StandInModule)


_TORCH_LIBS: list[Any] = []  # torch.library.Library objects must stay alive or their ops are deregistered


def _define_false_ops(schemas: Iterable[str]) -> list[str]:
    """Define `ns::op(args) -> bool` ops that return False, unless the op exists already (a real extension)."""
    import torch

    defined = []
    for schema in schemas:
        qual, _, rest = schema.partition("(")
        ns, _, op = qual.partition("::")
        if hasattr(getattr(torch.ops, ns), op):
            continue
        lib = torch.library.Library(ns, "FRAGMENT")
        lib.define(f"{op}({rest}")
        lib.impl(op, lambda *args: False, "CompositeExplicitAutograd")
        _TORCH_LIBS.append(lib)
        defined.append(qual)
    return defined


# -------------------------------------------------------------------------------------------------- loading


class UpstreamUnavailable(ImportError):
    """Raised by Upstream.import_module when the upstream could not be resolved; the message is the reason."""


@dataclass
class Upstream:
    """A resolved upstream: where its sources are and how to import from them."""

    name: str
    version: str
    entry: LockEntry
    root: Path | None = None  # the folder that holds the top-level packages
    source: Literal["installed", "cache"] | None = None
    unavailable: str | None = None
    stubbed: list[str] = field(default_factory=list)  # third-party modules stub_missing replaced
    stand_ins: list[str] = field(default_factory=list)  # compiled extensions replaced
    # devices whose tuned-config JSONs the cache tree kept (fetch_upstreams --configs-for); empty = all of them
    configs_for: list[str] = field(default_factory=list)
    false_ops: list[str] = field(default_factory=list)  # torch ops defined to return False
    requires: list[Upstream] = field(default_factory=list, repr=False)  # resolved `requires` of the lock entry
    _extensions_ready: bool = field(default=False, repr=False)

    def __bool__(self) -> bool:
        return self.unavailable is None

    def describe(self) -> str:
        """One line for adapter notes and results metadata."""
        if self.unavailable:
            return f"{self.name}: unavailable: {self.unavailable}"
        extra = f"; stand-ins for {', '.join(self.stubbed)}" if self.stubbed else ""
        return f"{self.name} {self.version} ({self.source}, {self.root}){extra}"

    # -- imports

    def import_module(self, modname: str, stub_parents: bool = True, stub_missing: bool = False) -> types.ModuleType:
        """Import `modname` from this upstream.

        stub_parents: register empty package modules for every parent package (with `__path__` on the source
            folders) so heavy package `__init__` files do not run; only the module and what it imports run.
        stub_missing: when the import fails on a missing third-party module (not one of this upstream's own
            packages, not torch/triton/numpy), register a stand-in for it and retry; each is listed in
            `self.stubbed`. Use it for import-time-only dependencies (server, tokenizer, telemetry stacks).
        """
        if self.unavailable:
            raise UpstreamUnavailable(self.unavailable)
        top = modname.split(".")[0]
        if top not in self.own_packages():
            raise ValueError(f"{modname!r} is not part of upstream {self.name} (packages: {self.own_packages()})")
        self._check_not_shadowed(top)
        if stub_parents:
            self._stub_parents(modname)
        # after the parent stubs: probing an installed upstream's real extension must not run its __init__
        self._install_extensions()
        if not stub_missing:
            return importlib.import_module(modname)
        for _ in range(200):  # each retry stubs one more module; the bound only stops a pathological loop
            try:
                return importlib.import_module(modname)
            except ImportError as e:
                missing = e.name
                if not missing or missing in sys.modules or not self._may_stub(missing):
                    raise
                _register(missing, StandInModule(missing, f"is a stand-in for missing {missing!r}"))
                self.stubbed.append(missing)
        raise ImportError(f"{modname}: gave up after stubbing {len(self.stubbed)} modules: {self.stubbed}")

    def own_packages(self) -> tuple[str, ...]:
        if self.entry.packages:
            return self.entry.packages
        if self.root is None:
            return ()
        # git trees declare no packages: whatever sits at the tree root is theirs
        return tuple(sorted({p.stem for p in self.root.iterdir() if p.suffix == ".py" or p.is_dir()}))

    def _may_stub(self, missing: str) -> bool:
        top = missing.split(".")[0]
        # a required upstream's module that fails to import is a real error, never a stand-in
        ours = {p for up in (self, *self.requires) for p in up.own_packages()}
        return top not in ours and top not in _NEVER_STUB and top not in sys.stdlib_module_names

    def _check_not_shadowed(self, top: str) -> None:
        """Refuse to import from a same-named package that came from somewhere else (e.g. two NSA repos)."""
        mod = sys.modules.get(top)
        if mod is None or is_stand_in(mod) or self.root is None:
            return
        where = [Path(p) for p in getattr(mod, "__path__", [])] or (
            [Path(mod.__file__).parent] if getattr(mod, "__file__", None) else []
        )
        if where and not any(_is_relative(p, self.root) for p in where):
            raise ImportError(
                f"{top!r} is already imported from {where[0]}, not from {self.name}'s {self.root}; "
                f"import {self.name} in a separate process"
            )

    def _stub_parents(self, modname: str) -> None:
        assert self.root is not None
        parts = modname.split(".")
        for i in range(1, len(parts)):
            pkg = ".".join(parts[:i])
            if pkg in sys.modules:
                continue
            folder = self.root.joinpath(*parts[:i])
            if not folder.is_dir():
                break  # not a package folder: let the import report what is missing
            stub = types.ModuleType(pkg, f"helion-bench: parent package stub for {self.name} (no __init__ run)")
            stub.__path__ = [str(folder)]
            stub.__package__ = pkg
            spec = importlib.machinery.ModuleSpec(pkg, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            stub.__spec__ = spec
            stub.__helion_bench_parent_stub__ = True
            if i == 1 and self.entry.dist:
                # the one attribute of a skipped top-level __init__ that kernel modules read (fla.utils does)
                stub.__version__ = self.version
            _register(pkg, stub)

    def _install_extensions(self) -> None:
        """Stand-ins for the compiled extensions the lock names, then the False-returning capability ops."""
        if self._extensions_ready:
            return
        for mod in self.entry.stand_ins:
            if mod in sys.modules:
                continue
            if self.source == "installed" and self._real_extension_loads(mod):
                continue
            _register(mod, StandInModule(mod, "needs a compiled extension (not loadable here)"))
            self.stand_ins.append(mod)
        if self.entry.false_ops:
            # ops a real extension registered already are left alone (checked per op)
            self.false_ops = _define_false_ops(self.entry.false_ops)
        self._extensions_ready = True

    @staticmethod
    def _real_extension_loads(mod: str) -> bool:
        """An installed upstream may ship working extensions (matching torch): prefer them when they import."""
        try:
            importlib.import_module(mod)
        except Exception:  # noqa: BLE001 - an ABI mismatch shows up as OSError/ImportError/RuntimeError alike
            sys.modules.pop(mod, None)
            return False
        return True


def _is_relative(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else REPO_ROOT / ".up"


def _show(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _installed(entry: LockEntry, cache_dir: Path) -> tuple[str | None, Path | None]:
    """(version found, folder holding its packages) of an installed distribution, ignoring the cache trees."""
    if entry.dist is None:
        return None, None
    search = [p for p in sys.path if not _is_relative(Path(p or "."), cache_dir)]
    dists = list(importlib.metadata.distributions(name=entry.dist, path=search))
    if not dists:
        return None, None
    dist = dists[0]
    base = Path(str(dist.locate_file(""))).resolve()
    if any((base / p).is_dir() or (base / f"{p}.py").is_file() for p in entry.packages):
        return dist.version, base
    # editable or unusual layouts: ask the path finder (it locates without executing the package)
    spec = importlib.machinery.PathFinder.find_spec(entry.packages[0], search) if entry.packages else None
    if spec is None or not spec.origin:
        return dist.version, None
    origin = Path(spec.origin).resolve()
    return dist.version, origin.parent.parent if origin.name == "__init__.py" else origin.parent


def _unzip_tree(archive: Path, tree: Path, entry: LockEntry) -> str | None:
    """Extract `<cache>/<name>.zip` (made by fetch_upstreams.py --zip) into `tree`; None when done, else why not."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            prefix = f"{entry.name}/"
            if any(not n.startswith(prefix) or ".." in n.split("/") or n.startswith("/") for n in names):
                return f"{_show(archive)} is not a packed {entry.name} tree"
            try:
                stamp = json.loads(z.read(prefix + STAMP_NAME))
            except KeyError:
                return f"{_show(archive)} has no {STAMP_NAME}"
            if not stamp_matches(stamp, entry):
                return f"{_show(archive)} holds {stamp.get('version')}, the lock wants {entry.version}"
            partial = tree.parent / f".{entry.name}.partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            z.extractall(partial)
    except (OSError, zipfile.BadZipFile) as e:
        return f"cannot unpack {_show(archive)}: {e}"
    try:
        (partial / entry.name).rename(tree)  # atomic: a concurrent loader sees all or nothing
    except OSError:
        if not tree.is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return None


def _resolve(entry: LockEntry, cache_dir: Path) -> Upstream:
    up = Upstream(name=entry.name, version=entry.version, entry=entry)
    found, root = _installed(entry, cache_dir)
    if found is not None and found == entry.version and root is not None:
        up.root, up.source = root, "installed"
        return up
    tree = cache_dir / entry.name
    archive = cache_dir / f"{entry.name}.zip"
    fetch = f"run scripts/fetch_upstreams.py --only {entry.name}"
    zip_problem = None
    if not tree.is_dir() and archive.is_file():
        zip_problem = _unzip_tree(archive, tree, entry)
    if tree.is_dir():
        stamp = read_stamp(tree)
        if stamp_matches(stamp, entry):
            up.root, up.source = tree.resolve(), "cache"
            up.configs_for = list(stamp.get("configs_for") or []) if stamp else []
            root_str = str(up.root)
            if root_str in sys.path:
                sys.path.remove(root_str)
            sys.path.insert(0, root_str)
            importlib.invalidate_caches()
            return up
        held = f"holds {stamp.get('version')}" if stamp else f"has no {STAMP_NAME}"
        up.unavailable = f"cache {_show(tree)} {held}, the lock wants {entry.label}: {fetch}"
        return up
    cache = zip_problem or f"no cache at {_show(tree)}"
    if entry.kind == "git":
        have = f"{entry.label} (GitHub source) has"
    elif found:
        have = f"{entry.dist} {entry.version} not installed (found {found}) and"
    else:
        have = f"{entry.dist} {entry.version} not installed and"
    up.unavailable = f"{have} {cache}: {fetch}"
    return up


_LOADED: dict[tuple[str, Path, Path], Upstream] = {}


def load(name: str, *, lock: Lock | None = None, cache_dir: Path | str | None = None) -> Upstream:
    """Resolve upstream `name` (a lock name or alias) once per process; never raises for a missing upstream."""
    lock = lock if lock is not None else read_lock()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = lock.entry(name)
    key = (entry.name, lock.path.resolve(), cache.resolve())
    if key not in _LOADED:
        # requirements first, so this upstream's own tree ends up ahead of theirs on sys.path
        requires = [load(req, lock=lock, cache_dir=cache) for req in entry.requires]
        missing = next((r for r in requires if r.unavailable), None)
        if missing is not None:
            up = Upstream(name=entry.name, version=entry.version, entry=entry, requires=requires)
            up.unavailable = f"{entry.label} needs {missing.name}: {missing.unavailable}"
        else:
            up = _resolve(entry, cache)
            up.requires = requires
        _LOADED[key] = up
    return _LOADED[key]


def forget_loaded() -> None:
    """Drop the per-process cache of load() (tests; sys.modules/sys.path changes are the caller's to undo)."""
    _LOADED.clear()


# ------------------------------------------------------------------------------------------------------ vLLM


def vllm_platform(upstream: Upstream, stub_missing: bool = True) -> dict[str, Any]:
    """Report vLLM's `current_platform`; on a CUDA machine where it did not resolve to CUDA, pin it to CUDA.

    A cache tree has no compiled extensions and (unless its dist-info is found) vLLM may fall back to
    UnspecifiedPlatform, whose `is_cuda()` is False: then kernels pick non-CUDA tiles and tuned-config lookups
    (`get_device_name`) raise. Call this before importing vLLM kernel modules; modules already imported that
    bound the old platform object are re-pointed too (listed under "patched"). stub_missing is passed on to the
    platform imports (see Upstream.import_module).
    """
    import torch

    platforms = upstream.import_module("vllm.platforms", stub_missing=stub_missing)
    info: dict[str, Any] = {"cuda_available": torch.cuda.is_available(), "forced": False, "error": None}
    try:
        current = platforms.current_platform
    except Exception as e:  # noqa: BLE001 - platform detection failing is a finding to report, not a crash
        current = None
        info["error"] = f"{type(e).__name__}: {e}"
    info["platform"] = type(current).__name__ if current is not None else None
    info["is_cuda"] = bool(current is not None and current.is_cuda())
    if info["cuda_available"] and not info["is_cuda"]:
        cuda = upstream.import_module("vllm.platforms.cuda", stub_missing=stub_missing)
        forced = cuda.CudaPlatform()  # NvmlCudaPlatform when NVML answers, else NonNvmlCudaPlatform
        platforms.current_platform = forced  # shadows the module's lazy __getattr__
        platforms._current_platform = forced
        patched = []
        for modname, mod in list(sys.modules.items()):
            stale = current is not None and getattr(mod, "current_platform", None) is current
            if modname.startswith("vllm.") and stale:
                mod.current_platform = forced
                patched.append(modname)
        info.update(platform=type(forced).__name__, is_cuda=bool(forced.is_cuda()), forced=True, patched=patched)
    if info["is_cuda"]:
        info["device_name"] = platforms.current_platform.get_device_name()
    return info
