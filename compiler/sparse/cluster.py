"""Running analysis configurations on a Dask distributed cluster (``plan --cluster``).

The default is a local process pool (:mod:`compiler.sparse.contrib`). With a scheduler
address (``tcp://host:8786``) every configuration becomes one task on the cluster's
workers; the shared inputs (graph, frozen-prefix features, labels, settings) are sent to
every worker once, and each task runs exactly what a local worker process runs
(:func:`compiler.sparse.contrib.run_config`), so the measured accuracies are the same.
Results come back as they finish and are cached one by one, as locally: if the cluster
goes away half-way, what finished is kept and a re-run trains only the rest.

The workers import this project: start them from the same checkout and virtualenv
(``dask worker tcp://host:8786`` run in the repository with its venv, or with the
repository on ``PYTHONPATH``). A worker that cannot import it fails its first task with
a message saying so.
"""
from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

from compiler.sparse.plan import PlanError

CONNECT_TIMEOUT = 10.0   # seconds


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A :class:`distributed.Client` of the scheduler at ``address``; an unreachable or
    malformed address is a :class:`PlanError` (one line)."""
    try:
        from distributed import Client
        from distributed.comm import get_address_host_port
    except ImportError as e:   # pragma: no cover - a pinned dependency
        raise PlanError(f"--cluster needs the 'distributed' package ({e})") from None
    where = f"cannot reach the Dask scheduler at {address!r}"
    try:
        host, port = get_address_host_port(address if "://" in address else f"tcp://{address}")
    except (ValueError, TypeError) as e:
        raise PlanError(f"{where}: {str(e).splitlines()[0]}") from None
    # a plain TCP probe first: a failed Client leaves its own noise at interpreter exit
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise PlanError(f"{where}: {e.strerror or e}") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise PlanError(f"{where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


_SINGLE_THREAD: list = []


def _worker_run(fn, state: dict, cfg: tuple):
    if not _SINGLE_THREAD:   # batch-1 matrices: one BLAS thread is fastest
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(1)
        except ImportError:
            pass
        _SINGLE_THREAD.append(True)
    return fn(state, cfg)


def run(client, fn, state: dict, cfgs: list[tuple]) -> Iterator[tuple]:
    """``fn(state, cfg)`` (:func:`compiler.sparse.contrib.run_config`: imported by name on
    the workers) for every configuration of ``cfgs`` (longest first) on the cluster of
    ``client``, with the shared ``state``; yields its ``(cfg, score, seconds)`` results as
    tasks finish."""
    from distributed import as_completed
    if not cfgs:
        return
    run_id = uuid.uuid4().hex   # task keys never collide with an earlier run's
    try:
        shared = client.scatter(state, broadcast=True, hash=False)
        # earlier in the list first (the caller sorts the longest first)
        futures = [client.submit(_worker_run, fn, shared, cfg, pure=False, priority=len(cfgs) - i,
                                 key=f"tinytrain-config-{run_id}-{i}")
                   for i, cfg in enumerate(cfgs)]
    except (OSError, TimeoutError) as e:
        raise PlanError(f"the Dask scheduler went away: {e}") from None
    try:
        for fut in as_completed(futures, loop=client.loop):
            try:
                yield fut.result()
            except ModuleNotFoundError as e:
                raise PlanError(f"a Dask worker cannot import this project ({e}): start the "
                                "workers from the same checkout and virtualenv") from None
            except (OSError, TimeoutError) as e:
                raise PlanError(f"lost the Dask cluster: {e}") from None
    finally:
        for f in futures:
            f.cancel()
