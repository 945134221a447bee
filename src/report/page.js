// The map of passages. Every point is written straight into one ImageData from packed columns,
// so a million points cost tens of milliseconds a frame, and a grid over the points finds the one
// under the cursor by looking at a few cells. Append #selftest to the page's address to have it
// time hover, highlight, search and filter itself and write the figures into the page.
(() => {
  'use strict';
  const meta = JSON.parse(document.getElementById('map-meta').textContent);
  const status = document.getElementById('map-status');
  const canvas = document.getElementById('points');
  const tip = document.getElementById('tip');
  const timings = (window.themapTimings = {});

  // The whole page also works without its map (for example with map-data.js missing).
  const source = window.themapMapData || document.getElementById('map-data')?.textContent;
  if (!source) {
    status.textContent = 'The map data is missing: keep map-data.js beside index.html.';
    return;
  }
  unpack(source)
    .then(buffer => start(buffer))
    .catch(error => {
      status.textContent = `The map could not be read: ${error.message}`;
      console.error(error);
    });

  function base64Bytes(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function unpack(base64) {
    const gzipped = new Blob([base64Bytes(base64)]);
    return new Response(gzipped.stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
  }

  function start(buffer) {
    timings.unpacked_ms = performance.now();
    const column = (name, Type) => {
      const [offset, bytes] = meta.columns[name];
      return new Type(buffer, offset, bytes / Type.BYTES_PER_ELEMENT);
    };
    const n = meta.n;
    const xy = column('xy', Uint16Array);
    const theme = column('theme', Uint16Array);
    const doc = column('doc', Uint32Array);
    const flags = column('flags', Uint8Array);
    const idEnd = column('id_end', Uint32Array), idBytes = column('id', Uint8Array);
    const snippetEnd = column('snippet_end', Uint32Array), snippetBytes = column('snippet', Uint8Array);
    const decoder = new TextDecoder();
    const text = (ends, bytes, i) => decoder.decode(bytes.subarray(i ? ends[i - 1] : 0, ends[i]));
    const NO_DOCUMENT = 0xffffffff;

    // Colours as little-endian RGBA words, the layout of ImageData's pixels.
    const rgba = (hex, paler) => {
      const [r, g, b] = [1, 3, 5].map(at => {
        const c = parseInt(hex.slice(at, at + 2), 16);
        return Math.round(c + (255 - c) * paler);
      });
      return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
    };
    const themes = new Map(meta.themes.map(t => [t.id, t]));
    const top = Math.max(0, ...meta.themes.map(t => t.id));
    const colour = new Uint32Array(top + 1), pale = new Uint32Array(top + 1);
    for (const t of meta.themes) {
      colour[t.id] = rgba(t.color, 0);
      pale[t.id] = rgba(t.color, 0.55);
    }
    const GREY = rgba('#dadde4', 0), WHITE = rgba('#ffffff', 0);

    // The tree: themes are in preorder, so a theme's subtree is the ids [id, end).
    const parentOf = new Uint16Array(top + 1), endOf = new Uint16Array(top + 1), levelOf = new Uint8Array(top + 1);
    const topOf = new Uint16Array(top + 1), leafTheme = new Uint8Array(top + 1);
    for (const t of meta.themes) {
      parentOf[t.id] = t.parent || 0;
      endOf[t.id] = t.end;
      levelOf[t.id] = t.level;
      leafTheme[t.id] = t.end === t.id + 1 ? 1 : 0;
      topOf[t.id] = t.parent ? topOf[t.parent] : t.id;
    }
    const within = (node, id) => node >= id && node < endOf[id];

    // Where each theme's label goes: inside its largest dense region, never on a stray island.
    // Its points (sub-themes' included) are counted on a grid of √n cells a side (16 to 64, so
    // that a small map's neighbourhoods hold groups, not a few stray points); the cell whose
    // 3 × 3 neighbourhood holds most of them, weighed by their share of all points there, is
    // where it is dense and dominant, and the label goes at the mean of its points there.
    const labelAt = new Map();
    {
      const G = Math.max(16, Math.min(64, Math.round(Math.sqrt(n))));
      // Slot 0 counts every point: a label goes where its theme is dense and dominant.
      const cells = new Uint32Array((top + 1) * G * G);
      const cellOfPoint = i => Math.floor((xy[2 * i] * G) / 65536) * G + Math.floor((xy[2 * i + 1] * G) / 65536);
      for (let i = 0; i < n; i++) {
        const c = cellOfPoint(i);
        cells[c]++;
        for (let t = theme[i]; t; t = parentOf[t]) cells[t * G * G + c]++;
      }
      const best = new Int32Array(top + 1).fill(-1);
      for (const t of meta.themes) {
        let most = 0;
        const base = t.id * G * G;
        for (let cx = 0; cx < G; cx++) {
          for (let cy = 0; cy < G; cy++) {
            let own = 0, all = 0;
            for (let dx = -1; dx <= 1; dx++) {
              for (let dy = -1; dy <= 1; dy++) {
                const x = cx + dx, y = cy + dy;
                if (x >= 0 && x < G && y >= 0 && y < G) (own += cells[base + x * G + y]), (all += cells[x * G + y]);
              }
            }
            // Its points there, times their share of all points there.
            const score = all ? (own * own) / all : 0;
            if (score > most) (most = score), (best[t.id] = cx * G + cy);
          }
        }
      }
      const sum = new Float64Array(2 * (top + 1)), count = new Uint32Array(top + 1);
      for (let i = 0; i < n; i++) {
        const c = cellOfPoint(i), cx = Math.floor(c / G), cy = c % G;
        for (let t = theme[i]; t; t = parentOf[t]) {
          const b = best[t];
          if (b < 0 || Math.abs(Math.floor(b / G) - cx) > 1 || Math.abs((b % G) - cy) > 1) continue;
          sum[2 * t] += xy[2 * i];
          sum[2 * t + 1] += xy[2 * i + 1];
          count[t]++;
        }
      }
      for (const t of meta.themes) if (count[t.id]) labelAt.set(t.id, [sum[2 * t.id] / count[t.id], sum[2 * t.id + 1] / count[t.id]]);
    }

    // A 256 × 256 grid over the points (counting sort by cell), for hover and clicks.
    const cellOf = i => (xy[2 * i] >> 8) * 256 + (xy[2 * i + 1] >> 8);
    const cellStart = new Uint32Array(65537);
    for (let i = 0; i < n; i++) cellStart[cellOf(i) + 1]++;
    for (let c = 0; c < 65536; c++) cellStart[c + 1] += cellStart[c];
    const inCell = new Uint32Array(n);
    {
      const next = cellStart.slice(0, 65536);
      for (let i = 0; i < n; i++) inCell[next[cellOf(i)]++] = i;
    }

    // What is shown: documents passing the filters; what is lit: the focused theme and the
    // passages found (both, when both are set).
    const documentShown = new Uint8Array(meta.documents.length).fill(1);
    let filtering = false;
    let focusTheme = 0;
    let found = null;
    const shown = i => doc[i] === NO_DOCUMENT ? !filtering : documentShown[doc[i]] === 1;
    const lit = i => (focusTheme === 0 || within(theme[i], focusTheme)) && (found === null || found[i] === 1);

    // Screen geometry: data (0..65535 each way) → CSS pixels → device pixels.
    const MARGIN = 14;
    const ctx = canvas.getContext('2d');
    let W = 0, H = 0, ratio = 1, image = null, pixels = null;
    const view = { zoom: 1, x: 0, y: 0 };
    function resize() {
      W = canvas.clientWidth;
      H = canvas.clientHeight;
      ratio = window.devicePixelRatio || 1;
      canvas.width = Math.max(1, Math.round(W * ratio));
      canvas.height = Math.max(1, Math.round(H * ratio));
      image = ctx.createImageData(canvas.width, canvas.height);
      pixels = new Uint32Array(image.data.buffer);
    }
    const screenX = u => (MARGIN + (u / 65535) * (W - 2 * MARGIN)) * view.zoom + view.x;
    const screenY = v => (MARGIN + (1 - v / 65535) * (H - 2 * MARGIN)) * view.zoom + view.y;
    const pointSide = () => Math.min(9, Math.max(1, Math.sqrt((W * H) / Math.max(n, 1)) * 0.45) * Math.sqrt(view.zoom));

    function draw() {
      const began = performance.now();
      const w = canvas.width, h = canvas.height;
      pixels.fill(WHITE);
      const side = Math.max(1, Math.round(pointSide() * ratio)), half = side >> 1;
      // Points are discs: each row of a point spans [left[r], right[r]) of its square.
      const left = new Int32Array(side), right = new Int32Array(side);
      for (let r = 0; r < side; r++) {
        const dy = r + 0.5 - side / 2, reach = side < 4 ? side / 2 : Math.sqrt(Math.max(0, (side * side) / 4 - dy * dy));
        left[r] = Math.round(side / 2 - reach);
        right[r] = Math.round(side / 2 + reach);
      }
      const ax = ((W - 2 * MARGIN) / 65535) * view.zoom * ratio, bx = (MARGIN * view.zoom + view.x) * ratio - half;
      const ay = (-(H - 2 * MARGIN) / 65535) * view.zoom * ratio, by = ((H - MARGIN) * view.zoom + view.y) * ratio - half;
      const focus = focusTheme !== 0 || found !== null;
      const plot = (i, c) => {
        const x0 = Math.round(ax * xy[2 * i] + bx), y0 = Math.round(ay * xy[2 * i + 1] + by);
        if (side === 1) {
          if (x0 >= 0 && x0 < w && y0 >= 0 && y0 < h) pixels[y0 * w + x0] = c;
          return;
        }
        if (x0 >= w || y0 >= h || x0 + side <= 0 || y0 + side <= 0) return;
        const y1 = Math.min(y0 + side, h);
        for (let y = Math.max(y0, 0); y < y1; y++) {
          const r = y - y0;
          pixels.fill(c, y * w + Math.max(x0 + left[r], 0), y * w + Math.min(x0 + right[r], w));
        }
      };
      // With a focus, the rest is drawn grey and what is lit is drawn after, on top.
      let litCount = 0;
      const own = i => (flags[i] & 3 ? pale[theme[i]] : colour[theme[i]]);
      for (let i = 0; i < n; i++) {
        if (!shown(i)) continue;
        if (!focus) plot(i, own(i));
        else if (lit(i)) litOrder[litCount++] = i;
        else plot(i, GREY);
      }
      for (let k = 0; k < litCount; k++) plot(litOrder[k], own(litOrder[k]));
      ctx.putImageData(image, 0, 0);
      drawLabels();
      return performance.now() - began;
    }

    // The level whose labels show: top-level themes at full view, sub-themes' as one zooms in.
    const maxLevel = Math.max(1, ...meta.themes.map(t => t.level));
    const levelShown = () => Math.min(maxLevel, view.zoom < 2.5 ? 1 : view.zoom < 6 ? 2 : 3);

    // Theme labels in their densest region: the themes of the level shown (and those without
    // sub-themes above it), largest first; one that would overlap a label already placed is left
    // out (the focused theme's is always drawn).
    function drawLabels() {
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.font = '600 13px system-ui, "Noto Sans CJK SC", sans-serif';
      ctx.lineJoin = 'round';
      const placed = [];
      const level = levelShown();
      const showing = meta.themes.filter(t => t.level === level || (t.level < level && leafTheme[t.id]) || t.id === focusTheme);
      const order = showing.sort((a, b) => (b.id === focusTheme) - (a.id === focusTheme) || b.size - a.size);
      for (const t of order) {
        const at = labelAt.get(t.id);
        if (!at) continue;
        const name = `${t.path}${t.level === 1 ? '.' : ''} ${t.label}${t.mark ? ' · ' + t.mark : ''}`;
        const label = name.length > 30 ? name.slice(0, 29) + '…' : name;
        const width = ctx.measureText(label).width;
        // Kept inside the canvas, so that a theme at the edge keeps its whole name.
        const x = Math.min(Math.max(4, screenX(at[0]) - width / 2), W - width - 4), y = screenY(at[1]);
        const box = [x - 3, y - 10, x + width + 3, y + 6];
        if (box[2] < 0 || box[0] > W || box[3] < 0 || box[1] > H) continue;
        if (t.id !== focusTheme && placed.some(p => p[0] < box[2] && box[0] < p[2] && p[1] < box[3] && box[1] < p[3])) continue;
        placed.push(box);
        ctx.globalAlpha = focusTheme === 0 || within(t.id, focusTheme) ? 1 : 0.45;
        ctx.strokeStyle = 'rgba(255,255,255,.92)';
        ctx.lineWidth = 4;
        ctx.strokeText(label, x, y);
        ctx.fillStyle = '#1d2330';
        ctx.fillText(label, x, y);
      }
      ctx.globalAlpha = 1;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
    }

    const litOrder = new Uint32Array(n);
    let frame = 0;
    const redraw = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); }); };

    // The shown point nearest to (x, y) in CSS pixels of the canvas, within a few pixels.
    function pointAt(x, y) {
      const reach = Math.max(5, pointSide() / 2 + 2);
      const spanX = ((W - 2 * MARGIN) * view.zoom) / 65535, spanY = ((H - 2 * MARGIN) * view.zoom) / 65535;
      const u = (x - view.x - MARGIN * view.zoom) / spanX, v = 65535 - (y - view.y - MARGIN * view.zoom) / spanY;
      const clampCell = c => Math.min(255, Math.max(0, c >> 8));
      const [cx0, cx1] = [clampCell(Math.floor(u - reach / spanX)), clampCell(Math.ceil(u + reach / spanX))];
      const [cy0, cy1] = [clampCell(Math.floor(v - reach / spanY)), clampCell(Math.ceil(v + reach / spanY))];
      let best = -1, nearest = reach * reach;
      for (let cx = cx0; cx <= cx1; cx++) {
        for (let cy = cy0; cy <= cy1; cy++) {
          const cell = cx * 256 + cy;
          for (let k = cellStart[cell]; k < cellStart[cell + 1]; k++) {
            const i = inCell[k];
            if (!shown(i)) continue;
            const dx = (xy[2 * i] - u) * spanX, dy = (xy[2 * i + 1] - v) * spanY;
            const d = dx * dx + dy * dy;
            // Among equals, a lit point wins: it is the one drawn on top.
            if (d < nearest || (d === nearest && best >= 0 && lit(i) && !lit(best))) (nearest = d), (best = i);
          }
        }
      }
      return best;
    }

    const escape = s => s.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);
    function hover(event) {
      const box = canvas.getBoundingClientRect();
      const i = pointAt(event.clientX - box.left, event.clientY - box.top);
      if (i < 0) {
        tip.hidden = true;
        return i;
      }
      const t = themes.get(theme[i]), above = t && t.parent ? themes.get(topOf[t.id]) : null;
      const d = meta.documents[doc[i]];
      const where = d ? `${d[1]}${d[2] ? ' · ' + d[2] : ''}` : '';
      const marks = `${flags[i] & 1 ? ' · outlier' : ''}${flags[i] & 2 ? ' · short' : ''}`;
      tip.innerHTML = `<b>${escape(above ? `${above.path}. ${above.label} › ` : '')}${escape(t ? `${t.path}${t.parent ? '' : '.'} ${t.label}` : '')}</b>${escape(text(snippetEnd, snippetBytes, i))}<br><small>${escape(text(idEnd, idBytes, i))}${escape(where ? ' · ' + where : '')}${marks}</small>`;
      tip.hidden = false;
      tip.style.left = `${event.pageX + 14}px`;
      tip.style.top = `${event.pageY + 14}px`;
      return i;
    }

    const buttons = [...document.querySelectorAll('.legend button')];
    // A passage's theme at `level`: its deepest theme's ancestor there (or itself, if shallower).
    const themeAtLevel = (node, level) => {
      while (levelOf[node] > level) node = parentOf[node];
      return node;
    };
    function focusOn(id) {
      focusTheme = focusTheme === id ? 0 : id;
      buttons.forEach(b => b.classList.toggle('on', +b.dataset.theme === focusTheme));
      return draw();
    }
    buttons.forEach(b => b.addEventListener('click', () => focusOn(+b.dataset.theme)));

    // Pan by dragging, zoom with the wheel about the cursor, click to focus a point's theme.
    let drag = null;
    canvas.addEventListener('mousedown', e => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
    window.addEventListener('mouseup', e => {
      if (drag && !drag.moved && e.target === canvas) {
        const box = canvas.getBoundingClientRect();
        const i = pointAt(e.clientX - box.left, e.clientY - box.top);
        if (i >= 0) focusOn(themeAtLevel(theme[i], levelShown()));
        else if (focusTheme) focusOn(focusTheme);
      }
      drag = null;
      canvas.classList.remove('dragging');
    });
    canvas.addEventListener('mousemove', e => {
      if (drag && (drag.moved || Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3)) {
        drag.moved = true;
        canvas.classList.add('dragging');
        view.x += e.clientX - drag.x;
        view.y += e.clientY - drag.y;
        drag.x = e.clientX;
        drag.y = e.clientY;
        tip.hidden = true;
        redraw();
      } else if (!drag) {
        hover(e);
      }
    });
    canvas.addEventListener('mouseleave', () => { tip.hidden = true; });
    canvas.addEventListener('wheel', e => {
      e.preventDefault();
      const box = canvas.getBoundingClientRect();
      const x = e.clientX - box.left, y = e.clientY - box.top;
      const zoom = Math.min(500, Math.max(1, view.zoom * Math.exp(-e.deltaY * 0.0015)));
      view.x = x - ((x - view.x) * zoom) / view.zoom;
      view.y = y - ((y - view.y) * zoom) / view.zoom;
      view.zoom = zoom;
      tip.hidden = true;
      redraw();
    }, { passive: false });
    const reset = () => { view.zoom = 1; view.x = 0; view.y = 0; draw(); };
    canvas.addEventListener('dblclick', reset);
    document.getElementById('reset').addEventListener('click', reset);

    // Find: passages whose shown text contains the query, in any case. All the texts are decoded
    // into one lower-cased string once, with where each passage ends in it, so that a query is
    // a run of the browser's own indexOf: a tenth of a second for a million passages, where a
    // byte-by-byte scan took three.
    let haystack = null, ends = null, caseless = false;
    function prepareFind() {
      if (haystack !== null) return;
      const all = decoder.decode(snippetBytes);
      const lowered = all.toLowerCase();
      // UTF-16 units per passage: one per UTF-8 lead byte, two for a 4-byte sequence.
      ends = new Uint32Array(n);
      let units = 0, from = 0;
      for (let i = 0; i < n; i++) {
        const end = snippetEnd[i];
        for (let p = from; p < end; p++) {
          const b = snippetBytes[p];
          if ((b & 0xc0) !== 0x80) units += b >= 0xf0 ? 2 : 1;
        }
        ends[i] = units;
        from = end;
      }
      // Lower-casing keeps the length in all but a few scripts; where it does not, keep the case.
      caseless = lowered.length === all.length;
      haystack = caseless ? lowered : all;
    }
    let foundCount = 0;
    function find(query) {
      if (!query) {
        found = null;
        return (foundCount = 0);
      }
      prepareFind();
      const needle = caseless ? query.toLowerCase() : query;
      found = new Uint8Array(n);
      let count = 0, i = 0, at = haystack.indexOf(needle);
      while (at >= 0) {
        while (ends[i] <= at) i++;
        // A match across two passages' texts is no match: look again from this passage's start.
        if (at + needle.length <= ends[i]) {
          found[i] = 1;
          count++;
          at = haystack.indexOf(needle, ends[i]);
          i++;
        } else {
          at = haystack.indexOf(needle, at + 1);
        }
      }
      return (foundCount = count);
    }

    // Filters: documents whose title or id contains the text, dated within the range (a month
    // or a year as the end includes all of it).
    const filterText = document.getElementById('doc-filter');
    const dateFrom = document.getElementById('date-from'), dateTo = document.getElementById('date-to');
    let documentsKept = meta.documents.length;
    function filter() {
      const words = filterText.value.trim().toLowerCase();
      const from = dateFrom.value.trim(), to = dateTo.value.trim();
      filtering = Boolean(words || from || to);
      let kept = 0;
      meta.documents.forEach(([id, title, date], d) => {
        const keep =
          (!words || id.toLowerCase().includes(words) || title.toLowerCase().includes(words)) &&
          (!from || (date !== null && date >= from)) &&
          (!to || (date !== null && date.slice(0, to.length) <= to));
        documentShown[d] = keep ? 1 : 0;
        kept += keep;
      });
      return (documentsKept = kept);
    }

    const findBox = document.getElementById('find');
    const number = x => x.toLocaleString('en');
    function describe(extra) {
      const parts = [`${number(n)} passages`];
      if (found !== null) parts.push(`${number(foundCount)} contain “${findBox.value}” (in their first ${meta.snippet_chars} characters)`);
      if (filtering) parts.push(`${number(documentsKept)} of ${number(meta.documents.length)} documents shown`);
      if (extra) parts.push(extra);
      status.textContent = parts.join(' · ');
    }
    let typing = 0;
    const later = action => { clearTimeout(typing); typing = setTimeout(action, 150); };
    findBox.addEventListener('input', () => later(() => { find(findBox.value.trim()); describe(); draw(); }));
    for (const input of [filterText, dateFrom, dateTo]) input.addEventListener('input', () => later(() => { filter(); describe(); draw(); }));

    new ResizeObserver(() => { resize(); draw(); }).observe(canvas);
    resize();
    timings.draw_ms = draw();
    timings.first_draw_at_ms = performance.now();
    describe(`drawn in ${Math.round(timings.draw_ms)} ms`);
    // Once the map is on screen, ready the text for Find.
    setTimeout(() => {
      prepareFind();
      timings.find_ready_at_ms = performance.now();
      if (location.hash === '#selftest') selfTest();
    }, 0);

    // Times what a person does, through the same handlers, and writes the figures into the page.
    function selfTest() {
      const result = { passages: n, loaded_ms: timings.first_draw_at_ms, unpacked_ms: timings.unpacked_ms, draw_ms: timings.draw_ms, find_ready_ms: timings.find_ready_at_ms };
      let i = 0;
      while (i < n && !shown(i)) i++;
      const box = canvas.getBoundingClientRect();
      const x = screenX(xy[2 * i]), y = screenY(xy[2 * i + 1]);
      let began = performance.now();
      const at = hover({ clientX: box.left + x, clientY: box.top + y, pageX: box.left + x + scrollX, pageY: box.top + y + scrollY });
      result.hover_ms = performance.now() - began;
      result.hover_found = at >= 0;
      result.hover_text = tip.textContent;
      began = performance.now();
      buttons.find(b => +b.dataset.theme === topOf[theme[i]]).click();
      result.highlight_ms = performance.now() - began;
      result.highlighted = Array.from({ length: n }, (_, j) => j).filter(j => lit(j)).length;
      // Drilling down: the point's deepest theme alone.
      began = performance.now();
      buttons.find(b => +b.dataset.theme === theme[i]).click();
      result.sub_highlight_ms = performance.now() - began;
      result.sub_highlighted = Array.from({ length: n }, (_, j) => j).filter(j => lit(j)).length;
      buttons.find(b => +b.dataset.theme === theme[i]).click();
      // Each top-level label's place: of the passages nearest it (50, or a quarter of its theme
      // where smaller), the share in its theme.
      result.label_purity = {};
      for (const t of meta.themes) {
        const at = labelAt.get(t.id);
        if (t.level !== 1 || !at) continue;
        const near = Array.from({ length: n }, (_, j) => j)
          .map(j => [(xy[2 * j] - at[0]) ** 2 + (xy[2 * j + 1] - at[1]) ** 2, j])
          .sort((a, b) => a[0] - b[0])
          .slice(0, Math.max(1, Math.min(50, Math.floor((t.size) / 4))));
        result.label_purity[t.path] = near.filter(([, j]) => within(theme[j], t.id)).length / near.length;
      }
      // Zoomed in, sub-theme labels show.
      const zoom = view.zoom;
      view.zoom = 3;
      result.labels_zoomed_level = levelShown();
      view.zoom = zoom;
      const word = text(snippetEnd, snippetBytes, i).slice(0, 2);
      began = performance.now();
      result.found = find(word);
      draw();
      result.find_ms = performance.now() - began;
      began = performance.now();
      filterText.value = meta.documents[doc[i]]?.[0] ?? '';
      result.documents_kept = filter();
      draw();
      result.filter_ms = performance.now() - began;
      const out = document.createElement('pre');
      out.id = 'selftest';
      out.textContent = JSON.stringify(result);
      document.body.append(out);
    }
  }
})();
