"""Event-loop plumbing shared by the field backends and the emulators.

The engine is synchronous; the protocol stacks are asyncio. Central backends
own a private event loop that runs only inside ``read``/``apply``/``advance``
(:class:`PrivateLoop`: no thread, nothing runs behind the engine's back).
Emulators serve requests continuously, so their servers run in a
:class:`LoopThread`. Both cancel and await every task they started before the
loop closes, so no coroutine is left un-awaited (tests run with warnings as
errors).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["PrivateLoop", "LoopThread"]

T = TypeVar("T")


async def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks(loop) if t is not me]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


class PrivateLoop:
    """An event loop owned by one object and run on demand in the caller's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(asyncio.sleep(0))  # connection_lost callbacks of closed transports
            self.loop.run_until_complete(_cancel_all(self.loop))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


class LoopThread:
    """An event loop running in a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self, name: str = "greenwave-io") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(self.loop), self.loop).result(10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
