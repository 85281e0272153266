#!/usr/bin/env node
// The player page in headless Chromium:
//
//   node page-check.mjs <base_url> <screenshot.png> [--file NAME] [--thumb] [--timeout SECONDS]
//                       [--expect-error TEXT] [--password PW]
//
// Loads <base_url>/, clicks the first file of the library (or the one named NAME), waits until
// the video plays (currentTime > 1 s), optionally hovers the middle of the seek bar until the
// thumbnail preview has loaded (--thumb), saves a screenshot and prints one JSON line. Fails on
// console errors, page exceptions, HTTP errors, hls.js errors the page logs, and a visible error
// box. With --expect-error TEXT the file must NOT play: the page's error box must appear and
// contain TEXT (the server's own reason, not a code), and the HTTP and console errors of that
// refusal are expected. With --password PW (home mode) the page must first answer 401 with its
// login form; the check saves a screenshot of it (<screenshot>-login.png), logs in through the
// form and goes on as above. Exit 0 = pass, 1 = fail, 2 = watchdog, 3 = usage.
import { Deadline, finish, launch, parseArgs, watchdog, watchPage } from './common.mjs';

let parsed;
try {
  parsed = parseArgs(process.argv.slice(2), ['thumb'], ['file', 'timeout', 'expect-error', 'password']);
  if (parsed.positional.length !== 2) throw new Error('base URL and screenshot path expected');
} catch (e) {
  process.stderr.write(
    'usage: page-check.mjs <base_url> <screenshot.png> [--file NAME] [--thumb] [--timeout S]' +
      ' [--expect-error TEXT]\n' +
      e.message + '\n',
  );
  process.exit(3);
}
const [baseArg, screenshot] = parsed.positional;
const base = baseArg.replace(/\/+$/, '');
const opts = {
  file: parsed.opts.file || null,
  thumb: !!parsed.opts.thumb,
  timeout: Number(parsed.opts.timeout || 60),
  expectError: parsed.opts['expect-error'] || null,
  password: parsed.opts.password || null,
};

const report = {
  check: 'page',
  url: base + '/',
  ok: false,
  file: null,
  files_listed: 0,
  dirs_listed: 0,
  unplayable: [],
  play_ms: null,
  current_time: null,
  video_size: null,
  tracks: null,
  thumb: null,
  screenshot: null,
  error_box: null,
  login: null,
  console_errors: [],
  http_errors: [],
  hls_warnings: [],
  failures: [],
};
watchdog(opts.timeout, report);

