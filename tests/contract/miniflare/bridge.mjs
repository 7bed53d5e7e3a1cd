// Loopback JSON bridge from the Python contract suites to Miniflare's real D1, KV, R2 and Queue
// bindings (workerd underneath, as `wrangler dev` runs them).
//
//   node bridge.mjs <state-dir> [<JSON {queues: {name: consumer options}, pools: {DB: n, KV: n, R2: n}}>]
//
// Prints one line {"port": N, "worker": URL} on stdout once ready, then serves on 127.0.0.1:N:
//   POST /call            {binding, chain}       -> forwarded to the probe worker (probe.worker.js),
//                                                   which Python calls directly at the "worker" URL
//   POST /queues/sent     {queue, count}         -> counts messages a direct call sent
//   POST /queues/declare  {queues: {name: cfg}}  -> adds producers (Q_<name>) and consumers; restarts workerd
//   POST /queues/next     {queue, timeout_ms}    -> the next batch delivered to that queue, or {idle: true}
//   POST /queues/settle   {batch, calls, raise}  -> the script the test ran on it, replayed in workerd
//   POST /queues/release  {queues}               -> acks and forgets whatever the test left behind
//   POST /shutdown
// It exits when stdin closes, so a killed test run never leaves workerd behind.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare, Response } from "miniflare";

const here = path.dirname(fileURLToPath(import.meta.url));
const stateDir = process.argv[2];
if (!stateDir) {
  process.stderr.write("usage: node bridge.mjs <state-dir>\n");
  process.exit(2);
}
const script = fs.readFileSync(path.join(here, "probe.worker.js"), "utf8");

// ----------------------------------------------------------------------------------- queue state

const setup = JSON.parse(process.argv[3] ?? "{}");
const consumers = setup.queues ?? {}; // physical queue -> consumer options
const outstanding = new Map(); // queue -> messages sent and not yet finally settled
const held = new Map(); // queue -> [{id, batch, resolve}] delivered, waiting for the Python script
const waiters = new Map(); // queue -> [resolve] Python long-polls waiting for a batch
const logLines = []; // Miniflare's own log, kept for failure messages
let nextBatch = 1;
const byBatchId = new Map();

function bump(queue, delta) {
  outstanding.set(queue, (outstanding.get(queue) ?? 0) + delta);
  wake(queue);
}

function wake(queue) {
  const list = waiters.get(queue) ?? [];
  waiters.set(queue, []);
  for (const resolve of list) resolve();
}

