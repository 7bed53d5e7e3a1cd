// The bindings of the Pyodide run, as the workers see them through the real Workers SDK.
//
// The SDK (workers-runtime-sdk) decides how to wrap a binding by its JavaScript class name
// (workers/rpc.py `_EnvWrapper._BINDING_TYPES`: "D1Database", "KvNamespace", "R2Bucket",
// "WorkerQueue", "Ai", "VectorizeIndexImpl", "Ratelimit"; "Fetcher" for service bindings), and leaves a
// result object a JsProxy (not a dict) when it is a class instance rather than a plain object, as
// workerd's R2Object or D1PreparedStatement are. Miniflare's Node-side binding objects are proxies whose
// class name is none of those, so D1, KV, R2 and Queue are wrapped here in classes with workerd's names
// that delegate every call to Miniflare unchanged. Vectorize and Workers AI have no local implementation
// in Miniflare: they are small JavaScript implementations below with the documented call and result
// shapes (see docs/pyodide.md for what they do not check).

// ------------------------------------------------------------------------------------------------ D1

export class D1PreparedStatement {
  constructor(inner) {
    this._inner = inner;
  }
  bind(...values) {
    return new D1PreparedStatement(this._inner.bind(...values));
  }
  first(column) {
    return column === undefined ? this._inner.first() : this._inner.first(column);
  }
  all() {
    return this._inner.all();
  }
  run() {
    return this._inner.run();
  }
  raw(options) {
    return options === undefined ? this._inner.raw() : this._inner.raw(options);
  }
}

export class D1Database {
  constructor(inner) {
    this._inner = inner;
  }
  prepare(sql) {
    return new D1PreparedStatement(this._inner.prepare(sql));
  }
  batch(statements) {
    return this._inner.batch(Array.from(statements, (s) => (s instanceof D1PreparedStatement ? s._inner : s)));
  }
  exec(sql) {
    return this._inner.exec(sql);
  }
}

// ------------------------------------------------------------------------------------------------ KV

export class KvNamespace {
  constructor(inner) {
    this._inner = inner;
  }
  get(...args) {
    return this._inner.get(...args);
  }
  getWithMetadata(...args) {
    return this._inner.getWithMetadata(...args);
  }
  put(...args) {
    return this._inner.put(...args);
  }
  delete(...args) {
    return this._inner.delete(...args);
  }
  list(...args) {
    return this._inner.list(...args);
  }
}

// ------------------------------------------------------------------------------------------------ R2

const R2_OBJECT_FIELDS = [
  "key", "version", "size", "etag", "httpEtag", "checksums", "uploaded", "httpMetadata",
  "customMetadata", "range", "storageClass", "ssecKeyMd5",
];

export class R2Object {
  constructor(inner) {
    for (const field of R2_OBJECT_FIELDS) this[field] = inner[field];
  }
  writeHttpMetadata(headers) {
    const meta = this.httpMetadata ?? {};
    if (meta.contentType) headers.set("content-type", meta.contentType);
  }
}

export class R2ObjectBody extends R2Object {
  constructor(inner) {
    super(inner);
    this._inner = inner;
  }
  get body() {
    return this._inner.body;
  }
  arrayBuffer() {
    return this._inner.arrayBuffer();
  }
  text() {
    return this._inner.text();
  }
  json() {
    return this._inner.json();
  }
  blob() {
    return this._inner.blob();
  }
}

const r2Object = (value) => (value === null || value === undefined ? null : new R2Object(value));

export class R2Bucket {
  constructor(inner) {
    this._inner = inner;
  }
  async put(...args) {
    return r2Object(await this._inner.put(...args));
  }
  async get(...args) {
    const found = await this._inner.get(...args);
    if (found === null || found === undefined) return null;
    // A failed conditional get answers an R2Object without a body.
    return typeof found.arrayBuffer === "function" ? new R2ObjectBody(found) : new R2Object(found);
  }
  async head(...args) {
    return r2Object(await this._inner.head(...args));
  }
  delete(...args) {
    return this._inner.delete(...args);
  }
  async list(...args) {
    const listed = await this._inner.list(...args);
    return {
      objects: listed.objects.map((o) => new R2Object(o)),
      truncated: listed.truncated,
      ...(listed.truncated ? { cursor: listed.cursor } : {}),
      delimitedPrefixes: listed.delimitedPrefixes,
    };
  }
}

// -------------------------------------------------------------------------------------------- Queues

export class WorkerQueue {
  constructor(inner) {
    this._inner = inner;
  }
  send(...args) {
    return this._inner.send(...args);
  }
  sendBatch(...args) {
    return this._inner.sendBatch(...args);
  }
}

/** A consumer's batch, shaped like workerd's MessageBatch; records what the handler did with it. */
export class Message {
  constructor({ id, timestamp, body, attempts }) {
    this.id = id;
    this.timestamp = new Date(timestamp);
    this.body = body;
    this.attempts = attempts;
    this.outcome = null;
  }
  ack() {
    this.outcome ??= { kind: "ack" };
  }
  retry(options) {
    this.outcome ??= { kind: "retry", delaySeconds: options?.delaySeconds ?? null };
  }
}

