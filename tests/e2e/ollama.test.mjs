// End to end: the official `ollama` npm client against `pensieve serve` with two fixture models: chat and
// generate (one object and NDJSON streams), options, format (JSON and a schema), tools, tags, show, ps,
// version, keep_alive and the errors in Ollama's {"error": "..."} shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const FIX = `${process.env.PENSIEVE_FIXTURES_DIR}/models`;
const LLAMA = `${FIX}/llama3-tiny/llama3-tiny-f32.gguf`;
const QWEN3 = `${FIX}/qwen3-tiny/qwen3-tiny-f32.gguf`;
let server, url, ollama;

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', `llama=${LLAMA}`, '--model', `qwen=${QWEN3}`,
    '--port', '0', '--parallel', '4', '--ctx-size', '512', '--threads', '1', '--quiet', '--device', 'cpu']));
  ollama = new Ollama({ host: url });
});

after(async () => {
  if (server) assert.equal(await stopProcess(server), 0, 'pensieve serve should exit 0 on SIGTERM');
});

const user = (content) => [{ role: 'user', content }];

test('chat, not streamed: one object with done, done_reason, counts and durations', async () => {
  const r = await ollama.chat({ model: 'llama', messages: user('Hello'), stream: false, options: { num_predict: 6, temperature: 0 } });
  assert.equal(r.model, 'llama');
  assert.equal(r.message.role, 'assistant');
  assert.equal(typeof r.message.content, 'string');
  assert.equal(r.done, true);
  assert.ok(['stop', 'length'].includes(r.done_reason));
  if (r.done_reason === 'length') assert.equal(r.eval_count, 6);
  assert.ok(r.eval_count <= 6);
  assert.ok(r.prompt_eval_count > 0);
  assert.ok(r.total_duration >= r.eval_duration);
  assert.ok(!Number.isNaN(new Date(r.created_at).getTime()));
});

test('chat streamed (the default): NDJSON parts, then one done part', async () => {
  const parts = [];
  for await (const part of await ollama.chat({ model: 'qwen', messages: user('Tell me a story'), stream: true,
    options: { num_predict: 10, seed: 7 } })) parts.push(part);
  assert.ok(parts.length >= 2);
  const last = parts.at(-1);
  assert.equal(last.done, true);
  for (const p of parts.slice(0, -1)) assert.equal(p.done, false);
  assert.equal(last.model, 'qwen');
  const text = parts.map((p) => p.message.content).join('');
  assert.ok(text.length > 0 || last.done_reason === 'stop');
  assert.ok(last.eval_count > 0);
});

test('the same seed gives the same answer', async () => {
  const ask = () => ollama.chat({ model: 'llama', messages: user('Hi'), stream: false,
    options: { num_predict: 8, seed: 42, temperature: 0.9, top_k: 20, top_p: 0.9, min_p: 0.01, repeat_penalty: 1.1 } });
  assert.equal((await ask()).message.content, (await ask()).message.content);
});

test('generate, streamed and not', async () => {
  const one = await ollama.generate({ model: 'llama:latest', prompt: 'Once upon a time', stream: false, options: { num_predict: 5 } });
  assert.equal(one.model, 'llama:latest', 'the name as asked, tag and all');
  assert.equal(typeof one.response, 'string');
  assert.equal(one.done, true);
  assert.ok(one.eval_count <= 5);
  const parts = [];
  for await (const p of await ollama.generate({ model: 'qwen', prompt: 'Once', stream: true, options: { num_predict: 5 } })) parts.push(p);
  assert.equal(parts.at(-1).done, true);
  assert.ok(parts.at(-1).eval_count <= 5);
  const raw = await ollama.generate({ model: 'llama', prompt: 'abc', raw: true, stream: false, options: { num_predict: 3, stop: ['\n'] } });
  assert.equal(raw.done, true);
});

test('format "json" and a JSON schema constrain the answer', async () => {
  const json = await ollama.chat({ model: 'llama', messages: user('JSON please'), format: 'json', stream: false,
    options: { num_predict: 60 } });
  if (json.done_reason === 'stop') assert.equal(typeof JSON.parse(json.message.content), 'object');
  const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] } }, required: ['answer'], additionalProperties: false };
  // The schema's grammar allows any whitespace between tokens, and this random-weights model takes plenty (30 to
  // over 40 tokens seen per answer): room enough that the answer ends by itself.
  const r = await ollama.chat({ model: 'qwen', messages: user('Is the sky blue?'), format: schema, stream: false,
    options: { num_predict: 400 } });
  assert.equal(r.done_reason, 'stop');
  assert.ok(['yes', 'no'].includes(JSON.parse(r.message.content).answer));
});

test('tools: a tool result message is accepted and the answer is well-formed', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const r = await ollama.chat({ model: 'qwen', stream: false, tools, options: { num_predict: 16 }, messages: [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', tool_name: 'get_weather', content: '{"temp": 21}' },
  ] });
  assert.equal(r.done, true);
  assert.equal(r.message.role, 'assistant');
  for (const call of r.message.tool_calls ?? []) {
    assert.equal(call.function.name, 'get_weather');
    assert.equal(typeof call.function.arguments, 'object');
  }
});

test('tags and show list every model; ps lists the loaded ones', async () => {
  const tags = await ollama.list();
  const names = tags.models.map((m) => m.name).sort();
  assert.deepEqual(names, ['llama:latest', 'qwen:latest']);
  for (const m of tags.models) {
    assert.equal(m.details.format, 'gguf');
    assert.ok(m.size > 0);
    assert.match(m.digest, /^[0-9a-f]{64}$/);
  }
  assert.equal(tags.models.find((m) => m.name === 'qwen:latest').details.family, 'qwen3');
  const show = await ollama.show({ model: 'llama' });
  assert.equal(show.details.family, 'llama');
  assert.ok(show.template.length > 0, 'the chat template of the file');
  assert.ok(show.model_info['general.parameter_count'] > 0);
  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'llama:latest'));
  for (const m of ps.models) assert.ok(m.size > 0);
  const version = await ollama.version();
  assert.match(version.version, /^\d+\.\d+\.\d+$/);
});

test('keep_alive 0 unloads; the next request loads the model again', async () => {
  await ollama.chat({ model: 'qwen', messages: user('hi'), stream: false, options: { num_predict: 2 } });
  assert.ok((await ollama.ps()).models.some((m) => m.name === 'qwen:latest'));
  const r = await ollama.generate({ model: 'qwen', prompt: '', keep_alive: 0 });
  assert.equal(r.done_reason, 'unload');
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = !(await ollama.ps()).models.some((m) => m.name === 'qwen:latest');
    if (!gone) await new Promise((res) => setTimeout(res, 20));
  }
  assert.ok(gone, 'qwen left /api/ps');
  const again = await ollama.chat({ model: 'qwen', messages: user('hi'), stream: false, options: { num_predict: 2 } });
  assert.equal(again.done, true);
});

test('errors come as {"error": "..."} with the right status', async () => {
  await assert.rejects(ollama.chat({ model: 'nope', messages: user('hi'), stream: false }),
    (e) => e.status_code === 404 && /nope/.test(e.error));
  const bad = await fetch(`${url}/api/chat`, { method: 'POST', body: '{"model": "llama", "messages": 3}' });
  assert.equal(bad.status, 400);
  assert.equal(typeof (await bad.json()).error, 'string');
  const head = await fetch(`${url}/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  const wrong = await fetch(`${url}/api/tags`, { method: 'POST' });
  assert.equal(wrong.status, 405);
  assert.equal(typeof (await wrong.json()).error, 'string');
});
