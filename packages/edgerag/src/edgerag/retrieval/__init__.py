"""Retrieval building blocks shared by the workers: safe keyword queries and rank fusion."""
