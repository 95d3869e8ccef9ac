// The web page in a real browser: Debian's chromium, headless, driven by playwright-core, against a real
// `pensieve serve` on the tiny fixture model. The page loads, a chat message streams an answer into it, the
// dashboard's numbers move while `pensieve bench` loads the server, and on a server with --api-key the page
// asks for the key (again after a wrong one) and keeps it. Screenshots go to the test's log folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { startListening, stopProcess } from './server_process.mjs';

const BIN = process.env.PENSIEVE_BIN;
const MODEL = `${process.env.PENSIEVE_FIXTURES_DIR}/models/llama3-tiny/llama3-tiny-f32.gguf`;
const CHROMIUM = process.env.PENSIEVE_CHROMIUM || '/usr/bin/chromium';
const LOGS = `${process.env.PENSIEVE_E2E_LOGS || '/tmp/pensieve-e2e-logs'}/web_page`;
let browser;
const servers = [];

const serve = async (...extra) => {
  const s = await startListening(BIN, ['serve', '--model', MODEL, '--alias', 'tiny', '--port', '0', '--parallel', '8',
    '--ctx-size', '512', '--threads', '2', '--device', 'cpu', '--quiet', ...extra]);
  servers.push(s.proc);
  return s.url;
};

before(async () => {
  assert.ok(BIN, 'PENSIEVE_BIN must name the pensieve binary');
  // Not a skip: without the browser this test cannot say anything about the page, so it fails and says why.
  assert.ok(existsSync(CHROMIUM), `no chromium at ${CHROMIUM}: run scripts/install-deps.sh (Debian package "chromium")`);
  mkdirSync(LOGS, { recursive: true });
  console.log(`web page screenshots: ${LOGS}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

after(async () => {
  await browser?.close();
  for (const proc of servers) assert.equal(await stopProcess(proc), 0);
});

// A fresh page (own storage) that fails the test on any script error or CSP violation it reports.
async function openPage(url, problems) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.goto(`${url}/`);
  return { context, page };
}

const number = async (page, selector) => Number((await page.textContent(selector)).replace(/[^0-9.]/g, '') || 'NaN');

test('chat: the page loads, picks the model and streams an answer with token counts and speed', async (t) => {
  const url = await serve();
  const problems = [];
  const { context, page } = await openPage(url, problems);
  await page.waitForSelector('#model option[value="tiny"]', { state: 'attached' });
  await page.waitForFunction(() => document.querySelector('#server-state').textContent === 'ok');
  await page.fill('#system', 'You are terse.');
  await page.fill('#max-tokens', '48');
  // The tiny model writes 48 tokens faster than the page times a rate (it shows none for one burst), so the
  // download is slowed to make the answer arrive over a few hundred milliseconds, as a real model's would.
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 20000, uploadThroughput: -1 });
  await page.fill('#prompt', 'Write a haiku about memory.');
  await page.press('#prompt', 'Enter');
  // While it streams the stop button replaces send; at the end the meta line carries the usage.
  const answer = page.locator('.message.assistant').last();
  await answer.and(page.locator('[data-done="true"]')).waitFor({ timeout: 20000 });
  const body = await answer.locator('.body').textContent();
  assert.ok(body.trim().length > 0, 'the answer has text');
  const meta = await answer.locator('.meta').textContent();
  assert.match(meta, /\d+ prompt \+ \d+ completion tokens/);
  assert.match(meta, /TTFT \d+ ms/);
  assert.match(meta, /[\d.]+ tok\/s/);
  assert.equal(await page.locator('.message.user .body').textContent(), 'Write a haiku about memory.');
  assert.ok(await page.isVisible('#send'));
  await page.screenshot({ path: `${LOGS}/chat.png` });

  // Stop: with the download throttled the answer trickles in; the stop button aborts it and the server frees
  // the sequence (the page's fetch is cancelled, the server sees the disconnect).
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 3000, uploadThroughput: -1 });
  await page.fill('#max-tokens', '400');
  // The tiny model may end an answer after a few tokens, which then arrive whole before the click lands (seen
  // on a loaded machine): such an answer is asked again, and one of the tries must be stopped by the button.
  let stopped = null;
  for (let attempt = 0; attempt < 5 && stopped === null; attempt++) {
    const answers = await page.locator('.message.assistant').count();
    await page.fill('#prompt', 'Tell me a long story.');
    await page.press('#prompt', 'Enter');
    await page.waitForFunction((n) => {
      const all = document.querySelectorAll('.message.assistant .body');
      return all.length === n + 1 && all[n].textContent.length > 0;
    }, answers);
    const answer = page.locator('.message.assistant').last();
    const clicked = await page.click('#stop', { timeout: 2000 }).then(() => true, () => false);
    await answer.and(page.locator('[data-done="true"]')).waitFor({ timeout: 10000 });
    if (clicked) stopped = answer;
  }
  assert.ok(stopped !== null, 'the stop button was visible while an answer streamed');
  assert.match(await stopped.locator('.meta').textContent(), /finish: stopped/);
  assert.ok(await page.isVisible('#send'));
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  let running = -1;
  for (let i = 0; i < 50 && running !== 0; i++) {
    running = (await (await fetch(`${url}/v1/stats`)).json()).models[0].streams.running;
    if (running) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(running, 0, 'nothing is left running on the server');

  // The renderer the answers go through: markup in model text stays text; code blocks and emphasis render.
  const html = await page.evaluate(async () => {
    const { renderMarkdown } = await import('/assets/markdown.js');
    return renderMarkdown('**bold** <img src=x onerror=alert(1)>\n```js\nlet a = "<b>";\n```\n- `x<y`');
  });
  assert.match(html, /<strong>bold<\/strong> &lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /<code class="lang-js">let a = &quot;&lt;b&gt;&quot;;<\/code>/);
  assert.match(html, /<li><code>x&lt;y<\/code><\/li>/);
  assert.doesNotMatch(html, /<img|<b>/);
  // How rendered Markdown looks, for the screenshot: a sample answer placed as the page places answers.
  await page.evaluate(async () => {
    const { renderMarkdown } = await import('/assets/markdown.js');
    const el = document.createElement('article');
    el.className = 'message assistant';
    el.innerHTML = '<div class="who">Assistant</div><div class="body"></div>';
    el.querySelector('.body').innerHTML = renderMarkdown('### Reversing a list\nUse **slicing** or `reversed()`:\n' +
      '```python\nitems = [1, 2, 3]\nprint(items[::-1])\n```\n1. slicing copies\n2. `reversed` is lazy\n> both are *O(n)*');
    document.querySelector('#messages').append(el);
    el.scrollIntoView();
  });
  await page.screenshot({ path: `${LOGS}/chat-markdown.png` });
  assert.deepEqual(problems, []);
  await context.close();
  t.diagnostic(`screenshots in ${LOGS}`);
});

test('dashboard: the numbers move while `pensieve bench` runs against the server', async () => {
  const url = await serve();
  const problems = [];
  const { context, page } = await openPage(url, problems);
  await page.click('#tab-dashboard');
  await page.waitForFunction(() => document.querySelector('#d-models tbody tr'));
  assert.equal(await number(page, '#d-tps'), 0);
  assert.equal(await page.textContent('#d-models tbody tr td:first-child'), 'tiny');
  const generatedCell = '#d-models tbody tr td:last-child';
  assert.equal(await number(page, generatedCell), 0);

  const bench = spawn(BIN, ['bench', '--url', url, '--concurrency', '4', '--requests', '8', '--max-tokens', '48',
    '--prompt-tokens', '16'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const benchDone = new Promise((resolve) => bench.on('exit', resolve));
  // The page polls once a second; tokens/s covers the last few seconds, so it shows the load even if the bench
  // is over by the next poll.
  await page.waitForFunction(() => Number(document.querySelector('#d-tps').textContent) > 0, null, { timeout: 20000 });
  await page.screenshot({ path: `${LOGS}/dashboard.png` });
  assert.equal(await benchDone, 0, 'pensieve bench should succeed');
  await page.waitForFunction((sel) => Number(document.querySelector(sel).textContent.replace(/,/g, '')) >= 8 * 48,
    generatedCell, { timeout: 5000 });
  const ttft = await page.textContent('#d-ttft-p50');
  assert.match(ttft, /^[\d.]+ m?s$/, `TTFT p50 shown: ${ttft}`);
  assert.match(await page.textContent('#d-itl-p95'), /^[\d.]+ m?s$/);
  assert.match(await page.textContent('#d-kv'), /%$/);
  assert.equal(await page.locator('#d-devices tbody tr').count(), 1);
  await page.screenshot({ path: `${LOGS}/dashboard-after.png`, fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
});

test('--api-key: the page asks for the key, asks again after a wrong one, and keeps it', async () => {
  const url = await serve('--api-key', 'open-sesame');
  const problems = [];
  const { context, page } = await openPage(url, problems);
  await page.waitForSelector('#key-dialog[open]');
  await page.screenshot({ path: `${LOGS}/key-dialog.png` });
  await page.fill('#key-input', 'wrong-key');
  await page.press('#key-input', 'Enter');
  await page.waitForFunction(() => /refused/.test(document.querySelector('#key-reason').textContent) &&
    document.querySelector('#key-dialog').open);
  await page.fill('#key-input', 'open-sesame');
  await page.press('#key-input', 'Enter');
  await page.waitForSelector('#model option[value="tiny"]', { state: 'attached' });
  await page.waitForFunction(() => document.querySelector('#server-state').textContent === 'ok');
  assert.equal(await page.evaluate(() => localStorage.getItem('pensieve.apiKey')), 'open-sesame');
  // Kept: a reload does not ask again.
  await page.reload();
  await page.waitForSelector('#model option[value="tiny"]', { state: 'attached' });
  assert.equal(await page.locator('#key-dialog[open]').count(), 0);
  // 401s are expected console errors here (the browser logs failed fetches); nothing else may be.
  assert.deepEqual(problems.filter((p) => !/401/.test(p)), []);
  await context.close();
});
