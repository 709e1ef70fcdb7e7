"""scripts/fetch_upstreams.py fetches a locked sdist by file name from the index, never through pip (pip would
run the sdist's build to prepare metadata: mamba_ssm's needs torch in the calling Python)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("fetch_upstreams_under_test", ROOT / "scripts" / "fetch_upstreams.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


class _Resp(io.BytesIO):
    def __init__(self, body: bytes, ctype: str) -> None:
        super().__init__(body)
        self.headers = {"Content-Type": ctype}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("style", ["json", "html"])
def test_sdist_comes_from_the_index_without_pip(tmp_path, monkeypatch, style):
    fu = _script()
    from upstream_adapters._loader import read_lock

    entry = read_lock().entry("mamba_ssm")
    payload = b"pretend sdist bytes"
    checked = []
    # the lock entry is frozen: check that the downloaded bytes are what gets verified
    monkeypatch.setattr(fu, "verify", lambda path, sha, what: checked.append(hashlib.sha256(path.read_bytes())))
    seen = []

    def urlopen(req, timeout=0):
        url = req.full_url if hasattr(req, "full_url") else req
        seen.append(url)
        if url.endswith("/mamba-ssm/"):
            if style == "json":
                body = json.dumps({"files": [{"filename": "other.tar.gz", "url": "../../x/other.tar.gz"},
                                             {"filename": entry.file, "url": f"../../files/{entry.file}"}]})
                return _Resp(body.encode(), "application/vnd.pypi.simple.v1+json")
            return _Resp(f'<a href="../../files/{entry.file}#sha256=abc">{entry.file}</a>'.encode(), "text/html")
        assert url.endswith(f"/files/{entry.file}")
        return _Resp(payload, "application/octet-stream")

    def no_pip(cmd, **kw):
        raise AssertionError(f"pip was called: {cmd}")

    monkeypatch.setattr(fu.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(fu, "_run", no_pip)
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.invalid/simple/")
    opts = fu.Options(dest=tmp_path / "up", dl_dir=tmp_path / "dl", git_dir=tmp_path / "git", offline=None,
                      configs_for=(), pack=False)
    got = fu.obtain_archive(entry, opts)
    assert got == tmp_path / "dl" / entry.file and got.read_bytes() == payload
    assert [h.hexdigest() for h in checked] == [hashlib.sha256(payload).hexdigest()]
    assert seen[0] == "https://mirror.invalid/simple/mamba-ssm/"


def test_unreachable_index_is_one_line_with_what_to_do(tmp_path, monkeypatch):
    fu = _script()
    from upstream_adapters._loader import read_lock

    entry = read_lock().entry("mamba_ssm")

    def urlopen(req, timeout=0):
        raise fu.urllib.error.URLError("no network")

    monkeypatch.setattr(fu.urllib.request, "urlopen", urlopen)
    opts = fu.Options(dest=tmp_path / "up", dl_dir=tmp_path / "dl", git_dir=tmp_path / "git", offline=None,
                      configs_for=(), pack=False)
    with pytest.raises(fu.FetchError) as err:
        fu.obtain_archive(entry, opts)
    msg = str(err.value)
    assert "\n" not in msg and entry.file in msg and "--offline" in msg and "See above" not in msg
