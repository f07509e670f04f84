"""Real servers for the HTTP tests: uvicorn, gunicorn, granian or hypercorn in a subprocess on
127.0.0.1 with a free port, and the Prometheus server."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time


HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, proc, timeout=30.0):
    """Waits until the server accepts connections (no request is sent, so
    nothing is counted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server on port {port} did not listen within {timeout} s")


@contextlib.contextmanager
def uvicorn_server(lib="fastprom", opts=None, expose=None, extra_args=(), env=None, app="instrumented:create_app",
                   server="uvicorn", workers=1):
    """Serves tests/apps/<app> with uvicorn, gunicorn with uvicorn workers,
    granian (ASGI) or hypercorn; yields the base URL.  The process is in .proc of the URL object."""
    port = free_port()
    e = dict(os.environ, FASTPROM_TEST_LIB=lib, FASTPROM_TEST_OPTS=json.dumps(opts or {}),
             FASTPROM_TEST_EXPOSE=json.dumps(expose or {}), PYTHONUNBUFFERED="1")
    e.update(env or {})
    apps = os.path.join(HERE, "apps")
    module, func = app.split(":")
    if server == "gunicorn":
        # The uvicorn-worker package: the maintained successor of uvicorn.workers.
        cmd = [sys.executable, "-m", "gunicorn", f"{module}:{func}()", "--chdir", apps, "-k",
               "uvicorn_worker.UvicornWorker", "-w", str(workers), "--bind", f"127.0.0.1:{port}",
               "--log-level", "warning", "--graceful-timeout", "5", "--no-control-socket", *extra_args]
    elif server == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--working-dir", apps,
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
               *extra_args, app]
    elif server == "hypercorn":
        e["PYTHONPATH"] = os.pathsep.join(filter(None, [apps, e.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--graceful-timeout", "5", *extra_args, f"{module}:{func}()"]
    else:
        cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--app-dir", apps, "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", *extra_args]
        if workers > 1:
            cmd += ["--workers", str(workers)]
    # A session of its own: a server's reloader or workers are stopped with it.
    proc = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = Base(f"http://127.0.0.1:{port}")
    base.proc = proc
    try:
        wait_for(port, proc)
        yield base
    finally:
        stop(proc)


class Base(str):
    """A base URL that also carries the server process."""

    proc: "subprocess.Popen[bytes]"


def children(pid):
    """Pids of a process's direct children (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def stop(proc, timeout=10.0):
    """Stops a server started here, then whatever of its process group is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
