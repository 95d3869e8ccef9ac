// Tool history through a real model: `pensieve serve` on the tiny fixture model (no chat template in the file,
// so --chat-template picks the built-in ChatML, which renders tools and tool calls). The random weights never
// call a tool, so the histories below are the ones the SDKs send after a call (agent_loop.test.mjs shows the
// calls coming out); what is checked is that every shape is taken, rendered (the prompt grows by it) and
// answered, streamed and not. Also: several --alias names, GET /v1/models/{id}, Anthropic cache accounting.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const NAME = 'tiny';
const ALIAS = 'gpt-4o-mini';
let server, url, openai, anthropic;

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', NAME, '--alias', ALIAS,
    '--chat-template', 'chatml', '--port', '0', '--ctx-size', '1024', '--parallel', '4', '--threads', '2', '--quiet']));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopProcess(server), 0, 'pensieve serve should exit 0 on SIGTERM');
});

const tool = { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const ask = { role: 'user', content: 'What is the weather in Paris?' };
// What the OpenAI SDK sends back after a tool call: content null, arguments a JSON string.
const openaiHistory = [ask,
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_abc', type: 'function',
    function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_abc', content: '{"temp": 18}' }];

test('OpenAI: the second turn of an agent loop is answered, streamed and not', async () => {
  const first = await openai.chat.completions.create({ model: NAME, messages: [ask], tools: [tool], max_tokens: 4 });
  const args = { model: NAME, messages: openaiHistory, tools: [tool], max_tokens: 6, temperature: 0 };
  const second = await openai.chat.completions.create(args);
  assert.equal(typeof second.choices[0].message.content, 'string');
  assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens + 10, 'the call and its result are in the prompt');
  const streamed = await openai.chat.completions.stream(args).finalChatCompletion();
  assert.equal(streamed.choices[0].message.content, second.choices[0].message.content);
  // Without tools (tool_choice "none") the prompt loses the tool list but keeps the call and its result.
  const none = await openai.chat.completions.create({ ...args, tool_choice: 'none' });
  const plain = await openai.chat.completions.create({ model: NAME, messages: [ask], max_tokens: 1 });
  assert.ok(none.usage.prompt_tokens < second.usage.prompt_tokens);
  assert.ok(none.usage.prompt_tokens > plain.usage.prompt_tokens + 10);
});

test('Anthropic: tool_use and tool_result history (string, blocks, is_error) are answered', async () => {
  const anthropicTool = { name: 'get_weather', description: 'Weather in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } } } };
  const history = [
    { role: 'user', content: 'What is the weather in Paris and Rome?' },
    { role: 'assistant', content: [{ type: 'text', text: 'Checking.' },
      { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Rome' } }] },
    { role: 'user', content: [
      { type: 'tool_result', tool_use_id: 'toolu_1', content: '{"temp": 18}' },
      { type: 'tool_result', tool_use_id: 'toolu_2', is_error: true, content: [{ type: 'text', text: 'timeout' }] },
      { type: 'text', text: 'Go on.' }] }];
  const args = { model: NAME, max_tokens: 6, temperature: 0, tools: [anthropicTool], messages: history };
  const whole = await anthropic.messages.create(args);
  assert.equal(whole.content[0].type, 'text');
  const streamed = await anthropic.messages.stream(args).finalMessage();
  assert.equal(streamed.content[0].text, whole.content[0].text);
  const counted = await anthropic.messages.countTokens({ model: NAME, tools: [anthropicTool], messages: history });
  const plain = await anthropic.messages.countTokens({ model: NAME, messages: [history[0]] });
  assert.ok(counted.input_tokens > plain.input_tokens + 30, 'tools, calls and results are all rendered');
});

test('Anthropic usage: a repeated prompt is read from the cache, not counted as input', async () => {
  const args = { model: NAME, max_tokens: 2, messages: [{ role: 'user', content: 'cache me '.repeat(30) }] };
  const { input_tokens: total } = await anthropic.messages.countTokens({ model: NAME, messages: args.messages });
  await anthropic.messages.create(args);
  const again = await anthropic.messages.create(args);
  assert.ok(again.usage.cache_read_input_tokens >= 16, JSON.stringify(again.usage));
  assert.equal(again.usage.cache_creation_input_tokens, 0);
  assert.equal(again.usage.input_tokens + again.usage.cache_read_input_tokens, total);
  // The same in message_start while streaming.
  const stream = await anthropic.messages.create({ ...args, stream: true });
  let start = null;
  for await (const ev of stream) if (ev.type === 'message_start') start = ev.message.usage;
  assert.ok(start.cache_read_input_tokens >= 16);
  assert.equal(start.input_tokens + start.cache_read_input_tokens, total);
});

test('Models: every --alias answers, GET /v1/models/{id} finds one or 404s', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [NAME, ALIAS]);
  const one = await openai.models.retrieve(ALIAS);
  assert.equal(one.id, ALIAS);
  assert.equal(one.object, 'model');
  await assert.rejects(openai.models.retrieve('no-such-model'), (e) => e instanceof OpenAI.NotFoundError);
  const r = await openai.chat.completions.create({ model: ALIAS, messages: [ask], max_tokens: 2 });
  assert.equal(r.choices.length, 1);
});
