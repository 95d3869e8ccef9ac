// End to end: the official `openai` and `@anthropic-ai/sdk` clients against a real `pensieve serve` on the
// tiny fixture model (random weights: the text is noise, but well-formed). The server is started on a free
// port of 127.0.0.1 and always stopped (SIGTERM must end it with exit code 0).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const NAME = 'tiny';
let server, url, openai, anthropic;

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', NAME, '--port', '0',
    '--parallel', '20', '--ctx-size', '512', '--threads', '2', '--quiet']));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  if (server) assert.equal(await stopProcess(server), 0, 'pensieve serve should exit 0 on SIGTERM');
});

const user = (content) => [{ role: 'user', content }];

async function status() {
  return (await fetch(`${url}/v1/status`)).json();
}

test('OpenAI chat: non-streaming answer with usage', async () => {
  const r = await openai.chat.completions.create({ model: NAME, messages: user('Hello'), max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('OpenAI chat: streaming matches the non-streamed greedy answer, usage last', async () => {
  const args = { model: NAME, messages: user('Tell me a story'), max_tokens: 16, temperature: 0 };
  const whole = await openai.chat.completions.create(args);
  const stream = await openai.chat.completions.create({ ...args, stream: true, stream_options: { include_usage: true } });
  let text = '', first = null, finish = null, usage = null;
  for await (const chunk of stream) {
    if (first === null) first = chunk;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(first.choices[0].delta.role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual([usage.prompt_tokens, usage.completion_tokens], [whole.usage.prompt_tokens, whole.usage.completion_tokens]);
});

test('OpenAI chat: multi-turn prompts are longer and still answered', async () => {
  const one = await openai.chat.completions.create({ model: NAME, messages: user('Hi'), max_tokens: 4 });
  const three = await openai.chat.completions.create({
    model: NAME, max_tokens: 4,
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello there.' }, { role: 'user', content: [{ type: 'text', text: 'And now?' }] }],
  });
  assert.ok(three.usage.prompt_tokens > one.usage.prompt_tokens + 5);
  assert.equal(typeof three.choices[0].message.content, 'string');
});

test('OpenAI: the same seed gives the same sampled text', async () => {
  const args = { model: NAME, messages: user('Roll the dice'), max_tokens: 16, temperature: 1.0, seed: 4242 };
  const a = await openai.chat.completions.create(args);
  const b = await openai.chat.completions.create(args);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('OpenAI: a stop sequence cuts the greedy answer before it', async () => {
  const args = { model: NAME, messages: user('Count'), max_tokens: 40, temperature: 0, ignore_eos: true };
  const full = (await openai.chat.completions.create(args)).choices[0].message.content;
  const at = [...full].findIndex((c, i) => i > 0 && /[A-Za-z]/.test(c));
  assert.ok(at > 0, `no ASCII letter to stop at in ${JSON.stringify(full)}`);
  const stop = [...full][at];
  const cut = await openai.chat.completions.create({ ...args, stop: [stop] });
  assert.equal(cut.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('OpenAI: completions with a token-id prompt, and the model list', async () => {
  const r = await openai.completions.create({ model: NAME, prompt: [1, 2, 3, 4], max_tokens: 5, temperature: 0, ignore_eos: true });
  assert.equal(r.usage.prompt_tokens, 4);
  assert.equal(r.usage.completion_tokens, 5);
  const models = await openai.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [NAME]);
});

test('OpenAI: errors surface as the SDK error classes', async () => {
  await assert.rejects(openai.chat.completions.create({ model: 'no-such-model', messages: user('x') }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  await assert.rejects(openai.chat.completions.create({ model: NAME, messages: user('x'), temperature: 'hot' }),
    (e) => e instanceof OpenAI.BadRequestError && /temperature/.test(e.message));
  await assert.rejects(openai.chat.completions.create({ model: NAME, messages: user('x'), response_format: { type: 'xml' } }),
    (e) => e instanceof OpenAI.BadRequestError && /response_format/.test(e.message));
});

test('Anthropic: message object, stop reasons and usage', async () => {
  const m = await anthropic.messages.create({ model: NAME, max_tokens: 6, system: 'Be brief.', messages: user('Hello'),
    temperature: 0 });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.equal(m.content[0].type, 'text');
  assert.ok(['end_turn', 'max_tokens'].includes(m.stop_reason));
  if (m.stop_reason === 'max_tokens') assert.equal(m.usage.output_tokens, 6);
  const counted = await fetch(`${url}/v1/messages/count_tokens`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: NAME, system: 'Be brief.', messages: user('Hello') }),
  }).then((r) => r.json());
  // Anthropic counts prompt tokens read from the cache apart from input_tokens.
  assert.equal(counted.input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens);
});

test('Anthropic: streaming events in order, text equals the non-streamed one', async () => {
  const args = { model: NAME, max_tokens: 12, messages: user('Stream please'), temperature: 0 };
  const whole = await anthropic.messages.create(args);
  const stream = await anthropic.messages.create({ ...args, stream: true });
  const types = [];
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta') text += ev.delta.text;
  }
  assert.deepEqual(types.slice(0, 2), ['message_start', 'content_block_start']);
  assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  assert.equal(text, whole.content[0].text);
});

test('Anthropic: errors surface as the SDK error classes', async () => {
  await assert.rejects(anthropic.messages.create({ model: 'nope', max_tokens: 5, messages: user('x') }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404);
  await assert.rejects(anthropic.messages.create({ model: NAME, messages: user('x') }),
    (e) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.message));
});

test('20 concurrent streaming clients each get a well-formed stream', async () => {
  const one = async (i) => {
    const stream = await openai.chat.completions.create({ model: NAME, messages: user(`client ${i}`), max_tokens: 24,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    let finish = null, usage = null, chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    return { finish, usage, chunks };
  };
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => one(i)));
  for (const r of results) {
    assert.equal(r.finish, 'length');
    assert.equal(r.usage.completion_tokens, 24);
    assert.ok(r.chunks >= 3);
  }
});

test('a client that disconnects mid-stream frees its KV blocks', async () => {
  const generatedBefore = (await status()).models[0].tokens.generated;
  const controller = new AbortController();
  const stream = await openai.chat.completions.create({ model: NAME, messages: user('go on forever'), max_tokens: 400,
    ignore_eos: true, stream: true }, { signal: controller.signal });
  let seen = 0;
  try {
    for await (const _ of stream) {
      if (++seen === 3) controller.abort();
    }
  } catch {
    // the SDK may end the iteration quietly or throw an abort error; either way the socket is gone
  }
  assert.ok(seen >= 3 && seen < 400, `saw ${seen} chunks`);
  let s;
  for (let i = 0; i < 200; i++) {
    s = await status();
    if (s.models[0].kv.blocks_used === 0 && s.models[0].slots.running === 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(s.models[0].slots.running, 0);
  assert.equal(s.models[0].kv.blocks_used, 0);
  // Cancelled, not run to its end: far fewer than the 400 tokens it asked for were generated.
  const generated = s.models[0].tokens.generated - generatedBefore;
  assert.ok(generated < 200, `generated ${generated} tokens after the client left`);
});

// Where the model runs is reported; scripts/test-cuda.sh sets PENSIEVE_EXPECT_DEVICE=cuda so that a GPU run
// proves the server really used the GPU.
test('the device and its memory are in /v1/status and /metrics', async () => {
  const model = (await status()).models[0];
  assert.ok(model.device.name.length > 0);
  assert.ok(model.device.memory_allocated_bytes >= 0);
  const expected = process.env.PENSIEVE_EXPECT_DEVICE;
  if (expected) {
    assert.ok(model.device.name.startsWith(expected), `device ${model.device.name}, expected ${expected}`);
    assert.ok(model.device.memory_total_bytes > 0);
    assert.ok(model.device.memory_allocated_bytes > 0, 'weights and KV pool live on the GPU');
  }
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, new RegExp(`pensieve_device_info\\{model="${NAME}",device="[^"]+"\\} 1`));
  assert.match(metrics, /pensieve_device_memory_allocated_bytes\{model="tiny"\} \d+/);
  // Steps recorded as CUDA graphs: none on the CPU; on a GPU the decode steps of the tests above.
  const recorded = Number(metrics.match(/pensieve_recorded_steps_total\{model="tiny"\} (\d+)\n/)?.[1]);
  const replayed = Number(metrics.match(/pensieve_replayed_steps_total\{model="tiny"\} (\d+)\n/)?.[1]);
  if (model.device.name.startsWith('cuda')) {
    assert.ok(recorded > 0, `recorded steps ${recorded}`);
    assert.ok(Number.isInteger(replayed), `replayed steps ${replayed}`);  // present; replays depend on timing
  } else {
    assert.equal(recorded, 0);
    assert.equal(replayed, 0);
  }
});