async function main() {
  const deadline = new Deadline(opts.timeout);
  let browser;
  let page;
  try {
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // Favicon requests are the browser's, not the page's.
    watchPage(page, report, (url) => url.endsWith('/favicon.ico'));
    page.on('console', (msg) => {
      if (msg.type() === 'warning' && msg.text().startsWith('hls.js:')) {
        report.hls_warnings.push(msg.text().slice(0, 300));
      }
    });
    // Preview image requests: single thumbnails and trick-play sheets, by URL.
    const thumbRequests = { single: 0, sheets: [] };
    page.on('request', (req) => {
      const u = req.url();
      if (u.includes('/thumb/')) thumbRequests.single += 1;
      else if (/\/trickplay\/\d+\.jpg/.test(u)) thumbRequests.sheets.push(u.replace(/^.*\/trickplay\//, ''));
    });
    const first = await page.goto(base + '/', { timeout: deadline.left() });
    if (opts.password) {
      // Home mode: the page is the login form (401) until the password is given.
      const status = first ? first.status() : 0;
      const form = page.locator('[data-testid="login-form"]');
      await form.waitFor({ timeout: deadline.left() });
      const loginShot = screenshot.replace(/\.png$/, '') + '-login.png';
      await page.screenshot({ path: loginShot, timeout: 10000 });
      await page.fill('[data-testid="login-password"]', opts.password);
      const [after] = await Promise.all([
        page.waitForNavigation({ timeout: deadline.left() }),
        page.click('[data-testid="login-submit"]'),
      ]);
      // What the browser met before the login: the page's own 401 only.
      const before = report.http_errors.splice(0);
      const beforeConsole = report.console_errors.splice(0);
      report.login = {
        status_before: status,
        status_after: after ? after.status() : 0,
        errors_before: before,
        screenshot: loginShot,
        logout_button: await page.locator('[data-testid="logout"]').isVisible(),
      };
      if (status !== 401) report.failures.push('the page answered ' + status + ' before the login, not 401');
      if (!before.every((e) => e.startsWith('401 ')) || !beforeConsole.every((c) => c.includes('401'))) {
        report.failures.push('errors before the login: ' + JSON.stringify([before, beforeConsole]));
      }
      if (!report.login.logout_button) report.failures.push('no logout button after the login');
    }

    const files = page.locator('[data-testid="file"]');
    try {
      await page.waitForFunction(
        () => {
          if (document.querySelector('[data-testid="file"]')) return true;
          const st = document.querySelector('[data-testid="library-status"]');
          return st && st.textContent !== '' && !st.textContent.startsWith('Loading');
        },
        undefined,
        { timeout: deadline.left(), polling: 50 },
      );
    } catch (_) {
      throw new Error('timed out waiting for the library listing');
    }
    report.files_listed = await files.count();
    if (report.files_listed === 0) {
      const st = await page.locator('[data-testid="library-status"]').textContent();
      throw new Error('the library lists no file: ' + st);
    }
    report.dirs_listed = await page.locator('[data-testid="dir"]').count();
    // Greyed entries: "name|reason · size" for each.
    report.unplayable = await page
      .locator('[data-testid="file-unplayable"]')
      .evaluateAll((els) =>
        els.map(
          (e) =>
            e.querySelector('.name').textContent +
            '|' +
            e.querySelector('.meta').textContent +
            (e.disabled ? '|disabled' : '|clickable'),
        ),
      );
    const target = opts.file
      ? files.filter({ has: page.locator('.name', { hasText: opts.file }) }).first()
      : files.first();
    report.file = (await target.locator('.name').textContent()) || null;

    const t0 = Date.now();
    await target.click({ timeout: deadline.left() });
    try {
      await page.waitForFunction(
        () => {
          const err = document.querySelector('[data-testid="error"]');
          if (err && !err.hidden) return true;
          return document.querySelector('[data-testid="video"]').currentTime > 1;
        },
        undefined,
        { timeout: deadline.left(), polling: 50 },
      );
    } catch (_) {
      throw new Error('timed out waiting for the video to play (currentTime > 1 s)');
    }
    report.play_ms = Date.now() - t0;

    if (opts.thumb) {
      const seek = page.locator('[data-testid="seek"]');
      const box = await seek.boundingBox();
      if (!box) throw new Error('the seek bar is not visible');
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      try {
        await page.waitForFunction(
          () => {
            const tile = document.getElementById('preview-tile');
            if (tile && tile.dataset.loaded === '1' && !tile.hidden) return true;
            const img = document.getElementById('preview-img');
            return img && img.complete && img.naturalWidth > 0 && !img.hidden;
          },
          undefined,
          { timeout: Math.min(deadline.left(), 20000), polling: 50 },
        );
      } catch (_) {
        throw new Error('the seek-bar thumbnail did not load');
      }
      // Move along the bar: a sheet serves many positions (no request per position).
      for (const f of [0.2, 0.25, 0.3, 0.55, 0.6]) {
        await page.mouse.move(box.x + box.width * f, box.y + box.height / 2);
        await page.waitForTimeout(250);
      }
      report.thumb = await page.evaluate(() => {
        const tile = document.getElementById('preview-tile');
        if (tile && tile.dataset.loaded === '1') {
          const r = tile.getBoundingClientRect();
          return {
            kind: 'sheet',
            src: tile.dataset.sheet,
            width: Math.round(r.width),
            height: Math.round(r.height),
            position: tile.style.backgroundPosition,
          };
        }
        const img = document.getElementById('preview-img');
        return { kind: 'single', src: img.src, width: img.naturalWidth, height: img.naturalHeight };
      });
      report.thumb.requests = thumbRequests;
    }
  } catch (e) {
    report.failures.push(String(e && e.message ? e.message : e));
  }

  if (page) {
    try {
      const st = await page.evaluate(() => {
        const v = document.querySelector('[data-testid="video"]');
        const err = document.querySelector('[data-testid="error"]');
        const opts = (id) => Array.from(document.querySelectorAll(`[data-testid="${id}"] option`))
          .map((o) => o.textContent);
        return {
          currentTime: v.currentTime,
          size: { width: v.videoWidth, height: v.videoHeight },
          error: err && !err.hidden ? err.textContent : null,
          tracks: { audio: opts('audio-select'), subtitles: opts('subtitle-select'),
                    quality: opts('quality-select') },
        };
      });
      report.current_time = st.currentTime;
      report.video_size = st.size;
      report.tracks = st.tracks;
      report.error_box = st.error;
      if (opts.expectError) {
        if (!st.error) {
          report.failures.push('no error shown (expected one with ' + JSON.stringify(opts.expectError) + ')');
        } else if (!st.error.includes(opts.expectError)) {
          report.failures.push('the error shown lacks ' + JSON.stringify(opts.expectError) + ': ' + st.error);
        }
        if (st.currentTime > 1) report.failures.push('it played, though it should not');
      } else {
        if (st.error) report.failures.push('the page shows an error: ' + st.error);
        if (st.size.width === 0) report.failures.push('no video frame decoded (videoWidth 0)');
      }
      await page.screenshot({ path: screenshot, timeout: 10000 });
      report.screenshot = screenshot;
    } catch (e) {
      report.failures.push('could not read the page or take the screenshot: ' + e.message);
    }
  }
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  // A refusal the page is expected to explain comes with its HTTP error and Chromium's console
  // line about it; anything else still fails.
  const refusal = (t) => opts.expectError && /\b4\d\d\b/.test(t);
  for (const c of report.console_errors) if (!refusal(c)) report.failures.push('console: ' + c);
  for (const h of report.http_errors) if (!refusal(h)) report.failures.push('http: ' + h);
  for (const w of report.hls_warnings) report.failures.push('page logged: ' + w);
  finish(report);
}

main();
