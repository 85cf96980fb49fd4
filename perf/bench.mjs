// The benchmark driver behind perf/run: cold start, warm latency and CPU,
// peak memory and package size of the Rust functions against their Node.js
// peers and the bare floors, in one interleaved run.
//
// Every function is its own process started with AWS_LAMBDA_RUNTIME_API
// pointing at its own emulator (perf/emulator.mjs), against one DynamoDB
// Local and the test provider (tests/idp). Measured per function process:
//   init          spawn() to the first GET /invocation/next
//   init CPU      CPU time of the process at that first /next
//   first         latency of the first invocation (event out to response in)
//   warm p50/p99  latency over N warm invocations
//   CPU/inv       /proc/<pid>/stat utime+stime over the warm phase / N, and
//                 the sum of /proc/<pid>/task/*/schedstat run times from
//                 event out to the next /next (ns resolution), as a check
//   peak RSS      VmHWM after the warm phase (cold: after the first invocation)
//   zip           the deployment package, zip -9
// plus the round trips of the same DynamoDB requests and of the provider's
// token endpoint, measured from this process, so the functions' own share of
// the latency shows.
//
// Usage: node perf/bench.mjs [--warm N] [--callback-warm N] [--cold K] [--quick] [--out DIR]
// (perf/run builds everything first and passes its arguments on.)

import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { RuntimeApi, lambdaEnv } from './emulator.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: argv } = parseArgs({
  options: {
    warm: { type: 'string', default: '5000' },
    'callback-warm': { type: 'string', default: '300' },
    cold: { type: 'string', default: '20' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(ROOT, 'target/perf') },
    // Where the Rust binaries come from (a build with symbols, for --profile).
    'bin-dir': { type: 'string', default: path.join(ROOT, 'target/release') },
    // Instead of the benchmark: `perf record` these functions (comma-separated,
    // e.g. rust-session) over the warm invocations, or over K cold starts
    // with --profile-init; reports in OUT/perf-*.txt.
    profile: { type: 'string' },
    'profile-init': { type: 'boolean', default: false },
  },
});
const N_WARM = argv.quick ? 300 : Number(argv.warm);
const N_CALLBACK = argv.quick ? 20 : Number(argv['callback-warm']);
const K_COLD = argv.quick ? 3 : Number(argv.cold);
const WARMUP = Math.min(200, Math.ceil(N_WARM / 10));
const OUT = path.resolve(argv.out);
fs.mkdirSync(OUT, { recursive: true });

const SITE = 'http://localhost:9000'; // the API's origin in events; nothing listens there
const TABLE = 'static-login';
const CLIENT_ID = 'static-site-demo';
const CLIENT_SECRET = 'demo-secret';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const NODE_FLAGS = [
  // What the managed Node.js runtime's bootstrap passes for 128 MB.
  '--expose-gc', '--max-http-header-size=81920', '--max-semi-space-size=6', '--max-old-space-size=116',
];

const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ns = () => process.hrtime.bigint();

// ------------------------------------------------------------------ procfs --

/** utime+stime of the whole process (dead threads included), in ns; 1/CLK_TCK resolution. */
function statCpuNs(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e9) / CLK_TCK;
}

/** Run time of every live thread (schedstat, ns), and the thread ids. */
function schedCpu(pid) {
  let sum = 0;
  const tids = fs.readdirSync(`/proc/${pid}/task`);
  for (const tid of tids) {
    try {
      sum += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch { /* thread ended meanwhile */ }
  }
  return { ns: sum, tids };
}

/** Context switches of the live threads (voluntary + involuntary). */
function contextSwitches(pid) {
  let n = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)[1]) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)[1]);
    } catch { /* thread ended meanwhile */ }
  }
  return n;
}

