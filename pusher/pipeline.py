"""Several batches in flight to one destination, each written to the ledger after its own
acknowledgement.

    Pipeline(max_in_flight).run(batches, send, record)

`batches` is consumed on the calling thread (a warehouse stream stays on its connection) and
only as fast as workers free up: at most `max_in_flight` sends are in flight, and at most as
many acknowledged batches wait for their ledger write, so memory is flat in the audience size.
Workers freed by acknowledgements get their next batches before those acknowledgements are
recorded: the destination stays busy while the calling thread writes the ledger.

`send(batch)` runs on a worker thread and talks to the destination (whose rate limiter is
shared by all workers). `record(batch, result)` runs on the calling thread, one batch at a
time, in the order the acknowledgements arrive: ledger writes stay on one connection and
never precede their batch's acknowledgement.

When a send fails, no new batch is started; the batches already in flight are awaited and
those acknowledged are recorded (nothing acknowledged is forgotten), then the first failure
is raised. A kill at any point leaves at most the batches in flight or awaiting their ledger
write delivered but not recorded; the next run sends them again, as with one batch at a time.

max_in_flight 1 is the serial path: send and record alternate on the calling thread, no
worker thread is involved.

`record_group(pairs)`, if given, replaces `record` for the batches acknowledged while the
calling thread was busy: it gets them all at once, as (batch, result) pairs in batch order, so
the ledger can write them with one set of statements (each still after its own
acknowledgement). Without it, each pair goes to `record` in turn.

A ledger write costs its statements and its commit more than its rows, so acknowledged batches
wait until `group_size` of them are there (by default a quarter of max_in_flight: 8 of
Customer.io's 32), or the oldest was acknowledged `max_hold_seconds` ago, or no send is left in
flight, or a send failed. They are held in memory meanwhile: at most group_size + max_in_flight
batches, still flat in the audience size. A kill in between means they are sent again next run.

A phase that must finish before the next starts (removes before adds; a list's Replace
before any add) is one run() call: run() returns only once every batch it started is
acknowledged and recorded.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Callable, Generic, Iterable, TypeVar

from pusher.gc_pause import fewer_collections

Batch = TypeVar("Batch")
Result = TypeVar("Result")
_END = object()
GROUPS_PER_FLIGHT = 4        # acknowledged batches written together: a quarter of max_in_flight
MAX_HOLD_SECONDS = 0.25      # ...or whatever was acknowledged this long ago


class Pipeline(Generic[Batch, Result]):
    def __init__(self, max_in_flight: int = 1, name: str = "pusher-send", group_size: int | None = None,
                 max_hold_seconds: float = MAX_HOLD_SECONDS):
        self.max_in_flight = max(1, int(max_in_flight))
        self.name = name
        # Acknowledged batches wait for this many before their ledger write (see the module doc).
        self.group_size = max(1, min(self.max_in_flight, group_size or self.max_in_flight // GROUPS_PER_FLIGHT))
        self.max_hold_seconds = max_hold_seconds

    def run(self, batches: Iterable[Batch], send: Callable[[Batch], Result],
            record: Callable[[Batch, Result], None],
            record_group: Callable[[list[tuple[Batch, Result]]], None] | None = None) -> None:
        with fewer_collections():       # a million rows streamed hold no cycles (see pusher.gc_pause)
            self._run(batches, send, record, record_group)

    def _run(self, batches: Iterable[Batch], send: Callable[[Batch], Result],
             record: Callable[[Batch, Result], None],
             record_group: Callable[[list[tuple[Batch, Result]]], None] | None) -> None:
        if record_group is None:
            def record_group(pairs: list[tuple[Batch, Result]]) -> None:
                for batch, result in pairs:
                    record(batch, result)
        if self.max_in_flight == 1:
            for batch in batches:
                record(batch, send(batch))
            return
        executor = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix=self.name)
        in_flight: dict[Future, tuple[int, Batch]] = {}
        stream, numbers = iter(batches), itertools.count()
        failure: BaseException | None = None
        failed_at = -1
        ended = False

        def fill() -> None:
            # Read the next batch only once a worker is free, and none after a failure.
            nonlocal ended
            while not ended and failure is None and len(in_flight) < self.max_in_flight:
                batch = next(stream, _END)
                if batch is _END:
                    ended = True
                    return
                in_flight[executor.submit(send, batch)] = (next(numbers), batch)

        held: list[tuple[Batch, Result]] = []       # acknowledged, awaiting their ledger write
        held_since = 0.0
        try:
            fill()
            while in_flight:
                timeout = max(0.0, held_since + self.max_hold_seconds - time.monotonic()) if held else None
                acknowledged, failure, failed_at = self._settle(in_flight, failure, failed_at, timeout)
                if acknowledged and not held:
                    held_since = time.monotonic()
                held += acknowledged
                fill()              # the freed workers send on while the calling thread records
                if held and (len(held) >= self.group_size or not in_flight or failure is not None
                             or time.monotonic() - held_since >= self.max_hold_seconds):
                    group, held = held, []
                    record_group(group)
        finally:
            try:
                # Also when reading the stream failed or an interrupt came: what was acknowledged is recorded.
                if held:
                    group, held = held, []
                    record_group(group)
            finally:
                # Normally nothing is left; after an exception in record() or the stream, let the
                # requests already sent finish (their batches are simply resent next run).
                executor.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            raise failure

    @staticmethod
    def _settle(in_flight: dict[Future, tuple[int, Batch]], failure: BaseException | None,
                failed_at: int, timeout: float | None = None) -> tuple[list[tuple[Batch, Result]], BaseException | None, int]:
        """Wait for at least one send to finish (or the timeout); return the acknowledged batches
        (acknowledgement order; ties by batch number) and the earliest failure."""
        done, _ = wait(list(in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        acknowledged: list[tuple[Batch, Result]] = []
        for future in sorted(done, key=lambda f: in_flight[f][0]):
            number, batch = in_flight.pop(future)
            error = future.exception()
            if error is not None:
                if failure is None or number < failed_at:
                    failure, failed_at = error, number
                continue
            acknowledged.append((batch, future.result()))
        return acknowledged, failure, failed_at
