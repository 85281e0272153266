#!/usr/bin/python3
"""GStreamer 1.22 (playbin + hlsdemux, or playbin3 + hlsdemux2) plays an HLS master to the end and
from a seek, into fakesinks (no output device, not synchronised: as fast as it decodes).

    gst-check.py <master_url> [--playbin3] [--timeout S]

Runs Debian's python3 (the GStreamer bindings: python3-gi, gir1.2-gstreamer-1.0). A pad probe on
each sink sees every decoded buffer with its segment, so positions are stream times of real
buffers, exact to the frame:

1. from 0 to EOS: per stream (audio, video), the first buffer's start and the last buffer's end;
   the played duration (end) must be within TOLERANCE of the playlist's EXTINF sum, the start
   within SEEK_TOLERANCE of 0, and no hole between consecutive buffers may exceed MAX_GAP;
2. paused, a flushing accurate seek to T (a key-unit seek would snap each rendition to its own
   segment start: audio and video playlists need not share boundaries), the start of the middle segment, then to EOS: the
   first buffer inside the new segment must start at T within SEEK_TOLERANCE (one frame) on
   every stream: decoded media must exist at T with the playlist's time; the end and the holes are checked again.

Failures besides: a bus ERROR or WARNING message, a GStreamer log line at level ERROR, a WARN
line that names a discontinuity or a timestamp fault (GST_DEBUG=2 is captured), the time bound.
Prints one JSON line; exit 0 = pass, 1 = fail, 3 = usage.
"""
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hlsplaylist  # noqa: E402

TOLERANCE = 0.5  # played duration vs the EXTINF sum, s (a segment is 1-6 s, a frame 0.04)
SEEK_TOLERANCE = 0.05  # landing vs the target segment's start, s: one frame at 24 fps
MAX_GAP = 0.1  # hole between consecutive decoded buffers, s (2.5 frames at 25 fps; 4 AAC frames)
# WARN lines that name a timing fault; other WARN lines are reported as allowed noise.
WARN_FAIL = re.compile(r"discont|timestamp|gap|out of segment|not monoton|jump", re.I)
LOG_LINE = re.compile(r"^\S+\s+\d+\s+\S+\s+(ERROR|WARN)\s+(\S+)\s+(.*)$")


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print("usage: gst-check.py <master_url> [--playbin3] [--timeout S]", file=sys.stderr)
        sys.exit(3)
    url = args[0]
    playbin3 = "--playbin3" in args
    timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 120.0
    element = "playbin3" if playbin3 else "playbin"
    report = {"check": "gst", "element": element, "url": url, "ok": False, "failures": [],
              "expected_duration": None, "seek_target": None, "played": {}, "starts": {},
              "landed": {}, "end_after_seek": {}, "max_gap": {}, "bus": [], "log_errors": [],
              "allowed": [], "elapsed_ms": 0}
    exp = hlsplaylist.expectations_or_exit(url, report)
    d, target = exp["duration"], exp["seek_target"]

    # GStreamer's log goes to our stderr: capture it in a file, restore stderr afterwards.
    os.environ["GST_DEBUG"] = "*:2"
    os.environ["GST_DEBUG_NO_COLOR"] = "1"
    log = tempfile.TemporaryFile()
    saved_err = os.dup(2)
    os.dup2(log.fileno(), 2)
    t0 = time.monotonic()
    try:
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
        Gst.init(None)
        full = play(Gst, element, url, None, timeout / 2)
        seek = play(Gst, element, url, target, timeout / 2)
    finally:
        os.dup2(saved_err, 2)
        os.close(saved_err)
    report["elapsed_ms"] = int((time.monotonic() - t0) * 1000)
    log.seek(0)
    for line in log.read().decode("utf-8", "replace").splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        level, cat, msg = m.groups()
        text = f"{level} {cat} {msg}"[:300]
        if level == "ERROR" or WARN_FAIL.search(msg):
            report["log_errors"].append(text)
        elif len(report["allowed"]) < 30:
            report["allowed"].append(text)
    log.close()

    f = report["failures"]
    for label, run in (("from 0", full), (f"after the seek to {target:.3f} s", seek)):
        if run["timeout"]:
            f.append(f"{element} ({label}) did not reach EOS within the time bound")
        for m in run["bus"]:
            report["bus"].append(f"{label}: {m}")
        if not run["streams"]:
            f.append(f"{element} ({label}) decoded nothing")
        for kind, s in run["streams"].items():
            if s["max_gap"] > MAX_GAP:
                f.append(f"{element} ({label}): a {s['max_gap']:.3f} s hole in {kind} at {s['gap_at']:.3f} s")
            report["max_gap"][f"{kind} {label}"] = round(s["max_gap"], 4)
    for kind, s in full["streams"].items():
        report["played"][kind] = s["end"]
        report["starts"][kind] = s["first"]
        if abs(s["end"] - d) > TOLERANCE:
            f.append(f"{element} played {kind} to {s['end']:.3f} s, the playlist says {d:.3f} s")
        if abs(s["first"]) > SEEK_TOLERANCE:
            f.append(f"{element}: {kind} starts at {s['first']:.3f} s, not 0")
    for kind, s in seek["streams"].items():
        report["landed"][kind] = s["first"]
        report["end_after_seek"][kind] = s["end"]
        if abs(s["first"] - target) > SEEK_TOLERANCE:
            f.append(f"{element}: the seek to {target:.3f} s landed at {s['first']:.3f} s ({kind})")
        if abs(s["end"] - d) > TOLERANCE:
            f.append(f"{element} played {kind} to {s['end']:.3f} s after the seek, the playlist says {d:.3f} s")
    if report["bus"]:
        f.append(f"{len(report['bus'])} bus error/warning message(s), first: {report['bus'][0]}")
    if report["log_errors"]:
        f.append(f"{len(report['log_errors'])} error/timing log line(s), first: {report['log_errors'][0]}")
    report["ok"] = not f
    print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)


