#!/usr/bin/env python3
"""Summarises `perf script` output (recorded with --call-graph dwarf) by hlsgate function.

    perf script -i perf.data --no-inline -F comm,tid,ip,sym,dso | bench/perf_summary.py [TOP]

For every sample, the leaf symbol is what burned the CPU; the "owner" is the innermost frame of
an hlsgate crate (server::, pipeline::, source::, cache::, demux::, fmp4::, probe::, plan::,
hlsgate::) — the code of ours that asked for that work. Prints the owners by share of samples,
each with its top leaf symbols, then the top leaves overall.
"""
import collections
import re
import sys

OURS = ("server::", "pipeline::", "source::", "cache::", "demux::", "fmp4::", "probe::", "plan::", "hlsgate::")
FRAME = re.compile(r"^\s+[0-9a-f]+ (.*) \((.*)\)$")


def ours(sym):
    s = sym.lstrip("<")
    return s.startswith(OURS)


def short(sym, n=110):
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
    return sym if len(sym) <= n else sym[: n - 1] + "…"


def samples(lines):
    cur = None
    for l in lines:
        if not l.strip():
            if cur:
                yield cur
            cur = None
            continue
        if not l.startswith(("\t", " ")):
            if cur:
                yield cur
            cur = {"comm": l.split()[0] if l.split() else "?", "frames": []}
            continue
        m = FRAME.match(l.rstrip("\n"))
        if m and cur is not None:
            cur["frames"].append((m.group(1), m.group(2)))
    if cur:
        yield cur


def main():
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    owners = collections.Counter()
    leaves_by_owner = collections.defaultdict(collections.Counter)
    leaves = collections.Counter()
    comms = collections.Counter()
    total = 0
    for s in samples(sys.stdin):
        if not s["frames"]:
            continue
        total += 1
        comms[s["comm"]] += 1
        leaf = short(s["frames"][0][0]) + "  [" + s["frames"][0][1].rsplit("/", 1)[-1] + "]"
        owner = next((short(f) for f, _ in s["frames"] if ours(f)), "(no hlsgate frame: runtime, kernel, idle)")
        owners[owner] += 1
        leaves_by_owner[owner][leaf] += 1
        leaves[leaf] += 1
    if not total:
        sys.exit("no samples")
    print(f"{total} samples; threads: " + ", ".join(f"{c} {100 * n / total:.0f}%" for c, n in comms.most_common(6)))
    print("\nby innermost hlsgate function (owner), with its top leaf symbols:")
    for o, n in owners.most_common(top):
        print(f"{100 * n / total:6.1f}%  {o}")
        for leaf, k in leaves_by_owner[o].most_common(4):
            print(f"           {100 * k / total:5.1f}%  {leaf}")
    print("\ntop leaf symbols:")
    for leaf, n in leaves.most_common(top):
        print(f"{100 * n / total:6.1f}%  {leaf}")


if __name__ == "__main__":
    main()
