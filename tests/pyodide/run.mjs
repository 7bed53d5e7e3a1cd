// Run the three deployable workers on real Pyodide under Node, offline, and drive requests through
// their real entry points. Usage: node tests/pyodide/run.mjs CONFIG.json (tests/pyodide/test_pyodide_run.py
// writes the config: staged workers, wheel lists, bindings, migrations). Prints one JSON document on
// stdout (the last line): what each step answered, which Python ran, and how long each phase took.
//
// Each worker gets its own Pyodide interpreter (as each Worker gets its own isolate) with exactly the
// wheels its deploy would carry, the staged worker (src/ and python_modules/ with the vendored core) on
// sys.path, and the real Workers SDK. workerd's entry glue is reproduced: the two internal modules the
// SDK imports (_pyodide_entrypoint_helper, _cloudflare_compat_flags), `Default(ctx, env)` per event,
// `fetch` given a workers.Request (python_from_rpc) and returning its JS Response, other handlers and RPC
// methods called with exact arity. D1, KV, R2 and the ingest queue are Miniflare's (workerd's own local
// implementations); Vectorize, Workers AI and the rate limiter are the JS implementations in shims.mjs.
// Outbound network is refused: each interpreter's `fetch` is a stub that records and rejects.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";
import { loadPyodide } from "pyodide";
import {
  Ai, D1Database, KvNamespace, MessageBatch, R2Bucket, Ratelimit, VectorizeIndexImpl, WorkerQueue,
} from "./shims.mjs";

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
// A promise rejection nobody handles is a failure of the run (workerd would log it as an uncaught
// error); record it instead of letting Node exit without a report.
const unhandled = [];
process.on("unhandledRejection", (reason) => unhandled.push(String(reason?.stack ?? reason).slice(0, 2000)));
const timings = {};
const started = performance.now();
const phase = async (name, fn) => {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[name] = Math.round(performance.now() - t0);
  }
};
const log = (...parts) => process.stderr.write(`pyodide-run: ${parts.join(" ")}\n`);

// The three interpreters load the same wasm (Pyodide itself, pydantic-core's extension): compile each
// binary once and instantiate it per interpreter, as workerd shares compiled code between isolates.
const compiled = new Map();
const instantiate = WebAssembly.instantiate.bind(WebAssembly);
WebAssembly.instantiate = async (source, imports) => {
  if (source instanceof WebAssembly.Module || source.byteLength < 1 << 20) return instantiate(source, imports);
  const bytes = ArrayBuffer.isView(source) ? source : new Uint8Array(source);
  const key = createHash("sha256").update(bytes).digest("hex");
  if (!compiled.has(key)) compiled.set(key, WebAssembly.compile(bytes));
  const module = await compiled.get(key);
  return { module, instance: await instantiate(module, imports) };
};

// -------------------------------------------------------------------------- Miniflare: D1, KV, R2, Queues

// The consumer of the ingest queue inside workerd only hands messages over: the harness delivers them
// to the Python ingest worker as a MessageBatch, as workerd would call its queue handler.
const COLLECTOR = `
let delivered = [];
export default {
  async fetch() { const out = delivered; delivered = []; return Response.json(out); },
  async queue(batch) {
    for (const m of batch.messages) {
      delivered.push({ queue: batch.queue, id: m.id, timestamp: m.timestamp.getTime(), body: m.body, attempts: m.attempts });
      m.ack();
    }
  },
};`;

