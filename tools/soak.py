#!/usr/bin/env python3
"""Soak test of the shared store: gunicorn with uvicorn workers serving
tests/apps/soak.py on 127.0.0.1, load from several client threads, scrapes of
/metrics running all along, a random worker SIGKILLed every few seconds (and
restarted by gunicorn), and series made and removed all the time so removed
records are reused.

At the end the scraped totals are checked against what the clients know:
for every label set, scraped >= acknowledged (requests answered) and
<= acknowledged + ambiguous (requests that got no answer, as when their
worker was killed: they may or may not have counted).  Removed label sets
must be gone, every scrape must have parsed, no worker may have failed to
boot, and the store file must pass Store.check() once the server is stopped.

    python tools/soak.py                  # 600 s
    python tools/soak.py --quick          # about 20 s, for CI
    python tools/soak.py --duration 120 --workers 4 --kill-every 5

Prints a summary; exits 1 if any check failed.
"""
import argparse
import collections
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "apps"))

from servers import children, uvicorn_server  # noqa: E402

KEYS = [f"k{i}" for i in range(8)]
BUCKETS = (1.0, 2.5, 5.0, float("inf"))
TEMPLATES = {"hit": "/hit/{key}", "observe": "/observe/{key}/{value}", "level": "/level/{client}/{value}",
             "add": "/churn/{series}/add", "remove": "/churn/{series}/remove"}
BAD = ("StoreFileError", "is corrupt", "Worker failed to boot", "App failed to load", "Traceback")
STARTED = re.compile(r"\[(\d+)\] \[INFO\] Application startup complete")
BOOTING = re.compile(r"Booting worker with pid: (\d+)")
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
MAX_REQUESTS = 10_000_000  # per client: a bound besides the deadline
MAX_SCRAPES = 1_000_000


def key_of(sample):
    return sample.name, tuple(sorted(sample.labels.items()))


class Ledger:
    """What one client thread knows: per label set, the updates answered
    (acknowledged) and those that got no answer (ambiguous)."""

    def __init__(self):
        self.sent = self.ack = self.refused = 0
        self.ambiguous = collections.Counter()   # exception name -> requests
        self.unexpected = []                     # answers with another status
        self.hits = {k: [0, 0] for k in KEYS}    # key -> [ack, ambiguous]
        self.observed = {k: (collections.Counter(), collections.Counter()) for k in KEYS}  # values: ack, amb
        self.level = {}                          # client -> [highest ack, highest sent]
        self.churn = {}                          # series -> [lo, hi, may be present, may be absent]
        self.http = {t: [0, 0] for t in TEMPLATES.values()}
        self.created = self.removals = self.revived = self.kept = 0


