// A local Lambda Runtime API: the small HTTP API a custom runtime polls
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), so an
// unmodified `bootstrap` (or a Node.js runtime loop) runs exactly as in
// Lambda: start it with AWS_LAMBDA_RUNTIME_API=<address> and it calls
//
//   GET  /2018-06-01/runtime/invocation/next          long poll; answers one event with
//        Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms,
//        Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id
//   POST /2018-06-01/runtime/invocation/<id>/response  the handler's result   -> 202
//   POST /2018-06-01/runtime/invocation/<id>/error     an invocation error    -> 202
//   POST /2018-06-01/runtime/init/error                 init failed            -> 202
//
// One RuntimeApi per function process, as Lambda gives each execution
// environment its own. Invocations are delivered one at a time, in order.
// Times are process.hrtime.bigint() nanoseconds, taken where the bytes
// leave (event written) and arrive (response fully read), so the latency of
// an invocation is the function's whole turn, runtime client included.
//
// Hooks let a benchmark look at the process at the exact moments it is idle:
// `onNext(t)` runs synchronously when a /next request arrives (the runtime
// is then blocked waiting for work), before any queued event is answered.

import crypto from 'node:crypto';
import http from 'node:http';

const PREFIX = '/2018-06-01/runtime';
const ACCOUNT = '123456789012';

function traceId() {
  const epoch = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return `Root=1-${epoch}-${crypto.randomBytes(12).toString('hex')};`
    + `Parent=${crypto.randomBytes(8).toString('hex')};Sampled=0`;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export class RuntimeApi {
  /**
   * @param {object} o
   * @param {string} o.functionName
   * @param {string} [o.region]
   * @param {number} [o.timeoutMs] the function timeout (deadline header)
   * @param {(t: bigint) => void} [o.onNext] called as each /next arrives
   */
  constructor({ functionName, region = 'us-east-1', timeoutMs = 10_000, onNext } = {}) {
    this.functionName = functionName;
    this.arn = `arn:aws:lambda:${region}:${ACCOUNT}:function:${functionName}`;
    this.timeoutMs = timeoutMs;
    this.onNext = onNext ?? (() => {});
    this.queue = []; // events waiting for a /next
    this.parked = null; // a /next response waiting for an event
    this.inflight = new Map(); // request id -> { resolve, dispatchedAt }
    this.nextWaiters = []; // resolvers of idle()
    this.firstNextAt = null;
    this.nextCount = 0;
    this.initError = null;
    this.server = http.createServer({ noDelay: true, keepAlive: true }, (req, res) => {
      this.#route(req, res).catch((err) => reply(res, 500, { errorMessage: String(err), errorType: 'EmulatorError' }));
    });
    // A /next may wait a long time for work: no server-side timeouts.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 0;
    this.server.keepAliveTimeout = 0;
    this.server.timeout = 0;
  }

  /** Listens on 127.0.0.1 (port 0: any free one); resolves to "127.0.0.1:PORT". */
  listen(port = 0) {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.address = `127.0.0.1:${this.server.address().port}`;
        resolve(this.address);
      });
    });
  }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Delivers one event. Resolves when the function posted its response (or
   * error) with { ok, status, body, dispatchedAt, completedAt, latencyNs }.
   */
  invoke(event) {
    return new Promise((resolve) => {
      this.queue.push({ payload: JSON.stringify(event), resolve });
      this.#dispatch();
    });
  }

  /** Resolves when the runtime next waits on /next (the function is idle). */
  idle() {
    if (this.parked) return Promise.resolve(this.parkedAt);
    return new Promise((resolve) => this.nextWaiters.push(resolve));
  }

  #dispatch() {
    if (!this.parked || this.queue.length === 0) return;
    const res = this.parked;
    this.parked = null;
    const { payload, resolve } = this.queue.shift();
    const id = crypto.randomUUID();
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      'lambda-runtime-aws-request-id': id,
      'lambda-runtime-deadline-ms': String(Date.now() + this.timeoutMs),
      'lambda-runtime-invoked-function-arn': this.arn,
      'lambda-runtime-trace-id': traceId(),
    });
    res.end(payload);
    this.inflight.set(id, { resolve, dispatchedAt: process.hrtime.bigint() });
  }

  async #route(req, res) {
    const path = req.url.split('?')[0];
    if (!path.startsWith(PREFIX)) return reply(res, 404, { errorMessage: 'not found', errorType: 'NotFound' });
    const rest = path.slice(PREFIX.length);

    if (req.method === 'GET' && rest === '/invocation/next') {
      const t = process.hrtime.bigint();
      this.nextCount += 1;
      if (this.firstNextAt === null) this.firstNextAt = t;
      this.onNext(t);
      this.parked = res;
      this.parkedAt = t;
      for (const w of this.nextWaiters.splice(0)) w(t);
      res.on('close', () => { if (this.parked === res) this.parked = null; });
      this.#dispatch();
      return undefined;
    }

    const m = /^\/invocation\/([^/]+)\/(response|error)$/.exec(rest);
    if (req.method === 'POST' && m) {
      const body = await readBody(req);
      const completedAt = process.hrtime.bigint();
      const pending = this.inflight.get(m[1]);
      if (!pending) return reply(res, 400, { errorMessage: 'Invalid request ID', errorType: 'InvalidRequestID' });
      this.inflight.delete(m[1]);
      reply(res, 202, { status: 'OK' });
      pending.resolve({
        ok: m[2] === 'response',
        errorType: req.headers['lambda-runtime-function-error-type'],
        body: body.toString('utf8'),
        dispatchedAt: pending.dispatchedAt,
        completedAt,
        latencyNs: completedAt - pending.dispatchedAt,
      });
      return undefined;
    }

    if (req.method === 'POST' && rest === '/init/error') {
      const body = await readBody(req);
      this.initError = { errorType: req.headers['lambda-runtime-function-error-type'], body: body.toString('utf8') };
      return reply(res, 202, { status: 'OK' });
    }

    return reply(res, 404, { errorMessage: `no route ${req.method} ${rest}`, errorType: 'NotFound' });
  }
}