function miniflareOptions(bindings) {
  const options = {
    modules: true,
    script: COLLECTOR,
    compatibilityDate: "2026-04-01",
    d1Databases: {},
    kvNamespaces: {},
    r2Buckets: {},
    queueProducers: {},
    queueConsumers: {},
  };
  // One Miniflare binding per (worker, binding); the same database/namespace/bucket/queue name shares
  // storage, as the workers share the resources the stack manifest declares.
  for (const [worker, spec] of Object.entries(bindings)) {
    for (const [name, id] of Object.entries(spec.d1)) options.d1Databases[`${worker}__${name}`] = id;
    for (const [name, id] of Object.entries(spec.kv)) options.kvNamespaces[`${worker}__${name}`] = id;
    for (const [name, bucket] of Object.entries(spec.r2)) options.r2Buckets[`${worker}__${name}`] = bucket;
    for (const [name, queue] of Object.entries(spec.queues)) {
      options.queueProducers[`${worker}__${name}`] = { queueName: queue };
    }
  }
  for (const queue of config.consumedQueues) options.queueConsumers[queue] = { maxBatchSize: 10, maxBatchTimeout: 0 };
  return options;
}

async function applyMigrations(db, migrations) {
  for (const { name, statements } of migrations) {
    await db.batch(statements.map((sql) => db.prepare(sql)));
    await db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(name).run();
  }
}

// ---------------------------------------------------------------------------------- the JS side of an isolate

class ExecutionContext {
  constructor(pending) {
    this._pending = pending;
    this.props = {};
  }
  waitUntil(promise) {
    this._pending.push(Promise.resolve(promise));
  }
  passThroughOnException() {}
}

const isPyProxy = (pyodide, value) => value instanceof pyodide.ffi.PyProxy;

/** A PyProxy argument dies when the call returns; keep an awaitable one alive until it settles. */
function keepAwaitable(pyodide, value) {
  if (!isPyProxy(pyodide, value)) return Promise.resolve(value);
  const copy = value.copy();
  return Promise.resolve(copy).finally(() => copy.destroy());
}

/** A service binding to another isolate: `fetch` and the target entrypoint's public methods (RPC). */
class Fetcher {
  constructor(target) {
    this._target = target;
    const methods = new Set(target.methods);
    return new Proxy(this, {
      get(self, prop, receiver) {
        if (typeof prop !== "string" || prop in self) return Reflect.get(self, prop, receiver);
        if (!methods.has(prop)) return undefined;
        return (...args) => self._target.rpc(prop, args);
      },
    });
  }
  async fetch(input, init) {
    const response = await this._target.fetch(new Request(input, init));
    if (response.body === null) return response;
    return new Response(crossIsolate(response.body), response);
  }
}

/**
 * A body crossing from one isolate to another, as through workerd's service-binding pipe: the reader
 * gets its own stream, and a reader that cancels cancels the producer's stream with an Error (a cancel
 * reason of `undefined` would reach the producer's Python as no exception at all).
 */
function crossIsolate(body) {
  const reader = body.getReader();
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason instanceof Error ? reason : new Error("the service binding's caller cancelled the body"));
    },
  });
}

const ENTRY_GLUE = `
import sys
import entry
from workers import WorkerEntrypoint, python_from_rpc, python_to_rpc

def methods():
    return [name for name, value in vars(entry.Default).items() if callable(value) and not name.startswith("_")]

async def on_fetch(ctx, env, request):
    response = await entry.Default(ctx, env).fetch(python_from_rpc(request))
    return getattr(response, "js_object", response)

async def on_call(ctx, env, name, args):
    method = getattr(entry.Default(ctx, env), name, None)
    if method is None or name.startswith("_"):
        raise TypeError(f"Method {name} does not exist")
    return python_to_rpc(await method(*[python_from_rpc(a) for a in args]))

async def on_queue(ctx, env, batch):
    await entry.Default(ctx, env).queue(batch, env, ctx)

async def on_scheduled(ctx, env, controller):
    await entry.Default(ctx, env).scheduled(controller, env, ctx)
`;

class Isolate {
  constructor(name) {
    this.name = name;
    this.pending = [];
    this.outbound = [];
    this.errors = [];
    this.tracebacks = 0;
  }