// The broker reports every outcome in its log; that is what makes "drained" decidable without
// second-guessing workerd's ack/retry rules: a message leaves the count when it is acked, dropped
// or moved to its dead-letter queue (where it is counted again).
const ANSI = /\x1b\[[0-9;]*m/g;
class BridgeLog extends Log {
  constructor() {
    super(LogLevel.DEBUG);
  }
  logWithLevel(level, message) {
    const text = String(message).replace(ANSI, "");
    logLines.push(text);
    if (logLines.length > 200) logLines.shift();
    let m;
    if ((m = /^QUEUE (\S+) (\d+)\/(\d+)/.exec(text))) bump(m[1], -Number(m[2]));
    else if ((m = /^Moving message "[^"]*" on queue "([^"]*)" to dead letter queue "([^"]*)"/.exec(text))) {
      bump(m[1], -1);
      bump(m[2], +1);
    } else if ((m = /^Dropped message "[^"]*" on queue "([^"]*)"/.exec(text))) bump(m[1], -1);
  }
  log() {}
}

function onBatch(request) {
  return request.json().then(
    (batch) =>
      new Promise((resolve) => {
        const id = nextBatch++;
        const entry = { id, batch, resolve };
        byBatchId.set(id, entry);
        if (!held.has(batch.queue)) held.set(batch.queue, []);
        held.get(batch.queue).push(entry);
        wake(batch.queue);
      }),
  );
}

// Each pooled binding costs workerd start-up time, so the test session asks for as many as it will use.
function pool(prefix, name) {
  const out = {};
  for (let i = 0; i < (setup.pools?.[prefix] ?? 1); i++) out[`${prefix}_${i}`] = `${name}-${i}`;
  return out;
}

function options() {
  const producers = {};
  for (const name of Object.keys(consumers)) producers[`Q_${name}`] = { queueName: name };
  return {
    host: "127.0.0.1",
    port: 0,
    log: new BridgeLog(),
    defaultPersistRoot: stateDir,
    workers: [
      {
        name: "probe",
        modules: true,
        script,
        compatibilityDate: "2025-04-01",
        // A pool of fresh bindings: each test takes the next one, so none sees another's data.
        d1Databases: pool("DB", "contract-d1"),
        kvNamespaces: pool("KV", "contract-kv"),
        r2Buckets: pool("R2", "contract-r2"),
        queueProducers: producers,
        queueConsumers: consumers,
        serviceBindings: {
          BRIDGE: async (request) => new Response(JSON.stringify(await onBatch(request))),
        },
      },
    ],
  };
}

const mf = new Miniflare(options());
let workerUrl = (await mf.ready).href;

// Calls are serialised: D1 and the queue broker are single-threaded anyway, and order matters to
// the suites (a send must be counted before the batch it produces can be reported).
let chain = Promise.resolve();
function serial(fn) {
  const next = chain.then(fn, fn);
  chain = next.catch(() => {});
  return next;
}

// Python calls the worker directly (mf.dispatchFetch costs ~5x a loopback fetch); this route is
// for callers that want one address.
async function call(body) {
  const response = await fetch(new URL("/call", workerUrl), {
    method: "POST",
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (body.binding.startsWith("Q_") && "ok" in answer) {
    const [method, args] = body.chain[body.chain.length - 1];
    const queue = body.binding.slice(2);
    if (method === "send") bump(queue, 1);
    if (method === "sendBatch") bump(queue, Array.isArray(args[0]) ? args[0].length : 0);
  }
  return answer;
}

function sent({ queue, count }) {
  bump(queue, count);
  return { ok: true };
}

async function declare({ queues }) {
  let changed = false;
  for (const [name, cfg] of Object.entries(queues)) {
    if (!(name in consumers)) {
      consumers[name] = cfg;
      changed = true;
    }
  }
  if (changed) {
    // A restart drops batches in flight; only the suites' fresh queues are declared, so none are.
    for (const list of held.values()) for (const entry of list) entry.resolve({ calls: [], raise: null });
    held.clear();
    await mf.setOptions(options());
    workerUrl = (await mf.ready).href;
  }
  return { ok: Object.keys(consumers).length, worker: workerUrl };
}

async function next({ queue, timeout_ms }) {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const list = held.get(queue) ?? [];
    const entry = list.find((e) => !e.taken);
    if (entry) {
      entry.taken = true;
      return { batch: entry.id, queue, messages: entry.batch.messages };
    }
    if ((outstanding.get(queue) ?? 0) <= 0 && !list.some((e) => e.taken)) return { idle: true };
    const left = deadline - Date.now();
    if (left <= 0) {
      return { timeout: true, outstanding: outstanding.get(queue) ?? 0, log: logLines.slice(-20) };
    }
    await new Promise((resolve) => {
      if (!waiters.has(queue)) waiters.set(queue, []);
      waiters.get(queue).push(resolve);
      setTimeout(resolve, left);
    });
  }
}

function settle({ batch, calls, raise }) {
  const entry = byBatchId.get(batch);
  if (!entry) return { error: { name: "Error", message: `no batch ${batch}` } };
  byBatchId.delete(batch);
  const list = held.get(entry.batch.queue) ?? [];
  list.splice(list.indexOf(entry), 1);
  entry.resolve({ calls, raise });
  return { ok: true };
}

function release({ queues }) {
  for (const queue of queues) {
    for (const entry of held.get(queue) ?? []) {
      byBatchId.delete(entry.id);
      entry.resolve({ calls: [], raise: null });
    }
    held.delete(queue);
    outstanding.delete(queue);
  }
  return { ok: true };
}

const routes = {
  "/call": (body) => serial(() => call(body)),
  "/queues/declare": (body) => serial(() => declare(body)),
  "/queues/sent": sent,
  "/queues/next": next,
  "/queues/settle": settle,
  "/queues/release": release,
};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    let answer;
    try {
      if (req.url === "/shutdown") {
        res.end("{}");
        await shutdown();
        return;
      }
      const route = routes[req.url];
      if (!route) throw new Error(`unknown route ${req.url}`);
      answer = await route(JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}"));
    } catch (e) {
      answer = { error: { name: "BridgeError", message: String(e && e.stack ? e.stack : e) } };
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(answer));
  });
});

let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close();
  for (const list of held.values()) for (const entry of list) entry.resolve({ calls: [], raise: null });
  try {
    await mf.dispose();
  } finally {
    process.exit(0);
  }
}

process.stdin.on("end", shutdown);
process.stdin.on("close", shutdown);
process.stdin.resume();
process.on("SIGTERM", shutdown);

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, worker: workerUrl }) + "\n");
});