export class MessageBatch {
  constructor(queue, messages) {
    this.queue = queue;
    this.messages = messages.map((m) => new Message(m));
  }
  ackAll() {
    for (const m of this.messages) m.ack();
  }
  retryAll(options) {
    for (const m of this.messages) m.retry(options);
  }
}

// ------------------------------------------------------------------------------------------ Vectorize

const METRICS = new Set(["cosine", "euclidean", "dot-product"]);

function matchesFilter(metadata, filter) {
  for (const [field, condition] of Object.entries(filter ?? {})) {
    const value = metadata?.[field];
    const ops = condition !== null && typeof condition === "object" && !Array.isArray(condition)
      ? condition
      : { $eq: condition };
    for (const [op, operand] of Object.entries(ops)) {
      const ok = {
        $eq: () => value === operand,
        $ne: () => value !== operand,
        $in: () => operand.includes(value),
        $nin: () => !operand.includes(value),
        $lt: () => value !== undefined && value < operand,
        $lte: () => value !== undefined && value <= operand,
        $gt: () => value !== undefined && value > operand,
        $gte: () => value !== undefined && value >= operand,
      }[op];
      if (ok === undefined) throw new Error(`VECTOR_QUERY_ERROR: unsupported filter operator ${op}`);
      if (!ok()) return false;
    }
  }
  return true;
}

/**
 * An in-memory Vectorize index with the binding's call and result shapes: upsert/insert return
 * {mutationId}, query returns {count, matches: [{id, score, values?, metadata?, namespace?}]} ranked by
 * the index's metric, the namespace applied before the filter; topK <= 100 (<= 20 with values or
 * metadata) and the dimension checked as Vectorize checks them. Writes are visible at once (Vectorize's
 * are eventually consistent; the workers never rely on read-your-writes).
 */
export class VectorizeIndexImpl {
  constructor({ dimensions, metric = "cosine" }) {
    if (!METRICS.has(metric)) throw new Error(`unknown metric ${metric}`);
    this.dimensions = dimensions;
    this.metric = metric;
    this._vectors = new Map(); // `${namespace}\u0000${id}` -> {id, namespace, values, metadata}
    this._mutations = 0;
  }
  _key(namespace, id) {
    return `${namespace ?? ""}\u0000${id}`;
  }
  _check(vector) {
    const values = Array.from(vector.values ?? []);
    if (values.length !== this.dimensions) {
      throw new Error(
        `VECTOR_UPSERT_ERROR (code = 40012): invalid vector for id="${vector.id}", expected ${this.dimensions} dimensions, and got ${values.length} dimensions`,
      );
    }
    return { id: String(vector.id), namespace: vector.namespace ?? null, values, metadata: vector.metadata ?? {} };
  }
  _mutation() {
    this._mutations += 1;
    return { mutationId: `mutation-${this._mutations}` };
  }
  async upsert(vectors) {
    for (const v of Array.from(vectors)) {
      const checked = this._check(v);
      this._vectors.set(this._key(checked.namespace, checked.id), checked);
    }
    return this._mutation();
  }
  async insert(vectors) {
    for (const v of Array.from(vectors)) {
      const checked = this._check(v);
      const key = this._key(checked.namespace, checked.id);
      if (!this._vectors.has(key)) this._vectors.set(key, checked);
    }
    return this._mutation();
  }
  _score(a, b) {
    let dot = 0, na = 0, nb = 0, dist = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
      dist += (a[i] - b[i]) ** 2;
    }
    if (this.metric === "dot-product") return dot;
    if (this.metric === "euclidean") return Math.sqrt(dist);
    return na && nb ? dot / Math.sqrt(na * nb) : 0;
  }
  async query(vector, options = {}) {
    const query = Array.from(vector);
    if (query.length !== this.dimensions) {
      throw new Error(`VECTOR_QUERY_ERROR (code = 40006): invalid query vector, expected ${this.dimensions} dimensions, and got ${query.length} dimensions`);
    }
    const topK = options.topK ?? 5;
    const returnValues = Boolean(options.returnValues);
    const returnMetadata = options.returnMetadata === true ? "all" : options.returnMetadata || "none";
    const limit = returnValues || returnMetadata === "all" ? 20 : 100;
    if (topK < 1 || topK > limit) {
      throw new Error(`VECTOR_QUERY_ERROR (code = 40025): invalid topK ${topK}, expected a value between 1 and ${limit}`);
    }
    const namespace = options.namespace ?? null;
    const ranked = [...this._vectors.values()]
      .filter((v) => (namespace === null || v.namespace === namespace) && matchesFilter(v.metadata, options.filter))
      .map((v) => ({ v, score: this._score(query, v.values) }))
      .sort((x, y) => (this.metric === "euclidean" ? x.score - y.score : y.score - x.score))
      .slice(0, topK);
    const matches = ranked.map(({ v, score }) => ({
      id: v.id,
      score,
      ...(returnValues ? { values: v.values } : {}),
      ...(returnMetadata !== "none" ? { metadata: v.metadata } : {}),
      ...(v.namespace !== null ? { namespace: v.namespace } : {}),
    }));
    return { count: matches.length, matches };
  }
  async getByIds(ids) {
    return [...this._vectors.values()].filter((v) => Array.from(ids).includes(v.id)).map((v) => ({
      id: v.id, values: v.values, metadata: v.metadata, ...(v.namespace !== null ? { namespace: v.namespace } : {}),
    }));
  }
  async deleteByIds(ids) {
    const doomed = new Set(Array.from(ids, String));
    for (const [key, v] of this._vectors) if (doomed.has(v.id)) this._vectors.delete(key);
    return this._mutation();
  }
  async describe() {
    return { dimensions: this.dimensions, metric: this.metric, vectorCount: this._vectors.size };
  }
  get size() {
    return this._vectors.size;
  }
}

