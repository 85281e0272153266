#!/usr/bin/env python3
"""VLC 3 (its own adaptive HLS demuxer) plays an HLS master to the end and from a seek.

    vlc-check.py <master_url> [--timeout S]

Two runs of `cvlc -I luaintf --lua-intf hlsgate_report --vout=dummy --aout=dummy -vv` (as uid
65534 through setpriv when run as root: VLC refuses root), each reported by vlc-report.lua:

1. from 0 to the end at 4x (the fastest rate at which VLC keeps audio): the played duration is
   what VLC played, per stream — audio: blocks played by the audio output x 1024 (AAC) / sample
   rate; video: decoded pictures / 2 / frame rate (the master's FRAME-RATE, else VLC's stream
   info, which says 1000 for some H.264 streams; VLC 3.0 counts each decoded picture twice
   in `decoded_video`: 3001 for 1500 frames) — each within TOLERANCE of the playlist's EXTINF
   sum (VLC stops decoding a video rendition at a missing or corrupt segment and plays the
   audio on). VLC's own `time` moves in 1 s steps (x rate), too coarse for this.
2. at 1x, a seek (`time` set by the script at the first position update) to T, the start of the
   middle segment: `landed` is VLC's position when playback first moves on after the seek (the
   value just before its first step of >= 0.5 s). VLC updates its position once per second of
   playback, so this is T plus up to about one second: the check is T - 0.05 <= landed <= T +
   SEEK_SLACK. That catches a seek that lands in the wrong segment, not a frame-level offset:
   VLC maps positions through the playlist and never reports one finer (the frame-accurate
   landing check is GStreamer's, gst-check.py).

Failures: an exit other than by the script's quit, the timeout, a short or long played duration,
a landing off target, any `error` line from VLC but for the interface start-up noise below, any
warning that names a timing fault (WARN_FAIL), and demux corruption or discontinuity counters.
Prints one JSON line; exit 0 = pass, 1 = fail, 3 = usage.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hlsplaylist  # noqa: E402

# Played duration vs the EXTINF sum, seconds: a missing or extra segment is 1-6 s, a missing
# GOP >= 1 s; a decoder may hold back or add a frame or an AAC block (< 0.05 s) at either end.
TOLERANCE = 0.5
# How far past the target VLC's first moving position after a seek may be, seconds: it reports
# its position once per second of playback (see the header).
SEEK_SLACK = 1.25
# Error lines VLC prints on every run in a headless container: its control interfaces
# (D-Bus, global hotkeys) cannot start without a session. Not about the stream.
ERROR_ALLOWED = [
    re.compile(r"dbus interface error: Failed to connect to the D-Bus"),
    re.compile(r"main interface error: no suitable interface module"),
    re.compile(r'main libvlc error: interface "(dbus|globalhotkeys),none" initialization failed'),
]
# Error lines VLC 3 prints after the flush of every seek, seen on the ffmpeg-made reference too
# (its decoders get a block before the input clock has a new reference): allowed in the seek run
# only; from 0 they fail.
SEEK_ERROR_ALLOWED = [
    re.compile(r"main decoder error: Timestamp conversion failed for \d+: no reference clock"),
    re.compile(r"main decoder error: Could not convert timestamp \d+ for FFmpeg"),
]
# Warnings that name a timing fault in the stream: the input clock saw a gap, a demuxer or
# decoder saw a discontinuity or an out-of-range timestamp, audio drifted from the clock.
# A picture late by a second or more ("too late to be displayed (missing 8723 ms)", after a
# missing segment) fails too; late by less is allowed: at 4x on a loaded machine tens of ms
# measure the machine (seen on streams that pass every other check).
WARN_FAIL = re.compile(
    r"clock gap|discontinuit|timestamp|out of range|drift|screwed|corrupt|missing \d{4,} ms", re.I
)
LINE = re.compile(r"^\[[0-9a-f]+\] (?:\[[^\]]*\] )?(.+?) (error|warning|debug)?:? ?(.*)$")
SAMPLES_PER_BLOCK = {"aac": 1024, "mp4a": 1024, "a52": 1536, "ac3": 1536, "ec3": 1536, "opus": 960}

here = os.path.dirname(os.path.abspath(__file__))


def run_vlc(url, home, seek, rate, timeout):
    cmd = [
        "cvlc", "-I", "luaintf", "--lua-intf", "hlsgate_report", "--vout=dummy", "--aout=dummy",
        "--no-video-title-show", f"--rate={rate}", "-vv",
    ]
    cmd.append(url)
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
    if seek is not None:
        env["HLSGATE_VLC_SEEK"] = str(int(round(seek * 1e6)))
        env["HLSGATE_VLC_AFTER"] = "10"
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=home, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        code = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        code = 124
    return code, out.decode("utf-8", "replace"), int((time.monotonic() - t0) * 1000)


def parse(log, seek_run):
    res = {"times": [], "stats": {}, "streams": [], "ended": False, "errors": [], "allowed": []}
    for line in log.splitlines():
        if line.startswith("HLSGATE_VLC "):
            kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            ev = kv.pop("event", "")
            if ev == "time":
                res["times"].append(int(kv["t"]) / 1e6)
            elif ev == "stats":
                res["stats"] = {k: float(v) for k, v in kv.items()}
            elif ev == "info":
                res["streams"].append(kv)
            elif ev == "seek":
                res["seek_index"] = len(res["times"])
            elif ev == "end":
                res["ended"] = True
            continue
        m = re.match(r"^\[[0-9a-f]+\] (?:\[[^\]]*\] )?(.*?) (error|warning): (.*)$", line)
        if not m:
            continue
        module, level, msg = m.groups()
        text = f"{module} {level}: {msg}"[:300]
        if level == "error":
            allowed = ERROR_ALLOWED + (SEEK_ERROR_ALLOWED if seek_run else [])
            (res["allowed"] if any(p.search(text) for p in allowed) else res["errors"]).append(text)
        elif WARN_FAIL.search(msg):
            res["errors"].append(text)
        else:
            res["allowed"].append(text)
    return res


def played(res, frame_rate=None):
    """{kind: seconds played} from the final statistics and the stream info (see the header)."""
    out = {}
    st = res["stats"]
    streams = {s.get("Type"): s for s in res["streams"]}
    a = streams.get("Audio")
    if a and "Sample_rate" in a and "played_abuffers" in st:
        codec = a.get("Codec", "").lower()
        spb = next((n for k, n in SAMPLES_PER_BLOCK.items() if k in codec), None)
        if spb:
            out["audio"] = st["played_abuffers"] * spb / float(a["Sample_rate"].split("_")[0])
    v = streams.get("Video")
    fps = frame_rate or (float(v["Frame_rate"]) if v and "Frame_rate" in v else None)
    if v and fps and "decoded_video" in st:
        out["video"] = st["decoded_video"] / 2 / fps
    return out


def landing(res):
    """VLC's position when playback first moved on after the seek (see the header)."""
    after = res["times"][res.get("seek_index", len(res["times"])) + 1:]
    # While VLC buffers after a seek it reports stale positions; the first normal step (about
    # one second of playback at 1x) starts from where playback really resumed.
    for a, b in zip(after, after[1:]):
        if 0.5 <= b - a <= 1.5:
            return a
    return None


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print("usage: vlc-check.py <master_url> [--timeout S]", file=sys.stderr)
        sys.exit(3)
    url = args[0]
    timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 120.0
    report = {"check": "vlc", "url": url, "ok": False, "failures": [], "expected_duration": None,
              "seek_target": None, "played": {}, "landed": None, "last_time": None,
              "exit_codes": [], "elapsed_ms": 0, "errors": [], "allowed": [], "stats": {}}
    exp = hlsplaylist.expectations_or_exit(url, report)
    d, target = exp["duration"], exp["seek_target"]
    home = tempfile.mkdtemp(prefix="hlsgate-vlc-")
    try:
        intf = os.path.join(home, ".local/share/vlc/lua/intf")
        os.makedirs(intf)
        shutil.copy(os.path.join(here, "vlc-report.lua"), os.path.join(intf, "hlsgate_report.lua"))
        for dirpath, _, files in os.walk(home):
            os.chmod(dirpath, 0o777)
            for f in files:
                os.chmod(os.path.join(dirpath, f), 0o644)
        runs = []
        for seek, rate in ((None, 4), (target, 1)):
            left = timeout - report["elapsed_ms"] / 1000
            code, log, ms = run_vlc(url, home, seek, rate, max(left, 1.0))
            report["elapsed_ms"] += ms
            report["exit_codes"].append(code)
            res = parse(log, seek is not None)
            runs.append(res)
            label = "from 0" if seek is None else f"seek to {seek:.3f} s"
            if code == 124:
                report["failures"].append(f"VLC ({label}) did not finish within the {timeout:.0f} s bound")
            elif code != 0:
                report["failures"].append(f"VLC ({label}) exited with {code}")
            if not res["ended"]:
                report["failures"].append(f"VLC ({label}) never reported the end of its input")
            report["errors"].extend(f"{label}: {e}" for e in res["errors"])
            report["allowed"].extend(res["allowed"][:20])
            for k in ("demux_corrupted", "demux_discontinuity"):
                if res["stats"].get(k, 0) > 0:
                    report["failures"].append(f"VLC ({label}) counted {k} = {res['stats'][k]:.0f}")
        full, seek = runs
        report["stats"] = full["stats"]
        report["last_time"] = max(full["times"], default=None)
        report["played"] = played(full, exp["frame_rate"])
        if report["errors"]:
            report["failures"].append(
                f"{len(report['errors'])} error/timing line(s) from VLC, first: {report['errors'][0]}")
        if not report["played"]:
            report["failures"].append("VLC played nothing it reported (no audio blocks or video pictures)")
        for kind, secs in report["played"].items():
            if abs(secs - d) > TOLERANCE:
                report["failures"].append(f"VLC played {secs:.3f} s of {kind}, the playlist says {d:.3f} s")
        report["landed"] = at = landing(seek)
        if at is None:
            report["failures"].append(f"playback did not move on after the seek to {target:.3f} s")
        elif not (target - 0.05 <= at <= target + SEEK_SLACK):
            report["failures"].append(f"the seek to {target:.3f} s landed at {at:.3f} s")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report["ok"] = not report["failures"]
    print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
