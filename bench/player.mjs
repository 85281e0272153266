#!/usr/bin/env node
// Time to first frame and seek time in hls.js (headless Debian Chromium), for the benchmark.
//
//   node bench/player.mjs JOBS.json
//
// JOBS.json: {"jobs": [{"label": "...", "urls": [master, ...]}], "seek_to": 44, "timeout": 60}
// Each URL is one run, in a fresh browser context (no HTTP cache): a minimal page with hls.js
// (from tests/players/node_modules, served by request interception on the master's origin) starts
// playing the master at load. Measured on the page's clock (performance.now(), 0 = navigation):
//   ttff_ms   navigation start → first video frame presented (requestVideoFrameCallback)
//   seek_ms   currentTime set to seek_to (after 1 s of playback) → first frame presented at or
//             after the target; seeked_ms: → the `seeked` event
// Prints one JSON line: {"results": {label: {"runs": [{ttff_ms, seek_ms, seeked_ms, error}]}}}.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch } from '../tests/players/common.mjs';

const require = createRequire(new URL('../tests/players/package.json', import.meta.url));
const HLS_JS = readFileSync(require.resolve('hls.js/dist/hls.min.js'));
const PREFIX = '/__hlsgate_bench__/';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>
<body style="margin:0;background:#000">
<video id="v" muted playsinline style="width:640px;height:360px"></video>
<script src="${PREFIX}hls.min.js"></script>
<script>
'use strict';
const b = { firstFrame: null, playing: null, seekStart: null, seekTarget: null, seekFrame: null,
            seeked: null, error: null };
window.__b = b;
const v = document.getElementById('v');
const src = new URLSearchParams(location.search).get('src');
const hls = new Hls();
hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) b.error = d.type + '/' + d.details; });
hls.on(Hls.Events.MANIFEST_PARSED, () => { v.play().catch((e) => { b.error = 'play(): ' + e.message; }); });
v.addEventListener('playing', () => { if (b.playing === null) b.playing = performance.now(); });
v.addEventListener('seeked', () => { if (b.seekStart !== null && b.seeked === null) b.seeked = performance.now() - b.seekStart; });
const onFrame = (_now, meta) => {
  const t = performance.now();
  if (b.firstFrame === null) b.firstFrame = t;
  if (b.seekStart !== null && b.seekFrame === null && meta.mediaTime >= b.seekTarget - 0.1) {
    b.seekFrame = t - b.seekStart;
  }
  v.requestVideoFrameCallback(onFrame);
};
v.requestVideoFrameCallback(onFrame);
window.seekTo = (t) => { b.seekTarget = t; b.seekStart = performance.now(); v.currentTime = t; };
hls.loadSource(src);
hls.attachMedia(v);
</script></body></html>`;

async function run(browser, master, seekTo, timeoutMs) {
  const out = { ttff_ms: null, seek_ms: null, seeked_ms: null, playing_ms: null, error: null };
  const ctx = await browser.newContext({ viewport: { width: 640, height: 360 } });
  try {
    const page = await ctx.newPage();
    const origin = new URL(master).origin;
    await page.route((u) => u.origin === origin && u.pathname.startsWith(PREFIX), (route) => {
      const p = new URL(route.request().url()).pathname;
      if (p === PREFIX + 'index.html') return route.fulfill({ status: 200, contentType: 'text/html', body: PAGE });
      if (p === PREFIX + 'hls.min.js') return route.fulfill({ status: 200, contentType: 'text/javascript', body: HLS_JS });
      return route.fulfill({ status: 404, body: 'no' });
    });
    const wait = async (what, expr) => {
      try {
        await page.waitForFunction(`window.__b.error !== null || (${expr})`, null, { timeout: timeoutMs, polling: 20 });
      } catch {
        throw new Error('timed out waiting for ' + what);
      }
      const err = await page.evaluate(() => window.__b.error);
      if (err) throw new Error('hls.js: ' + err);
    };
    await page.goto(origin + PREFIX + 'index.html?src=' + encodeURIComponent(master), { timeout: timeoutMs });
    await wait('the first frame', 'window.__b.firstFrame !== null');
    const b0 = await page.evaluate(() => window.__b);
    out.ttff_ms = Math.round(b0.firstFrame);
    out.playing_ms = b0.playing === null ? null : Math.round(b0.playing);
    await wait('1 s of playback', "document.getElementById('v').currentTime >= 1");
    const dur = await page.evaluate(() => document.getElementById('v').duration);
    const target = Math.min(seekTo, Math.max(0, dur - 8));
    await page.evaluate((t) => window.seekTo(t), target);
    await wait('a frame after the seek', 'window.__b.seekFrame !== null');
    const b1 = await page.evaluate(() => window.__b);
    out.seek_ms = Math.round(b1.seekFrame);
    out.seeked_ms = b1.seeked === null ? null : Math.round(b1.seeked);
  } catch (e) {
    out.error = String(e && e.message ? e.message : e).slice(0, 300);
  } finally {
    await Promise.race([ctx.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  return out;
}

async function main() {
  const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const timeoutMs = (cfg.timeout || 60) * 1000;
  const results = {};
  const browser = await launch();
  try {
    // Warm-up: the first page of a fresh browser pays for process and decoder start-up.
    const first = cfg.jobs.find((j) => j.urls.length > 0);
    if (first) await run(browser, first.urls[0].replace(/\/[^/]*$/, '/') + 'none.m3u8', 0, 5000);
    for (const job of cfg.jobs) {
      results[job.label] = { runs: [] };
      for (const url of job.urls) {
        results[job.label].runs.push(await run(browser, url, cfg.seek_to || 44, timeoutMs));
      }
    }
  } finally {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  process.stdout.write(JSON.stringify({ results }) + '\n');
  process.exit(0);
}

const guard = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: 'player.mjs watchdog' }) + '\n');
  process.exit(2);
}, 30 * 60 * 1000);
guard.unref();
main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.message ? e.message : e) }) + '\n');
  process.exit(1);
});
