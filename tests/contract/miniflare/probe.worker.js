// The probe worker the Miniflare contract backend runs inside workerd.
//
// POST /call {binding, chain: [[method, args], ...]} performs the chain on env[binding] the way
// Pyodide's FFI would (each step is a JS method call; the last one is awaited) and answers
// {ok: value} or {error: {name, message}}. Values cross as JSON with tags for what JSON cannot carry
// ({"$bytes": base64}, {"$date": ms}, {"$num": "NaN"}, {"$bigint": "..."}, {"$stream": [chunks]},
// {"$undefined": true}); R2 objects and queue batches get their own tags (see encode()).
//
// queue(batch) hands every batch to the Node bridge (the BRIDGE service binding, a function in the
// bridge process), waits for the script the Python test ran on it, and replays that script's
// ack()/retry()/ackAll()/retryAll() calls in order on the real batch before returning or throwing.

function b64encode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function b64decode(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function streamOf(chunks) {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
}

// Tagged JSON (from Python) -> JS values, as Pyodide's to_js would hand them to the binding.
function decode(value, binding) {
  if (Array.isArray(value)) return value.map((v) => decode(v, binding));
  if (value === null || typeof value !== "object") return value;
  if ("$bytes" in value) return b64decode(value.$bytes);
  if ("$date" in value) return new Date(value.$date);
  if ("$num" in value) return Number(value.$num);
  if ("$bigint" in value) return BigInt(value.$bigint);
  if ("$undefined" in value) return undefined;
  if ("$stream" in value) {
    const chunks = value.$stream.map(b64decode);
    if (value.length === undefined) return streamOf(chunks);
    const { readable, writable } = new FixedLengthStream(value.length);
    (async () => {
      const writer = writable.getWriter();
      for (const chunk of chunks) await writer.write(chunk);
      await writer.close();
    })();
    return readable;
  }
  if ("$d1statement" in value) {
    const { query, params } = value.$d1statement;
    const statement = binding.prepare(query);
    return params === null ? statement : statement.bind(...decode(params, binding));
  }
  if ("$pyobject" in value) {
    const repr = value.$pyobject;
    return { toString: () => repr };
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = decode(v, binding);
  return out;
}

async function readChunks(stream) {
  const chunks = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    chunks.push({ $bytes: b64encode(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) });
  }
}

function isR2Object(value) {
  return (
    typeof value === "object" &&
    value !== null &&
    "key" in value &&
    "version" in value &&
    "etag" in value &&
    "httpEtag" in value &&
    "uploaded" in value
  );
}

async function encodeR2Object(obj) {
  const out = {};
  for (const name of ["key", "version", "size", "etag", "httpEtag", "uploaded", "httpMetadata",
    "customMetadata", "range", "storageClass", "ssecKeyMd5"]) {
    out[name] = await encode(obj[name]);
  }
  const checksums = {};
  for (const name of ["md5", "sha1", "sha256", "sha384", "sha512"]) {
    checksums[name] = await encode(obj.checksums[name]);
  }
  out.checksums = checksums;
  try {
    const headers = new Headers();
    obj.writeHttpMetadata(headers);
    out.writtenHeaders = [...headers];
  } catch (e) {
    out.writtenHeaders = { error: errorOf(e) };
  }
  if ("body" in obj && typeof obj.arrayBuffer === "function") {
    out.bodyUsedBefore = obj.bodyUsed;
    out.chunks = await readChunks(obj.body);
  }
  return { $r2object: out };
}

// JS values (from a binding) -> tagged JSON, as the Python SDK would see them.
async function encode(value) {
  if (value === undefined) return { $undefined: true };
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : { $num: String(value) };
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (value instanceof ArrayBuffer) return { $bytes: b64encode(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    return { $bytes: b64encode(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  }
  if (value instanceof Date) return { $date: value.getTime() };
  if (value instanceof ReadableStream) return { $stream: await readChunks(value) };
  if (value instanceof Map) {
    const entries = [];
    for (const [k, v] of value) entries.push([k, await encode(v)]);
    return { $map: entries };
  }
  if (Array.isArray(value)) {
    const out = [];
    for (const v of value) out.push(await encode(v));
    return out;
  }
  if (isR2Object(value)) return await encodeR2Object(value);
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = await encode(v);
  return out;
}

function errorOf(e) {
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: typeof e, message: String(e) };
}

function json(body) {
  return new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
}

async function call(env, request) {
  const { binding, chain, discard } = await request.json();
  const root = env[binding];
  let target = root;
  if (target === undefined) return json({ error: { name: "Error", message: `no binding ${binding}` } });
  try {
    for (let i = 0; i < chain.length; i++) {
      const [method, args] = chain[i];
      if (typeof target[method] !== "function") {
        throw new TypeError(`${binding}.${method} is not a function`);
      }
      target = target[method](...decode(args, root));
      if (i === chain.length - 1 && discard) return json({ ok: null });
      if (i === chain.length - 1 || target instanceof Promise) target = await target;
    }
    return json({ ok: await encode(target) });
  } catch (e) {
    return json({ error: errorOf(e) });
  }
}

// Set-up writes (seeding a thousand keys) in one request: the calls are the binding's own, made here
// in workerd, 50 at a time, so a test does not pay a loopback round trip per key.
async function many(env, request) {
  const { binding, calls } = await request.json();
  const root = env[binding];
  try {
    for (let i = 0; i < calls.length; i += 50) {
      await Promise.all(calls.slice(i, i + 50).map(([method, args]) => root[method](...decode(args, root))));
    }
    return json({ ok: calls.length });
  } catch (e) {
    return json({ error: errorOf(e) });
  }
}

function replay(batch, script) {
  const byId = new Map(batch.messages.map((m) => [m.id, m]));
  for (const step of script.calls) {
    const args = step.options === null ? [] : [step.options];
    if (step.id === null) batch[step.method](...args);
    else byId.get(step.id)[step.method](...args);
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/call") return call(env, request);
    if (url.pathname === "/many") return many(env, request);
    return new Response("not found", { status: 404 });
  },

  async queue(batch, env) {
    const messages = [];
    for (const m of batch.messages) {
      messages.push({ id: m.id, timestamp: m.timestamp.getTime(), attempts: m.attempts, body: await encode(m.body) });
    }
    const response = await env.BRIDGE.fetch("http://bridge/batch", {
      method: "POST",
      body: JSON.stringify({ queue: batch.queue, messages }),
    });
    const script = await response.json();
    replay(batch, script);
    if (script.raise !== null) throw new Error(script.raise);
  },
};
