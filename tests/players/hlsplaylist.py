"""What a player check expects of an HLS master: its media playlists' EXTINF durations.

Used by vlc-check.py and gst-check.py. Standard library only (runs under Debian's python3).
"""
import urllib.parse
import urllib.request


def fetch(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def media_playlists(master_url):
    """[(kind, url, frame_rate)] of the master: kind is "variant" for EXT-X-STREAM-INF URIs
    (frame_rate: its FRAME-RATE attribute as text, or None), else the EXT-X-MEDIA TYPE (AUDIO,
    SUBTITLES). A media playlist given as master is ("variant", it, None)."""
    text = fetch(master_url)
    if "#EXTINF" in text:
        return [("variant", master_url, None)]
    out, want_uri = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-STREAM-INF"):
            want_uri = True
            attrs = dict(kv.split("=", 1) for kv in _split_attrs(line.split(":", 1)[1]) if "=" in kv)
            frame_rate = attrs.get("FRAME-RATE")
        elif line.startswith("#EXT-X-MEDIA:"):
            attrs = dict(
                kv.split("=", 1) for kv in _split_attrs(line.split(":", 1)[1]) if "=" in kv
            )
            if "URI" in attrs:
                out.append(
                    (attrs.get("TYPE", "?"), urllib.parse.urljoin(master_url, attrs["URI"].strip('"')), None)
                )
        elif line and not line.startswith("#") and want_uri:
            out.append(("variant", urllib.parse.urljoin(master_url, line), frame_rate))
            want_uri = False
    return out


def _split_attrs(s):
    parts, cur, quoted = [], "", False
    for c in s:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return parts


def segment_durations(playlist_url):
    return [
        float(l.split(":", 1)[1].split(",", 1)[0])
        for l in fetch(playlist_url).splitlines()
        if l.startswith("#EXTINF:")
    ]


def expectations(master_url):
    """The duration (EXTINF sum) of the first variant playlist (the first audio one when the
    master has no variant), its FRAME-RATE (None when absent), and the middle seek target: the start of the segment holding the
    middle (never 0 when there are two segments or more)."""
    lists = media_playlists(master_url)
    variant = next(((u, fr) for k, u, fr in lists if k == "variant"), None)
    frame_rate = float(variant[1]) if variant and variant[1] else None
    chosen = (variant[0] if variant else None) or next(
        (u for k, u, _ in lists if k == "AUDIO"), None
    )
    if chosen is None:
        raise RuntimeError(f"no media playlist in {master_url}")
    durs = segment_durations(chosen)
    starts, t = [], 0.0
    for d in durs:
        starts.append(t)
        t += d
    total = t
    mid = max((s for s in starts if s <= total / 2), default=0.0)
    if mid == 0.0 and len(starts) > 1:
        mid = starts[1]
    return {"playlist": chosen, "duration": total, "segments": len(durs), "seek_target": mid,
            "frame_rate": frame_rate}


def expectations_or_exit(url, report):
    """[`expectations`] of `url`, filling `report`'s expected_duration and seek_target; when the
    playlists cannot be read, that is the verdict: `report` is printed as failed and the
    process exits 1."""
    import json
    import sys
    try:
        exp = expectations(url)
    except Exception as e:  # noqa: BLE001 — any failure to read the playlists is a verdict
        report["failures"].append(f"cannot read the playlists: {e}")
        print(json.dumps(report))
        sys.exit(1)
    report["expected_duration"] = exp["duration"]
    report["seek_target"] = exp["seek_target"]
    return exp
