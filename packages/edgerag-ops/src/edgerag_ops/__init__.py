"""edgerag's operator tooling (CPython only, never deployed): tenant definitions, per-tenant wrangler
configs rendered from the repository's worker configs, the Cloudflare API client, deploy-one,
deploy-all and drift detection. ``scripts/deploy-one``, ``scripts/deploy-all`` and ``scripts/drift``
are thin wrappers over :mod:`edgerag_ops.cli`."""