/** VmHWM and VmRSS in KiB, the anonymous part of RSS (heap, stacks), and the thread count. */
function memory(pid) {
  const kb = (text, k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return { hwm: kb(s, 'VmHWM'), rss: kb(s, 'VmRSS'), anon: kb(rollup, 'Anonymous'), threads: kb(s, 'Threads') };
}

// --------------------------------------------------------- infrastructure --

// Function processes, and the servers' process groups (DynamoDB Local's
// launcher starts java as its own child): whatever is left dies with us.
const children = [];
const groups = [];
process.on('exit', () => {
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  for (const pid of groups) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/** Stops the servers: SIGTERM to each group, then waits (at most 10 s). */
async function stopServers() {
  for (const pid of groups) { try { process.kill(-pid, 'SIGTERM'); } catch { /* gone */ } }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && groups.some((pid) => { try { process.kill(-pid, 0); return true; } catch { return false; } })) await sleep(100);
}

async function freePort() {
  const srv = http.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

function startServer(what, args, env, ready) {
  return new Promise((resolve, reject) => {
    const logFile = fs.openSync(path.join(OUT, `${what}.log`), 'w');
    const child = spawn('node', args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', logFile], detached: true });
    groups.push(child.pid);
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready after 90 s (see ${OUT}/${what}.log)`)), 90_000);
    child.stdout.on('data', (d) => {
      buf += d;
      fs.appendFileSync(path.join(OUT, `${what}.log`), d);
      if (buf.includes(ready)) { clearTimeout(timer); resolve(child); }
    });
    child.on('exit', (code) => reject(new Error(`${what} exited (${code}); see ${OUT}/${what}.log`)));
  });
}

// ------------------------------------------------------------------ events --

function apigwEvent({ method = 'GET', path: p, query = '', cookies = [] }) {
  const host = new URL(SITE).host;
  const ua = 'Mozilla/5.0 (bench)';
  const params = query ? Object.fromEntries(new URLSearchParams(query)) : undefined;
  return {
    version: '2.0',
    routeKey: `${method} ${p}`,
    rawPath: p,
    rawQueryString: query,
    ...(cookies.length ? { cookies } : {}),
    headers: { host, 'user-agent': ua, accept: 'application/json', 'x-forwarded-proto': 'https' },
    ...(params ? { queryStringParameters: params } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: host,
      domainPrefix: 'localhost',
      http: { method, path: p, protocol: 'HTTP/1.1', sourceIp: '192.0.2.10', userAgent: ua },
      requestId: crypto.randomUUID(),
      routeKey: `${method} ${p}`,
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

/** The `name=value` part of every Set-Cookie of an API Gateway v2 answer. */
function setCookies(response) {
  const all = [...(response.cookies ?? [])];
  const h = response.multiValueHeaders?.['set-cookie'] ?? [];
  for (const c of h) if (!all.includes(c)) all.push(c);
  return all.map((c) => c.split(';')[0]).filter((c) => !c.endsWith('='));
}

// ------------------------------------------------------- function process --

class Fn {
  constructor(spec, tag) {
    this.spec = spec;
    this.name = `${spec.name}${tag ? `-${tag}` : ''}`;
  }

  async start() {
    this.api = new RuntimeApi({
      functionName: this.spec.name,
      onNext: () => {
        if (this.init) return;
        // First /next: init is over and the process is blocked on us.
        this.init = { ns: Number(this.api.firstNextAt - this.spawnedAt), sched: schedCpu(this.pid).ns, stat: statCpuNs(this.pid), mem: memory(this.pid) };
      },
    });
    const address = await this.api.listen();
    const logFile = fs.openSync(path.join(OUT, `fn-${this.spec.name}.log`), 'a');
    const env = lambdaEnv({ api: address, functionName: this.spec.name, executionEnv: this.spec.executionEnv, extra: this.spec.env });
    this.spawnedAt = ns();
    this.child = spawn(this.spec.cmd, this.spec.args, { env, stdio: ['ignore', logFile, logFile], cwd: this.spec.cwd });
    fs.closeSync(logFile);
    this.pid = this.child.pid;
    children.push(this.child);
    this.exited = new Promise((r) => this.child.on('exit', (code, sig) => r({ code, sig })));
    const first = await Promise.race([this.api.idle().then(() => 'ready'), this.exited]);
    if (first !== 'ready') {
      throw new Error(`${this.name} exited during init (${JSON.stringify(first)}): ${this.api.initError?.body ?? ''} (see ${OUT}/fn-${this.spec.name}.log)`);
    }
    return this;
  }

  /** One invocation; returns latency, the parsed response, CPU from event out to the next /next. */
  async invoke(event) {
    const before = schedCpu(this.pid);
    const r = await Promise.race([this.api.invoke(event), this.exited.then((e) => { throw new Error(`${this.name} died: ${JSON.stringify(e)}`); })]);
    await this.api.idle();
    const after = schedCpu(this.pid);
    // A thread that ended in between took its run time with it: no sample.
    const sameThreads = before.tids.every((t) => after.tids.includes(t));
    let response;
    try { response = JSON.parse(r.body); } catch { response = { raw: r.body }; }
    if (!r.ok) throw new Error(`${this.name}: invocation error ${r.errorType}: ${r.body}`);
    return { latencyNs: Number(r.latencyNs), cpuNs: sameThreads ? after.ns - before.ns : null, response };
  }

  async stop() {
    this.child.kill('SIGKILL');
    await this.exited;
    await this.api.close();
  }
}

// ------------------------------------------------- the provider, as a user --

/** A browser at the IdP: a cookie jar and manual redirects. */
class IdpBrowser {
  jar = new Map();

  async request(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const gone = !value || attrs.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (gone) this.jar.delete(name); else this.jar.set(name, value);
    }
    const body = await res.text();
    const location = res.headers.get('location');
    return { status: res.status, location: location && new URL(location, url).href, body };
  }

  /** Follows the provider from the authorization URL to our redirect URI; returns that URL. */
  async signIn(authorizeUrl, redirectUri) {
    let url = authorizeUrl;
    for (let i = 0; i < 12; i += 1) {
      if (url.startsWith(redirectUri)) return url;
      const r = await this.request(url);
      if (r.location) { url = r.location; continue; }
      if (r.status === 200 && url.includes('/interaction/')) {
        const form = new URLSearchParams({ login: 'alice', password: 'alice-password' });
        const sent = await this.request(`${url.replace(/\/$/, '')}/login`, {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(),
        });
        if (!sent.location) throw new Error(`login form answered ${sent.status}: ${sent.body.slice(0, 200)}`);
        url = sent.location;
        continue;
      }
      throw new Error(`IdP answered ${r.status} at ${url}: ${r.body.slice(0, 200)}`);
    }
    throw new Error('too many redirects at the IdP');
  }
}

// ----------------------------------------------- raw round-trip probes ---

const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: probeAgent,
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One DynamoDB JSON-protocol call (DynamoDB Local checks the header's shape, not the signature). */
async function ddb(endpoint, target, body) {
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  const r = await post(`${endpoint}/`, {
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': `DynamoDB_20120810.${target}`,
    'x-amz-date': date,
    authorization: `AWS4-HMAC-SHA256 Credential=local/${date.slice(0, 8)}/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=${'0'.repeat(64)}`,
  }, JSON.stringify(body));
  if (r.status !== 200 && !r.body.includes('ConditionalCheckFailed')) throw new Error(`DynamoDB ${target}: ${r.status} ${r.body}`);
  return r;
}

const counter = (kind) => ({
  TableName: TABLE,
  Key: { pk: { S: `rate#${kind}#192.0.2.99#${Math.floor(Date.now() / 60000)}` } },
  UpdateExpression: 'ADD #n :one SET #exp = if_not_exists(#exp, :exp)',
  ExpressionAttributeNames: { '#n': 'n', '#exp': 'expires_at' },
  ExpressionAttributeValues: { ':one': { N: '1' }, ':exp': { N: String(Math.floor(Date.now() / 1000) + 120) } },
  ReturnValues: 'UPDATED_NEW',
});

/** The session function's round trip: the counter and the revocation read, concurrently. */
async function probeSessionDynamo(endpoint) {
  const keys = ['revoked#probe', 'revoked-sub#probe', 'revoked-sid#probe'].map((k) => ({ pk: { S: k } }));
  const t0 = ns();
  await Promise.all([
    ddb(endpoint, 'UpdateItem', counter('session')),
    ddb(endpoint, 'BatchGetItem', { RequestItems: { [TABLE]: { Keys: keys, ConsistentRead: true } } }),
  ]);
  return Number(ns() - t0);
}

/** The callback's round trip: the counter and the conditional delete of a transaction, concurrently. */
async function probeCallbackDynamo(endpoint) {
  const pk = `login#probe-${crypto.randomBytes(8).toString('hex')}`;
  const exp = Math.floor(Date.now() / 1000) + 60;
  await ddb(endpoint, 'PutItem', { TableName: TABLE, Item: { pk: { S: pk }, data: { S: 'x'.repeat(400) }, expires_at: { N: String(exp) } } });
  const t0 = ns();
  await Promise.all([
    ddb(endpoint, 'UpdateItem', counter('callback')),
    ddb(endpoint, 'DeleteItem', {
      TableName: TABLE,
      Key: { pk: { S: pk } },
      ConditionExpression: 'attribute_exists(#pk) AND #exp > :now',
      ExpressionAttributeNames: { '#pk': 'pk', '#exp': 'expires_at' },
      ExpressionAttributeValues: { ':now': { N: String(exp - 60) } },
      ReturnValues: 'ALL_OLD',
    }),
  ]);
  return Number(ns() - t0);
}

/** The provider's token call: a login of our own, then the timed code exchange. */
async function probeToken(idp, meta, redirectUri) {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const url = new URL(meta.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID, response_type: 'code', redirect_uri: redirectUri, scope: 'openid profile email offline_access',
    state: crypto.randomBytes(16).toString('base64url'), nonce: crypto.randomBytes(16).toString('base64url'),
    code_challenge: challenge, code_challenge_method: 'S256',
  }).toString();
  const back = new URL(await idp.signIn(url.href, redirectUri));
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: verifier,
  }).toString();
  const t0 = ns();
  const r = await post(meta.token_endpoint, {
    'content-type': 'application/x-www-form-urlencoded',
    authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
  }, body);
  const t = Number(ns() - t0);
  if (r.status !== 200) throw new Error(`token probe: ${r.status} ${r.body}`);
  return t;
}

/** Flat profiles (by shared object, and by symbol) of perf.data files into one text file. */
function perfReport(files, out) {
  const parts = [];
  for (const file of files) {
    for (const sort of ['dso', 'dso,sym']) {
      parts.push(`## ${path.basename(file)} by ${sort}\n`);
      parts.push(execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-g', 'none', '--percent-limit', '0.3', '--sort', sort],
        { maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'ignore'] }).toString());
    }
  }
  fs.writeFileSync(out, parts.join('\n'));
}

