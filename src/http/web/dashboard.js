// The dashboard: GET /v1/stats once a second; totals over all models in the cards, one
// row per model and per device below, and a one-minute chart of the aggregate tokens/s.
import { apiFetch, errorText } from './api.js';

const $ = (id) => document.getElementById(id);
const HISTORY = 60;
const rates = [];  // aggregate tokens/s, one per poll, oldest first

const ms = (s) => (s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)} ms`);
const pct = (f) => (f === null || f === undefined ? '–' : `${(f * 100).toFixed(f < 0.1 && f > 0 ? 1 : 0)} %`);
const num = (n) => n.toLocaleString('en-US');
const rate = (r) => (r >= 100 ? r.toFixed(0) : r.toFixed(1));
const latency = (p) => (p.samples ? `${ms(p.p50)} / ${ms(p.p95)}` : '–');
function bytes(n) {
  if (!n) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// Percentiles over all models: the worst model's figure (a sum or mean of percentiles would mean nothing).
function worst(models, key) {
  const seen = models.map((m) => m[key]).filter((p) => p.samples > 0);
  if (!seen.length) return null;
  return { p50: Math.max(...seen.map((p) => p.p50)), p95: Math.max(...seen.map((p) => p.p95)) };
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

function drawChart() {
  const canvas = $('d-tps-chart');
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(1, ...rates);
  ctx.strokeStyle = '#d6dbe3';
  ctx.beginPath();
  ctx.moveTo(0, height - 0.5);
  ctx.lineTo(width, height - 0.5);
  ctx.stroke();
  if (rates.length < 2) return;
  const x = (i) => (i + HISTORY - rates.length) * (width / (HISTORY - 1));
  const y = (v) => height - 4 - (v / top) * (height - 10);
  ctx.beginPath();
  rates.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.strokeStyle = '#3b6fd8';
  ctx.lineWidth = 2;
  ctx.stroke();
  ctx.lineTo(x(rates.length - 1), height);
  ctx.lineTo(x(0), height);
  ctx.fillStyle = 'rgba(59, 111, 216, 0.12)';
  ctx.fill();
}

function show(s) {
  const models = s.models;
  const t = s.totals;
  $('d-tps').textContent = rate(t.tokens_per_second);
  $('d-running').textContent = num(t.running);
  $('d-waiting').textContent = num(t.waiting);
  $('d-slots').textContent = num(t.max_parallel);
  const ttft = worst(models, 'ttft_seconds');
  const itl = worst(models, 'inter_token_seconds');
  $('d-ttft-p50').textContent = ttft ? ms(ttft.p50) : '–';
  $('d-ttft-p95').textContent = ttft ? ms(ttft.p95) : '–';
  $('d-itl-p50').textContent = itl ? ms(itl.p50) : '–';
  $('d-itl-p95').textContent = itl ? ms(itl.p95) : '–';
  const used = models.reduce((a, m) => a + m.kv.blocks_used, 0);
  const total = models.reduce((a, m) => a + m.kv.blocks_total, 0);
  $('d-kv').textContent = pct(total ? used / total : null);
  $('d-kv-bar').style.width = `${total ? (100 * used) / total : 0}%`;
  const hits = models.reduce((a, m) => a + m.prefix_cache.hits, 0);
  const queries = models.reduce((a, m) => a + m.prefix_cache.queries, 0);
  $('d-prefix').textContent = pct(queries ? hits / queries : null);
  $('d-prefix-detail').textContent = `${num(hits)} of ${num(queries)} prompt blocks`;

  $('d-models').tBodies[0].replaceChildren(...models.map((m) => row([
    m.id, m.device.name, rate(m.tokens_per_second), num(m.streams.running), num(m.streams.waiting),
    latency(m.ttft_seconds), latency(m.inter_token_seconds),
    `${pct(m.kv.used_fraction)} (${num(m.kv.blocks_used)}/${num(m.kv.blocks_total)})`,
    pct(m.prefix_cache.hit_rate), num(m.tokens.generated)])));

  const devices = new Map();
  for (const m of models) {
    const d = devices.get(m.device.name) || { models: [], rate: 0, held: 0, total: m.device.memory_total_bytes,
                                              free: m.device.memory_free_bytes };
    d.models.push(m.id);
    d.rate += m.tokens_per_second;
    d.held += m.device.memory_allocated_bytes;
    devices.set(m.device.name, d);
  }
  $('d-devices').tBodies[0].replaceChildren(...[...devices].map(([name, d]) => row([
    name, d.models.join(', '), rate(d.rate), bytes(d.held),
    d.total ? `${bytes(d.total - d.free)} used of ${bytes(d.total)}` : 'host memory'])));

  rates.push(t.tokens_per_second);
  if (rates.length > HISTORY) rates.shift();
  drawChart();
  $('d-footnote').textContent = `tokens/s over the last ${s.windows.rate_seconds} s; latency percentiles over the ` +
    `last ${s.windows.latency_seconds} s; ${num(s.http.requests_total)} requests, ` +
    `${num(s.http.open_connections)} open connections; up ${Math.round(s.uptime_seconds)} s.`;
}

async function poll(onStatus) {
  try {
    const r = await apiFetch('/v1/stats');
    if (!r.ok) throw new Error(await errorText(r));
    const s = await r.json();
    show(s);
    onStatus(s.status, null);
  } catch (e) {
    onStatus(null, e.message);
  }
}

// Polls every second (also while the chat is shown: the header's status comes from it); each poll starts after
// the previous one ended, so a slow server is not piled on.
export function startDashboard(onStatus) {
  const loop = async () => {
    await poll(onStatus);
    setTimeout(loop, 1000);
  };
  loop();
}
