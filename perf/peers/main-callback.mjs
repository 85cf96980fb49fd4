// Entry point of the bundled callback peer: load the handler (its init), then loop.
import { initFailed, start } from './runtime.mjs';

let handler;
try {
  ({ handler } = await import('./callback.mjs'));
} catch (err) {
  await initFailed(err);
}
await start(handler);
