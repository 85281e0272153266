#!/usr/bin/env python3
"""Server figures of the benchmark: hlsgate and mediaflow-proxy reading an nginx upstream.

Processes are started by bench/run.sh, which writes a JSON config and calls one subcommand per
figure; each appends rows (see rows.py) to the results file:

    server.py CONF cold        cold start: master + media playlist + init + segment 0
    server.py CONF segment     remux / transcode of segment 3, probe cached, segment cold
    server.py CONF upstream    upstream requests and bytes per playlist, segment, cache hit
    server.py CONF wrk         cached segment under wrk vs nginx serving the same bytes
    server.py CONF concurrent  3 identical concurrent cold requests: wall time, generations
    server.py CONF players     hls.js time to first frame and seek (runs bench/player.mjs)
    server.py CONF rss --pid P --target hlsgate|hlsgate-file|mediaflow --base URL
                               peak RSS while 50 clients play 50 different files
    server.py CONF rss-rows    the rows of the rss runs
    server.py CONF drive [--sources N --which va]   cold segments in a loop (bench/profile.sh)
    server.py CONF cached-url  makes a segment and prints its URL (bench/profile.sh)

"Fresh source": every run that must find nothing cached gets a new hard link of the fixture
under the nginx root (or the media root), so its URL — and so its cache identity — is new.
Only the Python standard library is used.
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import quote, urljoin, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rows as R  # noqa: E402

TIMEOUT = 120  # seconds, any single HTTP request
MEDIAFLOW = "mediaflow-proxy 2.4.9"


# ---------------------------------------------------------------------------------------------
# HTTP


class HttpError(Exception):
    pass


class Client:
    """Keep-alive HTTP/1.1 client: one connection per host:port, like one player."""

    def __init__(self):
        self.conns = {}

    def get(self, url, method="GET", body=None, headers=None):
        u = urlsplit(url)
        key = (u.hostname, u.port)
        path = u.path + ("?" + u.query if u.query else "")
        for attempt in (0, 1):
            c = self.conns.get(key)
            if c is None:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
                self.conns[key] = c
            try:
                c.request(method, path, body=body, headers=headers or {})
                r = c.getresponse()
                data = r.read()
                return r.status, data
            except (ConnectionError, http.client.HTTPException):
                c.close()
                self.conns.pop(key, None)
                if attempt:
                    raise
        raise HttpError("unreachable")

    def ok(self, url):
        """GET `url`; raises HttpError unless 200."""
        status, data = self.get(url)
        if status != 200:
            name = urlsplit(url).path.rsplit("/", 1)[-1]
            raise HttpError(f"HTTP {status} on {name}: {data[:100].decode('utf-8', 'replace').strip()}")
        return data

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def parallel(*fns):
    """Runs `fns` in threads at once; re-raises the first failure."""
    errs = []

    def wrap(f):
        try:
            f()
        except Exception as e:  # noqa: BLE001 — reported to the caller
            errs.append(e)

    ts = [threading.Thread(target=wrap, args=(f,)) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]


# ---------------------------------------------------------------------------------------------
# Playlists


def attr(line, name):
    m = re.search(name + r'="([^"]*)"', line) or re.search(name + r"=([^,]*)", line)
    return m.group(1) if m else None


class Master:
    """The first video variant and the default audio rendition of a master playlist (or, for a
    media playlist — mediaflow-proxy serves one — the playlist itself, muxed)."""

    def __init__(self, url, text):
        self.video, self.audio = url, None
        lines = text.splitlines()
        if not any(l.startswith("#EXT-X-STREAM-INF") for l in lines):
            return
        for i, l in enumerate(lines):
            if l.startswith("#EXT-X-STREAM-INF"):
                self.video = urljoin(url, lines[i + 1].strip())
                break
        for l in lines:
            if l.startswith("#EXT-X-MEDIA:") and "TYPE=AUDIO" in l and "DEFAULT=YES" in l and "URI=" in l:
                self.audio = urljoin(url, attr(l, "URI"))
                break


class Media:
    """Init URI and segment URIs of a media playlist."""

    def __init__(self, url, text):
        self.init, self.segments = None, []
        for l in text.splitlines():
            l = l.strip()
            if l.startswith("#EXT-X-MAP:"):
                self.init = urljoin(url, attr(l, "URI"))
            elif l and not l.startswith("#"):
                self.segments.append(urljoin(url, l))


def load(client, master_url):
    """Master → (Master, video Media, audio Media or None)."""
    m = Master(master_url, client.ok(master_url).decode())
    v = Media(m.video, client.ok(m.video).decode())
    a = Media(m.audio, client.ok(m.audio).decode()) if m.audio else None
    return m, v, a


# ---------------------------------------------------------------------------------------------
# Targets: how each server is asked for a source


class Hlsgate:
    name = "hlsgate"

    def __init__(self, base, api_key=None):
        self.base, self.api_key = base.rstrip("/"), api_key

    def master(self, source):
        """Master URL of `source` (an upstream URL, or file:<rel> in open mode)."""
        if self.api_key is None:
            rel = source.removeprefix("file:")
            tok = "f~" + base64.urlsafe_b64encode(rel.encode()).decode().rstrip("=")
            return f"{self.base}/v1/{tok}/master.m3u8"
        c = Client()
        try:
            status, data = c.get(
                self.base + "/api/v1/streams", "POST", json.dumps({"source": source}),
                {"Content-Type": "application/json", "X-API-Key": self.api_key},
            )
        finally:
            c.close()
        if status != 201:
            raise HttpError(f"POST /api/v1/streams: HTTP {status} {data[:200]!r}")
        return f"{self.base}/v1/{json.loads(data)['token']}/master.m3u8"

    def metrics(self):
        c = Client()
        try:
            text = c.ok(self.base + "/metrics").decode()
        finally:
            c.close()
        out = {}
        for l in text.splitlines():
            if l and not l.startswith("#"):
                k, _, v = l.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def generations(self):
        return sum(v for k, v in self.metrics().items() if k.startswith("hlsgate_segments_generated_total"))


class Mediaflow:
    name = MEDIAFLOW

    def __init__(self, base, log=None):
        self.base, self.log = base.rstrip("/"), log

    def master(self, source):
        return f"{self.base}/proxy/transcode/playlist.m3u8?d={quote(source, safe='')}"

    def generations(self):
        """Segments it made, from its log ("[hls_segment] seg=N transcoding: ...")."""
        with open(self.log, errors="replace") as f:
            return sum(1 for l in f if "[hls_segment]" in l and "transcoding:" in l)


# ---------------------------------------------------------------------------------------------
# The environment


class Env:
    def __init__(self, path):
        c = json.load(open(path))
        self.c = c
        self.rows = c["rows"]
        self.fixtures = c["fixtures"]
        self.runs = c["runs"]
        self.ng_url, self.ng_root, self.ng_log = c["nginx"]["url"], c["nginx"]["root"], c["nginx"]["log"]
        self.hg = Hlsgate(c["hlsgate"]["base"], c["hlsgate"]["api_key"])
        self.hg_prefetch = Hlsgate(c.get("hlsgate_prefetch", c["hlsgate"])["base"], c["hlsgate"]["api_key"])
        mf = c.get("mediaflow") or {}
        self.mf = Mediaflow(mf["base"], mf.get("log")) if mf.get("base") else None
        self.mf_error = mf.get("error", "not started")
        self.bin = c["hlsgate_bin"]

    def fresh(self, fixture, tag, root=None, sub="cold"):
        """A new hard link of `fixture` under the nginx root; returns its upstream URL."""
        root = root or self.ng_root
        d = os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        ext = os.path.splitext(fixture)[1]
        name = f"{tag}-{uuid.uuid4().hex[:10]}{ext}"
        src = os.path.join(self.fixtures, fixture)
        try:
            os.link(src, os.path.join(d, name))
        except OSError:
            shutil.copyfile(src, os.path.join(d, name))
        return f"{self.ng_url}/{sub}/{name}"

    def nginx_log(self):
        """(requests, bytes sent) logged by nginx so far (log format: msec status bytes ...)."""
        n = b = 0
        with open(self.ng_log) as f:
            for l in f:
                p = l.split()
                if len(p) >= 3:
                    n += 1
                    b += int(p[2])
        return n, b

    def row(self, **kw):
        kw.setdefault("better", "lower")
        kw.setdefault("unit", "ms")
        R.append(self.rows, kw)

    def peer_error(self):
        return {"error": f"mediaflow-proxy not available ({self.mf_error})"}


def runs_of(fn, n):
    """`fn()` n times → summary, or {"error": first failure}."""
    vals = []
    for _ in range(n):
        try:
            vals.append(fn())
        except Exception as e:  # noqa: BLE001 — the row shows it
            return {"error": str(e)[:200]}
    return R.summary(vals)


def interleaved(n, fa, fb):
    """Runs fa and fb alternately n times each (so load drift hits both); two summaries."""
    va, vb, ea, eb = [], [], None, None
    for _ in range(n):
        for f, v, which in ((fa, va, "a"), (fb, vb, "b")):
            if f is None or (which == "a" and ea) or (which == "b" and eb):
                continue
            try:
                v.append(f())
            except Exception as e:  # noqa: BLE001
                if which == "a":
                    ea = str(e)[:200]
                else:
                    eb = str(e)[:200]

    def s(v, e):
        if e:
            return {"error": e}
        return R.summary(v) if v else None

    return s(va, ea), s(vb, eb)


# ---------------------------------------------------------------------------------------------
# Figures


def cold_start(env, target, fixture, with_audio):
    """One cold start on a fresh source: ms until master, media playlist(s), init(s) and the
    first segment(s) are loaded. Audio (when `with_audio`) is fetched in parallel with video
    after the master, as hls.js does."""
    master = target.master(env.fresh(fixture, "cold"))
    c, ca = Client(), Client()

    def chain(client, url):
        m = Media(url, client.ok(url).decode())
        if m.init:
            client.ok(m.init)
        client.ok(m.segments[0])

    def run():
        m = Master(master, c.ok(master).decode())
        if with_audio and m.audio:
            parallel(lambda: chain(c, m.video), lambda: chain(ca, m.audio))
        else:
            chain(c, m.video)

    try:
        return timed(run)
    finally:
        c.close()
        ca.close()


def fig_cold(env):
    n = env.runs["server"]
    g = "Cold start via the HTTP upstream (nginx on 127.0.0.1), nothing cached"
    for fixture, label in (("bench720.mkv", "MKV H.264/AAC remux"), ("h264_aac_faststart.mp4", "MP4 H.264/AAC remux")):
        for audio in (False, True):
            before = R.loadavg()
            mf = (lambda: cold_start(env, env.mf, fixture, audio)) if env.mf else None
            ours, theirs = interleaved(n, lambda: cold_start(env, env.hg, fixture, audio), mf)
            what = ("master + video playlist + init + segment 0" if not audio else
                    "master + video and audio playlists, inits and segment 0 (in parallel)")
            env.row(group=g, figure=f"cold start, {label}: {what}", file=fixture, ours=ours,
                    peer=MEDIAFLOW, theirs=theirs if env.mf else env.peer_error(),
                    goal={"kind": "max", "value": 60} if fixture.endswith(".mkv") else None,
                    load=[before, R.loadavg()],
                    note="mediaflow serves one muxed A+V rendition: its figure is the same chain" if audio else "")


def ffmpeg_segment_cmd(url, transcode):
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-ss", "18", "-i", url, "-t", "6", "-map", "0:v", "-map", "0:a"]
    if transcode:
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-threads", "2",
                "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
    else:
        cmd += ["-c", "copy"]
    return cmd + ["-f", "mp4", "-movflags", "frag_keyframe+empty_moov", "-y", "/dev/null"]


def segment_run(env, target, fixture, seg=3, video_only=False):
    """Fresh source; playlists fetched (probe cached); then segment `seg` of video and audio
    (in parallel, as a player) timed."""
    master = target.master(env.fresh(fixture, "seg"))
    c, ca = Client(), Client()
    try:
        _, v, a = load(c, master)
        if a and not video_only:
            return timed(lambda: parallel(lambda: c.ok(v.segments[seg]), lambda: ca.ok(a.segments[seg])))
        return timed(lambda: c.ok(v.segments[seg]))
    finally:
        c.close()
        ca.close()


def cli_run(env, fixture, transcode, video_only=False):
    url = env.fresh(fixture, "cli")
    cmd = ffmpeg_segment_cmd(url, transcode)
    if video_only:
        i = cmd.index("0:a")
        del cmd[i - 1:i + 1]

    def run():
        r = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT)
        if r.returncode != 0:
            raise HttpError("ffmpeg failed: " + r.stderr.decode(errors="replace")[:150])

    return timed(run)


def fig_segment(env):
    g = "Segment through the server (HTTP upstream), probe cached, segment cold"
    for fixture, transcode in (("bench720.mkv", False), ("bench720_hevc_ac3.mkv", True)):
        n = env.runs["server_transcode"] if transcode else env.runs["server"]
        what = ("transcode segment 3 (6 s, HEVC 720p + AC-3 → H.264 veryfast + AAC), video + audio"
                if transcode else "remux segment 3 (6 s, 720p H.264 + AAC), video + audio")
        before = R.loadavg()
        ours, cli = interleaved(n, lambda: segment_run(env, env.hg, fixture),
                                lambda: cli_run(env, fixture, transcode))
        env.row(group=g, figure=what, file=fixture, ours=ours,
                peer="ffmpeg CLI " + ("libx264 veryfast crf 23 + aac" if transcode else "-c copy") + " on the same URL",
                theirs=cli, goal={"kind": "ratio", "min": 1.0 if transcode else 20},
                load=[before, R.loadavg()],
                note="hlsgate: video and audio segments fetched in parallel; the CLI probes the file each time")
        if not transcode:
            before = R.loadavg()
            ours_v, cli_v = interleaved(n, lambda: segment_run(env, env.hg, fixture, video_only=True),
                                        lambda: cli_run(env, fixture, transcode, video_only=True))
            env.row(group=g, figure="remux segment 3 (6 s, 720p H.264), video only", file=fixture, ours=ours_v,
                    peer="ffmpeg CLI -map 0:v -c copy on the same URL", theirs=cli_v,
                    goal={"kind": "ratio", "min": 20}, load=[before, R.loadavg()])
        before = R.loadavg()
        if env.mf:
            ours2, theirs = interleaved(n, lambda: segment_run(env, env.hg, fixture),
                                        lambda: segment_run(env, env.mf, fixture))
        else:
            ours2, theirs = runs_of(lambda: segment_run(env, env.hg, fixture), n), env.peer_error()
        env.row(group=g, figure=what, file=fixture, ours=ours2, peer=MEDIAFLOW + " (Redis cache, probe cached)",
                theirs=theirs, goal=None if transcode else {"kind": "ratio", "min": 50},
                load=[before, R.loadavg()],
                note="" if not transcode else "mediaflow: x264 preset veryfast (TRANSCODE_VIDEO_PRESET), 4 Mbit/s")


def fig_upstream(env):
    g = "Upstream reads (nginx access log; hlsgate started with --prefetch 0)"
    fixture = "bench720.mkv"
    size = os.path.getsize(os.path.join(env.fixtures, fixture))

    def step(fn):
        time.sleep(0.1)
        n0, b0 = env.nginx_log()
        out = fn()
        time.sleep(0.2)  # nginx logs when its response ends
        n1, b1 = env.nginx_log()
        return n1 - n0, b1 - b0, out

    def meas(req, byts, served=None):
        text = f"{req} req, {byts / 1e6:.2f} MB"
        if served:
            text += f" for {served / 1e6:.2f} MB served"
        return {"value": req, "text": text}

    res = {}
    for t in [env.hg] + ([env.mf] if env.mf else []):
        c = Client()
        master = t.master(env.fresh(fixture, "up"))
        m0 = env.hg.metrics() if t is env.hg else None
        r = {}
        r["playlists"] = step(lambda: load(c, master))
        _, v, a = r["playlists"][2]
        r["init"] = step(lambda: sum(len(c.ok(x.init)) for x in (v, a) if x and x.init))
        r["video"] = step(lambda: len(c.ok(v.segments[3])))
        if a:
            r["audio"] = step(lambda: len(c.ok(a.segments[3])))
        r["hit"] = step(lambda: len(c.ok(v.segments[3])) + (len(c.ok(a.segments[3])) if a else 0))
        if m0 is not None:
            m1 = env.hg.metrics()
            k = 'hlsgate_upstream_requests_total{kind="http"}'
            logged = sum(x[0] for x in r.values())
            r["metrics_check"] = (m1.get(k, 0) - m0.get(k, 0), logged)
        c.close()
        res[t.name] = r
    hg, mf = res["hlsgate"], res.get(MEDIAFLOW)
    chk = hg.get("metrics_check")
    chk_note = f"hlsgate /metrics counted {chk[0]:.0f} upstream requests, nginx logged {chk[1]}" if chk else ""

    def peer(key):
        if not mf:
            return env.peer_error()
        x = mf.get(key)
        return meas(x[0], x[1], x[2] if key not in ("playlists",) else None) if x else None

    env.row(group=g, figure="playlists: master + media playlists (the probe)", file=f"{fixture} ({size / 1e6:.1f} MB)",
            unit="req", ours=meas(*hg["playlists"][:2]), peer=MEDIAFLOW, theirs=peer("playlists"),
            goal={"kind": "max", "value": 3}, note="goal from DESIGN.md principle 4 (probe in ≤ 3 range requests)")
    env.row(group=g, figure="init segments (video + audio)", file=fixture, unit="req",
            ours=meas(*hg["init"]), peer=MEDIAFLOW, theirs=peer("init"))
    env.row(group=g, figure="video segment 3, cold", file=fixture, unit="req", ours=meas(*hg["video"]),
            peer=MEDIAFLOW + " (muxed A+V segment 3)", theirs=peer("video"), goal={"kind": "max", "value": 1})
    if "audio" in hg:
        env.row(group=g, figure="audio segment 3, cold", file=fixture, unit="req", ours=meas(*hg["audio"]),
                peer=None, theirs=None, goal={"kind": "max", "value": 1},
                note="the audio rendition reads the interleaved byte range of the file again")
    env.row(group=g, figure="segment 3 again (cache hit), video + audio", file=fixture, unit="req",
            ours=meas(*hg["hit"]), peer=MEDIAFLOW, theirs=peer("hit"), goal={"kind": "max", "value": 0},
            note=chk_note)


WRK_RE = {
    "rps": re.compile(r"Requests/sec:\s+([\d.]+)"),
    "tps": re.compile(r"Transfer/sec:\s+([\d.]+)([KMG]?B)"),
    "p50": re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.M),
    "p99": re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M),
    "non2xx": re.compile(r"Non-2xx or 3xx responses:\s+(\d+)"),
    "errors": re.compile(r"Socket errors:(.*)"),
}


def wrk(url, conns, secs, threads):
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--latency", "--timeout", "10s", url],
        capture_output=True, text=True, timeout=secs + 30,
    ).stdout
    ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    mib = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
    m = {k: r.search(out) for k, r in WRK_RE.items()}
    if not m["rps"]:
        raise HttpError("wrk: no result: " + out[-300:])
    return {
        "rps": float(m["rps"].group(1)),
        "mibs": float(m["tps"].group(1)) * mib[m["tps"].group(2)],
        "p50": float(m["p50"].group(1)) * ms[m["p50"].group(2)],
        "p99": float(m["p99"].group(1)) * ms[m["p99"].group(2)],
        "bad": int(m["non2xx"].group(1)) if m["non2xx"] else 0,
        "sockerr": m["errors"].group(1).strip() if m["errors"] else "",
    }


def fig_wrk(env):
    g = "Cached segment throughput under wrk (the same bytes from hlsgate's cache and from nginx's disk)"
    c = Client()
    master = env.hg.master(env.fresh("bench720.mkv", "wrk"))
    _, v, _ = load(c, master)
    seg_url = v.segments[3]
    body = c.ok(seg_url)  # made and cached
    c.ok(seg_url)
    c.close()
    os.makedirs(os.path.join(env.ng_root, "wrk"), exist_ok=True)
    with open(os.path.join(env.ng_root, "wrk", "seg3.m4s"), "wb") as f:
        f.write(body)
    ng_url = env.ng_url + "/wrk/seg3.m4s"
    secs, runs, threads = env.runs["wrk_secs"], env.runs["wrk"], env.runs["wrk_threads"]
    for conns in (10, 100):
        before = R.loadavg()
        res = {"hlsgate": [], "nginx": []}
        for _ in range(runs):
            res["hlsgate"].append(wrk(seg_url, conns, secs, threads))
            res["nginx"].append(wrk(ng_url, conns, secs, threads))

        def meas(rs):
            s = R.summary([r["rps"] for r in rs])
            med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            s["extra"] = f"{med('mibs'):.0f} MiB/s, p50 {med('p50'):.1f} ms, p99 {med('p99'):.1f} ms"
            bad = sum(r["bad"] for r in rs)
            if bad:
                s["extra"] += f", {bad} non-2xx"
            errs = [r["sockerr"] for r in rs if r["sockerr"]]
            if errs:
                s["extra"] += ", socket errors: " + errs[0]
            return s

        env.row(group=g, figure=f"segment 3 ({len(body) / 1e6:.2f} MB), {conns} connections, {secs} s × {runs}",
                file="bench720.mkv", unit="req/s", better="higher", ours=meas(res["hlsgate"]),
                peer="nginx 1.22 (sendfile, 2 workers)", theirs=meas(res["nginx"]),
                goal={"kind": "ratio", "min": 0.5}, load=[before, R.loadavg()],
                note=f"wrk -t{threads} on the same 2 cores")


def fig_concurrent(env):
    g = "3 identical concurrent cold requests (probe cached; segment 3, video)"
    for fixture, transcode in (("bench720.mkv", False), ("bench720_hevc_ac3.mkv", True)):
        n = env.runs["server_transcode"] if transcode else env.runs["server"]
        gens = {}
        ups = {}

        def run(t):
            master = t.master(env.fresh(fixture, "conc"))
            c = Client()
            _, v, _ = load(c, master)
            c.close()
            time.sleep(0.1)
            g0, u0 = t.generations(), env.nginx_log()[0]
            url = v.segments[3]
            clients = [Client() for _ in range(3)]
            barrier = threading.Barrier(3)

            def one(cl):
                barrier.wait()
                cl.ok(url)

            ms = timed(lambda: parallel(*[lambda cl=cl: one(cl) for cl in clients]))
            for cl in clients:
                cl.close()
            time.sleep(0.3)
            gens.setdefault(t.name, []).append(t.generations() - g0)
            ups.setdefault(t.name, []).append(env.nginx_log()[0] - u0)
            return ms

        before = R.loadavg()
        ours, theirs = interleaved(n, lambda: run(env.hg), (lambda: run(env.mf)) if env.mf else None)
        what = "transcode (HEVC → H.264)" if transcode else "remux"

        def extra(m, name):
            if m and "error" not in m and name in gens:
                m["extra"] = (f"generations {'/'.join(str(int(x)) for x in gens[name])}, "
                              f"upstream requests {'/'.join(str(x) for x in ups[name])}")
            return m

        env.row(group=g, figure=f"{what}: wall time until all 3 are answered", file=fixture,
                ours=extra(ours, "hlsgate"), peer=MEDIAFLOW,
                theirs=extra(theirs, MEDIAFLOW) if env.mf else env.peer_error(), load=[before, R.loadavg()])
        gh = gens.get("hlsgate", [])
        if gh:
            env.row(group=g, figure=f"{what}: generations per 3 identical requests", file=fixture, unit="",
                    ours={"value": max(gh), "text": f"max {max(gh):.0f} (runs: {'/'.join(str(int(x)) for x in gh)})"},
                    peer=MEDIAFLOW,
                    theirs=({"value": max(gens[MEDIAFLOW]), "text": f"max {max(gens[MEDIAFLOW]):.0f}"}
                            if gens.get(MEDIAFLOW) else None),
                    goal={"kind": "max", "value": 1}, note="goal from DESIGN.md (one generation per key)")


def fig_players(env):
    g = "hls.js 1.7 in headless Chromium (Debian chromium, software decoding)"
    n = env.runs["player"]
    jobs = []

    def add(label, target, fixture):
        urls = []
        for _ in range(n):
            src = env.fresh(fixture, "play")
            urls.append(target.master(src) if target else src)
        jobs.append({"label": label, "urls": urls})

    add("hlsgate remux", env.hg_prefetch, "bench720.mkv")
    add("hlsgate transcode", env.hg_prefetch, "bench720_hevc_ac3.mkv")
    if env.mf:
        add("mediaflow remux", env.mf, "bench720.mkv")
        add("mediaflow transcode", env.mf, "bench720_hevc_ac3.mkv")
    static = env.c.get("static_hls")
    if static:
        jobs.append({"label": "static", "urls": [static] * n})
    path = os.path.join(env.c["work"], "player-jobs.json")
    json.dump({"jobs": jobs, "seek_to": 44.0, "timeout": 60}, open(path, "w"))
    before = R.loadavg()
    p = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "player.mjs"), path],
                       capture_output=True, text=True, timeout=60 * len(jobs) * n + 120)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        res = {"error": "player.mjs: " + (p.stderr or p.stdout)[-300:]}
    after = R.loadavg()

    def meas(label, key):
        if "error" in res:
            return {"error": res["error"]}
        r = res["results"].get(label)
        if r is None:
            return None
        vals = [x[key] for x in r["runs"] if x.get(key) is not None]
        errs = [x["error"] for x in r["runs"] if x.get("error")]
        if not vals:
            return {"error": errs[0] if errs else "no measurement"}
        s = R.summary(vals)
        if errs:
            s["extra"] = f"{len(errs)} failed run(s): {errs[0][:120]}"
        return s

    for kind, fixture in (("remux", "bench720.mkv"), ("transcode", "bench720_hevc_ac3.mkv")):
        for key, what in (("ttff_ms", "time to first frame (page navigation → first frame presented)"),
                          ("seek_ms", "seek to 44 s (currentTime set → seeked and a frame presented)")):
            mf = meas(f"mediaflow {kind}", key) if env.mf else env.peer_error()
            env.row(group=g, figure=f"{kind}: {what}", file=fixture, ours=meas(f"hlsgate {kind}", key),
                    peer=MEDIAFLOW, theirs=mf, load=[before, after],
                    note="fresh source per run; hlsgate with its default prefetch (2)" if key == "ttff_ms" else "")
            if kind == "remux" and static:
                env.row(group=g, figure=f"{kind}: {what}", file=fixture, ours=meas(f"hlsgate {kind}", key),
                        peer="static HLS on nginx (made by ffmpeg beforehand)", theirs=meas("static", key),
                        load=[before, after], note="the floor: no work at request time")


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for l in f:
                k, _, v = l.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) / 1024.0  # MiB
    except OSError:
        pass
    return out


def fig_rss(env, pid, target_kind, base):
    """50 clients at once, each on its own file: master, playlists, inits, segments 0–3 (V+A)."""
    g = "Peak RSS, 50 concurrent clients on 50 different files (a fresh server process each)"
    clients_n, segs = env.runs["rss_clients"], env.runs["rss_segments"]
    fixture = "bench720.mkv"
    if target_kind == "hlsgate-file":
        root = env.c["rss_media_root"]
        os.makedirs(root, exist_ok=True)
        target = Hlsgate(base)
        masters = []
        for i in range(clients_n):
            name = f"c{i:02d}.mkv"
            dst = os.path.join(root, name)
            if not os.path.exists(dst):
                os.link(os.path.join(env.fixtures, fixture), dst)
            masters.append(target.master("file:" + name))
    else:
        target = Hlsgate(base, env.hg.api_key) if target_kind == "hlsgate" else Mediaflow(base)
        masters = [target.master(env.fresh(fixture, f"rss{i:02d}", sub="rss")) for i in range(clients_n)]
    start = proc_status(pid)
    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            samples.append(proc_status(pid).get("VmRSS", 0))
            time.sleep(0.05)

    errors = []
    served = [0]
    lock = threading.Lock()

    def client(master):
        c = Client()
        try:
            _, v, a = load(c, master)
            for x in (v, a):
                if x and x.init:
                    c.ok(x.init)
            for i in range(segs):
                for x in (v, a):
                    if x:
                        b = c.ok(x.segments[i])
                        with lock:
                            served[0] += len(b)
        except Exception as e:  # noqa: BLE001
            errors.append(str(e)[:150])
        finally:
            c.close()

    th = threading.Thread(target=sampler)
    th.start()
    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(m,)) for m in masters]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    time.sleep(0.5)
    stop.set()
    th.join()
    end = proc_status(pid)
    text = (f"{end.get('VmHWM', 0):.0f} MiB (idle before {start.get('VmRSS', 0):.0f} MiB, "
            f"after {end.get('VmRSS', 0):.0f} MiB); {wall:.1f} s for {served[0] / 1e6:.0f} MB served")
    if errors:
        text += f"; {len(errors)} of {clients_n} clients failed: {errors[0]}"
    m = {"value": end.get("VmHWM", 0), "text": text}
    json.dump(m, open(os.path.join(env.c["work"], f"rss-{target_kind}.json"), "w"))
    return m


def fig_rss_rows(env):
    g = "Peak RSS, 50 concurrent clients on 50 different files (a fresh server process each)"
    w = env.c["work"]

    def get(kind):
        p = os.path.join(w, f"rss-{kind}.json")
        return json.load(open(p)) if os.path.exists(p) else None

    what = (f"VmHWM; each client: master, playlists, inits, segments 0–{env.runs['rss_segments'] - 1} "
            f"of video and audio")
    env.row(group=g, figure=f"{what}; hlsgate via nginx", file="bench720.mkv ×50 links", unit="MiB",
            ours=get("hlsgate"), peer=MEDIAFLOW + " via nginx (its segment cache is in Redis, not counted)",
            theirs=get("mediaflow") or env.peer_error(),
            note="hlsgate: default 512 MiB memory cache, prefetch 2")
    env.row(group=g, figure=f"{what}; hlsgate open mode, local files", file="bench720.mkv ×50 links", unit="MiB",
            ours=get("hlsgate-file"), peer=None, theirs=None)


def drive(env, sources, which, fixture):
    """For bench/profile.sh: `sources` fresh sources, every segment of the chosen renditions
    (v = video, a = audio) requested cold, one after the other; prints the medians."""
    times = {"v": [], "a": []}
    for _ in range(sources):
        c = Client()
        _, v, a = load(c, env.hg.master(env.fresh(fixture, "prof")))
        for k in range(len(v.segments)):
            for kind, m in (("v", v), ("a", a)):
                if kind in which and m and k < len(m.segments):
                    times[kind].append(timed(lambda: c.ok(m.segments[k])))
        c.close()
    for kind, t in times.items():
        if t:
            print(f"{kind}: {len(t)} cold segments, median {statistics.median(t):.2f} ms, min {min(t):.2f} ms")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("conf")
    p.add_argument("fig", choices=["cold", "segment", "upstream", "wrk", "concurrent", "players", "rss", "rss-rows",
                                   "drive", "cached-url"])
    p.add_argument("--pid", type=int)
    p.add_argument("--target")
    p.add_argument("--base")
    p.add_argument("--sources", type=int, default=20)
    p.add_argument("--which", default="va")
    p.add_argument("--fixture", default="bench720.mkv")
    a = p.parse_args()
    env = Env(a.conf)
    if a.fig == "drive":
        drive(env, a.sources, a.which, a.fixture)
        return
    if a.fig == "cached-url":  # a cached video segment's URL (for wrk in bench/profile.sh)
        c = Client()
        _, v, _ = load(c, env.hg.master(env.fresh(a.fixture, "prof")))
        c.ok(v.segments[3])
        c.close()
        print(v.segments[3])
        return
    if a.fig == "rss":
        print(json.dumps(fig_rss(env, a.pid, a.target, a.base)))
        return
    {"cold": fig_cold, "segment": fig_segment, "upstream": fig_upstream, "wrk": fig_wrk,
     "concurrent": fig_concurrent, "players": fig_players, "rss-rows": fig_rss_rows}[a.fig](env)


if __name__ == "__main__":
    main()
