#!/usr/bin/env node
// A progressive file in a plain <video> element of headless Chromium:
//
//   node video-check.mjs <url> <seek_seconds> [--timeout SECONDS]
//
// Plays <url> (muted) until currentTime > 1 s, seeks to <seek_seconds>, and waits until it
// plays on from there (currentTime > seek + 0.5 s). Prints one JSON line. Exit 0 = pass,
// 1 = fail, 2 = watchdog, 3 = usage.
import { Deadline, finish, launch, parseArgs, watchdog } from './common.mjs';

let parsed;
try {
  parsed = parseArgs(process.argv.slice(2), [], ['timeout']);
  if (parsed.positional.length !== 2) throw new Error('url and seek seconds expected');
} catch (e) {
  process.stderr.write('usage: video-check.mjs <url> <seek_seconds> [--timeout S]\n' + e.message + '\n');
  process.exit(3);
}
const [url, seekArg] = parsed.positional;
const seekTo = Number(seekArg);
const timeout = Number(parsed.opts.timeout || 60);
const report = {
  check: 'video',
  url,
  ok: false,
  duration: null,
  play_ms: null,
  seek_ms: null,
  current_time: null,
  video_size: null,
  error: null,
  failures: [],
};
watchdog(timeout, report);

async function main() {
  const deadline = new Deadline(timeout);
  let browser;
  try {
    browser = await launch();
    const page = await browser.newPage();
    await page.setContent('<video id="v" muted playsinline preload="auto"></video>');
    const t0 = Date.now();
    await page.evaluate((u) => {
      const v = document.getElementById('v');
      v.addEventListener('error', () => {
        window.__videoError = v.error ? v.error.code + ' ' + v.error.message : 'error';
      });
      v.src = u;
      v.play().catch((e) => {
        window.__videoError = 'play(): ' + e.message;
      });
    }, url);
    const played = async (t) => {
      await page.waitForFunction(
        (min) => window.__videoError || document.getElementById('v').currentTime > min,
        t,
        { timeout: deadline.left(), polling: 50 },
      );
      const err = await page.evaluate(() => window.__videoError || null);
      if (err) throw new Error('the video failed: ' + err);
    };
    await played(1);
    report.play_ms = Date.now() - t0;
    const t1 = Date.now();
    await page.evaluate((s) => {
      document.getElementById('v').currentTime = s;
    }, seekTo);
    await played(seekTo + 0.5);
    report.seek_ms = Date.now() - t1;
    const st = await page.evaluate(() => {
      const v = document.getElementById('v');
      return { d: v.duration, t: v.currentTime, w: v.videoWidth, h: v.videoHeight };
    });
    report.duration = st.d;
    report.current_time = st.t;
    report.video_size = { width: st.w, height: st.h };
    if (st.w === 0) report.failures.push('no picture decoded (videoWidth 0)');
  } catch (e) {
    report.failures.push(String(e && e.message ? e.message : e));
  }
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  finish(report);
}

main();
