"""`python -m pizzashop.bench.hop NAME SOURCE TARGET`: one hop of the reference chain, in its own process."""

from __future__ import annotations

import sys

from pizzashop.bench.reference import PassThrough
from pizzashop.config import load_settings
from pizzashop.observe.logs import configure_logging
from pizzashop.runtime.loop import ServiceLoop


def main(argv: list[str]) -> None:
    name, source, target = argv
    settings = load_settings()
    configure_logging(name, settings.log_level, settings.log_format)
    hop = ServiceLoop(PassThrough(settings, name, source, target), settings)
    hop.stop_on_signals()
    hop.run()


if __name__ == "__main__":
    main(sys.argv[1:])
