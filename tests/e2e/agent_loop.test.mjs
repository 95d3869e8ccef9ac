// Agent loops with the official SDKs, on both APIs, streamed and not: a tool call comes out, the SDK sends it
// back with the tool's result, the conversation continues. The fixture models have random weights and never
// write a tool call, so this server's engine is scripted (tests/e2e/scripted_serve.cpp): the HTTP server, the
// API adapters, the tokenizer (Qwen3's) and the chat template (Qwen3's) are the real ones; only the generated
// text is fixed, chosen from the prompt the template rendered. tool_history.test.mjs runs the same history
// through a real model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_SCRIPTED_BIN;
const FIX = process.env.PENSIEVE_FIXTURES_DIR;
const NAME = 'scripted';
let server, openai, anthropic;

before(async () => {
  assert.ok(BIN, 'PENSIEVE_SCRIPTED_BIN must name the scripted server');
  let url;
  ({ proc: server, url } = await startListening(BIN, [`${FIX}/tokenizers/qwen3/tokenizer.json`,
    `${FIX}/templates/Qwen-Qwen3-0.6B/template.jinja`, NAME]));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  // Exit status 0 also says that no sanitizer reported anything (make test-asan / test-tsan run this suite).
  assert.equal(await stopProcess(server, 10000), 0, 'the scripted server should exit 0 on SIGTERM');
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
const anthropicWeatherTool = {
  name: 'get_weather', description: 'Current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const ask = 'What is the weather in Paris?';

test('OpenAI: two-turn agent loop, not streamed', async () => {
  const messages = [{ role: 'user', content: ask }];
  const first = await openai.chat.completions.create({ model: NAME, messages, tools: [weatherTool], tool_choice: 'auto' });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, 'Let me check.');
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });

  messages.push(choice.message);  // as the SDK returned it: content, tool_calls
  messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ temp: 18 }) });
  const second = await openai.chat.completions.create({ model: NAME, messages, tools: [weatherTool] });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'It is 18 degrees in Paris.');
  assert.equal(second.choices[0].message.tool_calls, undefined);
  assert.ok(second.usage.prompt_tokens > first.usage.prompt_tokens);
});

test('OpenAI: two-turn agent loop, streamed; finalChatCompletion() carries the call', async () => {
  const messages = [{ role: 'user', content: ask }];
  const stream = openai.chat.completions.stream({ model: NAME, messages, tools: [weatherTool] });
  let streamedText = '';
  stream.on('content', (delta) => { streamedText += delta; });
  const first = await stream.finalChatCompletion();
  assert.equal(streamedText, 'Let me check.', 'no tool-call markup leaks into the streamed text');
  const msg = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(msg.tool_calls.length, 1);
  assert.equal(msg.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'Paris' });
  assert.match(msg.tool_calls[0].id, /^call_/);

  messages.push(msg);
  messages.push({ role: 'tool', tool_call_id: msg.tool_calls[0].id, content: '{"temp": 18}' });
  const second = await openai.chat.completions.stream({ model: NAME, messages, tools: [weatherTool] }).finalChatCompletion();
  assert.equal(second.choices[0].message.content, 'It is 18 degrees in Paris.');
  assert.equal(second.choices[0].finish_reason, 'stop');
});

test('OpenAI: several calls in one turn, streamed and not, each with its own id', async () => {
  const args = { model: NAME, messages: [{ role: 'user', content: 'Weather in two cities?' }], tools: [weatherTool] };
  const whole = await openai.chat.completions.create(args);
  const streamed = await openai.chat.completions.stream(args).finalChatCompletion();
  for (const r of [whole, streamed]) {
    const calls = r.choices[0].message.tool_calls;
    assert.equal(calls.length, 2);
    assert.deepEqual(calls.map((c) => JSON.parse(c.function.arguments).city), ['Paris', 'Rome']);
    assert.notEqual(calls[0].id, calls[1].id);
  }
  const one = await openai.chat.completions.create({ ...args, parallel_tool_calls: false });
  assert.equal(one.choices[0].message.tool_calls.length, 1);
});

test('OpenAI: tool_choice "none" offers no tools, so no call comes back', async () => {
  const r = await openai.chat.completions.create({ model: NAME, messages: [{ role: 'user', content: ask }],
    tools: [weatherTool], tool_choice: 'none' });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.tool_calls, undefined);
});

