#!/usr/bin/env node
// A tiny static file server for the exchange hand-off test: serves demo/ on a
// second origin (STATIC_PORT), the way S3/CloudFront or Netlify would serve
// the site when the API lives elsewhere. Its CSP lets the page talk to the API
// origin (API_ORIGIN) and nothing else.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../demo/', import.meta.url));
const port = Number(process.env.STATIC_PORT ?? 9320);
const api = process.env.API_ORIGIN ?? '';
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

http.createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let file = normalize(join(root, path));
  if (!file.startsWith(root.replace(/[/\\]$/, '') + sep) && file !== root) {
    res.writeHead(404).end();
    return;
  }
  if (file.endsWith(sep)) file = join(file, 'index.html');
  try {
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'content-security-policy': `default-src 'self'; connect-src 'self' ${api}; frame-ancestors 'none'`,
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    res.end(body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }
}).listen(port, 'localhost', () => {
  console.log(`static-server ready on http://localhost:${port}`);
});