  async boot(wheelDir, wheels) {
    this.jsGlobals = Object.create(globalThis);
    // No network inside the run: outbound fetches are recorded and refused.
    this.jsGlobals.fetch = async (input) => {
      const url = typeof input === "string" ? input : input.url;
      this.outbound.push(url);
      throw new TypeError(`network disabled in the Pyodide run: fetch(${url})`);
    };
    const t0 = performance.now();
    this.pyodide = await loadPyodide({
      indexURL: config.pyodideDir,
      jsglobals: this.jsGlobals,
      stdout: (line) => log(`[${this.name}]`, line),
      stderr: (line) => {
        if (line.startsWith("Traceback")) this.tracebacks += 1;
        log(`[${this.name}!]`, line);
      },
    });
    timings[`interpreter_${this.name}`] = Math.round(performance.now() - t0);
    const t1 = performance.now();
    await this.pyodide.loadPackage(wheels.map((w) => path.join(wheelDir, w)), {
      messageCallback: () => {},
      errorCallback: (message) => this.errors.push(message),
    });
    if (this.errors.length) throw new Error(`${this.name}: installing wheels failed: ${this.errors.join("; ")}`);
    timings[`wheels_${this.name}`] = Math.round(performance.now() - t1);
  }

  /** Mount the staged worker and import its entry module, as workerd imports the main module. */
  async importEntry(stageDir, env) {
    const py = this.pyodide;
    const root = `/session/${this.name}`;
    py.FS.mkdirTree(root);
    py.mountNodeFS(root, stageDir);
    const self = this;
    py.registerJsModule("_cloudflare_compat_flags", {
      python_workflows_implicit_dependencies: false,
      python_request_headers_preserve_commas: false,
    });
    py.registerJsModule("_pyodide_entrypoint_helper", {
      patchWaitUntil(ctx) {
        const original = ctx.waitUntil.bind(ctx);
        ctx.waitUntil = (value) => original(keepAwaitable(py, value));
      },
      cloudflareWorkersModule: {
        env,
        waitUntil: (value) => self.pending.push(keepAwaitable(py, value)),
      },
      cloudflareSocketsModule: {},
      doAnImport: async (name) => {
        throw new Error(`the Pyodide run provides no JavaScript module ${name}`);
      },
      patch_env_helper: () => {
        throw new Error("patch_env is not provided by the Pyodide run");
      },
    });
    py.runPython(`import sys; sys.path[:0] = ["${root}/src", "${root}/python_modules"]`);
    const glue = py.runPython("from types import ModuleType; ModuleType('_edgerag_pyodide_glue')");
    py.runPython(ENTRY_GLUE, { globals: glue.__dict__ });
    this.glue = glue;
    this.env = env;
    this.methods = glue.methods().toJs();
    this.python = py.runPython("import sys; sys.version");
  }

  _ctx() {
    return new ExecutionContext(this.pending);
  }

  /** Wait for everything handed to waitUntil (the ASGI bridge finishes its request task there). */
  async settle() {
    while (this.pending.length) {
      const batch = this.pending.splice(0);
      await Promise.all(batch);
    }
  }

  async fetch(request) {
    return await this.glue.on_fetch(this._ctx(), this.env, request);
  }

  async rpc(name, args) {
    const result = await this.glue.on_call(this._ctx(), this.env, name, structuredClone(args));
    const plain = result instanceof this.pyodide.ffi.PyProxy ? result.toJs({ dict_converter: Object.fromEntries }) : result;
    return structuredClone(plain); // what crosses workerd's RPC: structured-cloneable data only
  }

  async queue(batch) {
    await this.glue.on_queue(this._ctx(), this.env, batch);
    await this.settle();
  }

  async scheduled(cron, scheduledTime) {
    await this.glue.on_scheduled(this._ctx(), this.env, { cron, scheduledTime, noRetry() {} });
    await this.settle();
  }
}

// ----------------------------------------------------------------------------------------------- env

