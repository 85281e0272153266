#!/usr/bin/env node
// hls.js in headless Chromium against one master playlist:
//
//   node hlsjs-check.mjs <master_url> [--audio-switch] [--subtitles] [--cross-origin]
//                        [--timeout SECONDS] [--min-play SECONDS] [--stop-on-error] [--audio-only]
//                        [--level-switch SECONDS]
//
// Plays muted from 0 until currentTime advances, seeks to the middle and to 4 s before the end
// (currentTime must advance after each), waits for `ended`. --audio-switch switches to audio
// track 1 after the middle seek (AUDIO_TRACK_SWITCHED, a fragment of track 1 buffered, playback
// still advancing). --subtitles enables subtitle track 0 and requires a cue to become active
// somewhere in the played range. --level-switch N switches to the next quality level at once
// (`currentLevel`, cycling through all of them) every N seconds of playing, and requires a
// fragment of every level to be buffered. Every hls.js ERROR event (fatal or not), console error, page
// exception and HTTP error fails the check — except the non-fatal "aborted" ERROR hls.js emits
// when it cancels its own load on a seek or switch (counted in hls_aborted_loads); --stop-on-error stops at the first hls.js error. Prints one JSON line; exit 0 = pass, 1 = fail,
// 2 = watchdog (hung), 3 = usage.
//
// The test page is served by request interception on the master's own origin (or, with
// --cross-origin, on the other loopback name, so CORS is exercised), with hls.js from
// node_modules: nothing but the URL under test touches the network.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Deadline, finish, launch, parseArgs, watchdog, watchPage } from './common.mjs';

const require = createRequire(import.meta.url);
const HLS_JS = readFileSync(require.resolve('hls.js/dist/hls.min.js'));
const HLS_VERSION = JSON.parse(readFileSync(require.resolve('hls.js/package.json'), 'utf8')).version;

const PREFIX = '/__hlsgate_check__/';

let parsed;
try {
  parsed = parseArgs(
    process.argv.slice(2),
    ['audio-switch', 'subtitles', 'cross-origin', 'stop-on-error', 'audio-only'],
    ['timeout', 'min-play', 'level-switch'],
  );
  if (parsed.positional.length !== 1) throw new Error('one master URL expected');
} catch (e) {
  process.stderr.write(
    'usage: hlsjs-check.mjs <master_url> [--audio-switch] [--subtitles] [--cross-origin] ' +
      '[--timeout S] [--min-play S] [--stop-on-error] [--audio-only] [--level-switch S]\n' +
      e.message + '\n',
  );
  process.exit(3);
}
const master = parsed.positional[0];
const opts = {
  audioSwitch: !!parsed.opts['audio-switch'],
  subtitles: !!parsed.opts.subtitles,
  crossOrigin: !!parsed.opts['cross-origin'],
  stopOnError: !!parsed.opts['stop-on-error'],
  // An audio-only master: no video frame is expected.
  audioOnly: !!parsed.opts['audio-only'],
  timeout: Number(parsed.opts.timeout || 60),
  minPlay: Number(parsed.opts['min-play'] || 0.5),
  levelSwitch: Number(parsed.opts['level-switch'] || 0),
};

const report = {
  check: 'hlsjs',
  url: master,
  hls_version: HLS_VERSION,
  options: opts,
  ok: false,
  duration: null,
  first_frame_ms: null,
  start_ms: null,
  seeks: [],
  ended: false,
  audio_switch: null,
  subtitles: null,
  level_switch: null,
  levels: [],
  audio_tracks: [],
  subtitle_tracks: [],
  frames: null,
  video_size: null,
  hls_errors: [],
  hls_aborted_loads: 0,
  console_errors: [],
  http_errors: [],
  media_error: null,
  events: {},
  failures: [],
};
watchdog(opts.timeout, report);

// The page: a video element, hls.js, and a recorder the node side polls.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>hlsgate check</title></head>
<body style="margin:0;background:#000">
<video id="v" muted playsinline style="width:640px;height:360px"></video>
<script src="${PREFIX}hls.min.js"></script>
<script>
'use strict';
const hc = { events: {}, errors: [], aborted: 0, switched: [], levels: [], forced: [], buffered: {}, cues: [],
             seeked: 0, ended: false,
             firstFrameMs: null, playError: null, mediaError: null, fatal: false, t0: 0 };
