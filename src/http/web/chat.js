// The chat: a conversation streamed from POST /v1/chat/completions, with the model, system prompt and sampling
// chosen in the side panel; each answer shows its token counts (the stream's usage chunk), time to first token
// and speed.
import { apiFetch, errorText, readEvents } from './api.js';
import { renderMarkdown } from './markdown.js';

const $ = (id) => document.getElementById(id);
let history = [];  // { role, content } of the finished turns; a new chat starts a new array
let running = null;  // AbortController of the answer being streamed

export async function loadModels() {
  const r = await apiFetch('/v1/models');
  if (!r.ok) throw new Error(await errorText(r));
  const { data } = await r.json();
  const select = $('model');
  const previous = select.value;
  select.replaceChildren(...data.map((m) => new Option(m.id, m.id)));
  if (data.some((m) => m.id === previous)) select.value = previous;
  return data;
}

function addMessage(role) {
  $('empty-hint')?.remove();
  const el = document.createElement('article');
  el.className = `message ${role}`;
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'Assistant';
  const body = document.createElement('div');
  body.className = 'body';
  const meta = document.createElement('div');
  meta.className = 'meta';
  el.append(who, body, meta);
  $('messages').append(el);
  return { el, body, meta };
}

function scrollToEnd() {
  const m = $('messages');
  m.scrollTop = m.scrollHeight;
}

function setRunning(controller) {
  running = controller;
  $('send').hidden = !!controller;
  $('stop').hidden = !controller;
}

function formatStats(s) {
  const parts = [];
  if (s.usage) parts.push(`${s.usage.prompt_tokens} prompt + ${s.usage.completion_tokens} completion tokens`);
  if (s.ttft !== null) parts.push(`TTFT ${(s.ttft * 1000).toFixed(0)} ms`);
  const n = s.usage?.completion_tokens ?? s.chunks;
  // Deltas that arrived in one burst (a buffered or throttled connection) span no time worth a rate.
  if (s.last !== null && s.first !== null && n > 1 && s.last - s.first >= 20) {
    parts.push(`${((n - 1) / ((s.last - s.first) / 1000)).toFixed(1)} tok/s`);
  }
  if (s.finish && s.finish !== 'stop') parts.push(`finish: ${s.finish}`);
  return parts.join(' · ');
}

async function send(text) {
  const user = addMessage('user');
  user.body.textContent = text;  // the user's own text is shown as typed, never as markup
  const conversation = history;  // "New chat" while this streams must not receive its answer
  conversation.push({ role: 'user', content: text });
  const answer = addMessage('assistant');
  answer.el.classList.add('streaming');
  scrollToEnd();

  const system = $('system').value.trim();
  const messages = system ? [{ role: 'system', content: system }, ...conversation] : [...conversation];
  const body = {
    model: $('model').value,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number($('temperature').value),
    top_p: Number($('top-p').value),
    max_tokens: Number($('max-tokens').value) || 512,
  };
  const controller = new AbortController();
  setRunning(controller);
  const stats = { start: performance.now(), first: null, last: null, ttft: null, usage: null, finish: null, chunks: 0 };
  let content = '';
  let frame = 0;
  const paint = () => {
    frame = 0;
    answer.body.innerHTML = renderMarkdown(content);  // renderMarkdown escapes every piece of model text
    answer.meta.textContent = formatStats(stats);
    scrollToEnd();
  };
  try {
    const r = await apiFetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!r.ok) throw new Error(await errorText(r));
    await readEvents(r, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) stats.usage = chunk.usage;
      for (const c of chunk.choices || []) {
        const delta = c.delta?.content || '';
        if (delta) {
          const now = performance.now();
          if (stats.first === null) { stats.first = now; stats.ttft = (now - stats.start) / 1000; }
          stats.last = now;
          stats.chunks++;
          content += delta;
        }
        if (c.finish_reason) stats.finish = c.finish_reason;
      }
      if (!frame) frame = requestAnimationFrame(paint);
    });
  } catch (e) {
    if (e.name === 'AbortError') {
      stats.finish = 'stopped';
    } else {
      const err = document.createElement('div');
      err.className = 'error';
      err.textContent = e.message;
      answer.el.append(err);
    }
  } finally {
    if (frame) cancelAnimationFrame(frame);
    paint();
    answer.el.classList.remove('streaming');
    answer.el.dataset.done = 'true';
    // A turn that produced nothing (an error before any text) is dropped, so the next one is not sent twice.
    if (content) conversation.push({ role: 'assistant', content });
    else conversation.pop();
    setRunning(null);
  }
}

export function setupChat() {
  for (const [input, label] of [['temperature', 'temperature-value'], ['top-p', 'top-p-value']]) {
    const show = () => { $(label).textContent = Number($(input).value).toFixed(2); };
    $(input).addEventListener('input', show);
    show();
  }
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('prompt').value.trim();
    if (!text || running || !$('model').value) return;
    $('prompt').value = '';
    send(text);
  });
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('stop').addEventListener('click', () => running?.abort());
  $('clear-chat').addEventListener('click', () => {
    running?.abort();
    history = [];
    const hint = document.createElement('p');
    hint.className = 'empty';
    hint.id = 'empty-hint';
    hint.textContent = 'Ask something to start.';
    $('messages').replaceChildren(hint);
  });
  // Copy buttons of code blocks (no inline handlers: the page's CSP forbids them).
  $('messages').addEventListener('click', (e) => {
    const button = e.target.closest('button.copy');
    if (!button) return;
    navigator.clipboard?.writeText(button.parentElement.querySelector('code').textContent);
    button.textContent = 'copied';
    setTimeout(() => { button.textContent = 'copy'; }, 1200);
  });
}
