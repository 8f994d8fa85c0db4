"""What every service's ``python3 -m`` entry shares: arguments, logging, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from dnabox.dna.service.config import ConfigError, ServiceConfig, load

EXIT_CONFIG = 2


def run(role: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
        body: Callable[[ServiceConfig, argparse.Namespace], Coroutine[Any, Any, int]],
        argv: list[str] | None = None, any_role: bool = False) -> int:
    parser = argparse.ArgumentParser(prog=f"python3 -m dnabox.dna.service.{role}",
                                     description=description)
    parser.add_argument("--config", required=True, help="the service's JSON config file")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {role} %(levelname)s %(message)s")
    try:
        config = load(args.config)
        if config.role != role and not any_role:
            raise ConfigError(f"{args.config}: role: is {config.role}, this is the {role}")
        return asyncio.run(body(config, args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
