// Bindery live churn dashboard. Reads samples from /dashboard/events (Server-Sent
// Events: one `history` event with an array of past samples, then one `sample`
// event per second) and draws the last five minutes with uPlot; under `bindery run`
// it also lists the latest Binding changes with their causes (GET /history, every
// few seconds). No build step.
(() => {
  'use strict';

  const WINDOW_S = 300; // seconds shown on the charts
  const MAX_RESOURCES = 8; // resource lines before the rest fold into "other"
  const HEIGHT = 220;
  const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2',
    '#edc948', '#ff9da7', '#9c755f', '#e15759', '#17becf'];
  const OTHER = '#8c8c8c';
  const RED = '#e03131';

  const $ = (id) => document.getElementById(id);
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const rate = (v) => num(v) ?? 0; // a missing rate is 0
  const ms = (v) => (num(v) === null ? null : v * 1000);
  const int = (v) => (num(v) === null ? '–' : String(Math.round(v)));

  let samples = []; // chart window, oldest first, strictly increasing t
  let received = 0; // samples received since page load (history elements included)

  // --- series -------------------------------------------------------------

  // Colours stay with a name for the life of the page, whatever its rank.
  const colours = {};
  function colour(chart, name) {
    const m = (colours[chart] ??= new Map());
    if (!m.has(name)) m.set(name, PALETTE[m.size % PALETTE.length]);
    return m.get(name);
  }

  // Fixed series: [label, colour, sample => value].
  const fixed = (defs) => (win) =>
    defs.map(([label, stroke, get]) => ({ label, stroke, values: win.map(get) }));

  // One series per key of a map in the sample (keys come and go); above `limit`
  // keys, the top ones by total over the window plus an "other" line.
  const keyed = (get, limit) => (win, chart) => {
    const maps = win.map((s) => get(s) || {});
    const sums = new Map();
    for (const m of maps) for (const k of Object.keys(m)) sums.set(k, (sums.get(k) || 0) + rate(m[k]));
    let keys = [...sums.keys()].sort();
    let rest = [];
    if (keys.length > limit) {
      const top = new Set([...keys].sort((a, b) => sums.get(b) - sums.get(a)).slice(0, limit));
      rest = keys.filter((k) => !top.has(k));
      keys = keys.filter((k) => top.has(k));
    }
    const series = keys.map((k) => ({ label: k, stroke: colour(chart, k), values: maps.map((m) => rate(m[k])) }));
    if (rest.length) {
      series.push({
        label: `other (${rest.length})`,
        stroke: OTHER,
        values: maps.map((m) => rest.reduce((a, k) => a + rate(m[k]), 0)),
      });
    }
    return series;
  };

  const CHARTS = [
    { id: 'chart-space', unit: 'events/s', series: keyed((s) => s.rates?.events_by_space, Infinity) },
    { id: 'chart-resource', unit: 'events/s', series: keyed((s) => s.rates?.events_by_resource, MAX_RESOURCES) },
    { id: 'chart-bindings', unit: 'changes/s', series: fixed([
      ['Binding changes', PALETTE[0], (s) => rate(s.rates?.binding_changes)],
    ]) },
    { id: 'chart-sink', unit: 'writes/s', series: fixed([
      ['writes', PALETTE[0], (s) => rate(s.rates?.sink_writes)],
      ['errors', RED, (s) => rate(s.rates?.sink_errors)],
    ]) },
    { id: 'chart-latency', unit: 'ms', series: fixed([
      ['p50', PALETTE[0], (s) => ms(s.latency?.p50)],
      ['p99', PALETTE[1], (s) => ms(s.latency?.p99)],
    ]) },
  ];

  // --- charts -------------------------------------------------------------

  function options(chart, series, width) {
    const css = getComputedStyle(document.documentElement);
    const muted = css.getPropertyValue('--muted').trim() || '#888';
    const grid = css.getPropertyValue('--grid').trim() || 'rgba(128,128,128,.2)';
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    return {
      width,
      height: HEIGHT,
      scales: {
        // A fixed five-minute window ending at the latest sample.
        x: { time: true, range: (u, min, max) => { const hi = max ?? Date.now() / 1000; return [hi - WINDOW_S, hi]; } },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { ...axis, space: 70, incrs: [1, 5, 10, 15, 30, 60, 120, 300, 600], values: '{HH}:{mm}:{ss}' },
        { ...axis, label: chart.unit, size: 55 },
      ],
      series: [{ label: 'time', value: '{HH}:{mm}:{ss}' }, ...series.map((s) => ({
        label: s.label,
        stroke: s.stroke,
        width: 1.5,
        spanGaps: true, // latency is null when nothing was observed
        points: { show: false },
        value: (u, v) => (v == null ? '–' : String(+v.toFixed(v >= 100 ? 0 : 2))),
      }))],
      hooks: { ready: [showLatest] },
    };
  }

  // Unless the pointer is over the chart, the legend shows the latest values.
  function showLatest(u) {
    const n = u.data[0].length;
    if (n && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 });
  }

  function draw(chart) {
    const el = $(chart.id);
    const series = chart.series(samples, chart.id);
    const data = [samples.map((s) => s.t / 1000), ...series.map((s) => s.values)];
    const sig = series.map((s) => s.label).join('\n');
    if (chart.plot && chart.sig === sig) {
      chart.plot.setData(data);
    } else {
      chart.plot?.destroy();
      chart.plot = new uPlot(options(chart, series, el.clientWidth), data, el);
      chart.sig = sig;
    }
    showLatest(chart.plot);
    if (!chart.observer) {
      chart.observer = new ResizeObserver(() => {
        if (chart.plot && chart.plot.width !== el.clientWidth) chart.plot.setSize({ width: el.clientWidth, height: HEIGHT });
      });
      chart.observer.observe(el);
    }
  }

  function drawAll() {
    if (typeof uPlot !== 'function') return; // figures still work without charts
    for (const chart of CHARTS) {
      try { draw(chart); } catch (e) { console.error(chart.id, e); }
    }
  }

  // Rebuild the charts with the other palette when the colour scheme changes.
  matchMedia('(prefers-color-scheme: dark)').addEventListener?.('change', () => {
    for (const chart of CHARTS) chart.sig = null;
    drawAll();
  });

  // --- figures ------------------------------------------------------------

  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function fmtMs(seconds) {
    const v = ms(seconds);
    if (v === null) return '–';
    return v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2);
  }

  function showTop(id, rows) {
    const table = $(id);
    rows = Array.isArray(rows) ? rows.filter((r) => r && typeof r === 'object') : [];
    const max = Math.max(1, ...rows.map((r) => rate(r.churn)));
    table.tBodies[0].replaceChildren(...rows.map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.name = String(r.name ?? '');
      tr.dataset.churn = int(r.churn);
      tr.insertCell().textContent = tr.dataset.name;
      const churn = tr.insertCell();
      churn.className = 'num';
      churn.textContent = tr.dataset.churn;
      churn.style.setProperty('--w', String(rate(r.churn) / max));
      return tr;
    }));
    table.nextElementSibling.hidden = rows.length > 0;
  }

  function showFigures(s) {
    for (const [k, v] of Object.entries(s.totals || {})) setText('total-' + k.replaceAll('_', '-'), int(v));
    for (const [k, v] of Object.entries(s.sizes || {})) setText('size-' + k.replaceAll('_', '-'), int(v));
    const mem = num(s.memory_bytes);
    setText('size-memory', mem === null ? '–' : (mem / 1048576).toFixed(1) + ' MiB');
    setText('latency-p50', fmtMs(s.latency?.p50));
    setText('latency-p99', fmtMs(s.latency?.p99));
    showTop('top-policies', s.top_policies);
    showTop('top-resources', s.top_resources);

    setText('mode', 'mode: ' + (s.mode ?? '–'));
    followChanges(s.mode);
    $('done').hidden = s.done !== true;
    setText('last-update', 'last sample ' + new Date(s.t).toLocaleTimeString());

    const b = document.body.dataset;
    b.mode = String(s.mode ?? '');
    b.done = String(s.done === true);
    b.lastT = String(s.t);
  }

  // --- samples ------------------------------------------------------------

  function add(s) {
    if (!s || typeof s !== 'object' || num(s.t) === null) return false;
    while (samples.length && samples[samples.length - 1].t >= s.t) samples.pop();
    samples.push(s);
    const from = s.t - WINDOW_S * 1000;
    const old = samples.findIndex((x) => x.t >= from);
    if (old > 0) samples.splice(0, old);
    return true;
  }

  function parse(data) {
    try { return JSON.parse(data); } catch (e) { console.warn('bad event data', e); return null; }
  }

  function onHistory(list) {
    if (!Array.isArray(list)) return;
    samples = [];
    received += list.length;
    let last = null;
    for (const s of list) if (add(s)) last = s;
    document.body.dataset.samples = String(received);
    if (last) showFigures(last);
    drawAll();
  }

  function onSample(s) {
    received += 1;
    document.body.dataset.samples = String(received);
    if (!add(s)) return;
    showFigures(s);
    drawAll();
  }

  // --- Binding changes (bindery run: GET /history) ---------------------------

  const CHANGES = 20; // rows shown
  const CHANGES_EVERY_MS = 3000;

  // `/history?...` with these parameters, URL-encoded.
  const historyLink = (params) => '/history?' + new URLSearchParams(params).toString();

  function link(text, href) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    return a;
  }

  // [text, link parameters] of a change (`change` as /history's JSON has it).
  function describe(binding, change) {
    const [kind, v] = Object.entries(change || {})[0] || ['?', {}];
    switch (kind) {
      case 'destinationAdded': return ['+ destination ' + v.cluster, { binding, cluster: v.cluster }];
      case 'destinationRemoved': return ['- destination ' + v.cluster, { binding, cluster: v.cluster }];
      case 'workloadAdded': return ['+ workload ' + v.object, { binding, object: v.object }];
      case 'workloadRemoved': return ['- workload ' + v.object, { binding, object: v.object }];
      case 'workloadChanged': return ['~ workload ' + v.object, { binding, object: v.object }];
      case 'owner': return [v.exists ? '~ Binding of generation ' + (v.generation ?? '?') : '- Binding', { binding }];
      case 'problems': return ['~ problems: ' + ((v.problems || []).join('; ') || 'none'), { binding }];
      default: return [kind, { binding }];
    }
  }

  // A cause in a line: what happened to which object, and what it changed.
  function cause(k) {
    const at = k.name ? (k.namespace ? k.namespace + '/' + k.name : k.name) : '(relist)';
    const diffs = Object.entries(k.labels || {}).map(([key, d]) => `${key}: ${d.old ?? '(none)'} → ${d.new ?? '(none)'}`);
    if (k.generation) diffs.push(`generation ${k.generation.old ?? '(none)'} → ${k.generation.new ?? '(none)'}`);
    if (!diffs.length && k.resourceVersion) diffs.push(`resourceVersion ${k.resourceVersion.old ?? '(none)'} → ${k.resourceVersion.new ?? '(none)'}`);
    return [`${k.type} ${k.resource} ${at}`, ...diffs].join(' · ');
  }

  function showChanges(answer) {
    const changes = Array.isArray(answer?.changes) ? answer.changes.slice(-CHANGES).reverse() : [];
    $('changes').tBodies[0].replaceChildren(...changes.map((c) => {
      const tr = document.createElement('tr');
      const [what, params] = describe(String(c.binding ?? ''), c.change);
      const causes = Array.isArray(c.causes) ? c.causes : [];
      tr.dataset.binding = String(c.binding ?? '');
      tr.dataset.change = what;
      tr.dataset.cause = causes.length ? cause(causes[0]) : '';
      tr.insertCell().textContent = num(c.ts) === null ? '–' : new Date(c.ts).toLocaleTimeString();
      tr.insertCell().append(link(tr.dataset.binding, historyLink({ binding: tr.dataset.binding })));
      tr.insertCell().append(link(what, historyLink(params)));
      const more = causes.length > 1 ? ` (+${causes.length - 1} more)` : '';
      tr.insertCell().textContent = causes.length ? tr.dataset.cause + more : 'none found';
      return tr;
    }));
    document.body.dataset.changes = String(changes.length);
    $('changes-note').hidden = changes.length > 0;
  }

  let polling = false; // one loop of polls for the life of the page
  async function pollChanges() {
    try {
      const r = await fetch(historyLink({ last: CHANGES, output: 'json' }));
      if (r.ok) {
        showChanges(await r.json());
      } else {
        // 404: no journal kept; 503: not synced yet.
        $('changes-note').hidden = false;
        $('changes-note').textContent = (await r.text()).trim();
      }
    } catch (e) {
      console.warn('GET /history', e);
    }
    setTimeout(pollChanges, CHANGES_EVERY_MS);
  }

  // Only `bindery run` keeps a history.
  function followChanges(mode) {
    $('changes-card').hidden = mode !== 'run';
    if (mode === 'run' && !polling) {
      polling = true;
      pollChanges();
    }
  }

  // --- connection ---------------------------------------------------------

  function setConn(state) {
    const el = $('conn');
    el.dataset.state = state;
    el.textContent = state;
  }

  let retry = null;
  function connect() {
    const es = new EventSource('/dashboard/events');
    es.onopen = () => setConn('connected');
    es.onerror = () => {
      setConn('reconnecting');
      // EventSource retries by itself unless the server answered with an error;
      // then it gives up (CLOSED) and we start over.
      if (es.readyState === EventSource.CLOSED && retry === null) {
        retry = setTimeout(() => { retry = null; connect(); }, 3000);
      }
    };
    es.addEventListener('history', (e) => onHistory(parse(e.data)));
    es.addEventListener('sample', (e) => onSample(parse(e.data)));
  }

  drawAll(); // empty axes until the first data arrives
  connect();
})();
