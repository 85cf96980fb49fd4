// The Node.js floor: the runtime loop and a handler that does nothing.
export async function handler() {
  return { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'hello', isBase64Encoded: false };
}
