// The README's curl examples, run as written against a live `pensieve serve`: the tiny fixture model is served
// under the alias `demo` (the README's name for the bundled model), and only the address is rewritten to the
// free port the server picked. A README example that stops working fails here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
// PENSIEVE_README_MODEL serves another file instead (scripts/test-cuda.sh: a synthesized 8B model on the GPU).
const MODEL = process.env.PENSIEVE_README_MODEL ??
  `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const README_ADDRESS = 'http://127.0.0.1:8080';
let server, url;

// Every ```sh block of the README whose command starts with `curl`, backslash continuations joined.
function readmeCurlCommands() {
  const text = readFileSync(README, 'utf8');
  const commands = [];
  for (const m of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const command = m[1].replace(/\\\n\s*/g, '').trim();
    if (command.startsWith('curl ')) commands.push(command);
  }
  return commands;
}

function runShell(command) {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { timeout: 60000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  ({ proc: server, url } = await startListening(BIN, ['serve', '--model', MODEL, '--alias', 'demo', '--port', '0',
    '--parallel', '4', '--ctx-size', '512', '--threads', '2', '--quiet']));
});

after(async () => {
  if (server) assert.equal(await stopProcess(server), 0, 'pensieve serve should exit 0 on SIGTERM');
});

// What each endpoint's answer must look like; the README's command names the endpoint and whether it streams.
function checkChat(out, streamed) {
  if (!streamed) {
    const j = JSON.parse(out);
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.model, 'demo');
    assert.equal(typeof j.choices[0].message.content, 'string');
    assert.ok(j.usage.prompt_tokens > 0);
    return;
  }
  const lines = out.split('\n').filter((l) => l.startsWith('data: '));
  assert.equal(lines.at(-1), 'data: [DONE]');
  const chunks = lines.slice(0, -1).map((l) => JSON.parse(l.slice(6)));
  assert.ok(chunks.length >= 2, 'a role chunk and at least a finish chunk');
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(['stop', 'length'].includes(chunks.at(-1).choices[0].finish_reason));
}

function checkMessages(out) {
  const j = JSON.parse(out);
  assert.equal(j.type, 'message');
  assert.equal(j.role, 'assistant');
  assert.equal(j.content[0].type, 'text');
  assert.equal(typeof j.content[0].text, 'string');
  assert.ok(['end_turn', 'max_tokens', 'stop_sequence'].includes(j.stop_reason));
  assert.ok(j.usage.input_tokens > 0);
}

function checkMetrics(out) {
  assert.match(out, /^# HELP pensieve_/m);
  assert.match(out, /^# TYPE pensieve_\w+ (counter|gauge|histogram)$/m);
  // Every sample line is `name{labels} value`.
  for (const line of out.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    assert.match(line, /^[a-zA-Z_:][\w:]*(\{[^}]*\})? \S+$/, `not a Prometheus sample: ${line}`);
  }
}

function checkStatus(out) {
  const j = JSON.parse(out);
  assert.equal(j.status, 'ok');
  assert.equal(j.model, 'demo');
  assert.equal(j.models[0].slots.max_parallel, 4);
}

function checkStats(out) {
  const j = JSON.parse(out);
  assert.equal(j.status, 'ok');
  assert.equal(j.models[0].id, 'demo');
  assert.equal(j.models[0].streams.max_parallel, 4);
  assert.equal(typeof j.totals.tokens_per_second, 'number');
}

function checkOllamaChat(out) {
  const j = JSON.parse(out);
  assert.equal(j.model, 'demo');
  assert.equal(j.message.role, 'assistant');
  assert.equal(typeof j.message.content, 'string');
  assert.equal(j.done, true);
  assert.ok(j.eval_count <= 16);
}

const commands = readmeCurlCommands();

test('the README has curl examples for every endpoint it promises', () => {
  const paths = commands.map((c) => c.match(/8080(\/\S*)/)?.[1]);
  for (const p of ['/v1/chat/completions', '/v1/messages', '/health', '/metrics', '/v1/status', '/v1/stats']) {
    assert.ok(paths.includes(p), `no README curl example for ${p}`);
  }
  assert.ok(commands.some((c) => c.includes('"stream": true')), 'no streaming example');
});

for (const command of commands) {
  test(`README: ${command.slice(0, 90)}`, async () => {
    assert.ok(command.includes(README_ADDRESS), 'README examples use the address make serve prints');
    const { code, stdout, stderr } = await runShell(command.replaceAll(README_ADDRESS, url));
    assert.equal(code, 0, `curl failed: ${stderr}`);
    const path = command.match(/8080(\/\S*)/)[1];
    if (path === '/v1/chat/completions') checkChat(stdout, command.includes('"stream": true'));
    else if (path === '/v1/messages') checkMessages(stdout);
    else if (path === '/health') assert.deepEqual(JSON.parse(stdout), { status: 'ok' });
    else if (path === '/metrics') checkMetrics(stdout);
    else if (path === '/v1/status') checkStatus(stdout);
    else if (path === '/v1/stats') checkStats(stdout);
    else if (path === '/api/chat') checkOllamaChat(stdout);
    else assert.fail(`no expected shape for ${path}: add one to this test`);
  });
}
