// Entry point of the bundled session peer: load the handler (its init), then loop.
import { initFailed, start } from './runtime.mjs';

let handler;
try {
  ({ handler } = await import('./session.mjs'));
} catch (err) {
  await initFailed(err);
}
await start(handler);
