#!/usr/bin/env node
// A stand-in for hlsgate's page API, to prove the player page and page-check.mjs work without
// the real server (the real end-to-end tests use the real binary):
//
//   node fake-api.mjs --assets DIR --hls-root DIR [--thumb FILE.jpg] [--port N]
//
// Serves DIR's index.html, app.js, style.css and hls.min.js at /; `GET /api/v1/library?dir=`
// lists --hls-root, where a folder holding master.m3u8 is shown as a playable file and any
// other folder as a folder; `POST /api/v1/streams {"source": "file:<path>"}` answers with
// /hls/<path>/master.m3u8 (an http(s) source ending in .m3u8 is played as is); static HLS files
// under /hls/; `/hls/<path>/thumb/<ms>.jpg` is always FILE.jpg; `GET /api/v1/session` says open
// mode. Prints {"port": N} when ready.
import { createReadStream, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { parseArgs } from './common.mjs';

const { opts } = parseArgs(process.argv.slice(2), [], ['assets', 'hls-root', 'thumb', 'port']);
if (!opts.assets || !opts['hls-root']) {
  process.stderr.write('usage: fake-api.mjs --assets DIR --hls-root DIR [--thumb FILE] [--port N]\n');
  process.exit(3);
}
const assets = resolve(opts.assets);
const root = resolve(opts['hls-root']);
const thumb = opts.thumb ? readFileSync(opts.thumb) : null;

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mp4': 'video/mp4',
  '.m4s': 'video/iso.segment',
  '.vtt': 'text/vtt; charset=utf-8',
  '.jpg': 'image/jpeg',
};

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

/** `rel` under `base`, or null when it would escape. */
function inside(base, rel) {
  const p = normalize(join(base, rel));
  return p === base || p.startsWith(base + sep) ? p : null;
}

function sendFile(res, path) {
  let st;
  try {
    st = statSync(path);
  } catch (_) {
    return send(res, 404, 'not found');
  }
  if (!st.isFile()) return send(res, 404, 'not found');
  res.writeHead(200, {
    'Content-Type': TYPES[extname(path)] || 'application/octet-stream',
    'Content-Length': st.size,
  });
  createReadStream(path).pipe(res);
}

function isStream(dir) {
  try {
    return statSync(join(dir, 'master.m3u8')).isFile();
  } catch (_) {
    return false;
  }
}

function library(rel) {
  const dir = inside(root, rel);
  if (!dir) return null;
  const dirs = [];
  const files = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    let isDir = false;
    try {
      isDir = statSync(full).isDirectory(); // follows symbolic links
    } catch (_) {
      // a dangling link: not listed
    }
    if (!isDir) continue;
    const path = rel ? rel.replace(/\/+$/, '') + '/' + e.name : e.name;
    if (isStream(full)) {
      files.push({ name: e.name, path, size: statSync(join(full, 'master.m3u8')).size });
    } else {
      dirs.push(e.name);
    }
  }
  dirs.sort();
  files.sort((a, b) => a.name.localeCompare(b.name));
  return { dir: rel, dirs, files };
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://' + req.headers.host);
  const origin = 'http://' + req.headers.host;
  const path = decodeURIComponent(url.pathname);
  if (req.method === 'GET' && path === '/api/v1/session') {
    const s = { mode: 'open', library: true, needs_api_key: false, sources: 'file:PATH' };
    return send(res, 200, JSON.stringify(s), 'application/json');
  }
  if (req.method === 'GET' && path === '/api/v1/library') {
    const lib = library(url.searchParams.get('dir') || '');
    return lib ? send(res, 200, JSON.stringify(lib), 'application/json') : send(res, 404, 'no such folder');
  }
  if (req.method === 'POST' && path === '/api/v1/streams') {
    let body = '';
    req.on('data', (c) => {
      body += c;
      if (body.length > 65536) req.destroy();
    });
    req.on('end', () => {
      let source;
      try {
        source = JSON.parse(body).source;
      } catch (_) {
        return send(res, 400, 'body is not JSON');
      }
      let master;
      if (typeof source === 'string' && source.startsWith('file:')) {
        const dir = inside(root, source.slice(5));
        if (!dir || !isStream(dir)) return send(res, 404, 'no such file');
        master = origin + '/hls/' + source.slice(5).split('/').map(encodeURIComponent).join('/') + '/master.m3u8';
      } else if (typeof source === 'string' && /^https?:\/\/.+\.m3u8$/.test(source)) {
        master = source;
      } else {
        return send(res, 422, 'not a playable source');
      }
      const base = master.replace(/\/master\.m3u8$/, '');
      return send(res, 201, JSON.stringify({
        id: 'fake',
        token: 'fake',
        master_url: master,
        stream_url: base + '/stream.mp4',
        file_url: base + '/file',
        expires_at: new Date(Date.now() + 3600e3).toISOString(),
      }), 'application/json');
    });
    return undefined;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
  if (path.startsWith('/hls/')) {
    if (/\/thumb\/\d+\.jpg$/.test(path)) {
      return thumb ? send(res, 200, thumb, 'image/jpeg') : send(res, 404, 'no thumbnails');
    }
    const file = inside(root, path.slice(5));
    return file ? sendFile(res, file) : send(res, 404, 'not found');
  }
  const name = path === '/' ? 'index.html' : path.slice(1);
  if (['index.html', 'app.js', 'style.css', 'hls.min.js'].includes(name)) {
    return sendFile(res, join(assets, name));
  }
  return send(res, 404, 'not found');
});

server.listen(Number(opts.port || 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
