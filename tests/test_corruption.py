"""A damaged store file never crashes a worker: random byte flips and
random offsets written over a real store (families of every type, labels,
exemplars, removed and reused series).  Each case opens the damaged copy in
a forked process, which either refuses it (StoreFileError) or opens it,
renders every view and updates it; a signal or a hang is a failure, and
whatever opens renders exposition that prometheus_client's parser and
promtool accept.

FASTPROM_CORRUPTION_CASES sets the number of cases (the default is a
short run; the full run is 20,000)."""
import json
import os
import subprocess
import sys

from conftest import need_tool

CASES = int(os.environ.get("FASTPROM_CORRUPTION_CASES", "600"))

MAKE = """
import warnings
import fastprom as fp
warnings.simplefilter("ignore")
fp.freeze_clock(1700000000.0)
c = fp.Counter("requests", "Requests.", ["path", "method"])
for i in range(40):
    c.labels(f"/p{i}", "GET").inc(i)
c.labels("/x", "POST").inc(2, exemplar={"trace_id": "abc"})
g = fp.Gauge("depth", "Depth.", ["q"], multiprocess_mode="livesum")
g.labels("a").set(3)
h = fp.Histogram("latency_seconds", "Latency.", ["h"], buckets=[0.1, 1, 10])
for v in (0.05, 0.5, 5, 50):
    h.labels("/a").observe(v, exemplar={"span": "s1"})
s = fp.Summary("size_bytes", "Sizes.", ["h"], quantiles=[0.5, 0.9])
s.labels("/a").observe(100)
fp.Summary("plain", "Plain.").observe(1)
n = fp.Histogram("native_seconds", "Native.", ["h"], buckets=[1], native_histogram_bucket_factor=1.1,
                 native_histogram_max_bucket_number=4)
for v in (0, 0.3, 3, 30, -2, 1e-3, 1e3):
    n.labels("/a").observe(v)
for i in range(10):
    c.labels(f"/gone{i}", "GET").inc()
    c.remove(f"/gone{i}", "GET")
print(fp._core.Store.stats(fp.REGISTRY._get_store())["used"])
"""

