// Shared by the player checks: Debian's Chromium through playwright-core (never a downloaded
// browser), a global deadline, and the one-JSON-line report.
import { chromium } from 'playwright-core';

/** The browser every check drives (apt-get install chromium). */
export const CHROMIUM = process.env.HLSGATE_CHROMIUM || '/usr/bin/chromium';

/** Flags: headless, no sandbox (root in CI), software rendering, no background traffic. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** Starts Chromium. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    timeout: 20000,
  });
}

/** Parses `--name value` and `--flag` arguments after the positional ones. */
export function parseArgs(argv, flags, options) {
  const positional = [];
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const name = a.slice(2);
      if (flags.includes(name)) {
        out[name] = true;
      } else if (options.includes(name) && i + 1 < argv.length) {
        out[name] = argv[i + 1];
        i += 1;
      } else {
        throw new Error('unknown or incomplete option ' + a);
      }
    } else {
      positional.push(a);
    }
  }
  return { positional, opts: out };
}

/** A deadline shared by every wait of one check. */
export class Deadline {
  constructor(seconds) {
    this.end = Date.now() + seconds * 1000;
  }

  /** Milliseconds left, at least 1 (so a zero is never read as "no timeout"). */
  left() {
    return Math.max(1, this.end - Date.now());
  }
}

/**
 * Prints the report as one JSON line and exits: 0 when `report.failures` is empty, 1 otherwise.
 * A last-resort timer (the deadline plus a margin) guarantees the process ends even if the
 * browser hangs.
 */
export function finish(report) {
  report.ok = report.failures.length === 0;
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(report.ok ? 0 : 1);
}

/** Arms the last-resort timer for `seconds` + 15 s: prints a failed report and exits 2. */
export function watchdog(seconds, report) {
  const t = setTimeout(() => {
    report.failures.push('watchdog: the check did not finish within its time bound');
    report.ok = false;
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(2);
  }, (seconds + 15) * 1000);
  t.unref();
}

/** Records page-level problems (console errors, uncaught exceptions, HTTP errors) in `report`. */
export function watchPage(page, report, ignoreUrl = () => false) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      report.console_errors.push(msg.text().slice(0, 500));
    }
  });
  page.on('pageerror', (err) => {
    report.console_errors.push('uncaught: ' + String(err && err.message ? err.message : err).slice(0, 500));
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && !ignoreUrl(res.url())) {
      report.http_errors.push(res.status() + ' ' + res.request().method() + ' ' + res.url());
    }
  });
  page.on('requestfailed', (req) => {
    const f = req.failure();
    // hls.js cancels in-flight loads when it seeks or switches tracks: not a failure.
    if (f && f.errorText.includes('ERR_ABORTED')) {
      report.aborted_requests = (report.aborted_requests || 0) + 1;
      return;
    }
    if (!ignoreUrl(req.url())) {
      report.http_errors.push('failed ' + req.method() + ' ' + req.url() + ': ' + (f ? f.errorText : '?'));
    }
  });
}
