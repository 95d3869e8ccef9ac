// Constrained decoding end to end: the official SDKs against `pensieve serve` on the random-weight fixture
// model. Whatever noise the weights produce, every answer must be valid; validity is judged by Ajv (a JSON
// Schema validator from npm), never by pensieve's own code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import Ajv from 'ajv';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const FIX = process.env.PENSIEVE_FIXTURES_DIR;
const MODEL = `${FIX}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const NAME = 'tiny';
let server, openai, anthropic;
const ajv = new Ajv({ strict: false });

// `pensieve serve ...args` on a free port; stopped by stopServer, which expects exit code 0 on SIGTERM.
async function startServer(args) {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  return startListening(BIN, ['serve', '--port', '0', '--quiet', ...args]);
}
async function stopServer(proc) {
  assert.equal(await stopProcess(proc), 0, 'pensieve serve should exit 0 on SIGTERM');
}

before(async () => {
  let url;
  ({ proc: server, url } = await startServer(['--model', MODEL, '--alias', NAME, '--parallel', '16',
    '--ctx-size', '1024', '--threads', '2']));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 });
});

after(async () => stopServer(server));

const user = (content) => [{ role: 'user', content }];

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 10 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    admin: { type: 'boolean' },
    role: { enum: ['owner', 'editor', 'viewer'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 3 },
    home: { anyOf: [{ $ref: '#/$defs/place' }, { type: 'null' }] },
    score: { type: 'number', minimum: -1, maximum: 1 },
  },
  required: ['name', 'age', 'admin', 'role', 'home'],
  additionalProperties: false,
  $defs: {
    place: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 8 }, zip: { const: 'none' } },
      required: ['city'],
      additionalProperties: false,
    },
  },
};

function assertValid(schema, text) {
  let value;
  assert.doesNotThrow(() => { value = JSON.parse(text); }, `not JSON: ${text}`);
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `invalid against the schema: ${text}\n${JSON.stringify(validate.errors)}`);
  return value;
}

test('OpenAI json_schema: every sampled answer (temperature 1, 16 seeds) validates', async () => {
  const answers = await Promise.all(Array.from({ length: 16 }, (_, seed) => openai.chat.completions.create({
    model: NAME, messages: user(`Describe person number ${seed}`), max_tokens: 800, temperature: 1, seed,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } },
  })));
  const texts = new Set();
  for (const r of answers) {
    const c = r.choices[0];
    assert.equal(c.finish_reason, 'stop', c.message.content);
    assertValid(PERSON, c.message.content);
    texts.add(c.message.content);
  }
  assert.ok(texts.size > 8, 'different seeds should give different documents');
});

test('OpenAI json_schema streamed: the concatenated deltas validate', async () => {
  for (const seed of [101, 102, 103]) {
    const stream = await openai.chat.completions.create({
      model: NAME, messages: user('Stream a person'), max_tokens: 800, temperature: 1, seed, stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON } },
    });
    let text = '', finish = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.equal(finish, 'stop');
    assertValid(PERSON, text);
  }
});

test('OpenAI json_object: answers that end are JSON objects, with n choices', async () => {
  const r = await openai.chat.completions.create({
    model: NAME, messages: user('Any object'), max_tokens: 900, temperature: 1, seed: 5, n: 4,
    response_format: { type: 'json_object' },
  });
  assert.equal(r.choices.length, 4);
  let ended = 0;
  for (const c of r.choices) {
    if (c.finish_reason !== 'stop') continue;  // a free object may nest past max_tokens: nothing to check
    ended += 1;
    const v = assertValid({ type: 'object' }, c.message.content);
    assert.equal(typeof v, 'object');
  }
  assert.ok(ended >= 1, 'at least one free-form object should end within 900 tokens');
});

// A forced call comes back parsed (the fixture has no chat template: the ChatML fallback, Hermes markup).
function openaiCall(choice) {
  assert.ok(choice.message.tool_calls?.length, `not a tool call: ${JSON.stringify(choice.message)}`);
  assert.equal(choice.finish_reason, 'tool_calls');
  const f = choice.message.tool_calls[0].function;
  return { name: f.name, args: JSON.parse(f.arguments) };
}

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['C', 'F'] }, days: { type: 'integer' } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const tools = [
  { type: 'function', function: { name: 'get_weather', parameters: WEATHER, strict: true } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {}, additionalProperties: false } } },
];

test('OpenAI tool_choice forces a call of the named function with valid arguments', async () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = await openai.chat.completions.create({
      model: NAME, messages: user('Weather in Paris?'), max_tokens: 600, temperature: 1, seed, tools,
      parallel_tool_calls: false, tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const call = openaiCall(r.choices[0]);
    assert.equal(call.name, 'get_weather');
    assert.ok(ajv.validate(WEATHER, call.args), JSON.stringify(call.args));
  }
  const any = await openai.chat.completions.create({
    model: NAME, messages: user('Do something'), max_tokens: 600, temperature: 1, seed: 9, tools,
    parallel_tool_calls: false, tool_choice: 'required',
  });
  const call = openaiCall(any.choices[0]);
  assert.ok(['get_weather', 'get_time'].includes(call.name));
});

test('Anthropic tool_choice tool / any force a tool call with valid input', async () => {
  const atools = [{ name: 'get_weather', description: 'weather', input_schema: WEATHER }];
  for (const tool_choice of [{ type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    { type: 'any', disable_parallel_tool_use: true }]) {
    const msg = await anthropic.messages.create({
      model: NAME, max_tokens: 600, temperature: 1, messages: user('Weather?'), tools: atools, tool_choice,
    });
    const use = msg.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(msg.content));
    assert.equal(msg.stop_reason, 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.ok(ajv.validate(WEATHER, use.input), JSON.stringify(use.input));
  }
});

test('a forced call on a Qwen-template model (--chat-template) comes back as tool_calls / tool_use', async () => {
  const { proc, url } = await startServer(['--model', `${FIX}/models/qwen3-tiny/qwen3-tiny-f32.gguf`, '--alias', 'qwen',
    '--chat-template', `${FIX}/templates/Qwen-Qwen3-0.6B/template.jinja`, '--ctx-size', '2048', '--threads', '2']);
  try {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    for (const seed of [1, 2]) {
      const r = await client.chat.completions.create({
        model: 'qwen', messages: user('Weather in Paris?'), max_tokens: 400, temperature: 1, seed, tools,
        tool_choice: 'required', parallel_tool_calls: false,
      });
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'tool_calls', JSON.stringify(c.message));
      assert.equal(c.message.content, null);
      assert.equal(c.message.tool_calls.length, 1);
      const f = c.message.tool_calls[0].function;
      assert.ok(['get_weather', 'get_time'].includes(f.name), f.name);
      const args = JSON.parse(f.arguments);
      if (f.name === 'get_weather') assert.ok(ajv.validate(WEATHER, args), f.arguments);
    }
    // Parallel calls: the random weights may keep calling until max_tokens; the complete ones are parsed.
    const many = await client.chat.completions.create({
      model: 'qwen', messages: user('Weather in Paris?'), max_tokens: 400, temperature: 1, seed: 3, tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    assert.ok(many.choices[0].message.tool_calls?.length >= 1, JSON.stringify(many.choices[0].message));
    for (const tc of many.choices[0].message.tool_calls) {
      assert.equal(tc.function.name, 'get_weather');
      assert.ok(ajv.validate(WEATHER, JSON.parse(tc.function.arguments)), tc.function.arguments);
    }
    const msg = await new Anthropic({ baseURL: url, apiKey: 'unused', maxRetries: 0 }).messages.create({
      model: 'qwen', max_tokens: 400, temperature: 1, messages: user('Weather?'),
      tools: [{ name: 'get_weather', input_schema: WEATHER }],
      tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    });
    assert.equal(msg.stop_reason, 'tool_use', JSON.stringify(msg.content));
    const uses = msg.content.filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 1, JSON.stringify(msg.content));
    assert.equal(uses[0].name, 'get_weather');
    assert.ok(ajv.validate(WEATHER, uses[0].input), JSON.stringify(uses[0].input));
  } finally {
    await stopServer(proc);
  }
});

test('the grammar extension works on both APIs', async () => {
  const grammar = 'root ::= ("yes" | "no") "."';
  const r = await openai.chat.completions.create({ model: NAME, messages: user('?'), max_tokens: 50, grammar });
  assert.match(r.choices[0].message.content, /^(yes|no)\.$/);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const msg = await anthropic.messages.create({ model: NAME, max_tokens: 50, messages: user('?'), grammar });
  assert.match(msg.content[0].text, /^(yes|no)\.$/);
  assert.equal(msg.stop_reason, 'end_turn');
});

test('schemas that cannot be enforced are 400s naming the keyword, in each API\'s error shape', async () => {
  await assert.rejects(openai.chat.completions.create({
    model: NAME, messages: user('x'),
    response_format: { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'string', pattern: '^a' } } },
  }), (e) => e instanceof OpenAI.BadRequestError && /pattern/.test(e.message) &&
    e.param === 'response_format.json_schema.schema');
  await assert.rejects(anthropic.messages.create({
    model: NAME, max_tokens: 5, messages: user('x'), grammar: 'root ::= undefined-rule',
  }), (e) => e instanceof Anthropic.BadRequestError && /undefined-rule/.test(e.message));
  await assert.rejects(anthropic.messages.create({
    model: NAME, max_tokens: 5, messages: user('x'), tool_choice: { type: 'tool', name: 'nope' },
    tools: [{ name: 'get_weather', input_schema: WEATHER }],
  }), (e) => e instanceof Anthropic.BadRequestError && /nope/.test(e.message));
});
