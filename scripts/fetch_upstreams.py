#!/usr/bin/env python3
"""Build the python-only upstream cache trees and the device wheelhouse pinned by upstreams.lock.

    scripts/fetch_upstreams.py --only vllm sglang --configs-for NVIDIA_H100_80GB_HBM3 --zip
    scripts/fetch_upstreams.py --wheelhouse .whl --python-version 3.12 --only vllm sglang

Each locked wheel is downloaded once (`pip download --no-deps`) into `.cache/dl/`, each locked sdist straight
from the package index by its file name (never through pip: pip would prepare the sdist's metadata, i.e. run
its build, which for mamba_ssm needs torch in the calling Python), its sha256 checked
against the lock, and the files the lock keeps (python sources, tuned-config JSONs, dist-info metadata) are
written to `.up/<name>/` with a stamp; a tree whose stamp matches the lock entry is left alone. GitHub sources
are fetched at their locked commit with git (or read from mirrors under `--offline DIR`).

`--configs-for DEVICE` keeps only the tuned-config JSONs whose file name is for that device (JSONs that name no
device are kept): the trees then fit, with the wheelhouse, in what can be carried to a GPU box. `--zip` also packs
each tree as `.up/<name>.zip`; the loader unpacks it into the cache on first use, so only the zip travels.

`--wheelhouse DIR` downloads the `[device_wheels]` of the lock (cp312 manylinux runtime wheels the GPU image
lacks) for `--python-version` instead of building trees; with `--only`, just the wheels the named upstreams (and
the harness) need.

Exit status: 0 when everything asked for is in place, 1 when something failed (each failure is printed with its
reason; the others are still processed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: make the repo's packages importable
    sys.path.insert(0, str(REPO_ROOT))

from upstream_adapters._loader import (  # noqa: E402
    STAMP_NAME,
    DeviceWheel,
    Lock,
    LockEntry,
    LockError,
    config_device,
    normalize_dist,
    path_filter,
    read_lock,
    read_stamp,
)

GIT_TIMEOUT_S = 300
MiB = 2**20


class FetchError(RuntimeError):
    """One upstream or wheel could not be provided; the message says why and what to do."""


@dataclass(frozen=True)
class Options:
    dest: Path
    dl_dir: Path
    git_dir: Path
    offline: Path | None
    configs_for: tuple[str, ...]
    pack: bool


# ------------------------------------------------------------------------------------------------ utilities


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, sha256: str, what: str) -> None:
    got = sha256_of(path)
    if got != sha256:
        raise FetchError(f"{what}: sha256 mismatch for {path.name}: got {got}, the lock says {sha256}")


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _run(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 1800) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise FetchError(f"`{' '.join(cmd[:6])} ...` failed: {_tail(proc.stderr or proc.stdout)}")


def wheel_tags(file: str) -> tuple[str, str, str]:
    """(python tag, abi tag, platform tag) of a wheel file name (compressed tag sets keep their first member)."""
    parts = file[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise FetchError(f"{file}: not a wheel file name")
    py, abi, plat = parts[-3:]
    return py.split(".")[0], abi.split(".")[0], plat.split(".")[0]


def pip_target_args(file: str) -> list[str]:
    """pip download flags that make pip choose exactly the locked wheel, whatever interpreter runs this script.

    pip otherwise picks the wheel for the running interpreter (a cp311 host would fetch a different sglang
    file than a cp312 one), and the sha256 in the lock would not match.
    """
    py, abi, plat = wheel_tags(file)
    args = ["--only-binary=:all:", "--platform", plat]
    if py.startswith("cp") and abi not in ("abi3", "none"):
        # cp311-cp311: an interpreter-specific wheel; ask for exactly that interpreter
        args += ["--implementation", "cp", "--python-version", f"{py[2]}.{py[3:]}", "--abi", abi]
    else:
        # abi3 / pure wheels fit any newer interpreter; the running one passes Requires-Python checks
        args += ["--python-version", f"{sys.version_info.major}.{sys.version_info.minor}"]
        if abi == "abi3":
            args += ["--implementation", "cp", "--abi", "abi3"]
    return args


def dir_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _find_offline(offline: Path, file: str) -> Path | None:
    direct = offline / file
    if direct.is_file():
        return direct
    return next((p for p in offline.rglob(file) if p.is_file()), None)


# ----------------------------------------------------------------------------------------------- downloads


#: the index the sdists are read from (PEP 691 JSON or PEP 503 HTML); PIP_INDEX_URL points it at a mirror
DEFAULT_INDEX = "https://pypi.org/simple"


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/")


def sdist_url(dist: str, file: str, index: str | None = None, timeout: float = 60) -> str:
    """The download URL of exactly `file` from the index's page for `dist` (no resolution, no build)."""
    index = index or _index_url()
    page = f"{index}/{normalize_dist(dist)}/"
    req = urllib.request.Request(page, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1", "User-Agent": "helion-bench-fetch"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        ctype = resp.headers.get("Content-Type", "")
        body = resp.read().decode("utf-8", "replace")
    if "json" in ctype:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == file:
                return urllib.parse.urljoin(page, f["url"])
    else:
        import re

        for href in re.findall(r'href="([^"]+)"', body):
            if urllib.parse.unquote(href.split("#")[0]).rsplit("/", 1)[-1] == file:
                return urllib.parse.urljoin(page, href.split("#")[0])
    raise FetchError(f"{file} is not listed on {page}")


def download_sdist(entry: LockEntry, dest: Path, timeout: float = 600) -> Path:
    """Fetch the locked sdist file itself into dest (verified by the caller); never runs its build."""
    assert entry.file and entry.dist
    try:
        url = sdist_url(entry.dist, entry.file)
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "helion-bench-fetch"}),
                                    timeout=timeout) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise FetchError(f"{entry.name}: cannot download {entry.file} from {_index_url()} ({e}); put the file in "
                         f"{dest} by hand or pass --offline DIR") from None
    path = dest / entry.file
    path.write_bytes(data)
    return path