window.__hc = hc;
window.startCheck = (master, opts) => {
  const v = document.getElementById('v');
  v.muted = true;
  const hls = new Hls({ startPosition: 0, enableWorker: true });
  window.__hls = hls;
  const count = (name) => { hc.events[name] = (hc.events[name] || 0) + 1; };
  for (const name of ['MANIFEST_PARSED', 'LEVEL_LOADED', 'AUDIO_TRACK_LOADED',
      'SUBTITLE_TRACK_LOADED', 'FRAG_LOADED', 'FRAG_BUFFERED', 'LEVEL_SWITCHED',
      'AUDIO_TRACK_SWITCHED', 'SUBTITLE_TRACK_SWITCH', 'BUFFER_CODECS', 'INIT_PTS_FOUND']) {
    hls.on(Hls.Events[name], () => count(name));
  }
  hls.on(Hls.Events.ERROR, (_e, d) => {
    // hls.js 1.7 announces every load it cancels itself (a seek or a track switch while a
    // fragment was in flight) as a non-fatal ERROR "aborted": counted, not a stream fault.
    if (d.details === 'aborted' && !d.fatal) {
      hc.aborted += 1;
      return;
    }
    hc.errors.push({
      type: d.type, details: d.details, fatal: !!d.fatal,
      url: (d.frag && d.frag.url) || d.url || (d.context && d.context.url) || null,
      code: d.response && d.response.code !== undefined ? d.response.code : null,
      reason: d.reason || (d.error && d.error.message) || null,
    });
    if (d.fatal) hc.fatal = true;
  });
  hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_e, d) => hc.switched.push(d.id));
  hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => hc.levels.push({ level: d.level, at: v.currentTime }));
  if (opts.levelSwitch > 0) {
    // Every N seconds of playing: the next level, cycling, switched at once (currentLevel:
    // the buffer ahead is dropped and the new level's fragment at the playhead loaded, as a
    // quality menu does), so each switch joins two renditions mid-segment.
    let last = 0;
    setInterval(() => {
      if (v.paused || v.seeking || hls.levels.length < 2) return;
      if (v.currentTime - last < opts.levelSwitch && v.currentTime >= last) return;
      last = v.currentTime;
      const next = (Math.max(hls.currentLevel, 0) + 1) % hls.levels.length;
      hls.currentLevel = next;
      hc.forced.push({ level: next, at: v.currentTime });
    }, 100);
  }
  hls.on(Hls.Events.FRAG_BUFFERED, (_e, d) => {
    const k = d.frag.type + ':' + d.frag.level;
    hc.buffered[k] = (hc.buffered[k] || 0) + 1;
  });
  hls.on(Hls.Events.SUBTITLE_TRACK_LOADED, () => { hc.subtitleLoaded = true; });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    const p = v.play();
    if (p && p.catch) p.catch((e) => { hc.playError = String(e && e.message || e); });
  });
  v.addEventListener('seeked', () => { hc.seeked += 1; });
  v.addEventListener('ended', () => { hc.ended = true; });
  v.addEventListener('error', () => {
    hc.mediaError = v.error ? { code: v.error.code, message: v.error.message } : { code: 0 };
    hc.fatal = true;
  });
  if (v.requestVideoFrameCallback) {
    v.requestVideoFrameCallback(() => { hc.firstFrameMs = performance.now() - hc.t0; });
  } else {
    v.addEventListener('playing', () => { hc.firstFrameMs = performance.now() - hc.t0; }, { once: true });
  }
  if (opts.subtitles) {
    setInterval(() => {
      // hls.js creates the TextTrack after its subtitle list (mode "disabled"), and a disabled
      // track resets the selection to -1: select track 0 until its playlist has loaded.
      if (!hc.subtitleLoaded && hls.subtitleTracks.length > 0 && hls.subtitleTrack !== 0) {
        hls.subtitleDisplay = true;
        hls.subtitleTrack = 0;
      }
      const tt = v.textTracks;
      for (let i = 0; i < tt.length; i += 1) {
        const t = tt[i];
        if (t.mode === 'disabled' || !t.activeCues) continue;
        for (let j = 0; j < t.activeCues.length; j += 1) {
          const c = t.activeCues[j];
          if (!hc.cues.some((x) => x.start === c.startTime && x.track === i)) {
            hc.cues.push({ track: i, start: c.startTime, end: c.endTime,
                           text: String(c.text || '').slice(0, 200), at: v.currentTime });
          }
        }
      }
    }, 100);
  }
  hc.t0 = performance.now();
  hls.loadSource(master);
  hls.attachMedia(v);
};
</script></body></html>`;

function pageUrl() {
  const u = new URL(master);
  if (opts.crossOrigin) {
    u.hostname = u.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  }
  return u.origin + PREFIX + 'index.html';
}

const FATAL_OR = opts.stopOnError
  ? 'window.__hc.fatal || window.__hc.errors.length > 0 || '
  : 'window.__hc.fatal || ';

async function main() {
  const deadline = new Deadline(opts.timeout);
  let browser;
  try {
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
    watchPage(page, report);
    const pageOrigin = new URL(pageUrl()).origin;
    await page.route((url) => url.origin === pageOrigin && url.pathname.startsWith(PREFIX), (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === PREFIX + 'index.html') {
        return route.fulfill({ status: 200, contentType: 'text/html', body: PAGE });
      }
      if (path === PREFIX + 'hls.min.js') {
        return route.fulfill({ status: 200, contentType: 'text/javascript', body: HLS_JS });
      }
      return route.fulfill({ status: 404, body: 'not here' });
    });
    await page.goto(pageUrl(), { timeout: deadline.left() });

    const wait = async (label, predicate, arg) => {
      try {
        await page.waitForFunction(predicate, arg, { timeout: deadline.left(), polling: 50 });
      } catch (e) {
        throw new Error('timed out waiting for ' + label);
      }
      const st = await page.evaluate(() => [window.__hc.fatal, window.__hc.errors.length]);
      if (st[0]) throw new Error('fatal error while waiting for ' + label);
      if (opts.stopOnError && st[1] > 0) throw new Error('stopped at the first hls.js error, waiting for ' + label);
    };
    const now = () => page.evaluate(() => performance.now());
    const currentTime = () => page.evaluate(() => document.getElementById('v').currentTime);

    // 1. Play from 0.
    const t0 = Date.now();
    await page.evaluate(([m, o]) => window.startCheck(m, o), [master, opts]);
    await wait(
      'playback to start (currentTime > ' + opts.minPlay + ')',
      FATAL_OR + `document.getElementById('v').currentTime > ${opts.minPlay}`,
    );
    report.start_ms = Date.now() - t0;
    const info = await page.evaluate(() => {
      const h = window.__hls;
      const v = document.getElementById('v');
      return {
        duration: v.duration,
        levels: h.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate,
          codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(',') })),
        audio: h.audioTracks.map((t) => ({ name: t.name, lang: t.lang || null, default: !!t.default })),
        subs: h.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang || null })),
      };
    });
    report.duration = info.duration;
    report.levels = info.levels;
    report.audio_tracks = info.audio;
    report.subtitle_tracks = info.subs;
    if (!(report.duration > 6) || !Number.isFinite(report.duration)) {
      throw new Error('duration ' + report.duration + ' s: too short or not finite to test seeking');
    }

    // 2. Seeks: currentTime must land near the target and then advance.
    const seekTo = async (label, target) => {
      const before = await page.evaluate(() => window.__hc.seeked);
      const s0 = await now();
      await page.evaluate((t) => { document.getElementById('v').currentTime = t; }, target);
      await wait('seeked after the ' + label + ' seek', FATAL_OR + `window.__hc.seeked > ${before}`);
      const seekedMs = (await now()) - s0;
      const landed = await currentTime();
      await wait(
        'currentTime to advance after the ' + label + ' seek',
        FATAL_OR + `document.getElementById('v').currentTime >= ${landed + 0.5}`,
      );
      const rec = { label, target, landed, seeked_ms: Math.round(seekedMs),
                    advance_ms: Math.round((await now()) - s0) };
      report.seeks.push(rec);
      if (Math.abs(landed - target) > 1.0) {
        report.failures.push(`${label} seek landed at ${landed.toFixed(3)} s, target ${target.toFixed(3)} s`);
      }
    };
    await seekTo('middle', report.duration / 2);

    // 3. Audio track switch (after the middle seek, while playing).
    if (opts.audioSwitch) {
      if (report.audio_tracks.length < 2) {
        throw new Error('--audio-switch needs 2 audio tracks, the master has ' + report.audio_tracks.length);
      }
      const s0 = await now();
      await page.evaluate(() => { window.__hls.audioTrack = 1; });
      await wait('AUDIO_TRACK_SWITCHED to track 1', FATAL_OR + 'window.__hc.switched.includes(1)');
      const switchedMs = (await now()) - s0;
      await wait('a fragment of audio track 1 to be buffered', FATAL_OR + "(window.__hc.buffered['audio:1'] || 0) > 0");
      const pos = await currentTime();
      await wait(
        'currentTime to advance after the audio switch',
        FATAL_OR + `document.getElementById('v').currentTime >= ${pos + 1.0}`,
      );
      report.audio_switch = {
        switched_ms: Math.round(switchedMs),
        audio_track: await page.evaluate(() => window.__hls.audioTrack),
        track1_fragments: await page.evaluate(() => window.__hc.buffered['audio:1'] || 0),
      };
      if (report.audio_switch.audio_track !== 1) {
        report.failures.push('audioTrack is ' + report.audio_switch.audio_track + ' after switching to 1');
      }
    }

    // 4. Four seconds before the end, then `ended`.
    await seekTo('end', Math.max(0, report.duration - 4));
    await wait('ended', FATAL_OR + 'window.__hc.ended');
    report.ended = true;
    const endPos = await currentTime();
    if (endPos < report.duration - 0.5) {
      report.failures.push(`ended at ${endPos.toFixed(3)} s of ${report.duration.toFixed(3)} s`);
    }
  } catch (e) {
    report.failures.push(String(e && e.message ? e.message : e));
  }

  // Collect what the page recorded, whatever happened above.
  if (browser) {
    try {
      const pages = browser.contexts().flatMap((c) => c.pages());
      if (pages.length > 0) {
        const st = await pages[0].evaluate(() => {
          const v = document.getElementById('v');
          const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
          const hc = window.__hc || {};
          return {
            errors: hc.errors || [], aborted: hc.aborted || 0, events: hc.events || {}, cues: hc.cues || [],
            firstFrameMs: hc.firstFrameMs, mediaError: hc.mediaError, playError: hc.playError,
            buffered: hc.buffered || {}, levels: hc.levels || [], forced: hc.forced || [],
            frames: q ? { total: q.totalVideoFrames, dropped: q.droppedVideoFrames } : null,
            size: { width: v.videoWidth, height: v.videoHeight },
          };
        });
        report.hls_errors = st.errors;
        report.hls_aborted_loads = st.aborted;
        report.events = Object.assign({}, st.events, { buffered: st.buffered });
        report.first_frame_ms = st.firstFrameMs === null ? null : Math.round(st.firstFrameMs);
        report.media_error = st.mediaError;
        report.frames = st.frames;
        report.video_size = st.size;
        if (opts.subtitles) report.subtitles = { cues: st.cues };
        if (opts.levelSwitch > 0) {
          report.level_switch = { forced: st.forced, switched: st.levels, buffered: st.buffered };
          const count = report.levels.length;
          if (count < 2) report.failures.push('--level-switch needs 2 levels, the master has ' + count);
          for (let l = 0; l < count; l += 1) {
            if (!(st.buffered['main:' + l] > 0)) report.failures.push('no fragment of level ' + l + ' was buffered');
          }
        }
        if (st.playError) report.failures.push('play() rejected: ' + st.playError);
        if (st.mediaError) report.failures.push('media element error: ' + JSON.stringify(st.mediaError));
        if (!opts.audioOnly && st.size.width === 0) report.failures.push('no video frame decoded (videoWidth 0)');
        if (!opts.audioOnly && st.frames && st.frames.total === 0) report.failures.push('no video frame decoded');
        if (opts.subtitles && st.cues.length === 0) {
          report.failures.push('no subtitle cue became active in the played range');
        }
      }
    } catch (e) {
      report.failures.push('could not read the page state: ' + e.message);
    }
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  for (const err of report.hls_errors) {
    report.failures.push(`hls.js ERROR ${err.fatal ? 'fatal' : 'non-fatal'} ${err.type}/${err.details}` +
      (err.url ? ' ' + err.url : '') + (err.code !== null ? ' (HTTP ' + err.code + ')' : ''));
  }
  for (const c of report.console_errors) report.failures.push('console: ' + c);
  for (const h of report.http_errors) report.failures.push('http: ' + h);
  finish(report);
}

main();
