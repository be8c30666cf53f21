"""Assemble Bitcoin Core's ``script_assets_test.json`` from the per-case files that Core's
``test/functional/feature_taproot.py --dumptests`` writes.

Core's taproot test, run with ``--dumptests``, writes each test case it builds to its own file,
``$TEST_DUMP_DIR/<first hex digit>/<sha1>``, where ``<sha1>`` is the SHA-1 of the file's bytes:
one JSON object followed by ``",\\n"``. The unit test ``script_assets_tests.cpp`` reads them
joined into one JSON array. This script does that join, deterministically:

* it reads every file under DIR (flat, as btcd keeps them in ``txscript/data/taproot-ref/``, or
  in Core's per-digit sub-folders) and checks that each is named by the SHA-1 of its content,
  that it ends in ``",\\n"`` and that the rest is one JSON object;
* it sorts the cases by file name, and writes ``[\\n``, the files' bytes one after the other
  without the last ``",\\n"``, and ``\\n]\\n``.

``--every N`` keeps every Nth case of that order (N=1, the default, keeps all of them).

Usage: ``python tests/tools/build_script_assets.py DIR [--every N] > script_assets_test.json``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def read_cases(directory: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every dump file under ``directory``, sorted by name."""
    cases = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if hashlib.sha1(raw).hexdigest() != path.name:
            raise SystemExit(f"{path}: not named by the SHA-1 of its content")
        if not raw.endswith(b",\n"):
            raise SystemExit(f"{path}: does not end in ',\\n' as a dump file does")
        if not isinstance(json.loads(raw[:-2]), dict):
            raise SystemExit(f"{path}: not one JSON object")
        cases.append((path.name, raw))
    cases.sort()
    if len({name for name, _ in cases}) != len(cases):
        raise SystemExit("the same case appears twice")
    return cases


def join(cases: list[tuple[str, bytes]], every: int = 1) -> bytes:
    """The JSON array of the kept cases, as Core's script_assets_test.json is laid out."""
    kept = [raw for _, raw in cases[::every]]
    if not kept:
        raise SystemExit("no cases")
    return b"[\n" + b"".join(kept)[:-2] + b"\n]\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="the dump files (TEST_DUMP_DIR)")
    parser.add_argument("--every", type=int, default=1, help="keep every Nth case (default 1)")
    args = parser.parse_args(argv)
    if args.every < 1:
        parser.error("--every must be at least 1")
    data = join(read_cases(args.directory), args.every)
    json.loads(data)  # the result is valid JSON
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
