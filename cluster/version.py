"""The version of Sigma's code a process runs, and the check that a node runs the service's.

Every node of a cluster installs Sigma on its own (``cluster.yaml``'s setup commands, an image
in KubeRay). A node left on another commit would evaluate a sweep or train a model with other
code than the service that stores and ranks the results: the numbers would not be comparable
and nobody would know. ``code_version`` is a digest of the source of Sigma's packages (not the
package version, which stays the same from commit to commit); the service sends its own to every
job and sweep trial (``Settings.worker_json``) and a worker whose digest differs refuses the work
(``NodeRefused``, with a log line naming the node and both digests).

The same check covers a node that cannot reach the catalog or the artifact store: the error
names the setting to fix (``SIGMA_DATABASE_URL``, ``SIGMA_STORAGE_URL``) and the node.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import socket
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("sigma.node")

#: The packages whose source makes up Sigma's code (pyproject's ``packages.find``).
PACKAGES = ("cluster", "compute", "serve_app", "services", "sigma_client", "tuning")


class NodeRefused(Exception):
    """This node cannot do Sigma's work: ``code`` is ``CODE_VERSION_MISMATCH``,
    ``CATALOG_UNREACHABLE`` or ``STORE_UNREACHABLE``; the message names the node and the fix."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # crosses Ray's process boundary with its code
        return (NodeRefused, (str(self), self.code))


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest (16 hex digits) of every ``.py`` file of Sigma's packages, by relative path
    and content: two nodes with the same digest run the same code."""
    return source_digest(Path(importlib.util.find_spec(package).origin).parent for package in PACKAGES)


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


def node_name() -> str:
    """This node as a log line names it: its host name and, inside Ray, its node id."""
    name = socket.gethostname()
    try:
        import ray

        if ray.is_initialized():
            name += f" (Ray node {ray.get_runtime_context().get_node_id()[:12]})"
    except Exception:  # noqa: BLE001 - a name for a message, never a failure of its own
        pass
    return name


def check_code_version(expected: str | None) -> None:
    """Refuse the work when the service's code (``expected``; None: not stated) differs from
    this node's."""
    if expected is None or expected == code_version():
        return
    message = (f"node {node_name()} runs Sigma code {code_version()}, the service {expected}: refused (install the "
               "service's commit on every node, e.g. `ray up` again or the same image tag; after upgrading Sigma on "
               "a running cluster, restart the cluster: its job manager is a detached actor that keeps the code it "
               "started with)")
    log.error(message)
    raise NodeRefused(message, "CODE_VERSION_MISMATCH")


def check_node(settings, *, store: bool = True) -> None:
    """Before a job runs here: the same code as the service, the catalog reachable and (with
    ``store``) the artifact store too; ``NodeRefused`` naming what to fix otherwise."""
    check_code_version(settings.service_code_version)
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from cluster.catalog import get_catalog
    from cluster.config import redact_url

    try:
        with get_catalog(settings).session() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        message = (f"node {node_name()} cannot reach the catalog (SIGMA_DATABASE_URL "
                   f"{redact_url(settings.resolved_database_url)}): {_first_line(exc)}")
        log.error(message)
        raise NodeRefused(message, "CATALOG_UNREACHABLE") from None
    if not store:
        return
    from cluster.artifacts import open_store

    try:
        open_store(settings.resolved_storage_url).check()
    except Exception as exc:  # noqa: BLE001 - any failure to list the store's root
        message = (f"node {node_name()} cannot reach the artifact store (SIGMA_STORAGE_URL "
                   f"{settings.resolved_storage_url}): {type(exc).__name__}: {_first_line(exc)}")
        log.error(message)
        raise NodeRefused(message, "STORE_UNREACHABLE") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