// ---------------------------------------------------------------------------------------- Workers AI

const EMBEDDING_DIMENSIONS = {
  "@cf/baai/bge-small-en-v1.5": 384,
  "@cf/baai/bge-base-en-v1.5": 768,
  "@cf/baai/bge-large-en-v1.5": 1024,
  "@cf/baai/bge-m3": 1024,
};
const RERANKER = "@cf/baai/bge-reranker-base";

const words = (text) => String(text).toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** A deterministic bag-of-words embedding (feature hashing, L2-normalised): similar words, near vectors. */
export function hashEmbedding(text, dimensions) {
  const vector = new Array(dimensions).fill(0);
  for (const word of words(text)) {
    const h = fnv1a(word);
    vector[h % dimensions] += h & 0x80000000 ? -1 : 1;
  }
  const norm = Math.hypot(...vector) || 1;
  return vector.map((x) => x / norm);
}

function sse(events) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const data of events) controller.enqueue(encoder.encode(`data: ${data}\n\n`));
      controller.close();
    },
  });
}

/**
 * Workers AI with the documented shapes: bge embeddings {text: [..]} -> {shape, data} (hash
 * embeddings of the model's dimension), the bge reranker {query, contexts} -> {response: [{id, score}]}
 * (word overlap), and any other @cf/ text-generation model {messages, stream?} -> {response, usage} or a
 * ReadableStream of SSE ending in [DONE]. The reply is a fixed sentence naming the last user message:
 * a stand-in, not a language model. Records every call (model, input keys).
 */
export class Ai {
  constructor() {
    this.calls = [];
  }
  async run(model, inputs, options) {
    this.calls.push({ model, inputs: Object.keys(inputs ?? {}), options: options ? Object.keys(options) : [] });
    if (model in EMBEDDING_DIMENSIONS) {
      const texts = Array.isArray(inputs.text) ? inputs.text : [inputs.text];
      if (texts.length > 100) throw new Error("AiError: 5006: at most 100 texts per call");
      const dimensions = EMBEDDING_DIMENSIONS[model];
      return { shape: [texts.length, dimensions], data: texts.map((t) => hashEmbedding(t, dimensions)), pooling: "mean" };
    }
    if (model === RERANKER) {
      const query = new Set(words(inputs.query));
      const scored = Array.from(inputs.contexts, (c, id) => {
        const ws = words(c.text);
        const hits = ws.filter((w) => query.has(w)).length;
        return { id, score: ws.length ? hits / Math.sqrt(ws.length) : 0 };
      }).sort((a, b) => b.score - a.score);
      return { response: inputs.top_k ? scored.slice(0, inputs.top_k) : scored };
    }
    if (typeof model === "string" && model.startsWith("@cf/") && Array.isArray(inputs?.messages)) {
      const last = [...inputs.messages].reverse().find((m) => m.role === "user");
      const text = `Stand-in reply to: ${String(last?.content ?? "").slice(0, 200)}`;
      const prompt = inputs.messages.reduce((n, m) => n + words(m.content ?? "").length, 0);
      const usage = { prompt_tokens: prompt, completion_tokens: words(text).length, total_tokens: prompt + words(text).length };
      if (inputs.stream) {
        const pieces = text.match(/\S+\s*/g) ?? [];
        return sse([...pieces.map((p) => JSON.stringify({ response: p })), JSON.stringify({ response: "", usage }), "[DONE]"]);
      }
      return { response: text, usage };
    }
    throw new Error(`AiError: 5007: No such model ${model} or task`);
  }
}

// ---------------------------------------------------------------------------------------- Rate limit

/** The rate-limiting binding: a fixed window of `period` seconds allowing `limit` calls per key. */
export class Ratelimit {
  constructor({ limit, period }) {
    this.limit_ = limit;
    this.period = period;
    this._windows = new Map();
  }
  async limit({ key }) {
    const window = Math.floor(Date.now() / 1000 / this.period);
    const slot = `${window}:${key}`;
    const used = (this._windows.get(slot) ?? 0) + 1;
    this._windows.set(slot, used);
    return { success: used <= this.limit_ };
  }
}
