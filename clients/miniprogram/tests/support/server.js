/**
 * A real kerasserve server for the contract tests: `KERASSERVE_URL` when set, otherwise
 * `python -m kerasserve.service serve` started from the repository root on a free port.
 */
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const REPO_ROOT = path.join(__dirname, '../../../..');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  for (const candidate of ['python3', 'python']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  throw new Error('no python on PATH: set PYTHON to the interpreter that has kerasserve installed');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitReady(baseUrl, timeoutMs, exited, logTail) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`kerasserve exited before it was ready:\n${logTail()}`);
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
    } catch (err) {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`kerasserve not ready after ${timeoutMs / 1000} s:\n${logTail()}`);
}

/**
 * Starts (or reuses) a server. `extraArgs` apply only to a server started here.
 * @returns {Promise<{baseUrl: string, own: boolean, stop: () => Promise<void>}>}
 */
async function startServer(extraArgs = [], readyTimeoutMs = 240000, extraEnv = {}) {
  if (process.env.KERASSERVE_URL) {
    const baseUrl = process.env.KERASSERVE_URL.replace(/\/+$/, '');
    await waitReady(baseUrl, readyTimeoutMs, () => false, () => '');
    return { baseUrl, own: false, stop: async () => {} };
  }
  const port = await freePort();
  const logPath = path.join(os.tmpdir(), `kerasserve-contract-${port}.log`);
  const log = fs.openSync(logPath, 'w');
  const args = ['-m', 'kerasserve.service', 'serve', '--host', '127.0.0.1', '--port', String(port), ...extraArgs];
  const child = spawn(python(), args, {
    cwd: REPO_ROOT,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', PYTHONUNBUFFERED: '1', ...extraEnv },
    stdio: ['ignore', log, log],
  });
  let exitCode = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitCode = code === null ? signal : code;
      resolve();
    });
  });
  const logTail = () => fs.readFileSync(logPath, 'utf8').slice(-4000);
  const stop = async () => {
    if (exitCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30000);
      await exited;
      clearTimeout(killer);
    }
    fs.closeSync(log);
  };
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitReady(baseUrl, readyTimeoutMs, () => exitCode !== null, logTail);
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl, own: true, stop, logTail };
}

module.exports = { startServer, freePort, REPO_ROOT };
