"""Model provider adapters behind one port (:mod:`dedalus.providers.base`)."""
