"""Makes the fuzz targets' seed corpora, at run time, from fastprom itself.

    python make_seeds.py OUTDIR

    python make_seeds.py --unpack INPUT STOREFILE

writes OUTDIR/store_open/ (real store files, packed as store_open.c reads
them; OUTDIR/raw/ holds some unpacked, for store_seeds), OUTDIR/render/ (operation programs for render.c) and
OUTDIR/negotiation/ (Accept and Accept-Encoding headers for
negotiation.py).  Nothing here is committed as bytes: every store file is
made by running fastprom's multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
FASTPROM_STORE_SIZE=1M) in a child process with the clock frozen; the
stores left by a crash, and damaged copies of these, come from
store_seeds.c, which reads them through the record layout.

Run it with the interpreter that has fastprom installed (.venv/bin/python).
"""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional

STORE_FILE = "fastprom.store"  # fastprom.multiprocess.STORE_FILE, read below when importable
FROZEN = 1700000000.0  # store_open.c pins its clock 100 s later

# ---- store files -----------------------------------------------------------

# Each scenario runs in its own child process, whose default registry is
# the shared store.  They cover every family type, labels with every
# character that needs escaping, exemplars, removed series (and, with the
# clock moved on, reused ones), per-process gauges of a live and of a dead
# process, and a store filled to its overflow series.
PRELUDE = """
import os, warnings
import fastprom as fp
warnings.simplefilter("ignore")
T = %r
fp.freeze_clock(T)
""" % FROZEN

SCENARIOS: Dict[str, str] = {
    "every_type": """
c = fp.Counter("requests", "Requests served.", ["path", "method"])
for i in range(6):
    c.labels(f"/p{i}", "GET").inc(i + 0.5)
c.labels('we"ird\\\\va\\nlue', "PÖST").inc(2, exemplar={"trace_id": "abc", "span": 'q"\\\\'})
c.labels("/gone", "GET").inc()
c.remove("/gone", "GET")
g = fp.Gauge("depth", "Queue depth\\nwith a newline and a \\\\ backslash.", ["q"], multiprocess_mode="livesum")
g.labels("a").set(3)
g.labels("b").set(-1.5)
for mode in ("all", "liveall", "max", "min", "mostrecent", "livemostrecent", "sum"):
    fp.Gauge(f"g_{mode}", f"Mode {mode}.", multiprocess_mode=mode).set(7)
h = fp.Histogram("latency_seconds", "Latency.", ["h"], buckets=[0.1, 1, 10])
for v in (0.05, 0.5, 5, 50):
    h.labels("/a").observe(v, exemplar={"span": "s1"})
fp.Histogram("neg", "Negative buckets.", buckets=[-1, 0, 1]).observe(-0.5)
s = fp.Summary("size_bytes", "Sizes.", ["h"], quantiles=[0.5, 0.9], age_buckets=1)
s.labels("/a").observe(100)
fp.Summary("plain", "Plain.").observe(1)
fp.Counter("bytes", "Bytes.", unit="bytes").inc(1e300)
fp.Gauge("nan_inf", "Special values.", ["v"]).labels("nan").set(float("nan"))
fp.Info("build", "Build info.").info({"version": "1.2.3", "commit": "x\\ny"})
fp.Enum("state", "State.", states=["a", "b"]).state("b")
""",
    "removed_and_reused": """
c = fp.Counter("jobs", "Jobs.", ["id"])
for i in range(20):
    c.labels(str(i)).inc()
for i in range(0, 20, 2):
    c.remove(str(i))
fp.freeze_clock(T + 10)  # removed series become reusable
for i in range(100, 106):
    c.labels(str(i)).inc(3)
for i in range(1, 7, 2):
    c.remove(str(i))       # these wait in a limbo
fp.freeze_clock(T)
h = fp.Histogram("hist", "Hist.", ["k"], buckets=[1, 2])
h.labels("x").observe(1.5, exemplar={"t": "1"})
h.clear()
""",
    "dead_process": """
g = fp.Gauge("workers", "Per worker.", ["w"], multiprocess_mode="livesum")
g.labels("main").set(1)
a = fp.Gauge("every", "All of them.", multiprocess_mode="liveall")
a.set(2)
pid = os.fork()
if pid == 0:
    g.labels("child").set(5)
    a.set(9)
    fp.Counter("child_made", "Made in the child.").inc(4)
    os._exit(0)
os.waitpid(pid, 0)
""",
    "full": """
c = fp.Counter("many", "Many series.", ["i"])
for i in range(2000):
    c.labels(str(i)).inc()
""",
    "empty": """
fp.REGISTRY._get_store()
""",
}


