// Builds dist/ (minified ESM) with esbuild, which is a devDependency of the
// repository root (`scripts/setup-node` installs it), and copies the core into
// the demo site (demo/auth.js), which is served as-is with no build step.
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
mkdirSync(dist, { recursive: true });

await build({
  entryPoints: { index: join(here, 'src/index.js'), react: join(here, 'src/react.js') },
  outdir: dist,
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: true,
  target: ['es2020'],
  platform: 'browser',
  external: ['react'],
  legalComments: 'none',
  logLevel: 'warning',
});

// The demo imports ./auth.js: keep it byte-identical to the readable source.
copyFileSync(join(here, 'src/index.js'), join(here, '../../demo/auth.js'));

for (const f of ['index.js', 'react.js']) {
  const p = join(dist, f);
  const gz = gzipSync(readFileSync(p), { level: 9 }).length;
  console.log(`dist/${f}: ${statSync(p).size} bytes, ${gz} gzipped`);
}
