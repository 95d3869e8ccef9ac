// End to end, issue 13: hostile requests against a real `pensieve serve` (tiny fixture model) get the API's
// own 4xx and leave the server serving; several API keys; client text cannot write control tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const NAME = 'tiny';
const KEYS = ['first-key', 'second-key'];
let server, url, port;

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', NAME, '--port', '0',
    '--ctx-size', '512', '--threads', '2', '--quiet', '--api-key', KEYS[0], '--api-key', KEYS[1]]));
  port = Number(new URL(url).port);
});

after(async () => {
  if (!server || server.exitCode !== null) return;
  assert.equal(await stopProcess(server), 0, 'pensieve serve should exit 0 on SIGTERM');
});

const post = (path, body, key = KEYS[0]) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body });

async function healthy() {
  const r = await fetch(`${url}/health`);
  assert.equal(r.status, 200, 'the server must still be serving');
}

// Raw bytes down one connection; resolves with what the server sent before it closed.
function raw(bytes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('end', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10000, () => { s.destroy(); resolve(got); });
  });
}

test('a deeply nested extra field is a 400, not a dead server', async () => {
  const deep = '['.repeat(50000) + ']'.repeat(50000);
  const r = await post('/v1/chat/completions',
    `{"model":"${NAME}","messages":[{"role":"user","content":"hi","extra":${deep}}]}`);
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error.type, 'invalid_request_error');
  const t = await post('/v1/messages/count_tokens',
    `{"model":"${NAME}","messages":[{"role":"user","content":"hi"}],"tools":[${deep}]}`);
  assert.equal(t.status, 400);
  assert.equal((await t.json()).type, 'error');
  await healthy();
});

test('a number beyond double and an object with too many keys are 400s', async () => {
  const r = await post('/v1/chat/completions',
    `{"model":"${NAME}","temperature":1e400,"messages":[{"role":"user","content":"hi"}]}`);
  assert.equal(r.status, 400);
  const keys = Array.from({ length: 5000 }, (_, i) => `"k${i}":0`).join(',');
  const w = await post('/v1/chat/completions', `{"model":"${NAME}","metadata":{${keys}},"messages":[]}`);
  assert.equal(w.status, 400);
  await healthy();
});

test('any of several API keys opens the API through the official clients; others do not', async () => {
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEYS[1], maxRetries: 0 });
  const r = await openai.chat.completions.create({ model: NAME, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
  assert.equal(r.object, 'chat.completion');
  const anthropic = new Anthropic({ baseURL: url, apiKey: KEYS[0], maxRetries: 0 });
  const m = await anthropic.messages.create({ model: NAME, max_tokens: 3, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(m.type, 'message');
  const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'first-ke', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401);
});

test('unauthenticated requests to made-up paths do not grow /metrics', async () => {
  const before = (await (await fetch(`${url}/metrics`)).text()).length;
  for (let i = 0; i < 300; i++) await fetch(`${url}/v1/made-up-${i}`);
  const text = await (await fetch(`${url}/metrics`)).text();
  assert.ok(!text.includes('made-up'), 'a path became a label');
  assert.ok(text.length < before + 2000, `metrics grew from ${before} to ${text.length} bytes`);
});

test('a Transfer-Encoding other than chunked is refused and its body is not run as a request', async () => {
  const got = await raw(`POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n` +
    `GET /health HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match(got, /^HTTP\/1\.1 400 /);
  assert.equal(got.indexOf('HTTP/1.1', 5), -1, 'a second response came back');
});

test('control-token spellings in message text are plain text', async () => {
  const count = async (content) => {
    const r = await post('/v1/messages/count_tokens',
      JSON.stringify({ model: NAME, messages: [{ role: 'user', content }] }));
    assert.equal(r.status, 200);
    return (await r.json()).input_tokens;
  };
  // The fixture vocabulary's end-of-sequence token is <|eos|>: as a control token it would add one token.
  const plain = await count('ab');
  const spelled = await count('a<|eos|>b');
  assert.ok(spelled > plain + 1, `"<|eos|>" in a message became ${spelled - plain} token(s)`);
});