def make_store(python: str, body: str) -> Optional[bytes]:
    """The store file a scenario leaves, or None (reported) if it failed."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=d, FASTPROM_STORE_SIZE="1M")
        env.pop("FASTPROM_MULTIPROC_DIR", None)
        r = subprocess.run([python, "-c", PRELUDE + body], env=env, capture_output=True, text=True, timeout=120)
        path = os.path.join(d, STORE_FILE)
        if r.returncode != 0 or not os.path.exists(path):
            print(f"make_seeds: a store scenario failed ({r.returncode}): {r.stderr[-2000:]}", file=sys.stderr)
            return None
        with open(path, "rb") as f:
            return f.read()


def pack(data: bytes) -> bytes:
    """store_open.c's input form: a zero run is 0x00 and LEB128(len - 1)."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        if data[i]:
            j = data.find(0, i)
            j = n if j < 0 else j
            out += data[i:j]
            i = j
            continue
        j = i
        while j < n and data[j] == 0:
            j += 1
        run = j - i - 1
        out.append(0)
        while True:
            b = run & 0x7F
            run >>= 7
            out.append(b | (0x80 if run else 0))
            if not run:
                break
        i = j
    return bytes(out)


# ---- render programs -----------------------------------------------------------


class Program:
    """An operation program for render.c (see its header comment)."""

    COUNTER, GAUGE, HISTOGRAM, SUMMARY = 0, 1, 2, 3  # type bytes: 1 + b % 4

    def __init__(self, shared: bool = False, created: bool = True, big: bool = False) -> None:
        self.b = bytearray([(1 if shared else 0) | (0 if created else 2) | (4 if big else 0)])

    @staticmethod
    def s(text: "str | bytes") -> bytes:
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        if len(raw) >= 255:
            raise ValueError("use long() for long strings")
        return bytes([len(raw)]) + raw

    @staticmethod
    def long(pattern: bytes, length: int) -> bytes:
        return bytes([255, len(pattern) - 1]) + pattern + struct.pack("<H", length)

    @staticmethod
    def d(value: float) -> bytes:
        return b"\xc0" + struct.pack("<d", value)

    @staticmethod
    def label(name: "str | bytes") -> bytes:
        raw = name.encode() if isinstance(name, str) else name
        return bytes([0xE0 | (len(raw) - 1)]) + raw

    def family(self, kind: int, name: bytes, help: bytes, unit: bytes, labels: List[bytes],
               extra: bytes = b"") -> "Program":
        self.b += bytes([0, kind]) + name + help + unit + bytes([0xF0 | len(labels) if len(labels) > 3 else len(labels)])
        self.b += b"".join(labels) + extra
        return self

    def series(self, fam: int, values: List[bytes], create: bool = True, overflow: bool = False) -> "Program":
        self.b += bytes([1, fam, (0 if create else 1) | (2 if overflow else 0)]) + b"".join(values)
        return self

    def update(self, series: int, value: float, how: int = 0) -> "Program":
        self.b += bytes([2, series, how]) + self.d(value)
        return self

    def exemplar(self, series: int, slot: int, pairs: List[tuple], value: float, ts: float) -> "Program":
        self.b += bytes([3, series, slot, len(pairs)])
        for n, v in pairs:
            self.b += self.label(n) + self.s(v)
        self.b += self.d(value) + self.d(ts)
        return self

    def remove(self, fam: int, values: List[bytes]) -> "Program":
        self.b += bytes([4, fam]) + b"".join(values)
        return self

    def clear(self, fam: int) -> "Program":
        self.b += bytes([5, fam])
        return self

    def clock(self, seconds: float) -> "Program":
        self.b += bytes([6]) + struct.pack("<H", int(seconds * 16))
        return self

    def render(self) -> "Program":
        self.b += bytes([7])
        return self

    def custom(self, type_index: int, name: bytes, help: bytes, unit: bytes, samples: List[bytes]) -> "Program":
        self.b += bytes([8, type_index]) + name + help + unit + bytes([len(samples)]) + b"".join(samples)
        return self

    def sample(self, suffix_index: int, labels: List[tuple], value: float, ts: Optional[float] = None,
               ex: Optional[tuple] = None) -> bytes:
        out = bytes([suffix_index, len(labels)])
        for n, v in labels:
            out += b"\x00" + self.label(n) + self.s(v)  # 0x00: a label name from label()
        out += self.d(value) + bytes([(1 if ts is not None else 0) | (2 if ex else 0)])
        if ts is not None:
            out += self.d(ts)
        if ex:
            out += self.label(ex[0]) + self.s(ex[1]) + self.d(ex[2]) + self.d(ex[3])
        return out


