"""edgerag's deployable shared core: ports, contracts between workers, settings, errors and the
retrieval logic the workers share. Edge-safe: only dependencies that exist on Pyodide."""
