// Tensor parallelism end to end: the same fixture model served once on one rank and once split over two
// (`--tensor-parallel 2`; on the CPU the ranks are in-process threads joined by the in-process communicator),
// asked the same things through the official clients: the greedy answers must be the same text, and so must
// the top log-probabilities' tokens (they come from the ranks' vocabulary slices, merged).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
// qwen2-tiny: q/k/v biases (split with their heads) and a padded 640-row vocabulary (split 320 + 320).
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/qwen2-tiny/qwen2-tiny-f32.gguf`;
const NAME = 'tiny';
// cpu (in-process ranks) unless scripts/test-cuda.sh runs it on a machine with two GPUs (PENSIEVE_TP_DEVICE=cuda).
const DEVICE = process.env.PENSIEVE_TP_DEVICE || 'cpu';
const servers = {};

async function start(ranks) {
  // An F32 KV cache: the fixtures' greedy runs have near-ties that only exact float math keeps (fixtures README).
  const { proc, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', NAME, '--port', '0',
    '--device', DEVICE, '--tensor-parallel', String(ranks), '--parallel', '8', '--ctx-size', '512', '--kv-type', 'f32',
    '--threads', '2', '--quiet'], { stderr: 'pipe' });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  return {
    proc,
    log: () => log,
    openai: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 }),
  };
}

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  servers.one = await start(1);
  servers.two = await start(2);
});

after(async () => {
  for (const s of Object.values(servers)) assert.equal(await stopProcess(s.proc), 0, 'serve should exit 0 on SIGTERM');
});

const user = (content) => [{ role: 'user', content }];
const prompts = ['Hello', 'Tell me a story about a lighthouse', 'What is 2 + 2?', 'List three colours'];

test('the split server says it runs on two ranks', async () => {
  // The log was written before the test read the pipe: give the reads a moment to arrive.
  for (let i = 0; i < 100 && !(/runs on/.test(servers.two.log()) && /runs on/.test(servers.one.log())); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.match(servers.two.log(), /runs on 2 ranks, tensor parallel/);
  assert.match(servers.one.log(), /runs on /);
  assert.doesNotMatch(servers.one.log(), /tensor parallel/);
});

test('OpenAI chat: greedy answers over two ranks equal one rank, asked at once', async () => {
  const ask = (s) => Promise.all(prompts.map((p) =>
    s.openai.chat.completions.create({ model: NAME, messages: user(p), max_tokens: 24, temperature: 0 })));
  const [one, two] = await Promise.all([ask(servers.one), ask(servers.two)]);
  for (let i = 0; i < prompts.length; i++) {
    assert.ok(one[i].choices[0].message.content.length > 0);
    assert.equal(two[i].choices[0].message.content, one[i].choices[0].message.content, prompts[i]);
    assert.equal(two[i].usage.completion_tokens, one[i].usage.completion_tokens);
  }
});

test('OpenAI chat: top log-probabilities merged from the slices name the same tokens', async () => {
  const args = { model: NAME, messages: user('Hello there'), max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 5 };
  const one = await servers.one.openai.chat.completions.create(args);
  const two = await servers.two.openai.chat.completions.create(args);
  const a = one.choices[0].logprobs.content, b = two.choices[0].logprobs.content;
  assert.equal(b.length, a.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(b[i].top_logprobs.map((t) => t.token), a[i].top_logprobs.map((t) => t.token), `token ${i}`);
    // Rounded differently only by the order of sums across ranks (tests/parallel bounds the logits).
    assert.ok(Math.abs(b[i].logprob - a[i].logprob) < 1e-3, `logprob ${i}: ${b[i].logprob} vs ${a[i].logprob}`);
  }
});

test('OpenAI chat: streaming over two ranks gives the non-streamed text', async () => {
  const args = { model: NAME, messages: user('Tell me a story'), max_tokens: 16, temperature: 0 };
  const whole = await servers.one.openai.chat.completions.create(args);
  let text = '';
  for await (const chunk of await servers.two.openai.chat.completions.create({ ...args, stream: true })) {
    for (const c of chunk.choices) text += c.delta?.content ?? '';
  }
  assert.equal(text, whole.choices[0].message.content);
});

test('Anthropic messages: the same greedy answer over two ranks', async () => {
  const args = { model: NAME, max_tokens: 16, temperature: 0, messages: user('Say something') };
  const one = await servers.one.anthropic.messages.create(args);
  const two = await servers.two.anthropic.messages.create(args);
  assert.equal(two.content[0].text, one.content[0].text);
});
