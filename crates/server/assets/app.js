// hlsgate player page: lists the media root, starts a stream through the API and plays its
// master playlist with hls.js (or Safari's native HLS). Plain browser JavaScript, no build step.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const seek = $('seek');
  const timeOut = $('time');
  const preview = $('preview');
  const previewImg = $('preview-img');
  const previewTime = $('preview-time');
  const previewTile = $('preview-tile');
  const audioSel = $('audio');
  const subSel = $('subtitles');
  const qualSel = $('quality');
  const statusEl = $('status');
  const errorEl = $('error');
  const listEl = $('library');
  const crumbEl = $('breadcrumb');
  const libStatus = $('library-status');
  const keyInput = $('api-key');

  const KEY_STORE = 'hlsgate.apiKey';
  const THUMB_WIDTH = 160;
  const THUMB_DEBOUNCE_MS = 150;

  let hls = null;
  let thumbBase = null; // master_url without "/master.m3u8"
  let seeking = false; // the user is dragging the seek bar

  // ---- small helpers -------------------------------------------------------------------

  function setStatus(text) {
    statusEl.textContent = text;
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = false;
  }

  function clearError() {
    errorEl.textContent = '';
    errorEl.hidden = true;
  }

  function fmtTime(s) {
    if (!isFinite(s) || s < 0) s = 0;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = Math.floor(s % 60);
    const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
    return (h > 0 ? h + ':' : '') + mm + ':' + String(sec).padStart(2, '0');
  }

  function fmtSize(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }

  function authHeaders() {
    const key = keyInput.value.trim();
    return key ? { Authorization: 'Bearer ' + key } : {};
  }

  // Turns a failed response into a readable message (the server answers with a short plain-text
  // reason).
  async function responseError(res) {
    let body = '';
    try {
      body = (await res.text()).trim().slice(0, 300);
    } catch (_) {
      // keep the status line alone
    }
    if (res.status === 401 && mode === 'home') {
      // The login has ended (expired, or the password changed): the page asks again.
      setTimeout(() => location.reload(), 1500);
      return 'your login has ended; log in again';
    }
    return body || 'HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '');
  }

  // The server's mode (open, home, signed): what the page offers.
  let mode = 'open';
  async function loadSession() {
    try {
      const res = await fetch('/api/v1/session', { headers: authHeaders() });
      if (res.status === 401) {
        location.reload();
        return;
      }
      if (!res.ok) return;
      const s = await res.json();
      if (typeof s.mode === 'string') mode = s.mode;
      $('logout').hidden = mode !== 'home';
      $('api-key-field').hidden = !s.needs_api_key;
      if (typeof s.sources === 'string') {
        $('url-hint').textContent = 'Accepts ' + s.sources + '.';
      }
    } catch (_) {
      // an older server: keep the defaults
    }
  }

  // ---- library ----------------------------------------------------------------------------

  function currentDir() {
    const m = /^#dir=(.*)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : '';
  }

  function goDir(dir) {
    const hash = dir ? '#dir=' + encodeURIComponent(dir) : '';
    if (location.hash === hash || (!hash && !location.hash)) {
      loadLibrary(dir);
    } else {
      location.hash = hash; // hashchange loads it (and the back button works)
    }
  }

  function joinPath(dir, name) {
    return dir ? dir.replace(/\/+$/, '') + '/' + name : name;
  }

  function renderCrumbs(dir) {
    crumbEl.replaceChildren();
    const parts = dir ? dir.split('/').filter(Boolean) : [];
    const root = document.createElement('button');
    root.type = 'button';
    root.textContent = 'Media';
    root.addEventListener('click', () => goDir(''));
    crumbEl.append(root);
    let acc = '';
    for (const p of parts) {
      acc = joinPath(acc, p);
      const target = acc;
      const sep = document.createElement('span');
      sep.textContent = ' / ';
      sep.setAttribute('aria-hidden', 'true');
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = p;
      b.addEventListener('click', () => goDir(target));
      crumbEl.append(sep, b);
    }
    const last = crumbEl.lastElementChild;
    if (last) last.setAttribute('aria-current', 'location');
  }

  function libraryItem(label, meta, testid, onClick) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.testid = testid;
    b.className = testid;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = label;
    b.append(name);
    if (meta) {
      const m = document.createElement('span');
      m.className = 'meta';
      m.textContent = meta;
      b.append(m);
    }
    b.addEventListener('click', onClick);
    li.append(b);
    return li;
  }

  async function loadLibrary(dir) {
    renderCrumbs(dir);
    listEl.replaceChildren();
    libStatus.textContent = 'Loading…';
    let data;
    try {
      const res = await fetch('/api/v1/library?dir=' + encodeURIComponent(dir), {
        headers: authHeaders(),
      });
      if (!res.ok) {
        libStatus.textContent =
          res.status === 404 || res.status === 403
            ? 'No library here: this server lists it in open and home mode only. Paste a URL instead.'
            : 'Could not list the folder: ' + (await responseError(res));
        return;
      }
      data = await res.json();
    } catch (e) {
      libStatus.textContent = 'Could not list the folder: ' + e.message;
      return;
    }
    const dirs = Array.isArray(data.dirs) ? data.dirs : [];
    const files = Array.isArray(data.files) ? data.files : [];
    if (dir) {
      const parent = dir.split('/').filter(Boolean).slice(0, -1).join('/');
      listEl.append(libraryItem('..', 'parent folder', 'dir-up', () => goDir(parent)));
    }
    for (const d of dirs) {
      listEl.append(libraryItem(d + '/', 'folder', 'dir', () => goDir(joinPath(dir, d))));
    }
    for (const f of files) {
      const meta = [
        typeof f.not_playable === 'string' ? f.not_playable : '',
        typeof f.duration === 'number' ? fmtTime(f.duration) : '',
        fmtSize(f.size),
      ]
        .filter(Boolean)
        .join(' · ');
      if (typeof f.not_playable === 'string') {
        // Shown, greyed, with the reason: it cannot play (the server said why).
        const item = libraryItem(f.name, meta, 'file-unplayable', () => {});
        const b = item.querySelector('button');
        b.disabled = true;
        b.title = f.name + ': ' + f.not_playable;
        listEl.append(item);
        continue;
      }
      listEl.append(
        libraryItem(f.name, meta, 'file', () => startStream('file:' + f.path, f.name)),
      );
    }
    libStatus.textContent = dirs.length || files.length ? '' : 'This folder is empty.';
  }

  // ---- streams ------------------------------------------------------------------------------

  async function startStream(source, title) {
    clearError();
    setStatus('Starting ' + title + '…');
    let info;
    try {
      const res = await fetch('/api/v1/streams', {
        method: 'POST',
        headers: Object.assign({ 'Content-Type': 'application/json' }, authHeaders()),
        body: JSON.stringify({ source }),
      });
      if (!res.ok) {
        showError('Could not start the stream: ' + (await responseError(res)));
        setStatus('');
        return;
      }
      info = await res.json();
    } catch (e) {
      showError('Could not start the stream: ' + e.message);
      setStatus('');
      return;
    }
    if (!info || typeof info.master_url !== 'string') {
      showError('The server answered without a master_url.');
      return;
    }
    play(info, title);
  }

  function resetPickers() {
    audioSel.replaceChildren();
    audioSel.disabled = true;
    subSel.replaceChildren(new Option('Off', '-1'));
    subSel.disabled = true;
    qualSel.replaceChildren(new Option('Auto', '-1'));
    qualSel.disabled = true;
  }

  function stop() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    video.removeAttribute('src');
    video.load();
    resetPickers();
  }

  function play(info, title) {
    stop();
    const master = new URL(info.master_url, location.href).href;
    thumbBase = master.replace(/\/master\.m3u8(\?.*)?$/, '');
    tiles = null;
    $('now-playing').textContent = title;
    $('master-link').href = master;
    $('file-link').href = info.file_url ? new URL(info.file_url, location.href).href : master;
    $('links').hidden = false;

    const mse = window.Hls && Hls.isSupported();
    if (mse) {
      hls = new Hls({ enableWorker: true });
      wireHls(hls);
      hls.loadSource(master);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari (iOS) without MSE: native HLS.
      video.src = master;
      wireNative();
      masterText(master, null).then((text) => loadTiles(thumbBase, text));
    } else {
      showError('This browser can play neither HLS natively nor through Media Source Extensions.');
      return;
    }
    setStatus('Loading ' + title + '…');
    const p = video.play();
    if (p && p.catch) {
      p.catch((e) => {
        if (e.name === 'NotAllowedError') setStatus('Press play to start.');
      });
    }
  }

  // The master's text, for the trick-play check: what hls.js loaded, else fetched again (the
  // browser's cache answers: playlists may be kept 10 s).
  async function masterText(url, details) {
    if (details && typeof details.responseText === 'string') return details.responseText;
    try {
      const res = await fetch(url);
      return res.ok ? await res.text() : '';
    } catch (_) {
      return '';
    }
  }

  function wireHls(h) {
    let mediaRecoveries = 0;
    h.on(Hls.Events.MANIFEST_LOADED, (_e, d) => {
      const base = thumbBase;
      masterText(d.url, d.networkDetails).then((text) => {
        if (base === thumbBase) loadTiles(base, text);
      });
    });
    h.on(Hls.Events.MANIFEST_PARSED, () => fillLevels(h));
    h.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => fillAudio(h));
    h.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_e, d) => {
      audioSel.value = String(d.id);
    });
    h.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => fillSubs(h));
    h.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
      const lvl = h.levels[d.level];
      if (lvl && h.autoLevelEnabled) {
        qualSel.options[0].textContent = 'Auto (' + levelLabel(lvl) + ')';
      }
    });
    h.on(Hls.Events.ERROR, (_e, d) => {
      if (!d.fatal) {
        // hls.js recovers from these on its own; keep them visible to developers only
        // ("aborted" is hls.js cancelling its own load on a seek or switch: not a problem).
        if (d.details !== 'aborted') console.warn('hls.js:', d.type, d.details);
        return;
      }
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 1) {
        mediaRecoveries += 1;
        h.recoverMediaError();
        return;
      }
      const code = d.response && d.response.code ? ', HTTP ' + d.response.code : '';
      // The server says why in plain words (a short text/plain body): show that first.
      const reason = serverReason(d.networkDetails);
      // The server's words alone when it gave them; the player's code otherwise.
      showError(
        reason
          ? 'Playback failed: ' + reason.replace(/\.$/, '') + '.'
          : 'Playback failed: ' +
              (FATAL_TEXT[d.details] || 'the stream stopped') +
              ' (' + d.details + code + ').',
      );
      setStatus('');
      if (hls === h) stop();
      else h.destroy();
    });
  }

  // The reason in an error response's body, when the server gave one as short plain text.
  function serverReason(xhr) {
    try {
      if (!xhr || typeof xhr.getResponseHeader !== 'function' || xhr.status < 400) return '';
      const type = xhr.getResponseHeader('content-type') || '';
      const text = typeof xhr.responseText === 'string' ? xhr.responseText.trim() : '';
      if (!type.startsWith('text/plain') || !text || text.length > 300) return '';
      return text;
    } catch (_) {
      return '';
    }
  }

  // Plain words for the fatal errors people will meet.
  const FATAL_TEXT = {
    manifestLoadError: 'the master playlist could not be loaded',
    manifestLoadTimeOut: 'the master playlist took too long to load',
    manifestParsingError: 'the master playlist is not valid',
    manifestIncompatibleCodecsError: "this browser cannot play any of the stream's codecs",
    levelLoadError: 'a media playlist could not be loaded',
    levelEmptyError: 'a media playlist is empty',
    fragLoadError: 'a segment could not be loaded',
    fragLoadTimeOut: 'a segment took too long to load',
    fragParsingError: 'a segment could not be read',
    bufferAppendError: 'the browser could not decode a segment',
    bufferIncompatibleCodecsError: "this browser cannot play the stream's codecs",
  };

  function levelLabel(l) {
    const parts = [];
    // The short side names the quality: a 1080x1920 portrait video is "1080p".
    const side = l.width && l.height ? Math.min(l.width, l.height) : l.height;
    if (side) parts.push(side + 'p');
    if (l.bitrate) parts.push(Math.round(l.bitrate / 1000) + ' kb/s');
    if (l.videoCodec) parts.push(l.videoCodec.split('.')[0]);
    return parts.join(' ') || 'level';
  }

  function fillLevels(h) {
    qualSel.replaceChildren(new Option('Auto', '-1'));
    h.levels.forEach((l, i) => qualSel.append(new Option(levelLabel(l), String(i))));
    qualSel.disabled = h.levels.length < 2;
  }

  function trackLabel(t, i) {
    const name = t.name || 'Track ' + (i + 1);
    return t.lang && !name.includes(t.lang) ? name + ' (' + t.lang + ')' : name;
  }

  function fillAudio(h) {
    audioSel.replaceChildren();
    h.audioTracks.forEach((t, i) => audioSel.append(new Option(trackLabel(t, i), String(i))));
    audioSel.value = String(h.audioTrack);
    audioSel.disabled = h.audioTracks.length < 2;
  }

  function fillSubs(h) {
    subSel.replaceChildren(new Option('Off', '-1'));
    h.subtitleTracks.forEach((t, i) => subSel.append(new Option(trackLabel(t, i), String(i))));
    subSel.value = String(h.subtitleTrack);
    subSel.disabled = h.subtitleTracks.length === 0;
  }

  // Native HLS (Safari): the element's own track lists.
  function wireNative() {
    const tt = video.textTracks;
    const fill = () => {
      subSel.replaceChildren(new Option('Off', '-1'));
      for (let i = 0; i < tt.length; i += 1) {
        subSel.append(new Option(tt[i].label || tt[i].language || 'Track ' + (i + 1), String(i)));
      }
      subSel.disabled = tt.length === 0;
      const at = video.audioTracks;
      if (at) {
        audioSel.replaceChildren();
        for (let i = 0; i < at.length; i += 1) {
          audioSel.append(new Option(at[i].label || at[i].language || 'Track ' + (i + 1), String(i)));
          if (at[i].enabled) audioSel.value = String(i);
        }
        audioSel.disabled = at.length < 2;
      }
    };
    video.addEventListener('loadedmetadata', fill, { once: true });
    if (tt.addEventListener) tt.addEventListener('addtrack', fill);
  }

  audioSel.addEventListener('change', () => {
    const i = Number(audioSel.value);
    if (hls) {
      hls.audioTrack = i;
    } else if (video.audioTracks) {
      for (let j = 0; j < video.audioTracks.length; j += 1) video.audioTracks[j].enabled = j === i;
    }
  });

  subSel.addEventListener('change', () => {
    const i = Number(subSel.value);
    if (hls) {
      hls.subtitleTrack = i;
      hls.subtitleDisplay = i >= 0;
    } else {
      const tt = video.textTracks;
      for (let j = 0; j < tt.length; j += 1) tt[j].mode = j === i ? 'showing' : 'disabled';
    }
  });

  qualSel.addEventListener('change', () => {
    if (!hls) return;
    const i = Number(qualSel.value);
    hls.currentLevel = i; // -1 = automatic
    if (i < 0) qualSel.options[0].textContent = 'Auto';
  });

  // ---- seek bar and thumbnails -------------------------------------------------------------

  function updateTime() {
    const d = isFinite(video.duration) ? video.duration : 0;
    if (Number(seek.max) !== d) {
      seek.max = String(d);
      seek.disabled = d <= 0;
    }
    if (!seeking) seek.value = String(video.currentTime);
    timeOut.textContent = fmtTime(video.currentTime) + ' / ' + fmtTime(d);
    seek.setAttribute('aria-valuetext', timeOut.textContent);
  }

  video.addEventListener('timeupdate', updateTime);
  video.addEventListener('durationchange', updateTime);
  video.addEventListener('playing', () => setStatus(''));
  video.addEventListener('waiting', () => setStatus('Buffering…'));
  video.addEventListener('error', () => {
    // With hls.js the ERROR handler above speaks; this is the native path.
    if (hls || !video.error) return;
    showError('Playback failed: ' + (video.error.message || 'media error ' + video.error.code) + '.');
  });

  seek.addEventListener('input', () => {
    seeking = true;
    timeOut.textContent = fmtTime(Number(seek.value)) + ' / ' + fmtTime(video.duration);
  });
  seek.addEventListener('change', () => {
    seeking = false;
    video.currentTime = Number(seek.value);
  });

  let thumbTimer = 0;
  let thumbWanted = '';

  // Trick play: the server's WebVTT thumbnails track names, for each stretch of time, a tile of
  // a sprite sheet (`trickplay/0.jpg#xywh=x,y,w,h`). One sheet serves a hundred hover
  // positions; without the track (audio only, an older server) single thumbnails are asked.
  let tiles = null; // [{ start, end, url, x, y, w, h }]
  const sheets = new Map(); // sheet URL -> Promise<HTMLImageElement>

  // Called with the master playlist's text: only a master that lists trick-play images
  // (EXT-X-IMAGE-STREAM-INF) has the WebVTT track beside it.
  async function loadTiles(base, masterText) {
    tiles = null;
    sheets.clear();
    if (typeof masterText !== 'string' || !masterText.includes('#EXT-X-IMAGE-STREAM-INF:')) return;
    try {
      const res = await fetch(base + '/trickplay.vtt');
      if (!res.ok) return;
      const text = await res.text();
      if (base !== thumbBase) return;
      tiles = parseTiles(text, base + '/trickplay.vtt');
    } catch (_) {
      tiles = null;
    }
  }

  function vttSeconds(s) {
    const p = s.trim().split(':').map(Number);
    return p.reduce((acc, v) => acc * 60 + v, 0);
  }

  function parseTiles(text, vttUrl) {
    const out = [];
    for (const block of text.split(/\r?\n\r?\n/)) {
      const lines = block.split(/\r?\n/).filter(Boolean);
      const i = lines.findIndex((l) => l.includes('-->'));
      if (i < 0 || !lines[i + 1]) continue;
      const [a, b] = lines[i].split('-->');
      const m = /^(.*)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(lines[i + 1].trim());
      if (!m) continue;
      out.push({
        start: vttSeconds(a),
        end: vttSeconds(b),
        url: new URL(m[1], vttUrl).href,
        x: Number(m[2]),
        y: Number(m[3]),
        w: Number(m[4]),
        h: Number(m[5]),
      });
    }
    return out.length ? out : null;
  }

  function sheet(url) {
    let p = sheets.get(url);
    if (!p) {
      p = new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error('sheet'));
        img.src = url;
      });
      sheets.set(url, p);
    }
    return p;
  }

  function showTile(t) {
    const cue = tiles.find((c) => t >= c.start && t < c.end) || tiles[tiles.length - 1];
    const key = cue.url + '#' + cue.x + ',' + cue.y;
    if (key === thumbWanted) return;
    thumbWanted = key;
    sheet(cue.url).then(
      (img) => {
        if (thumbWanted !== key) return;
        const s = THUMB_WIDTH / cue.w;
        previewTile.style.height = Math.round(cue.h * s) + 'px';
        previewTile.style.backgroundImage = 'url("' + cue.url + '")';
        previewTile.style.backgroundSize = img.naturalWidth * s + 'px auto';
        previewTile.style.backgroundPosition = -cue.x * s + 'px ' + -cue.y * s + 'px';
        previewTile.dataset.sheet = cue.url;
        previewTile.dataset.loaded = '1';
        previewTile.hidden = false;
      },
      () => {
        previewTile.hidden = true;
      },
    );
  }

  function hoverTime(ev) {
    const r = seek.getBoundingClientRect();
    const x = Math.min(Math.max(ev.clientX - r.left, 0), r.width);
    return { t: r.width > 0 ? (x / r.width) * Number(seek.max) : 0, x };
  }

  seek.addEventListener('pointermove', (ev) => {
    if (!thumbBase || seek.disabled) return;
    const { t, x } = hoverTime(ev);
    preview.hidden = false;
    preview.style.left = x + 'px';
    previewTime.textContent = fmtTime(t);
    if (tiles) {
      previewImg.hidden = true;
      showTile(t);
      return;
    }
    // Whole seconds: neighbouring pixels share one cached thumbnail.
    const ms = Math.floor(t) * 1000;
    const url = thumbBase + '/thumb/' + ms + '.jpg?w=' + THUMB_WIDTH;
    if (url === thumbWanted) return;
    thumbWanted = url;
    clearTimeout(thumbTimer);
    thumbTimer = setTimeout(() => {
      previewImg.hidden = false;
      previewImg.src = url;
    }, THUMB_DEBOUNCE_MS);
  });
  seek.addEventListener('pointerleave', () => {
    clearTimeout(thumbTimer);
    thumbWanted = '';
    preview.hidden = true;
  });
  previewImg.addEventListener('error', () => {
    previewImg.hidden = true; // the time label stays
  });

  // ---- URL form and API key ----------------------------------------------------------------

  try {
    keyInput.value = localStorage.getItem(KEY_STORE) || '';
  } catch (_) {
    // storage may be disabled; the field still works for this page
  }
  keyInput.addEventListener('change', () => {
    try {
      const v = keyInput.value.trim();
      if (v) localStorage.setItem(KEY_STORE, v);
      else localStorage.removeItem(KEY_STORE);
    } catch (_) {
      // ignore
    }
  });

  $('url-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const url = $('url-input').value.trim();
    if (!url) return;
    let title = url;
    try {
      const u = new URL(url);
      title = decodeURIComponent(u.pathname.split('/').pop() || u.host);
    } catch (_) {
      // the server says what is wrong with it
    }
    startStream(url, title);
  });

  window.addEventListener('hashchange', () => loadLibrary(currentDir()));
  resetPickers();
  loadSession().then(() => loadLibrary(currentDir()));
})();
