"""Builds the C extension fastprom._core.

Build switches (environment variables, read at build time only):
  FASTPROM_DEBUG=1     -O0 -g with assertions and the store's invariant checks
  FASTPROM_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer (implies debug);
                       run Python with LD_PRELOAD of libasan, see the README
"""
import os
import sys
from glob import glob

from setuptools import Extension, setup

debug = os.environ.get("FASTPROM_DEBUG") == "1"
sanitize = os.environ.get("FASTPROM_SANITIZE") == "1"

cflags = ["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-Wno-missing-field-initializers", "-Wno-cast-function-type"]
ldflags = []
undef = []
if debug or sanitize:
    cflags += ["-O0", "-g3", "-UNDEBUG", "-DFASTPROM_DEBUG=1"]
    undef = ["NDEBUG"]
else:
    cflags += ["-O2"]
if sanitize:
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    cflags += san
    ldflags += san
if os.environ.get("FASTPROM_WERROR") == "1":
    cflags.append("-Werror")

if not sys.platform.startswith("linux") and sys.platform != "darwin":
    raise SystemExit("fastprom builds on Linux and macOS only (it needs POSIX mmap and C11 atomics)")

# Each flavour builds in its own directory, so switching flavours never
# reuses objects compiled with other flags.
flavour = "asan" if sanitize else "debug" if debug else "release"

setup(
    options={"build": {"build_base": f"build/{flavour}"}},
    ext_modules=[
        Extension(
            "fastprom._core",
            sources=sorted(glob("src/*.c")),
            depends=sorted(glob("src/*.h")),
            include_dirs=["src"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
            undef_macros=undef,
            libraries=["m"],
        )
    ],
)