def obtain_archive(entry: LockEntry, opts: Options) -> Path:
    """The locked wheel/sdist, verified: from .cache/dl, from --offline DIR, the index (sdists) or pip (wheels)."""
    assert entry.file and entry.sha256 and entry.dist
    cached = opts.dl_dir / entry.file
    if cached.is_file():
        verify(cached, entry.sha256, entry.name)
        return cached
    if opts.offline is not None:
        found = _find_offline(opts.offline, entry.file)
        if found is None:
            raise FetchError(f"{entry.name}: {entry.file} is not under --offline {opts.offline}")
        verify(found, entry.sha256, entry.name)
        return found
    opts.dl_dir.mkdir(parents=True, exist_ok=True)
    if entry.kind == "sdist":
        with tempfile.TemporaryDirectory(dir=opts.dl_dir, prefix=".dl-") as tmp:
            got = download_sdist(entry, Path(tmp))
            verify(got, entry.sha256, entry.name)
            shutil.move(str(got), cached)
        return cached
    with tempfile.TemporaryDirectory(dir=opts.dl_dir, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "-d", tmp, *entry.pip_args]
        if entry.kind == "wheel":
            cmd += pip_target_args(entry.file)
        else:
            cmd += ["--no-binary=:all:"]
        cmd.append(f"{entry.dist}=={entry.version}")
        _run(cmd, env={**os.environ, **entry.pip_env})
        got = sorted(p.name for p in Path(tmp).iterdir())
        if entry.file not in got:
            raise FetchError(f"{entry.name}: pip downloaded {', '.join(got) or 'nothing'}, the lock pins {entry.file}")
        verify(Path(tmp) / entry.file, entry.sha256, entry.name)
        shutil.move(str(Path(tmp) / entry.file), cached)
    return cached


def _git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT_S) -> subprocess.CompletedProcess[bytes]:
    # no prompts: a missing network or private repo must fail, not wait for a password
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=env, timeout=timeout)


def _has_commit(repo: Path, commit: str) -> bool:
    return _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=repo).returncode == 0


