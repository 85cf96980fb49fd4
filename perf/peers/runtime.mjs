// A minimal Lambda custom-runtime loop for the Node.js peers: poll
// /invocation/next, call the handler, post the response (or the error). The
// same contract as the managed Node.js runtime's loop, without its extras
// (no streaming, no log formatting, no X-Ray), so it costs the peer less than
// the real one would.

import http from 'node:http';

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const BASE = '/2018-06-01/runtime';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const [host, port] = API.split(':');
    const req = http.request({
      host, port, method, path: BASE + path, agent,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function errorBody(err) {
  return JSON.stringify({
    errorType: err?.name ?? 'Error',
    errorMessage: err?.message ?? String(err),
    stackTrace: String(err?.stack ?? '').split('\n').slice(1, 10),
  });
}

/** Reports an init failure (a handler module that threw while loading) and exits. */
export async function initFailed(err) {
  await call('POST', '/init/error', errorBody(err), { 'lambda-runtime-function-error-type': 'Runtime.UnhandledInitError' });
  process.exit(1);
}

/** Runs `handler(event, context)` for every invocation, forever. */
export async function start(handler) {
  for (;;) {
    const next = await call('GET', '/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const deadline = Number(next.headers['lambda-runtime-deadline-ms']);
    process.env._X_AMZN_TRACE_ID = next.headers['lambda-runtime-trace-id'] ?? '';
    const context = {
      awsRequestId: id,
      invokedFunctionArn: next.headers['lambda-runtime-invoked-function-arn'],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      getRemainingTimeInMillis: () => deadline - Date.now(),
    };
    let result;
    try {
      result = await handler(JSON.parse(next.body), context);
    } catch (err) {
      await call('POST', `/invocation/${id}/error`, errorBody(err), { 'lambda-runtime-function-error-type': 'Runtime.HandlerError' });
      continue;
    }
    await call('POST', `/invocation/${id}/response`, JSON.stringify(result ?? null));
  }
}
