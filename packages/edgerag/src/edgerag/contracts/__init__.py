"""Contracts between the workers: pydantic models of RPC calls and queue messages.

Both sides validate with the same model, so a change to a contract is one edit here.
"""