test('OpenAI: reasoning_content apart from the content, streamed and not', async () => {
  const args = { model: NAME, messages: [{ role: 'user', content: 'Think first: weather in Paris?' }], tools: [weatherTool] };
  const whole = await openai.chat.completions.create(args);
  assert.equal(whole.choices[0].message.reasoning_content, 'The user wants the weather.');
  assert.equal(whole.choices[0].message.content, 'Let me check.');
  assert.equal(whole.choices[0].message.tool_calls.length, 1);
  const stream = await openai.chat.completions.create({ ...args, stream: true });
  let reasoning = '', content = '';
  for await (const chunk of stream) {
    reasoning += chunk.choices[0]?.delta?.reasoning_content ?? '';
    content += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(reasoning, 'The user wants the weather.');
  assert.equal(content, 'Let me check.');
});

test('Anthropic: two-turn agent loop, not streamed', async () => {
  const messages = [{ role: 'user', content: ask }];
  const first = await anthropic.messages.create({ model: NAME, max_tokens: 200, messages, tools: [anthropicWeatherTool] });
  assert.equal(first.stop_reason, 'tool_use');
  assert.deepEqual(first.content.map((b) => b.type), ['text', 'tool_use']);
  assert.equal(first.content[0].text, 'Let me check.');
  const use = first.content[1];
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'Paris' });
  assert.match(use.id, /^toolu_/);

  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temp": 18}' }] });
  const second = await anthropic.messages.create({ model: NAME, max_tokens: 200, messages, tools: [anthropicWeatherTool] });
  assert.equal(second.stop_reason, 'end_turn');
  assert.deepEqual(second.content, [{ type: 'text', text: 'It is 18 degrees in Paris.' }]);
});

test('Anthropic: two-turn agent loop, streamed; finalMessage() carries the tool_use', async () => {
  const messages = [{ role: 'user', content: ask }];
  const stream = anthropic.messages.stream({ model: NAME, max_tokens: 200, messages, tools: [anthropicWeatherTool] });
  const jsonDeltas = [];
  stream.on('inputJson', (partial) => jsonDeltas.push(partial));
  const first = await stream.finalMessage();
  assert.equal(first.stop_reason, 'tool_use');
  assert.deepEqual(first.content.map((b) => b.type), ['text', 'tool_use']);
  assert.equal(first.content[0].text, 'Let me check.');
  assert.deepEqual(first.content[1].input, { city: 'Paris' });
  assert.ok(jsonDeltas.length >= 1);

  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [
    { type: 'tool_result', tool_use_id: first.content[1].id, content: [{ type: 'text', text: '{"temp": 18}' }] }] });
  const second = await anthropic.messages.stream({ model: NAME, max_tokens: 200, messages, tools: [anthropicWeatherTool] })
    .finalMessage();
  assert.equal(second.content[0].text, 'It is 18 degrees in Paris.');
  assert.equal(second.stop_reason, 'end_turn');
});

test('Anthropic: thinking blocks only when thinking is enabled', async () => {
  const args = { model: NAME, max_tokens: 200, messages: [{ role: 'user', content: 'Think first: weather in Paris?' }],
    tools: [anthropicWeatherTool] };
  const on = await anthropic.messages.stream({ ...args, thinking: { type: 'enabled', budget_tokens: 1024 } }).finalMessage();
  assert.deepEqual(on.content.map((b) => b.type), ['thinking', 'text', 'tool_use']);
  assert.equal(on.content[0].thinking, 'The user wants the weather.');
  const off = await anthropic.messages.create({ ...args, thinking: { type: 'disabled' } });
  assert.deepEqual(off.content.map((b) => b.type), ['text', 'tool_use']);
});

test('Anthropic: disable_parallel_tool_use keeps one call; tool_choice none offers none', async () => {
  const two = { model: NAME, max_tokens: 200, messages: [{ role: 'user', content: 'Weather in two cities?' }],
    tools: [anthropicWeatherTool] };
  const both = await anthropic.messages.create(two);
  assert.equal(both.content.filter((b) => b.type === 'tool_use').length, 2);
  const one = await anthropic.messages.create({ ...two, tool_choice: { type: 'auto', disable_parallel_tool_use: true } });
  assert.equal(one.content.filter((b) => b.type === 'tool_use').length, 1);
  const none = await anthropic.messages.create({ ...two, tool_choice: { type: 'none' } });
  assert.equal(none.stop_reason, 'end_turn');
  assert.deepEqual(none.content.map((b) => b.type), ['text']);
});
