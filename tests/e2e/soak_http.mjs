// A raw HTTP/1.1 client for the soak (soak.mjs): one request per connection, so that a client can do what the
// official clients never do (half-close, stop reading, vanish mid-stream, send garbage) and still read what
// the server answered byte for byte.
import net from 'node:net';

// Splits what a server sent on one `Connection: close` exchange into its final response: interim 1xx
// responses (the server's `102 Processing` while a half-closed client waits) are skipped, chunked bodies decoded.
export function parseResponse(buf) {
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) return null;
    const head = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    at = end + 4;
    if (status >= 100 && status < 200) continue;
    let body = buf.subarray(at);
    if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') body = dechunk(body);
    else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
    return { status, headers, body: body.toString('utf8') };
  }
}

function dechunk(buf) {
  const parts = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

export function requestBytes(method, path, body, extraHeaders = '') {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n` +
    (body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n`) +
    `${extraHeaders}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

// Sends `bytes` on a fresh connection and collects everything until the server closes it. `how` shapes the
// client: halfClose (end our side right after the request), pauseMs (stop reading after the first bytes for
// that long: a slow reader), dropAfterMs / dropOnFirstData (vanish). Resolves with { raw, error, timedOut }.
export function exchange(port, bytes, how = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    let settled = false;
    const finish = (extra = {}) => {
      if (settled) return;
      settled = true;
      clearTimeout(limit);
      socket.destroy();
      resolve({ raw: Buffer.concat(chunks), ...extra });
    };
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      if (how.halfClose) socket.end();
      if (how.dropAfterMs !== undefined) setTimeout(() => finish({ dropped: true }), how.dropAfterMs);
    });
    let paused = false;
    socket.on('data', (d) => {
      chunks.push(d);
      if (how.dropOnFirstData) return finish({ dropped: true });
      if (how.pauseMs && !paused) {
        paused = true;
        socket.pause();
        setTimeout(() => socket.resume(), how.pauseMs);
      }
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (e) => finish({ error: e.code ?? String(e) }));
    const limit = setTimeout(() => finish({ timedOut: true }), how.timeoutMs ?? 120000);
  });
}

// Server-sent events of a body: [{ event, data }] with data parsed as JSON where it is JSON.
export function sseEvents(body) {
  const events = [];
  for (const block of body.split('\n\n')) {
    let event = null;
    let data = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data === null) continue;
    try {
      events.push({ event, data: JSON.parse(data) });
    } catch {
      events.push({ event, data });
    }
  }
  return events;
}
