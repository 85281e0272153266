#!/usr/bin/env bash
# Two hlsgate builds side by side, interleaved in one run, on the same nginx upstream: the check
# for "did this change make a figure slower?" that separate benchmark runs (minutes apart, other
# load) cannot answer.
#
#   bench/ab.sh OLD_BIN NEW_BIN [RUNS]
#
# Per run and build: a fresh hard link of fixtures/out/bench720.mkv (nothing cached), stream
# created, master and video playlist fetched (probe done), then video segment 3 timed (remux
# through the server). Also `segment --repeat 40` in-process (median of three medians). Prints
# medians and minima in ms. A worktree build of an older commit makes OLD_BIN:
#   git worktree add /tmp/old <commit> && CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p hlsgate
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN [RUNS]" >&2; exit 2; }
old=$(realpath "$1"); new=$(realpath "$2"); runs=${3:-30}
repo=$(cd "$(dirname "$0")/.." && pwd)
F=$repo/fixtures/out
[ -f "$F/bench720.mkv" ] || "$repo/fixtures/make.sh"
log() { echo "[ab] $*" >&2; }
pids=()
work=$(mktemp -d /tmp/hlsgate-ab.XXXXXX)
chmod 755 "$work"
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
bin=$new
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
mkdir -p "$work/root"
cp "$F/bench720.mkv" "$work/root/bench720.mkv"
ng_port=$(free_port)
start_nginx "$work/root" "$work/nginx" "$ng_port"
old_port=$(free_port)
bin=$old start_hlsgate old "$old_port" --media-root "$work/root" "${signed[@]}" --prefetch 0
new_port=$(free_port)
bin=$new start_hlsgate new "$new_port" --media-root "$work/root" "${signed[@]}" --prefetch 0

inproc() { # median of three `segment --repeat 40` medians
  local b=$1 k
  for k in 1 2 3; do
    "$b" segment "$F/bench720.mkv" v1 3 -o /dev/null --repeat 40 2>&1 | awk '/make_ms/ {print $2}' |
      sort -n | awk '{a[NR]=$1} END {print a[int(NR/2)+1]}'
  done | sort -n | sed -n 2p
}
echo "in-process remux (segment --repeat), median ms: old $(inproc "$old")  new $(inproc "$new")"

python3 - "$work/root" "$ng_port" "$old_port" "$new_port" "$runs" "$API_KEY" <<'PY'
import http.client, json, os, statistics, sys, time, uuid
root, ng, ports, runs, key = sys.argv[1], sys.argv[2], {"old": sys.argv[3], "new": sys.argv[4]}, int(sys.argv[5]), sys.argv[6]

def get(c, path, method="GET", body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    d = r.read()
    if r.status not in (200, 201):
        raise SystemExit(f"{path}: HTTP {r.status} {d[:200]!r}")
    return d

def run(k):
    name = f"ab-{uuid.uuid4().hex[:10]}.mkv"
    os.link(f"{root}/bench720.mkv", f"{root}/{name}")
    c = http.client.HTTPConnection("127.0.0.1", int(ports[k]))
    try:
        body = json.dumps({"source": f"http://127.0.0.1:{ng}/{name}"})
        tok = json.loads(get(c, "/api/v1/streams", "POST", body,
                             {"X-Api-Key": key, "Content-Type": "application/json"}))["token"]
        master = get(c, f"/v1/{tok}/master.m3u8").decode()
        video = next(l for l in master.splitlines() if l and not l.startswith("#") and l.startswith("v"))
        get(c, f"/v1/{tok}/{video}")
        seg = f"/v1/{tok}/{video.rsplit('/', 1)[0]}/3.m4s"
        t = time.perf_counter()
        get(c, seg)
        return (time.perf_counter() - t) * 1000
    finally:
        c.close()
        os.unlink(f"{root}/{name}")

res = {"old": [], "new": []}
for i in range(runs):
    for k in (("old", "new") if i % 2 else ("new", "old")):
        res[k].append(run(k))
for k, v in res.items():
    print(f"remux segment 3 video through the server ({runs} runs), {k}: median {statistics.median(v):.2f} ms, min {min(v):.2f} ms")
o, n = statistics.median(res["old"]), statistics.median(res["new"])
print(f"new/old median: {n / o:.3f}")
PY
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
