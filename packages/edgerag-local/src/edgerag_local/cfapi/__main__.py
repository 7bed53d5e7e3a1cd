"""``python -m edgerag_local.cfapi``: run the emulator in the foreground (manual use, demos)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .server import CloudflareApiEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgerag_local.cfapi", description=__doc__)
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--state", type=Path, default=Path(".edgerag/cfapi"))
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=ACCOUNT[,ACCOUNT]",
        help="accept TOKEN for the given accounts (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    emulator = CloudflareApiEmulator(args.state, port=args.port)
    for spec in args.token:
        token, _, accounts = spec.partition("=")
        emulator.add_token(token, *[a for a in accounts.split(",") if a])
    print(f"Cloudflare API emulator on {emulator.base_url} (state in {args.state})", flush=True)
    emulator.serve_forever()


if __name__ == "__main__":
    main()