# Runs every case in a forked child; prints one JSON line of outcomes.
DRIVE = r"""
import json, os, random, shutil, signal, sys, tempfile, warnings
import fastprom as fp
from fastprom import _core
from fastprom.openmetrics.exposition import generate_latest as om_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

src, used, cases, outdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
original = open(src, "rb").read()
size = len(original)
nonzero = [i for i in range(used) if original[i]]
words = sorted({i // 8 * 8 for i in nonzero})
rnd = random.Random(20261201)
counts = {"refused": 0, "opened": 0, "flagged": 0, "crashed": [], "hung": [], "unparsable": []}
for case in range(cases):
    data = bytearray(original)
    kind = case % 3
    if kind == 0:  # a few random bytes anywhere in the used part
        for _ in range(rnd.randint(1, 3)):
            data[rnd.randrange(used)] = rnd.randrange(256)
    elif kind == 1:  # a bit or a byte of a record (the nonzero bytes)
        at = rnd.choice(nonzero)
        data[at] = data[at] ^ (1 << rnd.randrange(8)) if rnd.random() < 0.5 else rnd.randrange(256)
    else:  # a nonzero aligned word overwritten with an offset-like value
        at = rnd.choice(words)
        value = rnd.choice([rnd.randrange(size), rnd.randrange(used), used - rnd.randrange(1, 64), at + 8, at,
                            size - 8, (1 << 63) + rnd.randrange(1 << 20), 0])
        data[at:at + 8] = value.to_bytes(8, "little")
    d = tempfile.mkdtemp(prefix="case", dir=outdir)
    with open(os.path.join(d, "fastprom.store"), "wb") as f:
        f.write(data)
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        warnings.simplefilter("ignore")
        code = 0
        try:
            reg = fp.CollectorRegistry()
            try:
                reg._open_store(d)
            except _core.StoreFileError:
                os._exit(10)
            store = reg._get_store()
            flagged = store.check() is not None
            text = fp.generate_latest(reg).decode()
            om = om_latest(reg).decode()
            try:
                list(text_string_to_metric_families(text))
                try:
                    list(om_parse(om))
                except ValueError as e:
                    # Sums and quantiles may be negative or NaN (observations
                    # of -5 or of +Inf and -Inf), so damage to their cells
                    # cannot be told from real values; prometheus_client's
                    # OpenMetrics parser refuses such values (Prometheus
                    # takes them).  Nothing else may fail.
                    why = str(e)
                    if not (("cannot be negative" in why or "cannot be NaN" in why) and
                            ("_sum" in why or "quantile=" in why or "Quantile" in why)):
                        raise
            except Exception as e:
                with open(os.path.join(d, "unparsable.txt"), "w") as f:
                    f.write(f"{e!r}\n{text}\n----\n{om}")
                os._exit(20)
            with open(os.path.join(d, "out.prom"), "w") as f:
                f.write(text)
            try:  # a worker declaring the same metrics, updating old and new series
                c = fp.Counter("requests", "Requests.", ["path", "method"], registry=reg)
                c.labels("/p1", "GET").inc()
                c.labels("/new", "GET").inc(exemplar={"trace_id": "z"})
                c.remove("/p2", "GET")
                h = fp.Histogram("latency_seconds", "Latency.", ["h"], buckets=[0.1, 1, 10], registry=reg)
                h.labels("/b").observe(0.2)
            except (ValueError, _core.StoreFileError, _core.StoreFullError):
                pass
            fp.generate_latest(reg)
            om_latest(reg)
            code = 11 if flagged else 0
        except BaseException:
            code = 30
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        (counts["hung"] if sig == signal.SIGALRM else counts["crashed"]).append([case, sig, d])
        continue
    rc = os.WEXITSTATUS(status)
    if rc == 10:
        counts["refused"] += 1
        shutil.rmtree(d)
    elif rc in (0, 11):
        counts["opened"] += 1
        counts["flagged"] += rc == 11
        os.remove(os.path.join(d, "fastprom.store"))
    elif rc == 20:
        counts["unparsable"].append([case, d])
    else:
        counts["crashed"].append([case, -rc, d])
print(json.dumps(counts))
"""


def test_damaged_store_files_are_refused_or_work_and_never_crash(tmp_path):
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(store_dir), FASTPROM_STORE_SIZE="1M")
    made = subprocess.run([sys.executable, "-c", MAKE], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    used = int(made.stdout.strip())
    cases = tmp_path / "cases"
    cases.mkdir()
    env.pop("PROMETHEUS_MULTIPROC_DIR")
    r = subprocess.run([sys.executable, "-c", DRIVE, str(store_dir / "fastprom.store"), str(used), str(CASES),
                        str(cases)], env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\n{CASES} damaged copies: {counts['refused']} refused, {counts['opened']} opened "
          f"({counts['flagged']} of them flagged by the full check), {len(counts['crashed'])} crashed, "
          f"{len(counts['hung'])} hung, {len(counts['unparsable'])} unparsable")
    assert counts["crashed"] == [] and counts["hung"] == [], counts
    assert counts["unparsable"] == [], [open(os.path.join(d, "unparsable.txt")).read()[:2000]
                                        for _, d in counts["unparsable"][:3]]
    assert counts["refused"] + counts["opened"] == CASES
    assert counts["refused"] > 0 and counts["opened"] > 0  # both outcomes are exercised

    # What opened renders what Prometheus' own linter takes (distinct outputs only).
    promtool = need_tool("promtool")
    outputs = {}
    for case in sorted(os.listdir(cases)):
        path = cases / case / "out.prom"
        if path.exists():
            outputs.setdefault(path.read_bytes(), path)
    for body, path in list(outputs.items())[:40]:
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
        assert p.returncode == 0, (path, p.stdout[-2000:], p.stderr[-2000:])
