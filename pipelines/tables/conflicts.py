"""Retry a Delta write that lost an optimistic-concurrency race to another job.

Delta commits optimistically: when two jobs (say predict for two as-of dates, on a
PostgreSQL-backed catalog) MERGE into the same unpartitioned table at once, the later commit
fails with a `Concurrent...Exception` although they touched different keys, because each
MERGE read the whole table. lakecast's writes are keyed MERGEs (a re-run replaces, never
duplicates) or blind appends (the run event log; a losing commit wrote nothing), so running the
losing statement again is safe and gives the same result as running the two jobs one after the
other.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_write_conflict(e: BaseException) -> bool:
    """True for Delta's concurrent-modification errors that a retry resolves.

    ProtocolChangedException is not one: the table itself changed under the job.
    """
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        MetadataChangedException,
    )

    return isinstance(e, (ConcurrentAppendException, ConcurrentDeleteReadException,
                          ConcurrentDeleteDeleteException, ConcurrentTransactionException,
                          ConcurrentWriteException, MetadataChangedException))


def retry_on_conflict(write: Callable[[], T], *, what: str, attempts: int = 8,
                      base_delay: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `write()`; on a Delta write conflict wait (exponential, jittered) and run it again.

    `write` must be idempotent: a keyed MERGE, or a blind append (a conflict means nothing was
    committed). Other errors, and the last conflict after
    `attempts` tries, propagate unchanged.
    """
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except Exception as e:
            if attempt == attempts or not is_write_conflict(e):
                raise
            delay = base_delay * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning("%s lost a race with a concurrent write (%s); retrying in %.1f s (%d/%d)",
                        what, type(e).__name__, delay, attempt, attempts - 1)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
