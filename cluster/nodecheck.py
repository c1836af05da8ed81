"""A node checks itself before it does Sigma's work: the service's code (``cluster.version``),
the catalog and the artifact store within reach; ``NodeRefused`` naming the node and the
setting to fix otherwise (``SIGMA_DATABASE_URL``, ``SIGMA_STORAGE_URL``)."""

from __future__ import annotations

import logging
import socket

from cluster.version import code_version

log = logging.getLogger("sigma.node")


class NodeRefused(Exception):
    """This node cannot do Sigma's work: ``code`` is ``CODE_VERSION_MISMATCH``,
    ``CATALOG_UNREACHABLE`` or ``STORE_UNREACHABLE``; the message names the node and the fix."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # crosses Ray's process boundary with its code
        return (NodeRefused, (str(self), self.code))


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