/**
 * The environment Lambda gives a function process (the variables the Rust
 * runtime and the AWS SDKs read), plus `extra` (the function's own config).
 */
export function lambdaEnv({ api, functionName, memoryMb = 128, region = 'us-east-1', executionEnv, extra = {} }) {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_LAMBDA_RUNTIME_API: api,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `2026/01/01/[$LATEST]${crypto.randomBytes(16).toString('hex')}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_EXECUTION_ENV: executionEnv ?? 'AWS_Lambda_provided.al2023',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    // Lambda passes the execution role's credentials in the environment.
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SESSION_TOKEN: 'local',
    ...extra,
  };
}

// CLI: node perf/emulator.mjs EVENT.json -- COMMAND [ARGS...]
// Starts COMMAND as a Lambda function against this API, invokes it once with
// the event, prints the response and the timings, and stops it. The
// function's own configuration comes from the current environment.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const sep = process.argv.indexOf('--');
  if (sep < 3 || sep === process.argv.length - 1) {
    process.stderr.write('usage: node perf/emulator.mjs EVENT.json -- COMMAND [ARGS...]\n');
    process.exit(2);
  }
  const event = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const [cmd, ...args] = process.argv.slice(sep + 1);
  const api = new RuntimeApi({ functionName: 'cli' });
  const address = await api.listen();
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...lambdaEnv({ api: address, functionName: 'cli' }) },
  });
  child.on('exit', (code) => {
    if (api.firstNextAt === null) {
      process.stderr.write(`function exited (${code}) before its first /next; init error: ${JSON.stringify(api.initError)}\n`);
      process.exit(1);
    }
  });
  await api.idle();
  const result = await api.invoke(event);
  const ms = (ns) => (Number(ns) / 1e6).toFixed(2);
  process.stdout.write(`${result.body}\n`);
  process.stderr.write(`init ${ms(api.firstNextAt - start)} ms, invocation ${ms(result.latencyNs)} ms (${result.ok ? 'response' : `error ${result.errorType}`})\n`);
  child.kill('SIGKILL');
  await api.close();
}
