"""Cancel a request's work when its client goes away before the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from kerasserve.service.errors import ClientGone

T = TypeVar("T")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it if the client disconnects first.

    The body has been read in full, so the next ASGI message can only be a disconnect:
    waiting for it costs nothing, and cancelling `work` drops queued images before
    their batch runs. `work` runs in the request's own task (no task of its own, no
    `asyncio.wait`); a watcher cancels this task when the disconnect arrives.
    """
    current = asyncio.current_task()
    assert current is not None, "until_disconnect runs inside a task"
    state = {"gone": False, "done": False}

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        # Nothing runs between `work` finishing and `done` being set (no await there), so a
        # disconnect that comes after the result never cancels the answer.
        if not state["done"]:
            state["gone"] = True
            current.cancel()

    watcher = asyncio.ensure_future(watch())
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
        watcher.cancel()
