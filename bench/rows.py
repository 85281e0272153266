#!/usr/bin/env python3
"""The benchmark's rows: one JSON object per line in a results file, rendered as one table.

A row compares hlsgate ("ours") with one peer on one figure:

    {"group": "Cold start", "figure": "...", "file": "bench720.mkv",
     "unit": "ms", "better": "lower",
     "ours": {"median": 41.2, "min": 39.0, "max": 60.1, "n": 10},
     "peer": "mediaflow-proxy 2.4.9", "theirs": {...} | {"error": "503 ..."} | null,
     "goal": {"kind": "ratio", "min": 50} | {"kind": "max", "value": 60} | null,
     "load": [1.2, 1.9], "note": "..."}

A measurement is a summary of runs (median, min, max, n) or a single value with a text to show
({"value": 2, "text": "2 req, 3.30 MB"}).

"ratio" is how many times better hlsgate is: peer / ours when lower is better (times), ours / peer
when higher is better (rates). Goals:
  {"kind": "ratio", "min": X}   ratio >= X (e.g. remux >= 20x faster; cached rate >= 0.5x nginx)
  {"kind": "max", "value": V}   ours <= V in the row's unit (cold start <= 60 ms, requests <= 1)

Subcommands:
  rows.py hyperfine JSON ROWS --figure F --file F --peer P --unit ms [--goal-ratio X] [--group G]
      two hyperfine results (ours first, the peer second) -> one row
  rows.py inproc MAKE_MS_TXT HYPERFINE_JSON ROWS ...
      `hlsgate segment --repeat` timings (ours) against a hyperfine result (the peer)
  rows.py table ROWS       prints the markdown table
"""
import argparse
import json
import os
import statistics
import sys


def summary(values, scale=1.0):
    """Median, min, max and count of `values` (times `scale`)."""
    v = [x * scale for x in values]
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


def loadavg():
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def append(path, row):
    """Appends `row` to the results file."""
    row.setdefault("group", "")
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def central(m):
    """The number a measurement stands for (its median or its single value), or None."""
    if not m or "error" in m:
        return None
    return m["median"] if "median" in m else m.get("value")


def fmt_num(x):
    if x is None:
        return "—"
    a = abs(x)
    if x == int(x) and a < 1e6:
        return f"{int(x)}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}" if a < 0.1 else f"{x:.2f}"


def fmt_meas(m, unit):
    if m is None:
        return "—"
    if "error" in m:
        return "fails: " + m["error"]
    if "median" in m:
        s = f"{fmt_num(m['median'])} {unit} ({fmt_num(m['min'])}–{fmt_num(m['max'])}, n={m['n']})"
    else:
        s = m.get("text") or f"{fmt_num(m['value'])} {unit}"
    if m.get("extra"):
        s += "; " + m["extra"]
    return s


def ratio_of(row):
    ours, theirs = central(row.get("ours")), central(row.get("theirs"))
    if ours is None or theirs is None:
        return None
    if row.get("better", "lower") == "lower":
        return theirs / ours if ours > 0 else None
    return ours / theirs if theirs > 0 else None


def verdict(row, ratio):
    g = row.get("goal")
    if not g:
        return "", ""
    if g["kind"] == "ratio":
        want = f"≥ {fmt_num(g['min'])}×"
        if ratio is None:
            return want, "not measured"
        if ratio >= g["min"]:
            return want, "met"
        return want, f"**not met** by {g['min'] / ratio:.2f}×"
    if g["kind"] == "max":
        unit = row.get("unit", "")
        want = f"≤ {fmt_num(g['value'])} {unit}".strip()
        ours = central(row.get("ours"))
        if ours is None:
            return want, "not measured"
        if ours <= g["value"]:
            return want, "met"
        return want, f"**not met** by {fmt_num(ours - g['value'])} {unit}".strip()
    return "", ""


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    out = [
        "| figure | file | hlsgate median (min–max, n) | peer | peer median (min–max, n) "
        "| ratio (× better) | goal | status | load 1-min before→after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    group = None
    for r in rows:
        if r.get("group") != group:
            group = r.get("group")
            if group:
                out.append(f"| **{group}** | | | | | | | | |")
        ratio = ratio_of(r)
        want, status = verdict(r, ratio)
        unit = r.get("unit", "")
        load = r.get("load")
        load_s = f"{load[0]:.2f}→{load[1]:.2f}" if load else ""
        fig = r["figure"] + (f" — {r['note']}" if r.get("note") else "")
        out.append(
            f"| {fig} | {r.get('file', '')} | {fmt_meas(r.get('ours'), unit)} | {r.get('peer') or '—'} "
            f"| {fmt_meas(r.get('theirs'), unit)} | {fmt_num(ratio) + '×' if ratio is not None else '—'} "
            f"| {want} | {status} | {load_s} |"
        )
    print("\n".join(out))


def goal_of(a):
    if a.goal_ratio is not None:
        return {"kind": "ratio", "min": a.goal_ratio}
    if a.goal_max is not None:
        return {"kind": "max", "value": a.goal_max}
    return None


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("hyperfine", "inproc"):
        s = sub.add_parser(name)
        if name == "inproc":
            s.add_argument("make_ms")
        s.add_argument("json")
        s.add_argument("rows")
        s.add_argument("--figure", required=True)
        s.add_argument("--file", default="")
        s.add_argument("--peer", required=True)
        s.add_argument("--group", default="")
        s.add_argument("--note", default="")
        s.add_argument("--load-before", type=float)
        s.add_argument("--goal-ratio", type=float)
        s.add_argument("--goal-max", type=float)
        s.add_argument("--drop", type=int, default=2, help="warm-up makes dropped (inproc)")
        s.add_argument("--rate", type=float, help="report COUNT / time (per second), higher is better")
        s.add_argument("--rate-unit", default="segments/s")
        s.add_argument("--realtime", type=float, help="media seconds per run: adds ×realtime")
    t = sub.add_parser("table")
    t.add_argument("rows")
    a = p.parse_args()
    if a.cmd == "table":
        table(a.rows)
        return
    res = json.load(open(a.json))["results"]
    before = a.load_before if a.load_before is not None else loadavg()
    if a.cmd == "hyperfine" and a.rate:
        rate = lambda r: summary([a.rate / t for t in r["times"]])  # noqa: E731
        ours, theirs = rate(res[0]), rate(res[1])
        for m, r in ((ours, res[0]), (theirs, res[1])):
            m["extra"] = f"{statistics.median(r['times']):.2f} s"
            if a.realtime:
                m["extra"] += f", {a.realtime / statistics.median(r['times']):.0f}× realtime"
        append(a.rows, {
            "group": a.group, "figure": a.figure, "file": a.file, "unit": a.rate_unit, "better": "higher",
            "ours": ours, "peer": a.peer, "theirs": theirs, "goal": goal_of(a),
            "load": [before, loadavg()], "note": a.note,
        })
        return
    if a.cmd == "hyperfine":
        ours, theirs = summary(res[0]["times"], 1000), summary(res[1]["times"], 1000)
    else:
        ms = [float(l.split()[1]) for l in open(a.make_ms) if l.startswith("make_ms")][a.drop:]
        if not ms:
            sys.exit("no make_ms lines in " + a.make_ms)
        ours, theirs = summary(ms), summary(res[0]["times"], 1000)
    append(a.rows, {
        "group": a.group, "figure": a.figure, "file": a.file, "unit": "ms", "better": "lower",
        "ours": ours, "peer": a.peer, "theirs": theirs, "goal": goal_of(a),
        "load": [before, loadavg()], "note": a.note,
    })


if __name__ == "__main__":
    main()
