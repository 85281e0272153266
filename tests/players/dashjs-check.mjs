#!/usr/bin/env node
// dash.js in headless Chromium against one MPD:
//
//   node dashjs-check.mjs <mpd_url> [--timeout SECONDS] [--audio-only] [--text]
//
// Plays muted from 0 until currentTime advances, seeks to the middle and to 4 s before the end
// (currentTime must advance after each), waits for `ended`. With --text the first text track
// is shown from the start and every cue the page's text tracks received is reported
// (`text_cues`: start, end, text), for the caller to compare with the source's subtitles.
// Every dash.js ERROR event, media element error, console error, page exception and HTTP error
// fails the check. Prints one JSON line; exit 0 = pass, 1 = fail, 2 = watchdog (hung),
// 3 = usage. The page is served by request interception on the MPD's own origin, with dash.js
// from node_modules.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Deadline, finish, launch, parseArgs, watchdog, watchPage } from './common.mjs';

const require = createRequire(import.meta.url);
const DASH_JS = readFileSync(require.resolve('dashjs/dist/dash.all.min.js'));
const DASH_VERSION = JSON.parse(readFileSync(require.resolve('dashjs/package.json'), 'utf8')).version;
const PREFIX = '/__hlsgate_check__/';

let parsed;
try {
  parsed = parseArgs(process.argv.slice(2), ['audio-only', 'text'], ['timeout']);
  if (parsed.positional.length !== 1) throw new Error('one MPD URL expected');
} catch (e) {
  process.stderr.write('usage: dashjs-check.mjs <mpd_url> [--timeout S] [--audio-only] [--text]\n' + e.message + '\n');
  process.exit(3);
}
const mpd = parsed.positional[0];
const opts = { audioOnly: !!parsed.opts['audio-only'], text: !!parsed.opts.text, timeout: Number(parsed.opts.timeout || 60) };
const report = {
  check: 'dashjs',
  url: mpd,
  dashjs_version: DASH_VERSION,
  options: opts,
  ok: false,
  duration: null,
  start_ms: null,
  seeks: [],
  ended: false,
  end_state: null,
  representations: [],
  text_tracks: [],
  text_cues: [],
  dash_errors: [],
  console_errors: [],
  http_errors: [],
  media_error: null,
  video_size: null,
  failures: [],
};
watchdog(opts.timeout, report);

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>hlsgate dash check</title></head>
<body style="margin:0;background:#000">
<video id="v" muted playsinline style="width:640px;height:360px"></video>
<script src="${PREFIX}dash.all.min.js"></script>
<script>
'use strict';
const dc = { errors: [], seeked: 0, ended: false, fatal: false, mediaError: null };
window.__dc = dc;
window.startCheck = (url, text) => {
  const v = document.getElementById('v');
  v.muted = true;
  const p = dashjs.MediaPlayer().create();
  window.__dash = p;
  p.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
  if (text) {
    p.on(dashjs.MediaPlayer.events.TEXT_TRACKS_ADDED, () => {
      p.enableText(true);
      p.setTextTrack(0);
    });
  }
  p.on(dashjs.MediaPlayer.events.ERROR, (e) => {
    const err = e.error || {};
    dc.errors.push({ code: err.code || null, message: String(err.message || e.event || '').slice(0, 300) });
    dc.fatal = true;
  });
  v.addEventListener('seeked', () => { dc.seeked += 1; });
  v.addEventListener('ended', () => { dc.ended = true; });
  v.addEventListener('error', () => {
    dc.mediaError = v.error ? { code: v.error.code, message: v.error.message } : { code: 0 };
    dc.fatal = true;
  });
  p.initialize(v, url, true);
};
</script></body></html>`;

async function main() {
  const deadline = new Deadline(opts.timeout);
  let browser;
  try {
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
    watchPage(page, report);
    const origin = new URL(mpd).origin;
    await page.route((url) => url.origin === origin && url.pathname.startsWith(PREFIX), (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === PREFIX + 'index.html') return route.fulfill({ status: 200, contentType: 'text/html', body: PAGE });
      if (path === PREFIX + 'dash.all.min.js') {
        return route.fulfill({ status: 200, contentType: 'text/javascript', body: DASH_JS });
      }
      return route.fulfill({ status: 404, body: 'not here' });
    });
    await page.goto(origin + PREFIX + 'index.html', { timeout: deadline.left() });
    const wait = async (label, predicate) => {
      try {
        await page.waitForFunction(predicate, undefined, { timeout: deadline.left(), polling: 50 });
      } catch (e) {
        throw new Error('timed out waiting for ' + label);
      }
      if (await page.evaluate(() => window.__dc.fatal)) throw new Error('error while waiting for ' + label);
    };
    const FATAL_OR = 'window.__dc.fatal || ';
    const currentTime = () => page.evaluate(() => document.getElementById('v').currentTime);
    const t0 = Date.now();
    await page.evaluate(([u, t]) => window.startCheck(u, t), [mpd, opts.text]);
    await wait('playback to start', FATAL_OR + "document.getElementById('v').currentTime > 0.5");
    report.start_ms = Date.now() - t0;
    report.duration = await page.evaluate(() => document.getElementById('v').duration);
    report.representations = await page.evaluate(() => {
      const p = window.__dash;
      return ['video', 'audio'].flatMap((t) =>
        (p.getBitrateInfoListFor(t) || []).map((b) => ({ type: t, bitrate: b.bitrate, width: b.width, height: b.height })));
    });
    if (!(report.duration > 6) || !Number.isFinite(report.duration)) {
      throw new Error('duration ' + report.duration + ' s: too short or not finite to test seeking');
    }
    const seekTo = async (label, target) => {
      const before = await page.evaluate(() => window.__dc.seeked);
      await page.evaluate((t) => { document.getElementById('v').currentTime = t; }, target);
      await wait('seeked after the ' + label + ' seek', FATAL_OR + `window.__dc.seeked > ${before}`);
      const landed = await currentTime();
      await wait('currentTime to advance after the ' + label + ' seek',
        FATAL_OR + `document.getElementById('v').currentTime >= ${landed + 0.5}`);
      report.seeks.push({ label, target, landed });
      if (Math.abs(landed - target) > 1.0) {
        report.failures.push(`${label} seek landed at ${landed.toFixed(3)} s, target ${target.toFixed(3)} s`);
      }
    };
    if (opts.text) {
      report.text_tracks = await page.evaluate(() =>
        (window.__dash.getTracksFor('text') || []).map((t) => ({ lang: t.lang, labels: t.labels, roles: t.roles })));
      // The first cues load with the first segments; give them until 3 s in.
      await wait('a text cue', FATAL_OR + "Array.from(document.getElementById('v').textTracks).some((t) => t.cues && t.cues.length > 0) || document.getElementById('v').currentTime > 3");
    }
    await seekTo('middle', report.duration / 2);
    if (opts.text) {
      await wait('playback past the middle + 2 s', FATAL_OR + `document.getElementById('v').currentTime >= ${report.duration / 2 + 2}`);
    }
    await seekTo('end', Math.max(0, report.duration - 4));
    await wait('ended', FATAL_OR + 'window.__dc.ended');
    report.ended = true;
    const endPos = await currentTime();
    if (endPos < report.duration - 0.5) {
      report.failures.push(`ended at ${endPos.toFixed(3)} s of ${report.duration.toFixed(3)} s`);
    }
  } catch (e) {
    report.failures.push(String(e && e.message ? e.message : e));
  }
  if (browser) {
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages.length > 0) {
        const st = await pages[0].evaluate(() => {
          const v = document.getElementById('v');
          const cues = [];
          for (const t of Array.from(v.textTracks)) {
            for (const c of Array.from(t.cues || [])) {
              cues.push({ start: c.startTime, end: c.endTime, text: c.text, track: t.label || t.language || '' });
            }
          }
          const ranges = (r) => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
          return { errors: window.__dc ? window.__dc.errors : [], mediaError: window.__dc ? window.__dc.mediaError : null,
                   size: { width: v.videoWidth, height: v.videoHeight }, cues,
                   end_state: { current_time: v.currentTime, duration: v.duration, paused: v.paused,
                                ready_state: v.readyState, network_state: v.networkState,
                                buffered: ranges(v.buffered), played: ranges(v.played) } };
        });
        report.text_cues = st.cues;
        report.dash_errors = st.errors;
        report.media_error = st.mediaError;
        report.video_size = st.size;
        report.end_state = st.end_state;
        if (st.mediaError) report.failures.push('media element error: ' + JSON.stringify(st.mediaError));
        if (!opts.audioOnly && st.size.width === 0) report.failures.push('no video frame decoded (videoWidth 0)');
      }
    } catch (e) {
      report.failures.push('could not read the page state: ' + e.message);
    }
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  for (const err of report.dash_errors) report.failures.push(`dash.js ERROR ${err.code}: ${err.message}`);
  for (const c of report.console_errors) report.failures.push('console: ' + c);
  for (const h of report.http_errors) report.failures.push('http: ' + h);
  finish(report);
}

main();
