"""Cancel a request's work when its client goes away before the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from kerasserve.service.errors import ClientGone

T = TypeVar("T")


# An answer within this long never pays for a watcher (a task per request is a fair part of
# a near-free model's cost); a client that leaves is noticed at most this much later, and
# only a backlog makes images wait that long, which is when dropping them matters.
WATCH_AFTER_S = 0.1


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it if the client disconnects first.

    The body has been read in full, so the next ASGI message can only be a disconnect:
    waiting for it costs nothing, and cancelling `work` drops queued images before
    their batch runs. `work` runs in the request's own task (no task of its own, no
    `asyncio.wait`); a watcher, started once the work has taken `WATCH_AFTER_S`, cancels
    this task when the disconnect arrives (a disconnect before then is still waiting in
    `receive` when the watcher starts).
    """
    current = asyncio.current_task()
    assert current is not None, "until_disconnect runs inside a task"
    state = {"gone": False, "done": False}
    watcher: asyncio.Future[None] | None = None

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        # Nothing runs between `work` finishing and `done` being set (no await there), so a
        # disconnect that comes after the result never cancels the answer.
        if not state["done"]:
            state["gone"] = True
            current.cancel()

    def start_watching() -> None:
        nonlocal watcher
        if not state["done"]:
            watcher = asyncio.ensure_future(watch())

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
    try:
        result = await work
        state["done"] = True
        return result
    except asyncio.CancelledError:
        state["done"] = True
        if state["gone"] and current.uncancel() == 0:
            raise ClientGone("the client disconnected; its queued images were dropped") from None
        raise
    finally:
        state["done"] = True
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