HOSTILE = ["", "plain", 'q"uote', "back\\slash", "new\nline", "nul\x00byte", "tab\tcr\r", "ünïcödé ☃ 𝄞",
           "\\n literally", '"', "\\", "\n"]
BAD_UTF8 = [b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc1\x9f", b"\xa1_"]
VALUES = [0.0, -0.0, 1.0, 0.1, 1e6, 1234567.0, 1e22, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
          float("inf"), float("-inf"), float("nan"), -1e-300, 123456789.125]


def programs() -> Dict[str, bytes]:
    P = Program
    s = P.s
    out: Dict[str, bytes] = {}
    hist_extra = bytes([3]) + P.d(0.1) + P.d(1.0) + P.d(10.0)  # 3 bounds, +Inf appended
    sum_extra = bytes([2, 3, 5, 0, 5])  # quantiles 0.5 and 0.99, max_age 600, 5 age buckets
    for shared in (False, True):
        p = P(shared=shared)
        p.family(P.COUNTER, s("requests"), s("Requests\nserved \\ \"x\""), s(""), [P.label("path"), P.label("method")])
        p.family(P.GAUGE, s("depth.with.dots"), s("Gauge"), s("seconds"), [P.label("q")], bytes([4]))  # livesum
        p.family(P.HISTOGRAM, s("latency_seconds"), s("Latency"), s(""), [P.label("h")], hist_extra)
        p.family(P.SUMMARY, s("size"), s("Size"), s("bytes"), [P.label("h")], sum_extra)
        for i, v in enumerate(HOSTILE[:6]):
            p.series(0, [s(v), s("GET")])
        p.series(1, [s("a")]).series(2, [s("/a")]).series(3, [s("/a")])
        for i, v in enumerate(VALUES):
            p.update(i % 9, v, i)
        p.exemplar(0, 0, [("trace_id", "abc"), ("span", 'q"\\\n')], 1.5, FROZEN)
        p.exemplar(7, 1, [("s", "x")], 0.5, FROZEN)
        p.remove(0, [s(HOSTILE[1]), s("GET")]).clock(10).series(0, [s("reused"), s("GET")]).render()
        p.custom(4, s("build"), s("Info"), s(""), [p.sample(8, [("version", "1.2\n")], 1.0)])
        out[f"every_type{'-shared' if shared else ''}"] = bytes(p.b)

    # Names and values: invalid UTF-8, NUL, newlines, quotes, very long.
    p = P()
    for i, raw in enumerate(BAD_UTF8):
        p.family(P.COUNTER, s(raw + b"_total"), s(raw), s(""), [P.label("a")])
        p.series(i, [s(raw + b"\x00\n\"\\")]).update(i, 1.0)
    p.family(P.GAUGE, P.long(b"n\xc3\xa9", 3000), P.long(b"h\\\n", 5000), s(""), [P.label("v")], bytes([0]))
    p.series(len(BAD_UTF8), [P.long(b"\"\\\n\x00", 20000)]).update(len(BAD_UTF8), float("nan"), 1)
    out["names_and_values"] = bytes(p.b)

    # Families the store refuses (the program goes on).
    p = P()
    # 0x80: 128 % 9 = 2 bounds, and bit 7 set: no +Inf appended.
    p.family(P.HISTOGRAM, s("bad_buckets"), s(""), s(""), [], bytes([0x80]) + P.d(2.0) + P.d(1.0))
    p.family(P.SUMMARY, s("bad_q"), s(""), s(""), [], bytes([1, 0xF0]) + P.d(1.5) + bytes([0, 5]))
    p.family(P.COUNTER, s("dup"), s(""), s(""), [P.label("a"), P.label("a")])
    p.family(P.COUNTER, s("bad\nname"), s(""), s(""), [])
    p.family(P.COUNTER, s("unit"), s(""), s("new\nline"), [])
    p.family(P.GAUGE, s("ok"), s("still works"), s(""), [P.label("le"), P.label("quantile")], bytes([0]))
    p.series(0, [s("1"), s("2")]).update(0, 3.0, 1)
    out["refused"] = bytes(p.b)

    # Removal and reuse across clock steps, clear, overflow.
    p = P(shared=True, created=False)
    p.family(P.GAUGE, s("per_proc"), s("p"), s(""), [P.label("w")], bytes([1]))  # all
    p.family(P.HISTOGRAM, s("h"), s("h"), s(""), [P.label("k")], hist_extra)
    for i in range(8):
        p.series(i % 2, [s(str(i))]).update(i, float(i), 1)
    for i in range(0, 8, 2):
        p.remove(i % 2, [s(str(i))])
    p.clock(5).render()
    for i in range(8, 12):
        p.series(i % 2, [s(str(i))], overflow=i % 3 == 0).update(i, 2.5)
    p.clear(1).clock(5).series(1, [s("after")]).update(12, 1.0).render()
    out["remove_reuse"] = bytes(p.b)

    # Families as the binding writes the ones built in Python.
    p = P()
    for t, name in enumerate(["c", "g", "h", "s", "i", "ss", "gh", "u"]):
        samples = [p.sample(k % 9, [("a", HOSTILE[k % len(HOSTILE)])], VALUES[k % len(VALUES)],
                            ts=1.5e9 if k % 2 else None, ex=("t", "x", 1.0, 2.0) if k % 3 == 0 else None)
                   for k in range(t, t + 4)]
        p.custom(t, s(name + ".ütf"), s("help \\ \n \""), s("u" if t < 4 else ""), samples)
    out["custom"] = bytes(p.b)
    return out


# ---- negotiation headers -----------------------------------------------------------

ACCEPTS = [
    # Prometheus 2.x, by its scrape protocols
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    # Prometheus 3.x, UTF-8 names allowed
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    # Prometheus 3.x with native histograms: protobuf first
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8;"
    "q=0.6,application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,text/plain;version=0.0.4;q=0.2",
    "text/plain;version=0.0.4",
    "text/plain; version=1.0.0; escaping=values",
    "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots",
    "application/openmetrics-text",
    "*/*",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "",
    'application/openmetrics-text;version="1.0.0";q=1.0, text/plain;q=0.5',
    "application/openmetrics-text;version=2.0.0;q=0.9,text/*;q=0.1",
    # Versions that are not numbers, or hold a newline
    "application/openmetrics-text;version=1.0.0-rc1,text/plain;version=x.y",
    "application/openmetrics-text;version=1\n.0.0",
]
ENCODINGS = ["gzip", "identity", "gzip, deflate, br", "*;q=0.5", "gzip;q=0", "x-gzip", "", "br;q=1.0, gzip;q=0.8"]


def negotiation_seeds() -> Dict[str, bytes]:
    out = {}
    for i, a in enumerate(ACCEPTS):
        for j, e in enumerate(ENCODINGS):
            if (i + j) % 3 == 0 or j == 0:
                out[f"h{i}-{j}"] = a.encode() + b"\x00" + e.encode()
    return out


# ---- main ---------------------------------------------------------------------------


def write(dirname: str, name: str, data: bytes) -> None:
    os.makedirs(dirname, exist_ok=True)
    tag = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(dirname, f"{name}-{tag}"), "wb") as f:
        f.write(data)