function buildEnv(worker, spec, mfBindings, shared, isolates) {
  const env = { ...spec.vars, ...spec.secrets };
  for (const name of Object.keys(spec.d1)) env[name] = new D1Database(mfBindings[`${worker}__${name}`]);
  for (const name of Object.keys(spec.kv)) env[name] = new KvNamespace(mfBindings[`${worker}__${name}`]);
  for (const name of Object.keys(spec.r2)) env[name] = new R2Bucket(mfBindings[`${worker}__${name}`]);
  for (const name of Object.keys(spec.queues)) env[name] = new WorkerQueue(mfBindings[`${worker}__${name}`]);
  for (const [name, index] of Object.entries(spec.vectorize)) env[name] = shared.vectorize(index);
  if (spec.ai) env[spec.ai] = shared.ai;
  for (const [name, settings] of Object.entries(spec.ratelimits)) env[name] = new Ratelimit(settings);
  for (const [name, service] of Object.entries(spec.services)) {
    const target = isolates[service];
    if (!target) throw new Error(`${worker}: service binding ${name} names ${service}, which is not in the run`);
    env[name] = new Fetcher(target);
  }
  return env;
}

// ------------------------------------------------------------------------------------------- requests

async function answer(isolate, method, urlPath, { headers = {}, json, body } = {}) {
  const init = { method, headers: { ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["content-type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const t0 = performance.now();
  const response = await isolate.fetch(new Request(`https://${isolate.name}.edgerag.test${urlPath}`, init));
  const text = await response.text(); // read the whole body first: a streamed one needs its reader
  await isolate.settle();
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  return {
    method,
    path: urlPath,
    status: response.status,
    contentType: response.headers.get("content-type"),
    json: parsed,
    text: parsed === null ? text.slice(0, 4000) : undefined,
    ms: Math.round(performance.now() - t0),
  };
}

// Miniflare delivers within its batch timeout (0 s here); the bound only stops a lost message from
// hanging the run (30 s of polling), it is not a speed expectation.
async function collectDeliveries(mf, want, { attempts = 600 } = {}) {
  const got = [];
  for (let i = 0; i < attempts && got.length < want; i++) {
    got.push(...(await (await mf.dispatchFetch("http://collector.internal/")).json()));
    if (got.length < want) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return got;
}

// ---------------------------------------------------------------------------------------------- main

async function main() {
  const result = { steps: {}, python: {}, pyodide: null, outbound: {}, tracebacks: {}, ai_calls: [], timings };
  const mf = await phase("miniflare_start", async () => {
    const instance = new Miniflare(miniflareOptions(config.bindings));
    await instance.ready;
    return instance;
  });
  try {
    const mfBindings = await mf.getBindings();
    await phase("migrations", () => applyMigrations(new D1Database(mfBindings[config.migrationsBinding]), config.migrations));

    const isolates = {};
    for (const worker of Object.keys(config.workers)) isolates[worker] = new Isolate(worker);
    // The interpreters boot concurrently (wasm compilation overlaps); imports run one after another.
    await phase("pyodide_boot", () =>
      Promise.all(Object.entries(config.workers).map(([w, spec]) => isolates[w].boot(config.wheelDir, spec.wheels))),
    );
    result.pyodide = isolates[Object.keys(isolates)[0]].pyodide.version;

    const indexes = new Map();
    const shared = {
      ai: new Ai(),
      vectorize(index) {
        const spec = config.vectorizeIndexes[index];
        if (!spec) throw new Error(`no Vectorize index ${index} in the run's config`);
        if (!indexes.has(index)) indexes.set(index, new VectorizeIndexImpl(spec));
        return indexes.get(index);
      },
    };
    // Import order: a worker's service bindings need the target's method list, so targets first.
    const order = Object.keys(config.workers).sort(
      (a, b) => Object.keys(config.bindings[a].services).length - Object.keys(config.bindings[b].services).length,
    );
    for (const worker of order) {
      const env = buildEnv(worker, config.bindings[worker], mfBindings, shared, isolates);
      await phase(`import_${worker}`, () => isolates[worker].importEntry(config.workers[worker].stage, env));
      result.python[worker] = isolates[worker].python;
    }

    const { gateway, dedalus, ingest } = isolates;
    const admin = { authorization: `Bearer ${config.bindings.gateway.secrets.ADMIN_TOKEN}` };
    const steps = result.steps;

    await phase("requests", async () => {
      steps.gateway_health = await answer(gateway, "GET", "/health");
      steps.dedalus_health = await answer(dedalus, "GET", "/health");
      steps.dedalus_models_rpc = await dedalus.rpc("models", ["free"]);
      steps.ingest_health = await answer(ingest, "GET", "/health");

      steps.create_tenant = await answer(gateway, "POST", "/v1/admin/tenants", { headers: admin, json: { name: "pyodide-acme" } });
      const tenantId = steps.create_tenant.json?.id;
      steps.create_key = await answer(gateway, "POST", `/v1/admin/tenants/${tenantId}/keys`, {
        headers: admin,
        json: { name: "pyodide-run", scopes: ["read", "write", "chat"] },
      });
      const auth = { authorization: `Bearer ${steps.create_key.json?.key}` };

      const form = new FormData();
      form.append("file", new Blob([config.document.text], { type: "text/plain" }), config.document.name);
      steps.upload = await answer(gateway, "POST", "/v1/documents", { headers: auth, body: form });

      const deliveries = await collectDeliveries(mf, 1);
      steps.queue_deliveries = deliveries.map(({ queue, id, attempts, body }) => ({ queue, id, attempts, body }));
      const batch = new MessageBatch(config.consumedQueues[0], deliveries);
      await phase("ingest_batch", () => ingest.queue(batch));
      steps.ingest_batch = batch.messages.map((m) => ({ id: m.id, outcome: m.outcome }));
      steps.vectors_indexed = [...indexes.values()].reduce((n, index) => n + index.size, 0);

      steps.document = await answer(gateway, "GET", `/v1/documents/${steps.upload.json?.document?.id}`, { headers: auth });
      steps.search = await answer(gateway, "POST", "/v1/search", { headers: auth, json: { query: config.document.query } });
      steps.search_keyword = await answer(gateway, "POST", "/v1/search", {
        headers: auth,
        json: { query: config.document.query, mode: "keyword" },
      });
      steps.search_vector = await answer(gateway, "POST", "/v1/search", {
        headers: auth,
        json: { query: config.document.query, mode: "vector" },
      });
      steps.search_invalid = await answer(gateway, "POST", "/v1/search", { headers: auth, json: { query: 5 } });
      steps.search_unauthenticated = await answer(gateway, "POST", "/v1/search", { json: { query: "x" } });

      const chatCall = { ...config.chatCall, context: { ...config.chatCall.context, tenant_id: tenantId } };
      steps.dedalus_chat = await answer(dedalus, "POST", "/v1/chat", { json: chatCall });
      steps.answer = await answer(gateway, "POST", "/v1/answer", { headers: auth, json: { question: config.document.query } });
      steps.models = await answer(gateway, "GET", "/v1/models", { headers: auth });
      steps.chat_completions_stream = await answer(gateway, "POST", "/v1/chat/completions", {
        headers: auth,
        json: { model: steps.models.json?.data?.[0]?.id, messages: [{ role: "user", content: "Say hello." }], stream: true },
      });

      await gateway.scheduled("*/15 * * * *", Date.now());
      steps.gateway_cron = "ran";
      await ingest.scheduled("*/15 * * * *", Date.now());
      steps.ingest_cron = "ran";
    });

    for (const [name, isolate] of Object.entries(isolates)) {
      result.outbound[name] = isolate.outbound;
      result.tracebacks[name] = isolate.tracebacks;
    }
    result.ai_calls = shared.ai.calls.map((c) => c.model);
  } finally {
    await mf.dispose();
  }
  timings.total = Math.round(performance.now() - started);
  result.unhandled_rejections = unhandled;
  return result;
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error) => {
    process.stderr.write(`pyodide-run: FAILED: ${error?.stack ?? error}\n`);
    process.stdout.write(`${JSON.stringify({ error: String(error?.message ?? error), timings })}\n`);
    process.exit(1);
  },
);
