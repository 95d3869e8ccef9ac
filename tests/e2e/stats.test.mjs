// End to end: GET /v1/stats (the dashboard's feed) and GET / (the web page's files) on a real `pensieve serve`
// started with --api-key: the page loads without the key, the stats need it, and the stats' numbers follow
// the requests the server serves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const KEY = 'stats-test-key';
let server, url, openai;

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', 'tiny', '--port', '0',
    '--parallel', '4', '--ctx-size', '256', '--threads', '2', '--device', 'cpu', '--api-key', KEY, '--quiet']));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  if (server) assert.equal(await stopProcess(server), 0);
});

const stats = async () => {
  const r = await fetch(`${url}/v1/stats`, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  return r.json();
};

test('/v1/stats needs the key like every /v1/ route', async () => {
  assert.equal((await fetch(`${url}/v1/stats`)).status, 401);
  assert.equal((await fetch(`${url}/v1/stats`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await fetch(`${url}/v1/stats`, { headers: { 'x-api-key': KEY } })).status, 200);
  assert.equal((await fetch(`${url}/v1/stats`, { method: 'POST', headers: { 'x-api-key': KEY } })).status, 405);
});

test('/v1/stats: one model with its device, idle before any request', async () => {
  const s = await stats();
  assert.equal(s.status, 'ok');
  assert.equal(s.models.length, 1);
  const m = s.models[0];
  assert.equal(m.id, 'tiny');
  assert.equal(typeof m.device.name, 'string');
  assert.ok(m.device.name.length > 0);
  assert.ok(m.device.memory_allocated_bytes > 0);
  assert.equal(m.streams.max_parallel, 4);
  assert.equal(m.streams.running, 0);
  assert.ok(m.kv.blocks_total > 0);
  assert.equal(m.tokens.generated, 0);
  assert.equal(m.ttft_seconds.samples, 0);
  assert.equal(m.prefix_cache.hit_rate, null, 'no lookups yet: no rate rather than 0');
  assert.equal(s.totals.tokens_per_second, 0);
});

test('/v1/stats: tokens, rates and latency percentiles follow a streamed request, then the rate decays', async () => {
  const stream = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Count' }],
    max_tokens: 24, ignore_eos: true, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let usage = null;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  assert.equal(usage.completion_tokens, 24);

  const s = await stats();
  const m = s.models[0];
  assert.equal(m.tokens.generated, 24);
  assert.equal(m.ttft_seconds.samples, 1);
  assert.ok(m.ttft_seconds.p50 > 0);
  assert.equal(m.ttft_seconds.p95, m.ttft_seconds.p50, 'one sample: every percentile is it');
  // One gap per engine step after the first batch: none if every token came in that batch (a fast request).
  assert.ok(m.inter_token_seconds.samples <= 23, `inter-token samples ${m.inter_token_seconds.samples}`);
  assert.ok(m.inter_token_seconds.p95 >= m.inter_token_seconds.p50);
  // The tokens of the last rate window over its length: all 24 when the request took less than the window.
  assert.ok(m.tokens_per_second > 0 && m.tokens_per_second <= 24 / s.windows.rate_seconds + 1e-9,
    `tokens/s ${m.tokens_per_second}`);
  assert.equal(s.totals.tokens_per_second, m.tokens_per_second);
  assert.ok(m.prefix_cache.queries >= 0 && m.kv.blocks_used >= 0);
  assert.ok(s.http.requests_total >= 1);

  await new Promise((r) => setTimeout(r, s.windows.rate_seconds * 1000 + 300));
  const later = (await stats()).models[0];
  assert.equal(later.tokens_per_second, 0, 'no tokens in the last window');
  assert.equal(later.ttft_seconds.samples, 1, 'the latency window is longer than the rate window');
});

test('GET / serves the page without a key, with its security and cache headers', async () => {
  const r = await fetch(`${url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const html = await r.text();
  assert.match(html, /<title>pensieve<\/title>/);
  for (const src of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    const asset = await fetch(`${url}${src[1]}`);
    assert.equal(asset.status, 200, src[1]);
    await asset.arrayBuffer();
  }
});

test('page assets: content types, ETag revalidation, unknown files 404, other methods 405', async () => {
  const js = await fetch(`${url}/assets/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const etag = js.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  assert.match(await js.text(), /import /);
  const again = await fetch(`${url}/assets/app.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${url}/assets/app.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
  const missing = await fetch(`${url}/assets/nope.js`);
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error.message, /no route/);
  assert.equal((await fetch(`${url}/`, { method: 'POST' })).status, 405);
});
