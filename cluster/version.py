"""The version of Sigma's code a process runs, and the check that a node runs the service's.

Every node of a cluster installs Sigma on its own (``cluster.yaml``'s setup commands, an image
in KubeRay). A node left on another commit would evaluate a sweep or train a model with other
code than the service that stores and ranks the results: the numbers would not be comparable
and nobody would know. ``code_version`` is a digest of the source of Sigma's packages (not the
package version, which stays the same from commit to commit); the service sends its own to every
job and sweep trial (``Settings.worker_json``) and a worker whose digest differs refuses the work
(``cluster.nodecheck``, with a log line naming the node and both digests). This module imports
nothing of Sigma's, so the settings can stamp themselves with it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

#: The packages whose source makes up Sigma's code (pyproject's ``packages.find``).
PACKAGES = ("cluster", "compute", "serve_app", "services", "sigma_client", "tuning")


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest (16 hex digits) of every ``.py`` file of Sigma's packages, by relative path
    and content: two nodes with the same digest run the same code."""
    return packages_digest(*PACKAGES)


def packages_digest(*packages: str) -> str:
    """``source_digest`` of the installed packages named (e.g. ``"compute"``)."""
    return source_digest(Path(importlib.util.find_spec(package).origin).parent for package in packages)


def source_digest(package_dirs) -> str:
    """``code_version`` of the given package folders."""
    digest = hashlib.sha256()
    for root in package_dirs:
        for path in sorted(Path(root).rglob("*.py")):
            digest.update(path.relative_to(Path(root).parent).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]