def obtain_git(entry: LockEntry, opts: Options) -> Path:
    """A git directory holding the locked commit: a mirror under --offline, or a shallow fetch from GitHub."""
    assert entry.repo and entry.commit
    owner, name = entry.repo.split("/")
    if opts.offline is not None:
        # DIR/<owner>+<repo>/repo is the layout of the workplace's GitHub mirror folder (/work/.mirror)
        candidates = [opts.offline / f"{owner}+{name}", opts.offline / f"{owner}+{name}" / "repo",
                      opts.offline / f"{owner}+{name}.git", opts.offline / owner / name, opts.offline / name,
                      opts.offline / f"{name}.git"]
        repo = next((c for c in candidates if c.is_dir() and _has_commit(c, entry.commit)), None)
        if repo is None:
            raise FetchError(f"{entry.name}: no git mirror holding {entry.commit[:12]} under --offline "
                             f"{opts.offline} (looked for {owner}+{name}, {owner}/{name}, {name})")
    else:
        repo = opts.git_dir / f"{owner}+{name}.git"
        if not (repo.is_dir() and _has_commit(repo, entry.commit)):
            repo.mkdir(parents=True, exist_ok=True)
            if _git("init", "-q", "--bare", cwd=repo).returncode != 0:
                raise FetchError(f"{entry.name}: git init failed in {repo}")
            url = f"https://github.com/{entry.repo}.git"
            try:
                # GitHub serves single commits by id: no need to clone the history
                proc = _git("fetch", "-q", "--depth", "1", url, entry.commit, cwd=repo)
            except subprocess.TimeoutExpired:
                raise FetchError(f"{entry.name}: git fetch {url} timed out after {GIT_TIMEOUT_S}s; "
                                 f"pass --offline DIR with a mirror at DIR/{owner}+{name}") from None
            if proc.returncode != 0:
                raise FetchError(f"{entry.name}: cannot fetch {entry.label} from {url} "
                                 f"({_tail(proc.stderr.decode(errors='replace'))}); "
                                 f"pass --offline DIR with a mirror at DIR/{owner}+{name}")
    return repo


# ------------------------------------------------------------------------------------------------- members


Member = tuple[str, Callable[[], bytes]]


def wheel_members(path: Path) -> Iterator[Member]:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.is_dir():
                yield info.filename, (lambda n=info.filename: z.read(n))


def _tar_members(tar: tarfile.TarFile, strip: str) -> Iterator[Member]:
    for info in tar:
        if not info.isfile() or not info.name.startswith(strip):
            continue
        reader = tar.extractfile(info)
        assert reader is not None
        yield info.name[len(strip):], reader.read


def sdist_members(entry: LockEntry, path: Path) -> Iterator[Member]:
    """An sdist's files without its `<dist>-<version>/` folder, plus a dist-info made from its PKG-INFO.

    The dist-info makes `importlib.metadata.version(dist)` answer as it would after an install.
    """
    with tarfile.open(path) as tar:
        names = tar.getnames()
        strip = names[0].split("/")[0] + "/"
        pkg_info = b""
        for rel, read in _tar_members(tar, strip):
            if rel == "PKG-INFO":
                pkg_info = read()
            yield rel, read
    info_dir = f"{normalize_dist(entry.dist or entry.name).replace('-', '_')}-{entry.version}.dist-info"
    yield f"{info_dir}/METADATA", lambda: pkg_info
    yield f"{info_dir}/top_level.txt", lambda: "".join(f"{p}\n" for p in entry.packages).encode()
    yield f"{info_dir}/INSTALLER", lambda: b"helion-bench fetch_upstreams.py\n"


