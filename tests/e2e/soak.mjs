// Soak (issue 13): a few hundred clients for a bounded time against a real `pensieve serve` on the tiny
// fixture model, mixing streamed and non-streamed requests on every route with clients that vanish, half-close,
// read slowly or send malformed and oversized bodies. Passes when, at the end, no sequence runs and every KV
// block is free, RSS is back within RSS_SLACK_MIB of its start, /health answered within 100 ms at p99 (and never
// stalled for a second), and every good request got an answer whose usage is exactly right: the prompt's token
// count as measured alone before the soak, and max_tokens generated when it stopped for length.
//   node soak.mjs [--seconds 300] [--clients 300]      (PENSIEVE_BIN, PENSIEVE_FIXTURES_DIR as for the e2e tests)
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { startListening, stopProcess } from './server_process.mjs';
import { exchange, parseResponse, requestBytes, sseEvents } from './soak_http.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 300);
const CLIENTS = arg('clients', 300);
const RSS_SLACK_MIB = 64;     // glibc keeps some freed arenas; a leak per request would pass this in seconds
const HEALTH_P99_MS = 100;
const HEALTH_STALL_MS = 1000;
const MAX_BODY = 65536;       // the server's --max-body, so an oversized body is cheap to send
const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const NAME = 'tiny';

const PROMPTS = ['Hello', 'Tell me a story about a lighthouse keeper.', 'Résumé: 1, 2, 3 — done?'];
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
const rand = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssMiB = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;

// The kinds of request and how each is judged: `good` ones must come back 200 with exact usage.
const chat = (p, max, extra = {}) => JSON.stringify({ model: NAME, messages: [{ role: 'user', content: p }], max_tokens: max, ...extra });
const message = (p, max, extra = {}) => JSON.stringify({ model: NAME, messages: [{ role: 'user', content: p }], max_tokens: max, ...extra });
const KINDS = {
  openai_chat: { weight: 8, good: true, make: (p, m) => ['/v1/chat/completions', chat(p, m, { temperature: 0.7 })] },
  openai_chat_stream: { weight: 8, good: true, stream: true,
    make: (p, m) => ['/v1/chat/completions', chat(p, m, { stream: true, stream_options: { include_usage: true } })] },
  openai_completion: { weight: 3, good: true,
    make: (p, m) => ['/v1/completions', JSON.stringify({ model: NAME, prompt: p, max_tokens: m })] },
  openai_completion_stream: { weight: 3, good: true, stream: true,
    make: (p, m) => ['/v1/completions', JSON.stringify({ model: NAME, prompt: p, max_tokens: m, stream: true,
      stream_options: { include_usage: true } })] },
  anthropic_messages: { weight: 6, good: true, make: (p, m) => ['/v1/messages', message(p, m)] },
  anthropic_messages_stream: { weight: 6, good: true, stream: true, make: (p, m) => ['/v1/messages', message(p, m, { stream: true })] },
  count_tokens: { weight: 4, good: true, make: (p) => ['/v1/messages/count_tokens', JSON.stringify({ model: NAME, messages: [{ role: 'user', content: p }] })] },
  models: { weight: 2, good: true, get: () => pick(['/v1/models', `/v1/models/${NAME}`]) },
  health: { weight: 2, good: true, get: () => '/health' },
  metrics: { weight: 2, good: true, get: () => '/metrics' },
  status: { weight: 2, good: true, get: () => '/v1/status' },
  half_close: { weight: 4, good: true, how: { halfClose: true }, make: (p, m) => ['/v1/chat/completions', chat(p, m)] },
  slow_reader: { weight: 3, good: true, stream: true, how: { pauseMs: 3000 },
    make: (p) => ['/v1/chat/completions', chat(p, 64, { stream: true, logprobs: true, top_logprobs: 20,
      stream_options: { include_usage: true } })] },
  drop_before_answer: { weight: 4, how: { dropAfterMs: 5 }, make: (p) => ['/v1/chat/completions', chat(p, 200)] },
  drop_mid_stream: { weight: 4, how: { dropOnFirstData: true },
    make: (p) => ['/v1/messages', message(p, 200, { stream: true })] },
  malformed: { weight: 3, expect: [400], make: () => [pick(['/v1/chat/completions', '/v1/messages']), '{"model": "tiny", "messages": [}'] },
  oversized: { weight: 2, expect: [413], make: () => ['/v1/chat/completions', `{"model":"${NAME}","pad":"${'x'.repeat(MAX_BODY + 100)}"}`] },
  garbage: { weight: 2, expect: [400, 405, 431, 501, 505], raw: () => Buffer.concat([Buffer.from(pick(['GET', 'PUT', 'X\x00Y', '\x16\x03\x01'])),
    Buffer.from(Array.from({ length: rand(1, 300) }, () => rand(0, 255))), Buffer.from('\r\n\r\n')]) },
  truncated_body: { weight: 2, how: { halfClose: true }, raw: () => Buffer.from(
    'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":') },
};
const WEIGHTED = Object.entries(KINDS).flatMap(([name, k]) => Array(k.weight).fill(name));

