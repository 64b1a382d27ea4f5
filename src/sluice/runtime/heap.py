"""The collector in a long-running process. Everything a server or worker builds while it starts
(modules, routes, mappers, schemas, the app itself) lives as long as the process, yet the cyclic
garbage collector walks all of it in every full collection, and a full collection stops every
thread: in `bench/grant_path.py` one added 160 ms to a submit, on a heap of 264,000 objects.
Frozen once the process has started, those objects are left out of later collections; what
requests and passes create is collected as before.

Only `sluice server`, `sluice up` and `sluice worker` do this, not `create_app`: a test process
builds hundreds of apps, and freezing each would keep every earlier test's garbage alive."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect what starting left behind, then freeze the rest."""
    gc.collect()
    gc.freeze()
