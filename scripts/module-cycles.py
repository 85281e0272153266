#!/usr/bin/env python3
"""Fails when the modules of a crate's `src/` refer to each other in a cycle.

A module's edges are the `crate::NAME` paths it names (in `use` lines and in code), where NAME
is another top-level module of the same crate. Usage: module-cycles.py CRATE_SRC_DIR...
Prints each crate's edges and exits 1 on a cycle (the cycle is printed).
"""
import os
import re
import sys


def modules(src):
    mods = {}
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        # A module is `name.rs` and/or the folder `name/` of its submodules.
        if entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            mods.setdefault(entry[:-3], []).append(path)
        elif os.path.isdir(path):
            files = []
            for root, _, names in os.walk(path):
                files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
            mods.setdefault(entry, []).extend(sorted(files))
    return mods


def edges(mods):
    out = {}
    for name, files in mods.items():
        text = "".join(open(f, encoding="utf-8").read() for f in files)
        # Drop comments so doc links do not count as dependencies.
        text = re.sub(r"//[^\n]*", "", text)
        used = set(re.findall(r"\bcrate::(\w+)", text))
        # `use crate::{a, b::c}` groups.
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            used |= set(re.findall(r"(?:^|,)\s*(\w+)", group))
        out[name] = sorted(u for u in used if u in mods and u != name)
    return out


def find_cycle(graph):
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main():
    bad = False
    for src in sys.argv[1:]:
        graph = edges(modules(src))
        for n, ms in graph.items():
            print(f"{src}: {n} -> {', '.join(ms) or '(leaf)'}")
        cycle = find_cycle(graph)
        if cycle:
            print(f"{src}: MODULE CYCLE: {' -> '.join(cycle)}")
            bad = True
        else:
            print(f"{src}: no module cycle")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
