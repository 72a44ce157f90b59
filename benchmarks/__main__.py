"""Run a benchmark suite: ``python -m benchmarks <suite> --dburl ... --num N``.

Each suite is a module with ``main(argv)``; add one to SUITES to make it runnable here.
"""

from __future__ import annotations

import compileall
import importlib
import sys
from pathlib import Path

import cephalopod

SUITES = {
    "crawl": "benchmarks.crawl",
    "stats": "benchmarks.stats",
    "web": "benchmarks.web",
    "load": "benchmarks.load",
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the suite named by the first argument."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in SUITES:
        print(f"usage: python -m benchmarks {{{','.join(SUITES)}}} [options] (--help)")
        return 2
    # The commands measured run what a deployment runs: an installed package has its
    # bytecode (pip compiles it), but an editable checkout under PYTHONDONTWRITEBYTECODE
    # (set on this machine) would compile every module of ours again at every start.
    compileall.compile_dir(Path(cephalopod.__file__).parent, quiet=1)
    module = importlib.import_module(SUITES[args[0]])
    return module.main(args[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
