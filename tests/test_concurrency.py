"""Delta write conflicts between concurrent jobs are retried; other errors are not."""

from __future__ import annotations

import pytest
from delta.exceptions.base import ConcurrentAppendException, ProtocolChangedException

from pipelines.tables.conflicts import is_write_conflict, retry_on_conflict


class Flaky:
    """Raises the given errors in turn, then returns "merged"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "merged"


def _conflict() -> ConcurrentAppendException:
    return ConcurrentAppendException(message="a concurrent MERGE added data to table lakecast.job_runs")


def test_conflicts_are_retried_with_growing_waits() -> None:
    waits: list[float] = []
    write = Flaky(_conflict(), _conflict())
    assert retry_on_conflict(write, what="job_runs row r1", sleep=waits.append, base_delay=1.0) == "merged"
    assert write.calls == 3 and len(waits) == 2
    assert 0.5 <= waits[0] <= 1.5 and 1.0 <= waits[1] <= 3.0  # jittered exponential backoff


def test_the_last_conflict_and_other_errors_propagate() -> None:
    with pytest.raises(ConcurrentAppendException, match="concurrent MERGE added data"):
        retry_on_conflict(Flaky(*[_conflict()] * 3), what="x", attempts=3, sleep=lambda s: None)
    protocol = ProtocolChangedException(message="the protocol of the table changed")
    assert not is_write_conflict(protocol)
    write = Flaky(protocol)
    with pytest.raises(ProtocolChangedException):
        retry_on_conflict(write, what="x", sleep=lambda s: None)
    assert write.calls == 1
    with pytest.raises(ValueError, match="bad"):
        retry_on_conflict(Flaky(ValueError("bad")), what="x", sleep=lambda s: None)