const counts = {};           // kind -> count of requests
const outcomes = {};         // class -> count
const failures = [];         // the first few, with what was wrong
const note = (cls) => { outcomes[cls] = (outcomes[cls] ?? 0) + 1; };
const fail = (kind, why) => {
  note(`FAIL ${kind}`);
  if (failures.length < 20) failures.push(`${kind}: ${why}`);
};

// Usage is exact when the prompt counts as it did alone and a request cut by its limit generated that limit.
function checkUsage(kind, res, ref, max) {
  if (kind === 'count_tokens') {
    const n = JSON.parse(res.body).input_tokens;
    return n === ref.anthropic ? null : `input_tokens ${n}, expected ${ref.anthropic}`;
  }
  let prompt, completion, finish, pieces = 0;
  if (kind.startsWith('anthropic')) {
    if (KINDS[kind].stream) {
      const ev = sseEvents(res.body);
      const start = ev.find((e) => e.event === 'message_start')?.data.message.usage;
      const delta = ev.find((e) => e.event === 'message_delta')?.data;
      if (!start || !delta || ev.at(-1).event !== 'message_stop') return 'stream without message_start/delta/stop';
      prompt = start.input_tokens + start.cache_read_input_tokens;
      completion = delta.usage.output_tokens;
      finish = delta.delta.stop_reason === 'max_tokens' ? 'length' : delta.delta.stop_reason;
      pieces = ev.filter((e) => e.event === 'content_block_delta').length;
    } else {
      const b = JSON.parse(res.body);
      prompt = b.usage.input_tokens + b.usage.cache_read_input_tokens;
      completion = b.usage.output_tokens;
      finish = b.stop_reason === 'max_tokens' ? 'length' : b.stop_reason;
    }
  } else {
    const chatRoute = !kind.startsWith('openai_completion');
    let usage;
    if (KINDS[kind].stream) {
      const ev = sseEvents(res.body);
      if (ev.at(-1)?.data !== '[DONE]') return 'stream without [DONE]';
      usage = ev.at(-2).data.usage;
      finish = ev.map((e) => e.data.choices?.[0]?.finish_reason).find((f) => f);
      pieces = ev.filter((e) => (chatRoute ? e.data.choices?.[0]?.delta?.content : e.data.choices?.[0]?.text)).length;
    } else {
      const b = JSON.parse(res.body);
      usage = b.usage;
      finish = b.choices[0].finish_reason;
    }
    if (!usage) return 'no usage';
    prompt = usage.prompt_tokens;
    completion = usage.completion_tokens;
    if (usage.total_tokens !== prompt + completion) return `total_tokens ${usage.total_tokens} != ${prompt} + ${completion}`;
  }
  const want = kind.startsWith('anthropic') ? ref.anthropicPrompt : kind.startsWith('openai_completion') ? ref.completion : ref.chat;
  if (prompt !== want) return `prompt tokens ${prompt}, expected ${want}`;
  if (finish === 'length' ? completion !== max : completion > max) return `${completion} tokens for max_tokens ${max} (${finish})`;
  if (pieces > completion) return `${pieces} text events for ${completion} tokens`;
  return null;
}

async function one(port, refs) {
  const kind = pick(WEIGHTED);
  const k = KINDS[kind];
  counts[kind] = (counts[kind] ?? 0) + 1;
  const prompt = pick(PROMPTS);
  const max = rand(1, 24);
  let bytes;
  if (k.raw) bytes = k.raw();
  else if (k.get) bytes = requestBytes('GET', k.get());
  else {
    const [path, body] = k.make(prompt, max);
    bytes = requestBytes('POST', path, body);
  }
  const r = await exchange(port, bytes, k.how);
  if (r.timedOut) return fail(kind, 'no answer within 120 s');
  if (r.dropped) return note('dropped by client');
  const res = parseResponse(r.raw);
  if (k.expect) {
    // A rejected body may be cut off by a reset once the server has answered and closed; no answer at all
    // (the server closing a garbage connection) is fine too, a 5xx or a hang is not.
    if (!res) return note(r.error ? `${kind}: reset` : `${kind}: closed`);
    if (!k.expect.includes(res.status)) return fail(kind, `status ${res.status} ${res.body.slice(0, 200)}`);
    return note(`${kind}: ${res.status}`);
  }
  if (!res) return kind === 'truncated_body' ? note(`${kind}: closed`) : fail(kind, `no response (${r.error ?? 'closed'})`);
  if (kind === 'truncated_body') return res.status === 400 ? note(`${kind}: 400`) : fail(kind, `status ${res.status}`);
  if (res.status === 429 || res.status === 503) return note(`busy ${res.status}`);
  if (res.status !== 200) return fail(kind, `status ${res.status} ${res.body.slice(0, 200)}`);
  if (k.make) {
    const why = checkUsage(kind, res, refs[prompt], kind === 'slow_reader' ? 64 : max);
    if (why) return fail(kind, why);
  }
  note('good: exact usage');
}

