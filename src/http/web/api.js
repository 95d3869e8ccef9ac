// Calls to the server's API. The page itself needs no key; when the server was started with --api-key, every
// call carries the key kept in localStorage, and a 401 asks for it (again) and retries.
const KEY_STORAGE = 'pensieve.apiKey';

let askKey = null;  // set by the page: async (reason) => key string
let pendingAsk = null;  // one dialog for all the calls that got a 401 at once

export function onKeyNeeded(fn) { askKey = fn; }
export function storedKey() { return localStorage.getItem(KEY_STORAGE) || ''; }
export function forgetKey() { localStorage.removeItem(KEY_STORAGE); }

function withKey(init = {}) {
  const headers = new Headers(init.headers || {});
  const key = storedKey();
  if (key) headers.set('Authorization', `Bearer ${key}`);
  return { ...init, headers };
}

async function newKey(hadKey) {
  if (!askKey) throw new Error('the server wants an API key');
  if (!pendingAsk) {
    pendingAsk = askKey(hadKey ? 'That key was refused; enter another.' : 'This server needs an API key.')
      .then((key) => { localStorage.setItem(KEY_STORAGE, key); })
      .finally(() => { pendingAsk = null; });
  }
  await pendingAsk;
}

// fetch() with the key; on 401 asks for a key and tries again. Other statuses are returned as they are.
export async function apiFetch(path, init = {}) {
  for (;;) {
    const hadKey = storedKey() !== '';
    const r = await fetch(path, withKey(init));
    if (r.status !== 401) return r;
    await r.body?.cancel();
    await newKey(hadKey);
  }
}

// The message of an API error body (OpenAI or Anthropic shape), or the status line.
export async function errorText(r) {
  const body = await r.text();
  try {
    const j = JSON.parse(body);
    if (j.error?.message) return `${r.status}: ${j.error.message}`;
  } catch { /* not JSON */ }
  return `${r.status} ${r.statusText}`;
}

// Reads a text/event-stream body and calls onData with each event's parsed `data:` JSON; stops at [DONE].
export async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    // Events end with a blank line; servers may use \r\n.
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data === '') continue;
      if (data === '[DONE]') return;
      onData(JSON.parse(data));
    }
  }
}
