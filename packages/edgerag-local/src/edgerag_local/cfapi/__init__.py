"""A local Cloudflare API v4 emulator (CPython test infrastructure, loopback only, never deployed).

Real ``wrangler`` (pointed at it with ``CLOUDFLARE_API_BASE_URL``) and ``edgerag_ops`` talk to it as
they would to the real API: workers scripts, versions, deployments and rollback, D1 (with SQL run on
SQLite, so ``wrangler d1 migrations apply --remote`` really applies), KV namespaces, R2 buckets,
Vectorize indexes and metadata indexes, Queues and their consumers.
"""

from .server import CloudflareApiEmulator
from .state import ApiState

__all__ = ["ApiState", "CloudflareApiEmulator"]
