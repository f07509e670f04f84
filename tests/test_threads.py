"""Threads hammering one registry, with exact totals at the end: inc(),
observe(), labels() of cached and new series, remove() and re-creation,
while another thread renders.  On a free-threaded CPython (3.13t) this runs
with the GIL off, which importing fastprom must leave off.

FASTPROM_THREADS_OPS sets the operations per thread (default 20,000; the
long form the README quotes is 1,000,000)."""
import os
import random
import re
import sys
import sysconfig
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

import fastprom as fp

THREADS = 8
OPS = int(os.environ.get("FASTPROM_THREADS_OPS", "20000"))
FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def test_importing_fastprom_leaves_the_gil_off():
    if not FREE_THREADED:
        pytest.skip("not a free-threaded interpreter")
    assert sys._is_gil_enabled() is False


def samples(reg):
    out = {}
    for fam in parse_text(fp.generate_latest(reg).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_threads_end_with_exact_totals():
    reg = fp.CollectorRegistry()
    c = fp.Counter("ops", "Operations.", ["k"], registry=reg)
    h = fp.Histogram("lat", "Latency.", ["k"], buckets=(0.5, 1.0), registry=reg)
    g = fp.Gauge("level", "Level.", registry=reg)
    plain = fp.Counter("plain", "Unlabelled.", registry=reg)
    shared = c.labels("shared")
    start = threading.Barrier(THREADS + 1)
    stop = threading.Event()
    errors = []
    # What each thread's private series must read at the end.
    own_left = {}
    renders = [0]

    def worker(j):
        try:
            own = f"own-{j}"
            since_remove = 0
            start.wait()
            for i in range(OPS):
                op = i % 8
                if op == 0:
                    shared.inc()
                elif op == 1:
                    c.labels("shared").inc(2)  # the cached child, looked up again
                elif op == 2:
                    h.labels("shared").observe(0.25 if i % 16 == 2 else 0.75)
                elif op == 3:
                    plain.inc()
                elif op == 4:
                    g.inc()
                elif op == 5:
                    g.dec()
                elif op == 6:
                    c.labels(own).inc()
                    since_remove += 1
                elif i % 64 == 7:
                    c.remove(own)  # the next labels(own) makes it again, from 0
                    since_remove = 0
                else:
                    c.labels(f"new-{j}-{i % 512}").inc()
            own_left[j] = since_remove
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def renderer():
        start.wait()
        deadline = time.monotonic() + 600
        last = 0.0
        while not stop.is_set() and time.monotonic() < deadline:
            s = samples(reg)
            v = s.get(("ops_total", (("k", "shared"),)), 0.0)
            if v < last:
                errors.append(AssertionError(f"ops_total went down: {last} -> {v}"))
            last = v
            bucket = s.get(("lat_bucket", (("k", "shared"), ("le", "+Inf"))), 0.0)
            if bucket != s.get(("lat_count", (("k", "shared"),)), 0.0):
                errors.append(AssertionError("a histogram's +Inf bucket differs from its count"))
            renders[0] += 1

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(THREADS)]
    r = threading.Thread(target=renderer)
    for t in threads + [r]:
        t.start()
    for t in threads:
        t.join(900)
    stop.set()
    r.join(60)
    assert not any(t.is_alive() for t in threads + [r]), "a thread did not finish"
    assert not errors, errors[:3]
    assert renders[0] > 0

    per = OPS // 8  # each op kind's share of one thread's loop (OPS is a multiple of 8 here)
    assert OPS % 8 == 0
    s = samples(reg)
    assert s[("ops_total", (("k", "shared"),))] == THREADS * per * 3
    assert s[("lat_count", (("k", "shared"),))] == THREADS * per
    assert s[("lat_bucket", (("k", "shared"), ("le", "0.5")))] == THREADS * ((OPS + 13) // 16)
    assert s[("plain_total", ())] == THREADS * per
    assert s[("level", ())] == 0
    for j in range(THREADS):
        assert s.get(("ops_total", (("k", f"own-{j}"),)), 0.0) == own_left[j]
    # Every new-series increment, whatever series it made, is there.
    new = sum(v for (name, labels), v in s.items() if name == "ops_total" and dict(labels)["k"].startswith("new-"))
    removes = sum(1 for i in range(OPS) if i % 8 == 7 and i % 64 == 7)
    assert new == THREADS * (per - removes)


def test_requests_through_the_c_middleware_from_threads_are_counted_exactly():
    """Requests of a few kinds (method x status) driven through the C
    middleware from several threads at once, its table of request kinds
    filled and refreshed concurrently: another thread keeps removing and
    re-creating a series of another handler (each removal makes every kind
    look its series up again) and a third records straight through the
    recorder.  Every request is counted once, on its own series."""
    from fastprom.asgi import PrometheusInstrumentatorMiddleware

    class Route:
        path = "/r/{item}"
    route = Route()
    statuses = (200, 201, 204, 404, 500)

    async def app(scope, receive, send):
        scope["route"] = route
        await send({"type": "http.response.start", "status": scope["_status"], "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    reg = fp.CollectorRegistry()
    mw = PrometheusInstrumentatorMiddleware(app, registry=reg, should_group_status_codes=False)
    total = reg._names_to_collectors["http_requests_total"]
    recorder = mw._fast._recorder

    def request(method, status):
        scope = {"type": "http", "method": method, "path": "/r/1", "root_path": "", "headers": [],
                 "query_string": b"", "_status": status}
        coro = mw(scope, receive, send)
        try:
            coro.send(None)
        except StopIteration:
            pass
        else:
            raise AssertionError("the request did not complete in one step")

    workers, per = 4, max(OPS // 8, 200)
    start = threading.Barrier(workers + 2)
    stop = threading.Event()
    errors = []

    def hitter(j):
        try:
            start.wait()
            for i in range(per):
                request(("GET", "POST")[(i + j) % 2], statuses[i % len(statuses)])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def churn():
        try:
            start.wait()
            while not stop.is_set():
                recorder.record("/other", "GET", "200", 0.001, None, None)
                total.remove("GET", "200", "/other")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def contender():
        try:
            start.wait()
            while not stop.is_set():
                recorder.record("/r/{item}", "PUT", "200", 0.001, None, None)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=hitter, args=(j,)) for j in range(workers)]
    background = [threading.Thread(target=churn), threading.Thread(target=contender)]
    for t in threads + background:
        t.start()
    for t in threads:
        t.join(900)
    stop.set()
    for t in background:
        t.join(60)
    assert not any(t.is_alive() for t in threads + background), "a thread did not finish"
    assert not errors, errors[:3]
    expected = {}
    for j in range(workers):
        for i in range(per):
            key = (("GET", "POST")[(i + j) % 2], str(statuses[i % len(statuses)]))
            expected[key] = expected.get(key, 0) + 1
    for (method, status), n in expected.items():
        labels = {"handler": "/r/{item}", "method": method, "status": status}
        assert reg.get_sample_value("http_requests_total", labels) == n, labels
        assert reg.get_sample_value("http_request_duration_seconds_count", {"handler": "/r/{item}", "method": method}) \
            == sum(v for (m, _), v in expected.items() if m == method)


def test_a_render_never_shows_a_label_set_twice():
    """Label sets removed (or cleared) and made again while other threads
    render: each body shows a series at most once, and strict parsers
    (prometheus_client's OpenMetrics parser refuses a repeated series)
    accept every body.  The churned label sets come first in their
    families and a long run of others follows, so a walk that has shown
    one is still under way when it is made again."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

    reg = fp.CollectorRegistry()
    g = fp.Gauge("churn", "Churned label sets.", ["k"], registry=reg)
    c = fp.Counter("churned", "Churned counters.", ["k"], registry=reg)
    writers = 2
    keys = [f"w{j}-{n}" for j in range(writers) for n in range(20)]
    for k in keys:
        g.labels(k).set(0)
        c.labels(k).inc()
    for i in range(20000):
        g.labels(f"fixed-{i}").set(i)
        c.labels(f"fixed-{i}").inc()
    start = threading.Barrier(writers + 2)
    done = threading.Event()
    errors, bodies, repeats, refused = [], [0], [], []
    churned = re.compile(rb'^(churn(?:ed_total|ed_created)?\{k="w[^"]*"\})', re.M)

    def writer(j):
        try:
            rnd = random.Random(j)
            start.wait()
            deadline = time.monotonic() + 20
            for i in range(OPS):
                if done.is_set() or time.monotonic() > deadline:
                    break
                k = f"w{j}-{rnd.randrange(20)}"
                if i % 499 == 498:
                    c.clear()
                else:
                    g.remove(k)
                    c.remove(k)
                g.labels(k).set(i)
                c.labels(k).inc()
                # More series after it: the next walk that shows k is
                # still under way when k is made again.
                g.labels(f"p{j}-{i}").set(i)
                c.labels(f"p{j}-{i}").inc()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def renderer(om):
        try:
            start.wait()
            deadline = time.monotonic() + 20
            n = 0
            while not done.is_set() and time.monotonic() < deadline:
                body = fp.generate_openmetrics(reg) if om else fp.generate_latest(reg)
                shown = churned.findall(body)
                if len(set(shown)) != len(shown):
                    seen = set()
                    repeats.append(next(s for s in shown if s in seen or seen.add(s)).decode())
                n += 1
                if om and n % 16 == 1:
                    try:
                        list(parse_om(body.decode()))
                    except ValueError as e:
                        refused.append(e)
                bodies[0] += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(j,)) for j in range(writers)]
    threads += [threading.Thread(target=renderer, args=(om,)) for om in (False, True)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # with a GIL: writers and renderers take turns often
    try:
        for t in threads:
            t.start()
        for t in threads[:writers]:
            t.join(60)
        done.set()
        for t in threads[writers:]:
            t.join(60)
    finally:
        sys.setswitchinterval(switch)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    assert not errors, errors[:3]
    assert bodies[0] > 0
    assert not repeats, f"{len(repeats)} of {bodies[0]} bodies repeat a series, e.g. {repeats[0]}"
    assert not refused, f"{len(refused)} OpenMetrics bodies refused: {refused[0]}"
