"""Prometheus 3 for the tests: Debian unstable's static binary, downloaded
through apt with a private sources list (the system's apt setup stays as it
is), unpacked and cached outside the clone; downloaded again when the cache
is missing.  FASTPROM_CACHE names the cache folder."""
import os
import shutil
import subprocess
import tempfile

PACKAGE = "prometheus"
CACHE = os.path.join(os.environ.get("FASTPROM_CACHE", "/var/cache/fastprom-ci"), "prometheus3")


def _mirror():
    try:
        with open("/etc/apt/sources.list.d/debian.sources") as f:
            for line in f:
                if line.startswith("URIs:"):
                    return line.split()[1]
    except OSError:
        pass
    return "http://deb.debian.org/debian"


def _version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout + out.stderr).split("version ")[1].split()[0] if out.returncode == 0 else ""


def prometheus3():
    """The path of a Prometheus 3 binary (cached), or raises RuntimeError
    saying why it could not be had."""
    binary = os.path.join(CACHE, "usr", "bin", "prometheus")
    if os.access(binary, os.X_OK) and _version(binary).startswith("3."):
        return binary
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError("Prometheus 3 needs apt-get and dpkg-deb to download")
    work = tempfile.mkdtemp(prefix="prom3-")
    try:
        lists, debs = os.path.join(work, "lists"), os.path.join(work, "debs")
        os.makedirs(os.path.join(lists, "partial"))
        os.makedirs(os.path.join(debs, "partial"))
        sources = os.path.join(work, "sources.list")
        with open(sources, "w") as f:
            f.write(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {_mirror()} sid main\n")
        opts = [f"-o=Dir::Etc::SourceList={sources}", "-o=Dir::Etc::SourceParts=/dev/null",
                f"-o=Dir::State::Lists={lists}", f"-o=Dir::Cache::archives={debs}",
                "-o=Debug::NoLocking=1"]
        for cmd, cwd in ((["apt-get", *opts, "update", "-qq"], work), (["apt-get", *opts, "download", PACKAGE], debs)):
            out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[:1] + cmd[-2:])} failed: {out.stderr[-2000:]}")
        (deb,) = [f for f in os.listdir(debs) if f.endswith(".deb")]
        root = os.path.join(work, "root")
        subprocess.run(["dpkg-deb", "-x", os.path.join(debs, deb), root], check=True, timeout=300)
        os.makedirs(os.path.dirname(CACHE), exist_ok=True)
        staged = CACHE + f".{os.getpid()}"
        shutil.rmtree(staged, ignore_errors=True)
        os.makedirs(os.path.join(staged, "usr", "bin"))
        shutil.copy2(os.path.join(root, "usr", "bin", "prometheus"), os.path.join(staged, "usr", "bin"))
        shutil.rmtree(CACHE, ignore_errors=True)
        os.replace(staged, CACHE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not _version(binary).startswith("3."):
        raise RuntimeError(f"the downloaded prometheus is not version 3: {_version(binary)!r}")
    return binary


if __name__ == "__main__":
    print(prometheus3())