def git_members(entry: LockEntry, repo: Path) -> Iterator[Member]:
    """The files of the locked commit, read one blob at a time.

    Not `git archive`: mirrors may lack large blobs (data, binaries) that the tree never keeps, and archive fails
    on any missing blob; here only the blobs that pass the keep globs are read.
    """
    assert entry.commit
    proc = _git("ls-tree", "-r", "-z", "--full-tree", entry.commit, cwd=repo)
    if proc.returncode != 0:
        raise FetchError(f"{entry.name}: git ls-tree {entry.commit[:12]} failed: {_tail(proc.stderr.decode())}")

    def blob(sha: str, path: str) -> bytes:
        got = _git("cat-file", "blob", sha, cwd=repo)
        if got.returncode != 0:
            raise FetchError(f"{entry.name}: {path} ({sha[:12]}) is missing from {repo}: "
                             f"{_tail(got.stderr.decode(errors='replace'))}")
        return got.stdout

    for record in proc.stdout.decode().split("\0"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind == "blob" and mode != "120000":  # submodules and symlinks carry no file of their own
            yield path, (lambda sha=sha, path=path: blob(sha, path))


# ------------------------------------------------------------------------------------------------- building


def _stamp(entry: LockEntry, opts: Options) -> dict[str, object]:
    return {
        "name": entry.name,
        "kind": entry.kind,
        "version": entry.version,
        "pin": entry.pin,
        "source": entry.file or entry.repo,
        "entry_hash": entry.entry_hash(),
        "configs_for": sorted(opts.configs_for),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _up_to_date(tree: Path, entry: LockEntry, opts: Options) -> bool:
    stamp = read_stamp(tree)
    want = _stamp(entry, opts)
    return stamp is not None and all(stamp.get(k) == want[k] for k in ("version", "pin", "entry_hash", "configs_for"))


def write_tree(entry: LockEntry, members: Iterator[Member], opts: Options) -> tuple[int, int, int]:
    """Write the kept members to `<dest>/<name>/` atomically; returns (files, bytes, device JSONs dropped)."""
    accept = path_filter(entry.keep, entry.drop)
    devices = set(opts.configs_for)
    tree = opts.dest / entry.name
    opts.dest.mkdir(parents=True, exist_ok=True)
    partial = opts.dest / f".{entry.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    n = size = dropped = 0
    try:
        for rel, read in members:
            if rel.startswith("/") or ".." in rel.split("/") or not accept(rel):
                continue
            device = config_device(rel)
            if devices and device is not None and device not in devices:
                dropped += 1
                continue
            data = read()
            out = partial / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            n += 1
            size += len(data)
        if n == 0:
            raise FetchError(f"{entry.name}: the lock's keep globs matched no file of {entry.file or entry.repo}")
        (partial / STAMP_NAME).write_text(json.dumps(_stamp(entry, opts), indent=1) + "\n")
        if tree.exists():
            shutil.rmtree(tree)
        partial.rename(tree)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return n, size, dropped


def pack_tree(entry: LockEntry, opts: Options) -> Path:
    """`<dest>/<name>.zip` holding `<name>/...` (the loader unpacks it into the cache when the tree is absent)."""
    tree = opts.dest / entry.name
    out = opts.dest / f"{entry.name}.zip"
    tmp = out.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for p in sorted(tree.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                z.write(p, f"{entry.name}/{p.relative_to(tree).as_posix()}")
    tmp.replace(out)
    return out


def _zip_current(entry: LockEntry, opts: Options) -> bool:
    archive = opts.dest / f"{entry.name}.zip"
    try:
        with zipfile.ZipFile(archive) as z:
            inside = json.loads(z.read(f"{entry.name}/{STAMP_NAME}"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    return inside == read_stamp(opts.dest / entry.name)


def fetch_upstream(entry: LockEntry, opts: Options) -> str:
    """Provide `<dest>/<name>/` for one lock entry; returns the line to print."""
    tree = opts.dest / entry.name
    if _up_to_date(tree, entry, opts):
        state = "up to date"
    else:
        if entry.kind == "wheel":
            members = wheel_members(obtain_archive(entry, opts))
        elif entry.kind == "sdist":
            members = sdist_members(entry, obtain_archive(entry, opts))
        else:
            members = git_members(entry, obtain_git(entry, opts))
        _, _, dropped = write_tree(entry, members, opts)
        state = "built" + (f", {dropped} tuned configs for other devices left out" if dropped else "")
    n, size = dir_size(tree)
    line = f"{entry.name}: {entry.label}: {n} files, {size / MiB:.1f} MiB in {tree} ({state})"
    if opts.pack:
        if not _zip_current(entry, opts):
            pack_tree(entry, opts)
        line += f"; zipped {(opts.dest / f'{entry.name}.zip').stat().st_size / MiB:.1f} MiB"
    return line


# ----------------------------------------------------------------------------------------------- wheelhouse


def wheels_for(lock: Lock, only: Sequence[str] | None) -> list[DeviceWheel]:
    if not only:
        return list(lock.wheels)
    wanted = {"bench", *only}
    return [w for w in lock.wheels if wanted.intersection(w.needed_by)]


def fetch_wheels(lock: Lock, wheels: Sequence[DeviceWheel], house: Path, python_version: str,
                 offline: Path | None) -> list[str]:
    """Put exactly the locked wheels in `house` (one version per project); returns the failures."""
    if python_version != lock.wheel_python:
        return [f"the lock pins device wheels for Python {lock.wheel_python}, not {python_version}: "
                "re-lock [device_wheels] for that version"]
    house.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    todo = []
    for w in wheels:
        target = house / w.file
        if target.is_file() and sha256_of(target) == w.sha256:
            continue
        if offline is not None:
            found = _find_offline(offline, w.file)
            if found is None:
                failures.append(f"{w.name}: {w.file} is not under --offline {offline}")
                continue
            shutil.copy2(found, target)
        else:
            todo.append(w)
    if todo:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp", "-d", str(house)]
        for plat in lock.wheel_platforms:
            cmd += ["--platform", plat]
        cmd += [f"{w.name}=={w.version}" for w in todo]
        try:
            _run(cmd)
        except FetchError as e:
            failures.append(f"device wheels: {e}")
    for w in wheels:
        target = house / w.file
        if not target.is_file():
            if not any(f.startswith(f"{w.name}:") for f in failures):
                got = sorted(p.name for p in house.glob("*.whl") if _project(p.name) == normalize_dist(w.name))
                failures.append(f"{w.name}: {w.file} missing from {house} (found: {', '.join(got) or 'none'})")
            continue
        try:
            verify(target, w.sha256, w.name)
        except FetchError as e:
            failures.append(str(e))
    # two versions of one project stop `pip install --no-deps DIR/*.whl`: keep only the locked file
    locked = {normalize_dist(w.name): w.file for w in lock.wheels}
    for p in house.glob("*.whl"):
        proj = _project(p.name)
        if proj in locked and p.name != locked[proj]:
            p.unlink()
            print(f"  removed {p.name} (the lock pins {locked[proj]})")
    return failures


def _project(wheel_file: str) -> str:
    return normalize_dist(wheel_file.split("-")[0])


# ----------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="upstream names (or aliases) from the lock")
    ap.add_argument("--offline", type=Path, metavar="DIR",
                    help="read wheels/sdists/git mirrors (DIR/<owner>+<repo>) from DIR, no network")
    ap.add_argument("--dest", type=Path, default=REPO_ROOT / ".up", help="cache trees go to DEST/<name>/")
    ap.add_argument("--downloads", type=Path, default=REPO_ROOT / ".cache",
                    help="download cache (dl/ for archives, git/ for clones)")
    ap.add_argument("--configs-for", nargs="+", default=[], metavar="DEVICE",
                    help="keep only tuned-config JSONs for these devices, e.g. NVIDIA_H100_80GB_HBM3")
    ap.add_argument("--zip", action="store_true", help="also pack each tree as DEST/<name>.zip for carrying")
    ap.add_argument("--wheelhouse", type=Path, metavar="DIR",
                    help="download the lock's [device_wheels] into DIR (builds no trees)")
    ap.add_argument("--python-version", default=None, help="Python of the device wheels (default: the lock's)")
    ap.add_argument("--lock", type=Path, default=None, help="lock file (default: upstreams.lock)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        lock = read_lock(args.lock)
        only = [lock.entry(n).name for n in args.only] if args.only else None
    except (LockError, KeyError) as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    opts = Options(
        dest=args.dest,
        dl_dir=args.downloads / "dl",
        git_dir=args.downloads / "git",
        offline=args.offline,
        configs_for=tuple(args.configs_for),
        pack=args.zip,
    )
    failures: list[str] = []
    if args.wheelhouse is None:
        for name in only or list(lock.upstreams):
            entry = lock.upstreams[name]
            try:
                print(fetch_upstream(entry, opts), flush=True)
            except (FetchError, OSError, subprocess.SubprocessError) as e:
                failures.append(str(e) if isinstance(e, FetchError) else f"{name}: {type(e).__name__}: {e}")
                print(f"{name}: FAILED: {failures[-1]}", flush=True)
    if args.wheelhouse is not None:
        wheels = wheels_for(lock, only)
        errs = fetch_wheels(lock, wheels, args.wheelhouse, args.python_version or lock.wheel_python, args.offline)
        for e in errs:
            print(f"wheelhouse: FAILED: {e}", flush=True)
        failures += errs
        files = [args.wheelhouse / w.file for w in wheels if (args.wheelhouse / w.file).is_file()]
        total = sum(p.stat().st_size for p in files)
        print(f"wheelhouse: {len(files)}/{len(wheels)} wheels, {total / MiB:.1f} MiB in {args.wheelhouse}")
    if failures:
        print(f"{len(failures)} failed:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
