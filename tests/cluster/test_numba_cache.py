"""The default numba cache is keyed by a digest of compute/ (every kernel lives there): numba
invalidates a cached kernel when its own file changes, not when a kernel it calls from another
file does, so a change anywhere in compute/ must start a new cache."""

import shutil
from pathlib import Path

import compute
from cluster.config import default_numba_cache_dir, kernels_digest
from cluster.version import source_digest


def test_default_cache_is_per_kernels_digest_and_the_env_wins(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    compute_dir = Path(compute.__file__).parent
    assert kernels_digest() == source_digest([compute_dir])
    assert default_numba_cache_dir() == tmp_path / "sigma" / "numba" / kernels_digest()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert default_numba_cache_dir() == tmp_path / "mine"


def test_a_change_in_a_called_kernels_file_changes_the_digest(tmp_path):
    # sweep_nb.py unchanged, backtest_nb.py (which it inlines) changed: a new cache folder
    copy = tmp_path / "compute"
    shutil.copytree(Path(compute.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest([copy])
    assert before == kernels_digest()
    path = copy / "backtest_nb.py"
    path.write_text(path.read_text() + "\n# changed\n")
    assert source_digest([copy]) != before