def main(argv: List[str]) -> int:
    if len(argv) == 4 and argv[1] == "--unpack":  # a store_open input as the store file it stands for
        with open(argv[2], "rb") as f, open(argv[3], "wb") as g:
            g.write(unpack(f.read()))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    global STORE_FILE
    try:
        from fastprom import multiprocess

        STORE_FILE = multiprocess.STORE_FILE
    except ImportError:
        pass
    made = 0
    os.makedirs(os.path.join(out, "raw"), exist_ok=True)
    for name, body in SCENARIOS.items():
        f = make_store(sys.executable, body)
        if f is None:
            continue
        write(os.path.join(out, "store_open"), name, pack(f))
        if name in ("every_type", "removed_and_reused", "dead_process"):
            # For store_seeds, which writes damaged copies of these.
            with open(os.path.join(out, "raw", name), "wb") as g:
                g.write(f)
        made += 1
    write(os.path.join(out, "store_open"), "new_file", b"")
    write(os.path.join(out, "store_open"), "zeros", pack(bytes(1 << 20)))
    for name, data in programs().items():
        write(os.path.join(out, "render"), name, data)
    for name, data in negotiation_seeds().items():
        write(os.path.join(out, "negotiation"), name, data)
    if made == 0:
        print("make_seeds: no store file could be made", file=sys.stderr)
        return 1
    counts = {d: len(os.listdir(os.path.join(out, d))) for d in ("store_open", "render", "negotiation")}
    print("make_seeds: " + ", ".join(f"{n} {d}" for d, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
