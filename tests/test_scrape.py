"""The /metrics endpoint renders off the event loop, shares one render among
concurrent scrapes and streams large bodies: against a real uvicorn, and
SharedRender alone."""
import asyncio
import concurrent.futures
import itertools
import json
import threading
import time
import urllib.request

import pytest

from fastprom.asgi.scrape import CHUNK, SharedRender
from fastprom.exposition import Exposition
from servers import uvicorn_server

OPENMETRICS = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def get(url, accept=None, method="GET", timeout=60):
    req = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def state(base):
    return json.loads(get(base + "/state")[1])


def wait_state(base, test, what, timeout=30.0):
    """Polls /state until test(state) holds (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = state(base)
        if test(s):
            return s
        time.sleep(0.05)
    raise AssertionError(f"{what}: /state is {s} after {timeout} s")


def test_requests_answered_and_scrapes_shared_while_a_render_is_in_flight():
    with uvicorn_server(app="scrape:create_app", env={"FASTPROM_TEST_HOLD": "1", "FASTPROM_TEST_SERIES": "1000"}) \
            as base, concurrent.futures.ThreadPoolExecutor(4) as pool:
        first = pool.submit(get, base + "/metrics", OPENMETRICS)
        wait_state(base, lambda s: s["held"] == 1, "the first scrape's render is held")
        others = [pool.submit(get, base + "/metrics", OPENMETRICS) for _ in range(3)]
        wait_state(base, lambda s: s["waiting"] == 4, "four scrapes await the one render")
        # The render is still in flight (held in its thread): the loop answers.
        for _ in range(5):
            assert get(base + "/ping") == (200, b'{"ok":true}')
        assert state(base) == {"renders": 1, "waiting": 4, "held": 1}
        assert not first.done() and not any(f.done() for f in others)
        assert get(base + "/release", method="POST")[0] == 200
        bodies = [f.result(60) for f in [first, *others]]
        assert {status for status, _ in bodies} == {200}
        assert len({body for _, body in bodies}) == 1
        assert bodies[0][1].endswith(b"# EOF\n") and b'preloaded_total{i="999"} 1.0' in bodies[0][1]
        assert state(base)["renders"] == 1
        # The next scrape renders afresh: it counts the four scrapes that shared a render.
        _, later = get(base + "/metrics", OPENMETRICS)
        assert state(base)["renders"] == 2
        assert b'http_requests_total{handler="/ping",method="GET",status="2xx"} 5.0' in later
        assert b'http_requests_total{handler="/metrics",method="GET",status="2xx"} 4.0' in later
        assert b'handler="/metrics",method="GET",status="2xx"} 4.0' not in bodies[0][1]


def test_requests_progress_while_a_large_store_renders_and_streams():
    series = 100_000
    with uvicorn_server(app="scrape:create_app", env={"FASTPROM_TEST_SERIES": str(series)}) as base:
        seq = itertools.count()
        pings, stop = [], threading.Event()

        def pinger():
            for _ in range(20_000):  # bounded in count and (below) in time
                if stop.is_set():
                    return
                assert get(base + "/ping")[0] == 200
                pings.append(next(seq))
        t = threading.Thread(target=pinger, daemon=True)
        t.start()
        try:
            while not pings and t.is_alive():  # the pinger is running before the scrape starts
                time.sleep(0.01)
            begin = next(seq)
            status, body = get(base + "/metrics", OPENMETRICS)
            end = next(seq)
        finally:
            stop.set()
            t.join(60)
        assert status == 200 and body.endswith(b"# EOF\n")
        assert body.count(b"\npreloaded_total{") == series
        assert len(body) > 10 * CHUNK  # streamed in many slices
        during = [p for p in pings if begin < p < end]
        assert during, f"no /ping answered while /metrics of {series} series was rendered and sent"


def test_text_and_gzip_scrapes_render_their_own_kind():
    with uvicorn_server(app="scrape:create_app", env={"FASTPROM_TEST_SERIES": "10"}) as base:
        status, text = get(base + "/metrics")
        assert status == 200 and b"# EOF" not in text and b'preloaded_total{i="9"} 1.0' in text
        status, om = get(base + "/metrics", OPENMETRICS)
        assert status == 200 and om.endswith(b"# EOF\n")


def exposition(body=b"x"):
    return Exposition(body, "text/plain", None)


def test_shared_render_one_render_for_concurrent_gets():
    shared = SharedRender()
    gate = threading.Event()
    calls = []

    def render():
        calls.append(1)
        assert gate.wait(30)
        return exposition(b"body %d" % len(calls))

    async def main():
        tasks = [asyncio.ensure_future(shared.get("k", render)) for _ in range(5)]
        other = asyncio.ensure_future(shared.get("other", render))
        for _ in range(1000):  # bounded: until all six await
            if shared.waiting == 6:
                break
            await asyncio.sleep(0.01)
        assert shared.waiting == 6 and shared.renders == 2
        gate.set()
        got = await asyncio.gather(*tasks)
        assert len({e.body for e in got}) == 1
        await other
        again = await shared.get("k", render)
        return got, again
    got, again = asyncio.run(main())
    assert len(calls) == 3 and shared.renders == 3 and shared.waiting == 0
    assert again.body not in {e.body for e in got}


def test_shared_render_error_reaches_every_waiter_and_is_not_kept():
    shared = SharedRender()
    gate = threading.Event()

    def failing():
        assert gate.wait(30)
        raise ValueError("collector failed")

    async def main():
        tasks = [asyncio.ensure_future(shared.get("k", failing)) for _ in range(3)]
        for _ in range(1000):
            if shared.waiting == 3:
                break
            await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        return await shared.get("k", lambda: exposition(b"fine"))
    assert asyncio.run(main()).body == b"fine"
    assert shared.renders == 2


def test_shared_render_a_cancelled_scrape_does_not_cancel_the_others():
    shared = SharedRender()
    gate = threading.Event()

    def render():
        assert gate.wait(30)
        return exposition(b"done")

    async def main():
        a = asyncio.ensure_future(shared.get("k", render))
        b = asyncio.ensure_future(shared.get("k", render))
        for _ in range(1000):
            if shared.waiting == 2:
                break
            await asyncio.sleep(0.01)
        a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await a
        gate.set()
        return await b
    assert asyncio.run(main()).body == b"done"
    assert shared.renders == 1