def play(Gst, element, url, seek_to, timeout):
    """One run; returns {"streams": {kind: {first, end, max_gap, gap_at, buffers}}, "bus": [...],
    "timeout": bool}. With seek_to, only buffers after the seek's flush are counted."""
    pipe = Gst.ElementFactory.make(element, None)
    pipe.set_property("uri", url)
    # video | audio | soft-volume (without it playsink warns that fakesink has no volume): no
    # subtitles, no visualisation.
    pipe.set_property("flags", 0x13)
    streams = {}
    counting = {"on": seek_to is None}

    def probe_for(kind):
        state = {"segment": None}

        def probe(pad, info):
            if info.type & Gst.PadProbeType.EVENT_DOWNSTREAM:
                ev = info.get_event()
                if ev.type == Gst.EventType.SEGMENT:
                    state["segment"] = ev.parse_segment()
                elif ev.type == Gst.EventType.FLUSH_STOP:
                    streams.pop(kind, None)
                return Gst.PadProbeReturn.OK
            buf = info.get_buffer()
            seg = state["segment"]
            if not counting["on"] or buf is None or seg is None or buf.pts == Gst.CLOCK_TIME_NONE:
                return Gst.PadProbeReturn.OK
            st = seg.to_stream_time(Gst.Format.TIME, buf.pts)
            if st == Gst.CLOCK_TIME_NONE or st < 0:
                return Gst.PadProbeReturn.OK
            start = st / Gst.SECOND
            dur = buf.duration / Gst.SECOND if buf.duration != Gst.CLOCK_TIME_NONE else 0.0
            s = streams.get(kind)
            if s is None:
                streams[kind] = {"first": start, "end": start + dur, "max_gap": 0.0, "gap_at": 0.0,
                                 "buffers": 1}
                return Gst.PadProbeReturn.OK
            hole = start - s["end"]
            if hole > s["max_gap"]:
                s["max_gap"], s["gap_at"] = hole, s["end"]
            s["end"] = max(s["end"], start + dur)
            s["buffers"] += 1
            return Gst.PadProbeReturn.OK
        return probe

    for kind in ("video", "audio"):
        sink = Gst.ElementFactory.make("fakesink", None)
        sink.set_property("sync", False)
        sink.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH,
            probe_for(kind))
        pipe.set_property(f"{kind}-sink", sink)
    bus = pipe.get_bus()
    out = {"streams": streams, "bus": [], "timeout": False}
    deadline = time.monotonic() + timeout

    def wait_for(types):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                out["timeout"] = True
                return None
            msg = bus.timed_pop_filtered(int(min(left, 1.0) * Gst.SECOND),
                                         types | Gst.MessageType.ERROR | Gst.MessageType.WARNING)
            if msg is None:
                continue
            if msg.type == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                out["bus"].append(f"ERROR from {msg.src.get_name()}: {err.message} ({dbg})"[:300])
                return None
            if msg.type == Gst.MessageType.WARNING:
                err, dbg = msg.parse_warning()
                out["bus"].append(f"WARNING from {msg.src.get_name()}: {err.message} ({dbg})"[:300])
                continue
            if msg.type == Gst.MessageType.ASYNC_DONE or msg.src == pipe or msg.type == Gst.MessageType.EOS:
                return msg

    try:
        if seek_to is not None:
            pipe.set_state(Gst.State.PAUSED)
            if wait_for(Gst.MessageType.ASYNC_DONE) is None:
                return out
            counting["on"] = True
            streams.clear()
            ok = pipe.seek_simple(Gst.Format.TIME,
                                  Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE,
                                  int(seek_to * Gst.SECOND))
            if not ok:
                out["bus"].append(f"the seek to {seek_to:.3f} s was refused")
                return out
            if wait_for(Gst.MessageType.ASYNC_DONE) is None:
                return out
        pipe.set_state(Gst.State.PLAYING)
        wait_for(Gst.MessageType.EOS)
    finally:
        pipe.set_state(Gst.State.NULL)
    return out


if __name__ == "__main__":
    main()