// Token counts of each prompt, measured one request at a time before the load starts.
async function references(port) {
  const refs = {};
  const json = async (path, body) => JSON.parse(parseResponse((await exchange(port, requestBytes('POST', path, body))).raw).body);
  for (const p of PROMPTS) {
    refs[p] = {
      chat: (await json('/v1/chat/completions', chat(p, 1))).usage.prompt_tokens,
      completion: (await json('/v1/completions', JSON.stringify({ model: NAME, prompt: p, max_tokens: 1 }))).usage.prompt_tokens,
      anthropic: (await json('/v1/messages/count_tokens', JSON.stringify({ model: NAME, messages: [{ role: 'user', content: p }] }))).input_tokens,
    };
    const m = await json('/v1/messages', message(p, 1));
    refs[p].anthropicPrompt = m.usage.input_tokens + m.usage.cache_read_input_tokens;
  }
  return refs;
}

// /health on its own thread, so that the soak's own clients cannot delay its clock.
function healthProbe(port, seconds) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const ms = [];
    const end = Date.now() + workerData.seconds * 1000;
    const ping = () => new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      let got = '';
      const s = net.connect(workerData.port, '127.0.0.1', () => s.write('GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'));
      s.on('data', (d) => { got += d; });
      s.on('close', () => resolve(got.startsWith('HTTP/1.1 200') ? Number(process.hrtime.bigint() - t0) / 1e6 : Infinity));
      s.on('error', () => {});
    });
    (async () => {
      while (Date.now() < end) { ms.push(await ping()); await new Promise((r) => setTimeout(r, 20)); }
      parentPort.postMessage(ms);
    })();`;
  const w = new Worker(code, { eval: true, workerData: { port, seconds } });
  return new Promise((resolve) => w.once('message', resolve));
}

async function settled(port) {
  for (let i = 0; i < 100; i++) {
    const s = JSON.parse(parseResponse((await exchange(port, requestBytes('GET', '/v1/status'))).raw).body);
    const m = s.models[0];
    if (m.slots.running === 0 && m.queue.waiting === 0 && m.kv.blocks_used === 0 && s.http.active_requests <= 1) return s;
    if (i === 99) return s;
    await sleep(200);
  }
}

async function main() {
  const { proc, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', NAME, '--port', '0',
    '--ctx-size', '512', '--threads', '2', '--quiet', '--max-body', String(MAX_BODY), '--queue', '1024']);
  const port = Number(new URL(url).port);
  let ok = false;
  try {
    const refs = await references(port);
    const rssBefore = rssMiB(proc.pid);
    const deadline = Date.now() + SECONDS * 1000;
    const health = healthProbe(port, SECONDS);
    const client = async () => { while (Date.now() < deadline) await one(port, refs); };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const pings = (await health).sort((a, b) => a - b);
    const status = await settled(port);
    await sleep(1000);
    const rssAfter = rssMiB(proc.pid);
    const m = status.models[0];
    const p99 = pings[Math.min(pings.length - 1, Math.floor(pings.length * 0.99))];
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    console.log(`soak: ${SECONDS} s, ${CLIENTS} clients, ${total} requests`);
    for (const [kind, n] of Object.entries(counts).sort()) console.log(`  ${kind.padEnd(26)} ${n}`);
    console.log('outcomes:');
    for (const [cls, n] of Object.entries(outcomes).sort()) console.log(`  ${cls.padEnd(36)} ${n}`);
    console.log(`/health: ${pings.length} probes, p50 ${pings[Math.floor(pings.length / 2)].toFixed(1)} ms, ` +
      `p99 ${p99.toFixed(1)} ms, max ${pings.at(-1).toFixed(1)} ms`);
    console.log(`RSS: ${rssBefore.toFixed(1)} MiB before, ${rssAfter.toFixed(1)} MiB after`);
    console.log(`end state: running ${m.slots.running}, waiting ${m.queue.waiting}, KV blocks used ${m.kv.blocks_used}/` +
      `${m.kv.blocks_total}, active requests ${status.http.active_requests}, open connections ${status.http.open_connections}`);
    const problems = [...failures];
    if (m.slots.running || m.queue.waiting) problems.push('sequences still running or waiting');
    if (m.kv.blocks_used) problems.push(`${m.kv.blocks_used} KV blocks still used`);
    if (rssAfter > rssBefore + RSS_SLACK_MIB) problems.push(`RSS grew by more than ${RSS_SLACK_MIB} MiB`);
    if (p99 > HEALTH_P99_MS) problems.push(`/health p99 ${p99.toFixed(1)} ms > ${HEALTH_P99_MS} ms`);
    if (pings.at(-1) > HEALTH_STALL_MS) problems.push(`/health took ${pings.at(-1)} ms once (or failed)`);
    if (!outcomes['good: exact usage']) problems.push('no good request succeeded');
    for (const p of problems) console.log(`FAILED: ${p}`);
    ok = problems.length === 0;
  } finally {
    const code = await stopProcess(proc);
    if (code !== 0) {
      console.log(`FAILED: pensieve serve exited with ${code} on SIGTERM`);
      ok = false;
    }
  }
  console.log(ok ? 'soak: passed' : 'soak: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
