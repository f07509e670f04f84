"""The ``/metrics`` endpoint's rendering: off the event loop, shared by
concurrent scrapes, streamed in slices.

The render runs in a worker thread.  The store's walk releases the GIL (it
reads the shared store without Python objects), so requests keep being
answered on the loop while a large store renders; collectors written in
Python (the process and GC collectors, prometheus_client's registry) run in
that thread with the GIL, as they do under prometheus_client's HTTP server.

One owner per cache: a :class:`SharedRender` (one per exposed endpoint)
holds the renders in flight, one per response kind (format, escaping,
gzip) and event loop.  The first scrape of a kind starts a render and
creates the entry; scrapes that arrive before it ends await the same
render and send the same body; the entry is dropped when the render ends,
so the next scrape renders afresh.  No body outlives its render: a scrape
never sees samples older than the start of a render that was still running
when it arrived.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

from starlette.responses import Response

from ..exposition import Exposition, accepts_gzip, negotiate_format

#: Bytes per ``http.response.body`` message of a streamed body.
CHUNK = 64 * 1024


def response_kind(accept: Optional[str], accept_encoding: Optional[str], allow_gzip: bool) -> Hashable:
    """What decides a scrape's response: (protocol, Content-Type, escaping,
    gzip?).  Scrapes of one kind can share a body."""
    return (*negotiate_format(accept), bool(allow_gzip and accepts_gzip(accept_encoding)))


class SharedRender:
    """Renders in a worker thread; concurrent scrapes of one kind share one render.

    ``renders`` counts the renders started, ``waiting`` the scrapes now
    awaiting one; ``on_render``, when set, is called in the worker thread
    before each render (a hook for tests and tracing).
    """

    def __init__(self) -> None:
        self._inflight: Dict[Tuple[Any, Hashable], "asyncio.Future[Exposition]"] = {}
        self.renders = 0
        self.waiting = 0
        self.on_render: Optional[Callable[[], None]] = None

    def _run(self, render: Callable[[], Exposition]) -> Exposition:
        hook = self.on_render
        if hook is not None:
            hook()
        return render()

    async def get(self, kind: Hashable, render: Callable[[], Exposition]) -> Exposition:
        """The exposition of ``kind``: the render in flight for it, or a new
        one of ``render()`` in a worker thread."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another async library (trio): a render of its own, in its threads
            import anyio.to_thread
            self.renders += 1
            return await anyio.to_thread.run_sync(self._run, render)
        key = (loop, kind)
        fut = self._inflight.get(key)
        if fut is None:
            self.renders += 1
            fut = self._inflight[key] = loop.run_in_executor(None, self._run, render)
            fut.add_done_callback(lambda _f: self._inflight.pop(key, None))
        self.waiting += 1
        try:
            # shield: a scrape whose client goes away must not cancel the
            # render the others are waiting for.
            return await asyncio.shield(fut)
        finally:
            self.waiting -= 1


class StreamedExposition(Response):
    """A Starlette response sending an exposition's body in slices of
    :data:`CHUNK` bytes, yielding to the event loop between them, so a body
    of many megabytes does not keep other requests waiting while it is
    written out."""

    def __init__(self, e: Exposition) -> None:  # no super().__init__: the body is ready as it is
        self.status_code = 200
        self.background = None
        self.body = e.body
        self.init_headers(e.headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body, head = self.body, scope.get("method") == "HEAD"
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if head or len(body) <= CHUNK:
            await send({"type": "http.response.body", "body": b"" if head else body})
        else:
            view = memoryview(body)
            try:
                for i in range(0, len(body), CHUNK):
                    end = i + CHUNK
                    await send({"type": "http.response.body", "body": bytes(view[i:end]),
                                "more_body": end < len(body)})
                    await _yield()
            finally:
                view.release()
        if self.background is not None:
            await self.background()


async def _yield() -> None:
    """Lets the event loop run other tasks once."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import anyio
        await anyio.sleep(0)
        return
    await asyncio.sleep(0)
