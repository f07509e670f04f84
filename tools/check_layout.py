#!/usr/bin/env python3
"""Checks the shape of the source tree: no source file over the size limit,
no import cycle among the Python modules of the package, no include cycle
among the C modules (a module is a .c file and the .h of the same name).

    python tools/check_layout.py          # prints problems, exits 1 if any
"""
from __future__ import annotations

import ast
import os
import re
import sys
from typing import Dict, List, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "python", "fastprom")
SRC = os.path.join(ROOT, "src")
MAX_LINES = 800


def source_files() -> List[str]:
    out = []
    for top in (PACKAGE, SRC):
        for d, _, files in os.walk(top):
            out += [os.path.join(d, f) for f in files if f.endswith((".py", ".c", ".h", ".pyi"))]
    return sorted(out)


def module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def python_graph() -> Dict[str, Set[str]]:
    """Module -> the package modules it imports, at any depth in the file
    (lazy imports inside functions count), except under TYPE_CHECKING."""
    files = {module_name(p): p for p in source_files() if p.endswith(".py")}
    # Extension modules (a .pyi stub beside them) are leaves.
    stubs = {module_name(p[:-1]): p for p in source_files() if p.endswith(".pyi")}
    graph: Dict[str, Set[str]] = {m: set() for m in stubs}
    known = set(files) | set(stubs)
    for mod, path in files.items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for n in ast.walk(node))
        is_pkg = path.endswith("__init__.py")
        base = mod if is_pkg else mod.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    parent = ".".join(parts[: len(parts) - (node.level - 1)])
                    target = parent + ("." + node.module if node.module else "")
                else:
                    target = node.module or ""
                # `from pkg import sub` imports the submodule when there is one.
                names = [target + "." + a.name if target + "." + a.name in known else target for a in node.names]
            else:
                continue
            deps.update(n for n in names if n in known and n != mod)
        graph[mod] = deps
    return graph


def c_graph() -> Dict[str, Set[str]]:
    """C module (file stem) -> the modules whose headers it includes."""
    graph: Dict[str, Set[str]] = {}
    for path in source_files():
        if not path.endswith((".c", ".h")):
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        for line in open(path, encoding="utf-8"):
            m = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
            if m and m.group(1) != stem:
                graph.setdefault(stem, set()).add(m.group(1))
        graph.setdefault(stem, set())
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    found, state, stack = [], {}, []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def problems() -> List[str]:
    out = []
    for path in source_files():
        n = sum(1 for _ in open(path, encoding="utf-8"))
        if n > MAX_LINES:
            out.append(f"{os.path.relpath(path, ROOT)}: {n} lines (limit {MAX_LINES})")
    for kind, graph in (("Python import", python_graph()), ("C include", c_graph())):
        for cyc in cycles(graph):
            out.append(f"{kind} cycle: {' -> '.join(cyc)}")
    return out


if __name__ == "__main__":
    found = problems()
    for p in found:
        print(p)
    print(f"{len(found)} problem(s)" if found else "layout ok: no file over "
          f"{MAX_LINES} lines, no import or include cycle")
    sys.exit(1 if found else 0)
