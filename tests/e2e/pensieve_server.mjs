// Starts `pensieve serve` on a free port of 127.0.0.1 for an e2e test file and stops it (SIGTERM must end it
// with exit code 0). Not a test itself: CMake registers only *.test.mjs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

export async function startServer(args) {
  const bin = process.env.PENSIEVE_BIN;
  assert.ok(bin, 'PENSIEVE_BIN must name the pensieve binary');
  const proc = spawn(bin, ['serve', '--port', '0', '--quiet', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`pensieve serve exited early (${code})`)));
  });
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${base}/health`).catch(() => null);
    if (r && r.status === 200) return { proc, base };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error('server never became ready');
}

export async function stopServer(proc) {
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
  const code = await exited;
  clearTimeout(timer);
  assert.equal(code, 0, 'pensieve serve should exit 0 on SIGTERM');
}
