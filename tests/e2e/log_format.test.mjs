// `serve --log-format json`: every line on stderr is one JSON object; each request leaves one line with its
// model, status, token counts and timings, read here after real requests from the official client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
let server, url, openai;
let log = '';

before(async () => {
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', 'tiny', '--port', '0',
    '--parallel', '2', '--ctx-size', '256', '--threads', '2', '--log-format', 'json'], { stderr: 'pipe' }));
  server.stderr.on('data', (d) => { log += d; });
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  if (server) assert.equal(await stopProcess(server), 0);
});

const lines = () => log.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));

async function logged(path, count) {
  for (let i = 0; i < 100; i++) {
    const found = lines().filter((l) => l.event === 'request' && l.path === path);
    if (found.length >= count) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`no log line for ${path} in:\n${log}`);
}

test('a streamed chat leaves one request line with model, tokens and timings', async () => {
  const stream = await openai.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5, stream: true,
    stream_options: { include_usage: true },
  });
  let usage;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  const [line] = await logged('/v1/chat/completions', 1);
  assert.equal(line.level, 'info');
  assert.equal(line.method, 'POST');
  assert.equal(line.model, 'tiny');
  assert.equal(line.status, 200);
  assert.equal(line.prompt_tokens, usage.prompt_tokens);
  assert.equal(line.completion_tokens, usage.completion_tokens);
  assert.ok(line.completion_tokens > 0);
  assert.ok(line.ttft_ms > 0 && line.ttft_ms <= line.total_ms, JSON.stringify(line));
  assert.match(line.client, /^127\.0\.0\.1:\d+$/);
  assert.ok(!Number.isNaN(Date.parse(line.time)), line.time);
});

test('an error and a plain GET are logged too, without model or first token', async () => {
  const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: '{"model": "tiny"' });
  assert.equal(r.status, 400);
  await fetch(`${url}/health`);
  const [bad] = await logged('/v1/chat/completions', 2).then((l) => l.slice(1));
  assert.equal(bad.status, 400);
  assert.equal(bad.model, null);
  assert.equal(bad.ttft_ms, null);
  const health = await logged('/health', 1);
  assert.ok(health.some((l) => l.status === 200 && l.method === 'GET'));
});

test('every line of the log is a JSON object, the startup messages included', () => {
  const all = lines();  // JSON.parse throws on any other line
  const messages = all.filter((l) => l.event === 'message').map((l) => l.message);
  assert.ok(messages.some((m) => m.startsWith('listening on http://127.0.0.1:')), messages.join('\n'));
  assert.ok(messages.some((m) => m.startsWith('ready in ')), messages.join('\n'));
  assert.ok(messages.some((m) => m.startsWith('memory: ')), messages.join('\n'));
});
