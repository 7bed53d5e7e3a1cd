"""The Miniflare contract backend: Miniflare's D1, KV, R2, Queues and rate limiting behind thin proxies.

``bridge.mjs`` (Node) runs one Miniflare instance for the whole test session and ``probe.worker.js``
inside it performs each call on the real binding; :mod:`.client` starts the bridge and speaks its
loopback JSON, and :mod:`.proxies` gives the suites objects with the binding interface they already
use (async methods, results as :class:`~edgerag.jsdict.AttrDict`, errors carrying workerd's text).
"""
