"""Builds the C extension fastprom._core.

Build switches (environment variables, read at build time only):
  FASTPROM_DEBUG=1     -O0 -g with assertions; _core.DEBUG is 1, and the test suite then
                       runs the store's full consistency check after every test
  FASTPROM_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer (implies debug);
                       run Python with LD_PRELOAD of libasan, see the README
  FASTPROM_SANITIZE=thread
                       ThreadSanitizer (implies debug), for an interpreter itself built
                       with --with-thread-sanitizer (tools/interpreters.sh 3.13t-tsan)
"""
import os
import sys
from glob import glob

from setuptools import Extension, setup

debug = os.environ.get("FASTPROM_DEBUG") == "1"
sanitize = os.environ.get("FASTPROM_SANITIZE", "")
if sanitize not in ("", "0", "1", "thread"):
    raise SystemExit(f"FASTPROM_SANITIZE={sanitize!r}: expected 1 (ASan/UBSan) or thread (TSan)")
sanitize = "" if sanitize == "0" else sanitize

cflags = ["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-Wno-missing-field-initializers", "-Wno-cast-function-type",
          # Only PyInit__core is exported: calls between the files are then
          # direct, not through the dynamic linker's table.
          "-fvisibility=hidden"]
ldflags = []
undef = []
if debug or sanitize:
    cflags += ["-O0", "-g3", "-UNDEBUG", "-DFASTPROM_DEBUG=1"]
    undef = ["NDEBUG"]
else:
    cflags += ["-O2"]
if sanitize == "thread":
    san = ["-fsanitize=thread", "-fno-omit-frame-pointer"]
    cflags += san
    ldflags += san
elif sanitize:
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    cflags += san
    ldflags += san
if os.environ.get("FASTPROM_WERROR") == "1":
    cflags.append("-Werror")

if not sys.platform.startswith("linux") and sys.platform != "darwin":
    raise SystemExit("fastprom builds on Linux and macOS only (it needs POSIX mmap and C11 atomics)")

# Each flavour builds in its own directory, so switching flavours never
# reuses objects compiled with other flags.
flavour = "tsan" if sanitize == "thread" else "asan" if sanitize else "debug" if debug else "release"

setup(
    options={"build": {"build_base": f"build/{flavour}"}},
    ext_modules=[
        Extension(
            "fastprom._core",
            # src/core: the store, arena and renderer, no Python headers;
            # src/py: the CPython binding.
            sources=sorted(glob("src/core/*.c")) + sorted(glob("src/py/*.c")),
            depends=sorted(glob("src/core/*.h")) + sorted(glob("src/py/*.h")),
            include_dirs=["src/core", "src/py"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
            undef_macros=undef,
            libraries=["m"],
        )
    ],
)