// --------------------------------------------------------------- statistics --

function pct(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const median = (xs) => pct(xs, 50);
function shuffle(xs) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i -= 1) {
    const j = crypto.randomInt(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// -------------------------------------------------------------------- main --

async function main() {
  // A binary missing from --bin-dir comes from target/release.
  const binary = (name) => [path.resolve(argv['bin-dir']), path.join(ROOT, 'target/release')]
    .map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
  const build = path.join(ROOT, 'target/perf/build');
  for (const f of ['session', 'callback', 'authorize', 'hello']) {
    if (!binary(f)) throw new Error(`target/release/${f} is missing: run perf/run (it builds the release binaries)`);
  }

  log('starting DynamoDB Local and the test provider...');
  const [dynamoPort, idpPort] = [await freePort(), await freePort()];
  const redirectUri = `${SITE}/auth/callback`;
  const issuer = `http://127.0.0.1:${idpPort}`;
  const endpoint = `http://127.0.0.1:${dynamoPort}`;
  await Promise.all([
    startServer('dynamodb', ['scripts/dynamodb-local.mjs', '--port', String(dynamoPort), '--create-table', TABLE], {}, 'dynamodb-local ready'),
    startServer('idp', ['tests/idp/server.mjs'], {
      IDP_PORT: String(idpPort), IDP_ISSUER: issuer, IDP_REDIRECT_URIS: redirectUri, IDP_POST_LOGOUT_REDIRECT_URIS: `${SITE}/`,
    }, 'idp ready'),
  ]);
  const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();

  // The functions' configuration (README), with limits no benchmark reaches.
  const limits = Object.fromEntries(['LOGIN', 'CALLBACK', 'SESSION', 'EXCHANGE', 'REFRESH', 'LOGOUT', 'BACKCHANNEL']
    .map((c) => [`RATE_LIMIT_${c}_PER_WINDOW`, '100000000']));
  const common = {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    OIDC_ISSUER: issuer,
    OIDC_CLIENT_ID: CLIENT_ID,
    OIDC_REDIRECT_URI: redirectUri,
    TABLE_NAME: TABLE,
    ...limits,
  };
  const rustEnv = (secret) => ({
    ...common,
    ...(secret ? { OIDC_CLIENT_SECRET: CLIENT_SECRET } : {}),
    ALLOWED_ORIGINS: SITE,
    POST_LOGOUT_REDIRECT_URI: `${SITE}/`,
    COOKIE_KEYS: crypto.randomBytes(32).toString('base64'),
    RUST_LOG: 'info',
  });
  const nodeEnv = (secret) => ({
    ...common,
    ...(secret ? { OIDC_CLIENT_SECRET: CLIENT_SECRET } : {}),
    SESSION_KEY: crypto.randomBytes(32).toString('base64url'),
    NODE_ENV: 'production',
  });
  // One key per implementation, shared by its functions (cookies cross them).
  const rustCfg = rustEnv(true);
  const nodeCfg = nodeEnv(true);
  const rust = (name, env) => ({
    name: `rust-${name}`, impl: 'rust', role: name, cmd: binary(name), args: [], env, bin: binary(name),
  });
  // With --profile, V8 writes /tmp/perf-PID.map so perf can name JIT frames.
  const nodeFlags = argv.profile ? [...NODE_FLAGS, '--perf-basic-prof'] : NODE_FLAGS;
  const node = (name, env) => ({
    name: `node-${name}`, impl: 'node', role: name, cmd: process.execPath, args: [...nodeFlags, path.join(build, name, 'index.mjs')],
    env, executionEnv: 'AWS_Lambda_nodejs20.x', bundle: path.join(build, name, 'index.mjs'),
  });
  // As deployed: only the functions that call the token endpoint get the secret.
  const { OIDC_CLIENT_SECRET: _r, ...rustNoSecret } = rustCfg;
  const { OIDC_CLIENT_SECRET: _n, ...nodeNoSecret } = nodeCfg;
  const specs = {
    'rust-session': rust('session', rustNoSecret),
    'node-session': node('session', nodeNoSecret),
    'rust-callback': rust('callback', rustCfg),
    'node-callback': node('callback', nodeCfg),
    'rust-hello': rust('hello', {}),
    'node-hello': node('hello', {}),
    'rust-authorize': rust('authorize', rustNoSecret),
    'node-authorize': node('authorize', nodeCfg),
  };

  const idp = new IdpBrowser();
  // Starts a login at an authorize function and completes it at the provider:
  // the callback event, with the browser binding cookie.
  async function login(authorize) {
    const r = await authorize.invoke(apigwEvent({ path: '/auth/login', query: 'return_to=%2Fwelcome' }));
    const { response } = r;
    // The authorize functions only serve logins, warm; their figures come from these calls.
    const h = (results[authorize.spec.name].helper ??= { lat: [], cpu: [] });
    h.lat.push(r.latencyNs);
    if (r.cpuNs !== null) h.cpu.push(r.cpuNs);
    if (response.statusCode !== 302) throw new Error(`${authorize.name} answered ${response.statusCode}: ${response.body}`);
    const location = response.headers.location ?? response.headers.Location;
    const back = new URL(await idp.signIn(location, redirectUri));
    return apigwEvent({ path: '/auth/callback', query: back.search.slice(1), cookies: setCookies(response).filter((c) => c.startsWith('__Host-login=')) });
  }
  const expect = (name, r, status) => {
    if (r.response.statusCode !== status) throw new Error(`${name} answered ${r.response.statusCode} (want ${status}): ${JSON.stringify(r.response).slice(0, 400)}`);
    return r;
  };

  // Long-lived instances: the warm phase, and the helpers that start logins.
  log('starting the warm instances...');
  const warm = {};
  for (const key of Object.keys(specs)) warm[key] = await new Fn(specs[key], 'warm').start();
  const results = Object.fromEntries(Object.keys(specs).map((k) => [k, { cold: [], warm: {} }]));
  for (const [k, f] of Object.entries(warm)) results[k].warmInit = f.init;

  // A real login through each callback gives each implementation its session cookies.
  const sessionCookies = {};
  for (const impl of ['rust', 'node']) {
    const r = expect(`${impl}-callback`, await warm[`${impl}-callback`].invoke(await login(warm[`${impl}-authorize`])), 302);
    results[`${impl}-callback`].warmFirst = r;
    sessionCookies[impl] = setCookies(r.response).filter((c) => !c.startsWith('__Host-login='));
    log(`${impl} session cookies: ${sessionCookies[impl].map((c) => `${c.split('=')[0]} (${c.length} B)`).join(', ')}`);
  }
  const sessionEvent = (impl) => apigwEvent({ path: '/auth/session', cookies: sessionCookies[impl] });
  const helloEvent = () => apigwEvent({ path: '/hello' });
  const eventFor = async (key) => {
    const [impl, role] = key.split('-');
    if (role === 'session') return sessionEvent(impl);
    if (role === 'callback') return login(warm[`${impl}-authorize`]);
    return helloEvent();
  };
  const statusFor = (key) => (key.endsWith('-callback') ? 302 : 200);

  if (argv.profile) {
    for (const key of argv.profile.split(',')) {
      if (!specs[key]) throw new Error(`--profile: no function ${key} (one of ${Object.keys(specs).join(', ')})`);
      const data = path.join(OUT, `perf-${key}${argv['profile-init'] ? '-init' : ''}.data`);
      if (argv['profile-init']) {
        // K cold starts, each under perf record (init and first invocation).
        const reports = [];
        for (let i = 0; i < K_COLD; i += 1) {
          const event = await eventFor(key);
          const file = `${data}.${i}`;
          const spec = { ...specs[key], cmd: 'perf', args: ['record', '-q', '-F', '20000', '-g', '-o', file, '--', specs[key].cmd, ...specs[key].args] };
          const fn = await new Fn(spec, `prof${i}`).start();
          expect(key, await fn.invoke(event), statusFor(key));
          fn.child.kill('SIGINT'); // perf stops the function and writes its data
          await fn.exited;
          await fn.api.close();
          reports.push(file);
        }
        perfReport(reports, path.join(OUT, `perf-${key}-init.txt`));
      } else {
        const fn = warm[key];
        for (let i = 0; i < WARMUP; i += 1) expect(key, await fn.invoke(await eventFor(key)), statusFor(key));
        const rec = spawn('perf', ['record', '-q', '-F', '20000', '-g', '-o', data, '-p', String(fn.pid)], { stdio: 'inherit' });
        await sleep(500);
        for (let i = 0; i < N_WARM; i += 1) expect(key, await fn.invoke(await eventFor(key)), statusFor(key));
        rec.kill('SIGINT');
        await new Promise((r) => rec.on('exit', r));
        perfReport([data], path.join(OUT, `perf-${key}.txt`));
      }
      log(`profile of ${key}: ${OUT}/perf-${key}${argv['profile-init'] ? '-init' : ''}.txt`);
    }
    for (const f of Object.values(warm)) await f.stop();
    await stopServers();
    return;
  }

  // ---------------------------------------------------------------- cold --
  const coldKeys = ['rust-session', 'node-session', 'rust-callback', 'node-callback', 'rust-hello', 'node-hello'];
  log(`cold starts: ${K_COLD} rounds of ${coldKeys.length} functions...`);
  for (let round = 0; round < K_COLD; round += 1) {
    for (const key of shuffle(coldKeys)) {
      const event = await eventFor(key);
      const fn = await new Fn(specs[key], `cold${round}`).start();
      const r = expect(key, await fn.invoke(event), statusFor(key));
      const mem = memory(fn.pid);
      results[key].cold.push({
        initNs: fn.init.ns, initSchedNs: fn.init.sched, initStatNs: fn.init.stat, initHwmKb: fn.init.mem.hwm,
        firstNs: r.latencyNs, firstCpuNs: r.cpuNs, hwmKb: mem.hwm, threads: mem.threads,
      });
      await fn.stop();
    }
    log(`  round ${round + 1}/${K_COLD}`);
  }

  // ---------------------------------------------------------------- warm --
  async function warmPhase(keys, n, warmup, probes) {
    const events = {};
    for (const key of keys) {
      for (let i = 0; i < warmup; i += 1) expect(key, await warm[key].invoke(await eventFor(key)), statusFor(key));
      results[key].warm.stat0 = statCpuNs(warm[key].pid);
      results[key].warm.ctx0 = contextSwitches(warm[key].pid);
      results[key].warm.lat = [];
      results[key].warm.cpu = [];
      events[key] = key.endsWith('-callback') ? null : await eventFor(key);
    }
    const probeTimes = Object.fromEntries(Object.keys(probes).map((p) => [p, []]));
    for (let i = 0; i < n; i += 1) {
      // Callback events need a fresh login each; prepare them before the round.
      const prepared = {};
      for (const key of keys) prepared[key] = events[key] ?? await eventFor(key);
      for (const key of shuffle([...keys, ...Object.keys(probes)])) {
        if (probes[key]) { probeTimes[key].push(await probes[key]()); continue; }
        const r = expect(key, await warm[key].invoke(prepared[key]), statusFor(key));
        results[key].warm.lat.push(r.latencyNs);
        if (r.cpuNs !== null) results[key].warm.cpu.push(r.cpuNs);
      }
      if ((i + 1) % Math.max(1, Math.floor(n / 10)) === 0) log(`  ${i + 1}/${n}`);
    }
    for (const key of keys) {
      const w = results[key].warm;
      w.n = w.lat.length;
      w.statCpuPerInvNs = (statCpuNs(warm[key].pid) - w.stat0) / w.n;
      w.ctxPerInv = (contextSwitches(warm[key].pid) - w.ctx0) / w.n;
      w.mem = memory(warm[key].pid);
    }
    return probeTimes;
  }

  log(`warm session and floors: ${N_WARM} interleaved rounds...`);
  const sessionProbes = await warmPhase(['rust-session', 'node-session', 'rust-hello', 'node-hello'], N_WARM, WARMUP, {
    'dynamo-session': () => probeSessionDynamo(endpoint),
  });
  log(`warm callback: ${N_CALLBACK} interleaved rounds (each with fresh logins)...`);
  const callbackProbes = await warmPhase(['rust-callback', 'node-callback'], N_CALLBACK, 10, {
    'dynamo-callback': () => probeCallbackDynamo(endpoint),
    'idp-token': () => probeToken(idp, meta, redirectUri),
  });
  for (const key of Object.keys(warm)) results[key].mem = memory(warm[key].pid);
  for (const f of Object.values(warm)) await f.stop();
  await stopServers();

  // ---------------------------------------------------------------- sizes --
  const zipDir = fs.mkdtempSync(path.join(os.tmpdir(), 'perf-zip-'));
  for (const [key, spec] of Object.entries(specs)) {
    const dir = path.join(zipDir, key);
    fs.mkdirSync(dir);
    const file = spec.bin ? 'bootstrap' : 'index.mjs';
    fs.copyFileSync(spec.bin ?? spec.bundle, path.join(dir, file));
    execFileSync('zip', ['-q', '-9', '-X', 'package.zip', file], { cwd: dir });
    results[key].size = { raw: fs.statSync(path.join(dir, file)).size, zip: fs.statSync(path.join(dir, 'package.zip')).size };
  }
  fs.rmSync(zipDir, { recursive: true, force: true });

  // --------------------------------------------------------------- report --
  const summary = {};
  for (const [key, r] of Object.entries(results)) {
    const c = r.cold;
    if (r.helper && !r.warm.lat) Object.assign(r.warm, { lat: r.helper.lat, cpu: r.helper.cpu, n: r.helper.lat.length });
    summary[key] = {
      initMs: median(c.map((x) => x.initNs)) / 1e6,
      initCpuMs: median(c.map((x) => x.initSchedNs)) / 1e6,
      firstMs: median(c.map((x) => x.firstNs)) / 1e6,
      firstCpuMs: median(c.map((x) => x.firstCpuNs).filter((x) => x !== null)) / 1e6,
      coldHwmMb: Math.max(...c.map((x) => x.hwmKb), -Infinity) / 1024,
      warmN: r.warm.n,
      p50Ms: pct(r.warm.lat ?? [], 50) / 1e6,
      p99Ms: pct(r.warm.lat ?? [], 99) / 1e6,
      cpuUs: r.warm.statCpuPerInvNs / 1e3,
      cpuSchedUs: mean(r.warm.cpu ?? []) / 1e3,
      cpuSchedP50Us: pct(r.warm.cpu ?? [], 50) / 1e3,
      ctxPerInv: r.warm.ctxPerInv,
      peakRssMb: r.mem.hwm / 1024,
      rssMb: r.mem.rss / 1024,
      anonMb: r.mem.anon / 1024,
      threads: r.mem.threads,
      zipMb: r.size.zip / 2 ** 20,
      rawMb: r.size.raw / 2 ** 20,
    };
  }
  const rtt = {};
  for (const [k, xs] of Object.entries({ ...sessionProbes, ...callbackProbes })) {
    rtt[k] = { n: xs.length, p50Ms: pct(xs, 50) / 1e6, p99Ms: pct(xs, 99) / 1e6 };
  }
  const machine = {
    cpu: os.cpus()[0]?.model, cores: os.cpus().length, memGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(), node: process.version,
    rustc: execFileSync('rustc', ['--version']).toString().trim(),
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    date: new Date().toISOString(),
    nWarm: N_WARM, nCallback: N_CALLBACK, kCold: K_COLD,
  };
  const report = { machine, summary, rtt, raw: results };
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(report, (k, v) => (typeof v === 'bigint' ? Number(v) : v), 1));
  const md = renderTable(summary, rtt, machine);
  fs.writeFileSync(path.join(OUT, 'table.md'), md);
  process.stdout.write(md);
}

// ------------------------------------------------------------------ table --

const f1 = (x) => {
  if (!Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 1 || x === 0) return x.toFixed(Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return x.toPrecision(2);
};
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}x` : '-');

export function renderTable(s, rtt, m) {
  const rows = [
    ['init (ms)', 'initMs'], ['init CPU (ms)', 'initCpuMs'], ['first invocation (ms)', 'firstMs'],
    ['first invocation CPU (ms)', 'firstCpuMs'], ['warm p50 (ms)', 'p50Ms'], ['warm p99 (ms)', 'p99Ms'],
    ['CPU per warm invocation (µs), /proc/pid/stat', 'cpuUs'], ['CPU per warm invocation (µs), schedstat', 'cpuSchedUs'],
    ['context switches per warm invocation', 'ctxPerInv'], ['threads', 'threads'],
    ['peak RSS, VmHWM (MiB)', 'peakRssMb'], ['RSS at the end (MiB)', 'rssMb'], ['of which anonymous: heap, stacks (MiB)', 'anonMb'], ['package, zip -9 (MiB)', 'zipMb'], ['package unzipped (MiB)', 'rawMb'],
  ];
  const lines = [];
  for (const role of ['session', 'callback']) {
    lines.push(`\n### ${role}\n`);
    lines.push('| figure | Rust | Node.js peer | Rust / peer | Rust floor (lambda_http hello) | Rust / floor | Node.js floor |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    const r = s[`rust-${role}`];
    const n = s[`node-${role}`];
    const h = s['rust-hello'];
    const nh = s['node-hello'];
    for (const [label, k] of rows) {
      lines.push(`| ${label} | ${f1(r[k])} | ${f1(n[k])} | ${ratio(r[k], n[k])} | ${f1(h[k])} | ${ratio(r[k], h[k])} | ${f1(nh[k])} |`);
    }
  }
  lines.push('\n### Targets (reported, not asserted)\n');
  lines.push('| target | session | callback |');
  lines.push('|---|---|---|');
  const check = (label, f, limit, fmt = (x) => `${x.toFixed(3)}x`) => {
    const cell = (role) => {
      const v = f(role);
      return Number.isFinite(v) ? `${fmt(v)} ${v <= limit ? 'met' : '**missed**'}` : '-';
    };
    lines.push(`| ${label} | ${cell('session')} | ${cell('callback')} |`);
  };
  const vs = (k, other) => (role) => s[`rust-${role}`][k] / s[other === 'peer' ? `node-${role}` : 'rust-hello'][k];
  check('init <= 1/10 of the peer', vs('initMs', 'peer'), 0.1);
  check('CPU per warm invocation <= 1/5 of the peer', vs('cpuUs', 'peer'), 0.2);
  check('peak RSS <= 1/8 of the peer', vs('peakRssMb', 'peer'), 0.125);
  check('init <= 2x the lambda_http floor', vs('initMs', 'floor'), 2);
  check('peak RSS <= 2x the lambda_http floor', vs('peakRssMb', 'floor'), 2);
  check('zipped bootstrap < 4 MiB', (role) => s[`rust-${role}`].zipMb, 4, (x) => `${x.toFixed(2)} MiB`);

  lines.push('\n### Round trips the functions wait on (measured from the benchmark process)\n');
  lines.push('| round trip | p50 (ms) | p99 (ms) | n |');
  lines.push('|---|---:|---:|---:|');
  const label = {
    'dynamo-session': 'DynamoDB: counter UpdateItem + revocation BatchGetItem, concurrently (session)',
    'dynamo-callback': 'DynamoDB: counter UpdateItem + transaction DeleteItem, concurrently (callback)',
    'idp-token': 'provider token endpoint (code exchange, callback)',
  };
  for (const [k, v] of Object.entries(rtt)) lines.push(`| ${label[k] ?? k} | ${f1(v.p50Ms)} | ${f1(v.p99Ms)} | ${v.n} |`);
  const own = (key, waits) => f1(s[key].p50Ms - waits.reduce((a, w) => a + (rtt[w]?.p50Ms ?? 0), 0));
  lines.push('\n| warm p50 minus the round trips (ms) | Rust | Node.js peer |');
  lines.push('|---|---:|---:|');
  lines.push(`| session (minus the DynamoDB round trip) | ${own('rust-session', ['dynamo-session'])} | ${own('node-session', ['dynamo-session'])} |`);
  lines.push(`| callback (minus DynamoDB and token round trips) | ${own('rust-callback', ['dynamo-callback', 'idp-token'])} | ${own('node-callback', ['dynamo-callback', 'idp-token'])} |`);
  lines.push(`\n${m.cpu}, ${m.cores} cores, ${m.memGb} GB, Linux ${m.kernel}, ${m.rustc}, Node.js ${m.node}; load average at the end ${m.loadavg}; `
    + `${m.kCold} cold starts per function, ${m.nWarm} warm session/floor rounds, ${m.nCallback} warm callback rounds; ${m.date}.\n`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(() => process.exit(0), (err) => { log(`bench: ${err.stack ?? err}`); process.exit(1); });
}
