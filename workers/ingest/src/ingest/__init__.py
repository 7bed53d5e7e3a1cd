"""ingest: the queue consumer that turns uploaded documents into chunks, vectors and FTS rows."""
