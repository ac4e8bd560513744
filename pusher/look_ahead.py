"""Work a sync will wait for, started early on another thread: building a destination (its
imports, its HTTP clients) and finding the lists the ledger does not know (a first sync's
segment lookup, and its creation when there is none: Destination.look_up_list). The first add
of a first sync then waits for none of those round trips, which overlap the process's
start-up, the warehouse, the ledger and the plan. Members are sent by the sync alone, once its
plan has passed the guards.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable

from pusher.destinations.base import Destination, ListRef


class LookAhead:
    def __init__(self, build: Callable[[str], Destination]):
        self._build = build
        self._threads: dict[str, threading.Thread] = {}     # kind -> its latest look-ahead thread
        self._built: dict[str, Destination] = {}

    def start(self, kind: str, refs: Iterable[ListRef] = ()) -> None:
        """Build the destination `kind` (once) on a thread, then start looking `refs` up. A
        destination that fails to build is built again, and the failure reported, by the sync."""
        refs, previous = list(refs), self._threads.get(kind)

        def build_and_look_up() -> None:
            if previous is not None:
                previous.join()
            if kind not in self._built:
                try:
                    self._built[kind] = self._build(kind)
                except Exception:
                    return
            for ref in refs:
                self._built[kind].look_up_list(ref)

        self._threads[kind] = threading.Thread(target=build_and_look_up, name="pusher-look-ahead", daemon=True)
        self._threads[kind].start()

    def started(self, kind: str) -> bool:
        return kind in self._threads

    def take(self, kind: str) -> Destination | None:
        """The destination built ahead (its lookups may still be under way), or None."""
        thread = self._threads.pop(kind, None)
        if thread is not None:
            thread.join()
        return self._built.pop(kind, None)

    def close(self) -> None:
        """Close what was built but never taken."""
        for kind in list(self._threads):
            self.take(kind)
        for destination in self._built.values():
            destination.close()
        self._built.clear()


def start_for_first_run(look_ahead: LookAhead, syncs: Iterable, state_file: Path) -> None:
    """No state file yet: nothing was ever acknowledged, so every selected sync sends and every
    list is new. Its destinations are built and its lists looked up while the warehouse opens,
    instead of once the ledger has said so. With a state file, the engine starts the lookups of
    the lists the ledger does not know (Engine._look_up_new_list)."""
    if state_file.exists():
        return
    refs: dict[str, list[ListRef]] = {}
    for sync in syncs:
        names = refs.setdefault(sync.destination, [])
        if sync.kind == "audience" and sync.list_name and ListRef(sync.list_name) not in names:
            names.append(ListRef(sync.list_name))
    for kind, lists in refs.items():
        look_ahead.start(kind, lists)