class Client(threading.Thread):
    """Sends a random mix of the soak app's updates until stopped or the deadline."""

    def __init__(self, index, base, seed, stop, deadline, keepalive):
        super().__init__(daemon=True)
        self.index, self.base, self.stop, self.deadline = index, base, stop, deadline
        self.rng = random.Random(seed)
        self.keepalive = keepalive
        self.ledger = Ledger()
        self.level = 0
        self.plan = []     # the current churn series' remaining steps
        self.series = None
        self.made = 0

    def run(self):
        with httpx.Client(timeout=30) as c:
            while not self.stop.is_set() and time.monotonic() < self.deadline and self.ledger.sent < MAX_REQUESTS:
                kind, path, arg = self.choose()
                self.record(kind, arg, self.send(c, path, kind))

    def choose(self):
        r = self.rng.random()
        if r < 0.40:
            key = self.rng.choice(KEYS)
            return "hit", f"/hit/{key}", key
        if r < 0.55:
            key, value = self.rng.choice(KEYS), self.rng.randint(0, 6)
            return "observe", f"/observe/{key}/{value}", (key, value)
        if r < 0.65:
            self.level += 1
            return "level", f"/level/c{self.index}/{self.level}", (f"c{self.index}", self.level)
        if not self.plan:
            self.new_series()
        step = self.plan.pop(0)
        return step, f"/churn/{self.series}/{step}", self.series

    def new_series(self):
        """Steps for a fresh label set: adds, then mostly a removal; some are
        made again after their removal, some are kept."""
        self.made += 1
        self.series = f"c{self.index}-{self.made}"
        self.ledger.churn[self.series] = [0, 0, False, True]
        self.ledger.created += 1
        plan = ["add"] * self.rng.randint(1, 3)
        r = self.rng.random()
        if r < 0.1:
            self.ledger.kept += 1
        elif r < 0.3:
            self.ledger.revived += 1
            plan += ["remove"] + ["add"] * self.rng.randint(1, 2) + (["remove"] if self.rng.random() < 0.5 else [])
        else:
            plan.append("remove")
        self.plan = plan

    def send(self, c, path, kind):
        """"ack", "amb" (no answer: it may have counted), "refused" (never
        reached a worker) or "unexpected"."""
        self.ledger.sent += 1
        headers = {} if self.keepalive else {"connection": "close"}
        try:
            r = c.get(self.base + path, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self.ledger.refused += 1
            return "refused"
        except httpx.TransportError as e:
            self.ledger.ambiguous[type(e).__name__] += 1
            return "amb"
        if r.status_code != 200:
            if len(self.ledger.unexpected) < 20:
                self.ledger.unexpected.append(f"{path}: {r.status_code} {r.text[:300]}")
            return "unexpected"
        self.ledger.ack += 1
        return "ack"

    def record(self, kind, arg, outcome):
        if outcome not in ("ack", "amb"):
            return
        L, acked = self.ledger, outcome == "ack"
        L.http[TEMPLATES[kind]][0 if acked else 1] += 1
        if kind == "hit":
            L.hits[arg][0 if acked else 1] += 1
        elif kind == "observe":
            key, value = arg
            L.observed[key][0 if acked else 1][value] += 1
        elif kind == "level":
            client, value = arg
            highest = L.level.setdefault(client, [None, 0])
            if acked:
                highest[0] = value
            highest[1] = value
        else:
            span = L.churn[arg]
            if kind == "add":
                span[1] += 1
                if acked:
                    span[0] += 1
                    span[3] = False
                span[2] = True
            else:
                span[0] = 0
                span[3] = True
                if acked:
                    span[1] = 0
                    span[2] = False
                    L.removals += 1


class Scraper(threading.Thread):
    """Scrapes /metrics on fresh connections (every third one as OpenMetrics)
    and checks each body: it parses, no sample twice, histograms cumulative
    with +Inf equal to _count, and counters that are never removed never go
    down from one scrape to the next."""

    MONOTONIC = ("soak_hits_total", "soak_observed_count", "soak_observed_bucket", "soak_observed_sum",
                 "http_requests_total")

    def __init__(self, base, stop, deadline):
        super().__init__(daemon=True)
        self.base, self.stop, self.deadline = base, stop, deadline
        self.parsed = self.openmetrics = self.failed = 0
        self.problems = []
        self.bodies = []  # a few text bodies for promtool
        self.highest = {}

    def run(self):
        with httpx.Client(timeout=30) as c:
            n = 0
            while not self.stop.is_set() and time.monotonic() < self.deadline and n < MAX_SCRAPES:
                n += 1
                om = n % 3 == 0
                headers = {"connection": "close", **({"accept": OPENMETRICS} if om else {})}
                try:
                    r = c.get(self.base + "/metrics", headers=headers)
                except httpx.TransportError:
                    self.failed += 1  # its worker was killed
                    continue
                self.check(r, om)
                if not om and (self.parsed < 3 or self.parsed % 50 == 0) and len(self.bodies) < 10:
                    self.bodies.append(r.content)
                self.stop.wait(0.05)

    def problem(self, text):
        if len(self.problems) < 50:
            self.problems.append(text)

    def check(self, r, om):
        if r.status_code != 200:
            return self.problem(f"scrape answered {r.status_code}: {r.text[:300]}")
        want = "application/openmetrics-text" if om else "text/plain"
        if not r.headers.get("content-type", "").startswith(want):
            self.problem(f"asked for {want}, got {r.headers.get('content-type')}")
        try:
            samples = [s for fam in (parse_openmetrics if om else parse_text)(r.text) for s in fam.samples]
        except Exception as e:  # noqa: BLE001 - any parse failure is the finding
            return self.problem(f"scrape does not parse ({'OpenMetrics' if om else 'text'}): {e!r}")
        self.parsed += 1
        self.openmetrics += om
        problems = check_samples(samples)
        for s in samples:
            if s.name in self.MONOTONIC:
                k = key_of(s)
                if s.value < self.highest.get(k, 0.0):
                    problems.append(f"{k} went down from {self.highest[k]} to {s.value}")
                self.highest[k] = max(s.value, self.highest.get(k, 0.0))
        for p in problems:
            self.problem(p)


def check_samples(samples):
    """One scrape's own consistency: no sample twice, and each histogram's
    buckets cumulative with the +Inf bucket equal to _count."""
    problems = []
    seen = collections.Counter(key_of(s) for s in samples)
    problems += [f"sample twice in one scrape: {k}" for k, n in seen.items() if n > 1]
    values = {key_of(s): s.value for s in samples}
    buckets = collections.defaultdict(list)
    for s in samples:
        if s.name.endswith("_bucket") and "le" in s.labels:
            rest = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            buckets[(s.name[:-len("_bucket")], rest)].append((float(s.labels["le"]), s.value))
    for (base, rest), bs in buckets.items():
        bs.sort()
        counts = [v for _, v in bs]
        if counts != sorted(counts):
            problems.append(f"{base}{dict(rest)} buckets not cumulative: {bs}")
        if bs[-1][0] != float("inf") or values.get((base + "_count", rest)) != bs[-1][1]:
            problems.append(f"{base}{dict(rest)}: +Inf bucket {bs[-1]} but _count {values.get((base + '_count', rest))}")
    return problems


class Killer(threading.Thread):
    """SIGKILLs a random worker every `every` seconds."""

    def __init__(self, master, every, seed, stop, deadline):
        super().__init__(daemon=True)
        self.master, self.every, self.stop, self.deadline = master, every, stop, deadline
        self.rng = random.Random(seed)
        self.kills = 0

    def run(self):
        while not self.stop.wait(self.every) and time.monotonic() < self.deadline:
            pids = children(self.master)
            if not pids:
                continue
            try:
                os.kill(self.rng.choice(pids), signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.kills += 1


class Log(threading.Thread):
    """Reads the server's output as it comes, into a file and a list."""

    def __init__(self, stream, path):
        super().__init__(daemon=True)
        self.stream, self.path = stream, path
        self.lines = []

    def run(self):
        with open(self.path, "w") as f:
            for raw in self.stream:
                line = raw.decode(errors="replace")
                self.lines.append(line)
                f.write(line)
                f.flush()

    def pids(self, pattern):
        return {int(m.group(1)) for m in map(pattern.search, list(self.lines)) if m}


def scrape_samples(base, tries=10):
    """A final scrape, retried if its connection drops."""
    for _ in range(tries):
        try:
            r = httpx.get(base + "/metrics", headers={"connection": "close"}, timeout=30)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        r.raise_for_status()
        return r.content, [s for fam in parse_text(r.text) for s in fam.samples]
    raise RuntimeError("the final scrape failed every time")


def within(what, value, lo, hi, failures):
    if value is None or not lo <= value <= hi:
        failures.append(f"{what}: scraped {value}, expected between {lo} (acknowledged) and {hi}")


def check_totals(ledgers, samples, kills, clients, failures):
    """Scraped values against the clients' ledgers; returns summary lines."""
    values = {key_of(s): s.value for s in samples}
    out = []
    # Counters of fixed label sets.
    acked = amb = 0
    for key in KEYS:
        a = sum(L.hits[key][0] for L in ledgers)
        b = sum(L.hits[key][1] for L in ledgers)
        acked, amb = acked + a, amb + b
        within(f"soak_hits_total{{key={key!r}}}", values.get(("soak_hits_total", (("key", key),)), 0.0 if a + b == 0
                                                                else None), a, a + b, failures)
    scraped = sum(v for (n, _), v in values.items() if n == "soak_hits_total")
    out.append(f"hits       {len(KEYS)} label sets: acknowledged {acked}, ambiguous {amb}, scraped {scraped:.0f}")
    # The histogram: count, sum and every bucket.
    acked = amb = 0
    for key in KEYS:
        ack, unk = collections.Counter(), collections.Counter()
        for L in ledgers:
            ack.update(L.observed[key][0])
            unk.update(L.observed[key][1])
        acked, amb = acked + sum(ack.values()), amb + sum(unk.values())
        if not ack and not unk:
            continue
        labels = (("key", key),)
        within(f"soak_observed_count{{key={key!r}}}", values.get(("soak_observed_count", labels)),
               sum(ack.values()), sum(ack.values()) + sum(unk.values()), failures)
        within(f"soak_observed_sum{{key={key!r}}}", values.get(("soak_observed_sum", labels)),
               sum(v * n for v, n in ack.items()), sum(v * n for v, n in (ack + unk).items()), failures)
        for le in BUCKETS:
            a = sum(n for v, n in ack.items() if v <= le)
            b = sum(n for v, n in unk.items() if v <= le)
            le_text = "+Inf" if le == float("inf") else str(le)
            within(f"soak_observed_bucket{{key={key!r},le={le_text!r}}}",
                   values.get(("soak_observed_bucket", (("key", key), ("le", le_text)))), a, a + b, failures)
    out.append(f"observed   {len(KEYS)} label sets: acknowledged {acked}, ambiguous {amb} (count, sum, buckets)")
    # The max gauge: each client's latest value.
    for L in ledgers:
        for client, (high_ack, high_sent) in L.level.items():
            got = values.get(("soak_level", (("client", client),)))
            if high_ack is None:
                if got is not None and not 0 < got <= high_sent:
                    failures.append(f"soak_level{{client={client!r}}}: scraped {got}, nothing acknowledged")
            else:
                within(f"soak_level{{client={client!r}}}", got, high_ack, high_sent, failures)
    out.append(f"level      {sum(len(L.level) for L in ledgers)} label sets (multiprocess mode max)")
    # Churned series: bounds, and removed ones gone.
    gone = kept_ok = 0
    bad = []
    for L in ledgers:
        for series, (lo, hi, may_present, may_absent) in L.churn.items():
            got = values.get(("soak_churn_total", (("series", series),)))
            if got is None:
                if not may_absent:
                    bad.append(f"soak_churn_total{{series={series!r}}} missing, {lo} acknowledged since its removal")
                elif not may_present:
                    gone += 1
            elif not may_present:
                bad.append(f"soak_churn_total{{series={series!r}}} = {got} but its removal was acknowledged")
            elif not lo <= got <= hi:
                bad.append(f"soak_churn_total{{series={series!r}}} = {got}, expected between {lo} and {hi}")
            else:
                kept_ok += 1
    failures += bad[:20]
    if len(bad) > 20:
        failures.append(f"... and {len(bad) - 20} more churned series wrong")
    stray = [k for k in values if k[0] == "soak_churn_total" and not any(dict(k[1])["series"] in L.churn
                                                                            for L in ledgers)]
    if stray:
        failures.append(f"churned series nobody made: {stray[:5]}")
    out.append(f"churn      {sum(L.created for L in ledgers)} label sets made ({sum(L.revived for L in ledgers)} made "
               f"again after removal, {sum(L.kept for L in ledgers)} kept), {sum(L.removals for L in ledgers)} "
               f"removals acknowledged; {gone} removed label sets gone, {kept_ok} present within bounds, "
               f"{len(bad)} wrong")
    # The Instrumentator's counter, per route.  It records after the response
    # is sent, so a kill can land between an answer and its recording: at
    # most one request per client per kill is answered but not counted.
    slack = kills * clients
    for template in TEMPLATES.values():
        a = sum(L.http[template][0] for L in ledgers)
        b = sum(L.http[template][1] for L in ledgers)
        got = sum(v for (n, labels), v in values.items() if n == "http_requests_total"
                  and dict(labels)["handler"] == template)
        within(f"http_requests_total{{handler={template!r}}}", got, max(a - slack, 0), a + b, failures)
    a = sum(sum(x[0] for x in L.http.values()) for L in ledgers)
    b = sum(sum(x[1] for x in L.http.values()) for L in ledgers)
    got = sum(v for (n, labels), v in values.items() if n == "http_requests_total"
              and dict(labels)["handler"] != "/metrics")
    out.append(f"http       http_requests_total (not /metrics): scraped {got:.0f}, acknowledged {a}, ambiguous {b}")
    inprogress = values.get(("http_requests_inprogress", ()))
    if inprogress != 1:
        failures.append(f"http_requests_inprogress = {inprogress} with only the final scrape in progress "
                        f"(killed workers' requests must not stay counted)")
    return out


def render_after_stop(directory, env):
    """The store as a fresh process renders it, once every worker is gone."""
    r = subprocess.run([sys.executable, "-c", "import sys, fastprom; sys.stdout.write(fastprom.generate_latest()"
                        ".decode())"], env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"rendering the store after the stop failed: {r.stderr[-2000:]}")
    return [s for fam in parse_text(r.stdout) for s in fam.samples]


def promtool(bodies):
    path = shutil.which("promtool")
    if path is None:
        return "not on PATH, skipped", []
    problems = []
    for i, body in enumerate(bodies):
        r = subprocess.run([path, "check", "metrics"], input=body, capture_output=True, timeout=60)
        if r.returncode != 0 or r.stdout or r.stderr:
            problems.append(f"promtool on body {i}: exit {r.returncode}: {(r.stdout + r.stderr).decode()[:500]}")
    return f"{len(bodies) - len(problems)} of {len(bodies)} bodies clean", problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=None, help="seconds of load (default 600; 20 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a short run, for CI")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--clients", type=int, default=4, help="client threads")
    ap.add_argument("--kill-every", type=float, default=None,
                    help="seconds between SIGKILLs of a random worker (default 5; 3 with --quick)")
    ap.add_argument("--store-size", default="32M", help="FASTPROM_STORE_SIZE for the server")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--dir", default=None, help="multiprocess directory (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the directory (store file and server log)")
    args = ap.parse_args(argv)
    duration = args.duration if args.duration is not None else (20.0 if args.quick else 600.0)
    kill_every = args.kill_every if args.kill_every is not None else (3.0 if args.quick else 5.0)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    directory = args.dir or tempfile.mkdtemp(prefix="fastprom-soak-")
    os.makedirs(directory, exist_ok=True)
    env = {"PROMETHEUS_MULTIPROC_DIR": directory, "FASTPROM_STORE_SIZE": args.store_size}
    os.environ["FASTPROM_STORE_SIZE"] = args.store_size  # for the check from this process
    print(f"fastprom soak: {duration:.0f} s, {args.workers} workers, {args.clients} clients, SIGKILL every "
          f"{kill_every:g} s, seed {seed}, store {args.store_size} in {directory}", flush=True)

    failures = []
    started_at = time.monotonic()
    stop = threading.Event()
    log = None
    with uvicorn_server(app="soak:create_app", server="gunicorn", workers=args.workers, env=env,
                        extra_args=["--log-level", "info", "--no-control-socket"]) as base:
        master = base.proc.pid
        log = Log(base.proc.stdout, os.path.join(directory, "gunicorn.log"))
        log.start()
        deadline = time.monotonic() + duration
        clients = [Client(i, base, seed + 1 + i, stop, deadline, keepalive=i % 2 == 0) for i in range(args.clients)]
        scraper = Scraper(base, stop, deadline)
        killer = Killer(master, kill_every, seed, stop, deadline)
        threads = [*clients, scraper, killer]
        try:
            for t in threads:
                t.start()
            while time.monotonic() < deadline and base.proc.poll() is None:
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        # Every killed worker replaced and started before the final scrape.
        settle = time.monotonic() + 60
        while time.monotonic() < settle and base.proc.poll() is None:
            now = set(children(master))
            if len(now) == args.workers and now <= log.pids(STARTED):
                break
            time.sleep(0.1)
        else:
            failures.append(f"the workers did not settle: {sorted(children(master))}, started "
                            f"{sorted(log.pids(STARTED))}")
        master_up = base.proc.poll() is None
        final_body, final = scrape_samples(base) if master_up else (b"", [])
    log.join(30)
    lines = list(log.lines)

    ledgers = [c.ledger for c in clients]
    sent = sum(L.sent for L in ledgers)
    ack = sum(L.ack for L in ledgers)
    ambiguous = sum((L.ambiguous for L in ledgers), collections.Counter())
    refused = sum(L.refused for L in ledgers)
    unexpected = [u for L in ledgers for u in L.unexpected]
    boots = log.pids(BOOTING)
    sigkilled = sum("was sent SIGKILL" in ln for ln in lines)

    if not master_up:
        failures.append(f"the gunicorn master exited with {base.proc.returncode}")
    if unexpected:
        failures.append(f"{len(unexpected)}+ answers with an unexpected status: {unexpected[:5]}")
    failures += scraper.problems
    if scraper.parsed == 0:
        failures.append("no scrape parsed")
    totals = check_totals(ledgers, final, killer.kills, args.clients, failures) if master_up else []
    bad = [ln.strip() for ln in lines if any(b in ln for b in BAD) or "exited with code" in ln]
    if bad:
        failures.append(f"server output: {bad[:10]}")
    if sigkilled != killer.kills:
        failures.append(f"{killer.kills} SIGKILLs sent but the master saw {sigkilled} workers killed")
    if len(boots) != args.workers + killer.kills:
        failures.append(f"{len(boots)} worker boots for {args.workers} workers and {killer.kills} kills")

    # With the server stopped: the file as a new process sees it, and the full check.
    after = render_after_stop(directory, env)
    soak_final = sorted((key_of(s), s.value) for s in final if s.name.startswith("soak_"))
    soak_after = sorted((key_of(s), s.value) for s in after if s.name.startswith("soak_"))
    if master_up and soak_final != soak_after:
        diff = sorted(set(soak_final) ^ set(soak_after))[:10]
        failures.append(f"the store rendered after the stop differs from the final scrape: {diff}")
    import fastprom  # here, so that FASTPROM_STORE_SIZE is set

    reg = fastprom.CollectorRegistry()
    reg._open_store(directory)
    store = reg._get_store()
    check = store.check()
    stats = store.stats()
    if check is not None:
        failures.append(f"Store.check(): {check}")
    if stats["overflowed"]:
        failures.append(f"the store overflowed ({stats['overflowed']} lookups): removed records were not reused")
    tool, tool_problems = promtool([*scraper.bodies, final_body] if final_body else scraper.bodies)
    failures += tool_problems

    amb_total = sum(ambiguous.values())
    amb_text = ", ".join(f"{n} {k}" for k, n in ambiguous.most_common()) or "none"
    print(f"requests   {sent} sent, {ack} acknowledged, {amb_total} ambiguous ({amb_text}), {refused} refused, "
          f"{len(unexpected)} unexpected answers")
    print(f"workers    {killer.kills} SIGKILLs, {len(boots)} worker boots ({args.workers} + "
          f"{len(boots) - args.workers} replacements), master {'up' if master_up else 'DOWN'} to the end")
    print(f"scrapes    {scraper.parsed} parsed ({scraper.openmetrics} OpenMetrics), {scraper.failed} cut by a kill, "
          f"{len(scraper.problems)} problems")
    for line in totals:
        print(line)
    print(f"store      {stats['series']} series records made, {stats['tombstones']} table slots of reused records, "
          f"{stats['used'] >> 10} KiB of {stats['size'] >> 20} MiB used, {stats['overflowed']} overflowed")
    print(f"check      Store.check() with the server stopped: {check}")
    print(f"promtool   {tool}")
    print(f"time       {time.monotonic() - started_at:.0f} s")
    for f in failures:
        print(f"FAILED     {f}")
    print(f"result     {'FAIL' if failures else 'PASS'} ({len(failures)} failed checks)")
    if failures or args.keep:
        print(f"kept       {directory} (fastprom.store, gunicorn.log)")
    elif not args.dir:
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
