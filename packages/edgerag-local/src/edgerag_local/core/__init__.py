"""What every local binding shares: the error base, option merging, body buffering, list cursors, a
manual clock. Imports nothing else from :mod:`edgerag_local`."""
