// Starting and stopping a server process for the e2e tests: it prints "listening on http://HOST:PORT" once it
// listens; /health says 200 once it is ready.
import { spawn } from 'node:child_process';

// Spawns `bin args...` and resolves with { proc, url } once it listens and its /health answers 200.
// `stderr: 'pipe'` leaves the server's log on proc.stderr for the caller to read.
export async function startListening(bin, args, { stderr = 'inherit' } = {}) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', stderr] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`${bin} exited early (${code})`)));
  });
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${url}/health`).catch(() => null);
    if (r && r.status === 200) return { proc, url };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`${bin} never became ready`);
}

// SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves with the exit code (null if killed).
export async function stopProcess(proc, graceMs = 15000) {
  if (!proc || proc.exitCode !== null) return proc?.exitCode ?? null;
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}
