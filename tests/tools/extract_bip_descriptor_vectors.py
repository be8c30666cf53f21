"""Extract the test vectors of BIP32 and the descriptor BIPs 380–387, 389 into JSON (by hand).

Usage: ``python tests/tools/extract_bip_descriptor_vectors.py BIPS_GIT_DIR OUT_DIR``, where
BIPS_GIT_DIR is a clone (or bare mirror) of bitcoin/bips. Each ``bip-03xx.mediawiki``'s "Test
Vectors" section becomes ``OUT_DIR/bip-03xx.json``:

* ``valid``: ``[{"descriptor": text, "items": [text…], "children": [[text…]…]}]``, where ``items``
  are the ``**`` bullets under the descriptor (scripts, or for BIP389 expanded descriptors) and
  ``children`` the ``***`` bullets grouped under each ``** Child N`` (BIP384's ranged combo).
* ``invalid``: ``[{"description": text, "descriptor": text}]``.

BIP32's vectors go to ``OUT_DIR/../bip-0032-vectors.json``: ``vectors`` (seed and
``{chain, pub, prv}`` rows) and ``invalid`` (``{key, reason}``, test vector 5).

BIP380 also lists key expressions and checksum cases: those go in the same two lists, with the
bullet's description kept (``valid`` entries then have ``description`` too).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

BIPS = ["380", "381", "382", "383", "384", "385", "386", "387", "389"]
_TT = re.compile(r"<tt>(.*?)</tt>")


def _strip(text: str) -> str:
    return re.sub(r"</?tt>", "", text).strip().rstrip(":").strip()


def extract(text: str) -> dict[str, Any]:
    section = text.split("==Test Vectors==", 1)[1]
    section = re.split(r"\n==[A-Z]", section, maxsplit=1)[0]
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, str]] = []
    mode = "valid"
    for line in section.splitlines():
        stripped = line.strip()
        if not stripped.startswith("*"):
            if re.search(r"\binvalid\b", stripped, re.IGNORECASE):
                mode = "invalid"
            elif re.search(r"\bvalid\b", stripped, re.IGNORECASE):
                mode = "valid"
            continue
        stars = len(stripped) - len(stripped.lstrip("*"))
        body = stripped[stars:].strip()
        found = _TT.findall(body)
        if stars == 1:
            if not found:
                continue
            descriptor = found[-1]
            description = _strip(body[: body.rfind("<tt>")])
            if mode == "invalid":
                invalid.append({"description": description, "descriptor": descriptor})
            else:
                entry: dict[str, Any] = {"descriptor": descriptor, "items": [], "children": []}
                if description:
                    entry["description"] = description
                valid.append(entry)
        elif stars == 2 and valid and mode == "valid":
            if found:
                valid[-1]["items"].append(found[0])
            else:
                valid[-1]["children"].append([])
        elif stars == 3 and valid and mode == "valid" and found:
            valid[-1]["children"][-1].append(found[0])
    return {"valid": valid, "invalid": invalid}


def extract_bip32(text: str) -> dict[str, Any]:
    """BIP32's test vectors 1–5: seeds with (chain, xpub, xprv) rows, and the invalid keys."""
    vectors: list[dict[str, Any]] = []
    invalid: list[dict[str, str]] = []
    section = text.split("==Test Vectors==", 1)[1].split("==Acknowledgements==", 1)[0]
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("===Test vector"):
            vectors.append({"name": line.strip("= "), "seed": None, "chains": []})
        elif line.startswith("Seed (hex):"):
            vectors[-1]["seed"] = line.split(":", 1)[1].strip()
        elif line.startswith("* Chain "):
            chain = re.sub(r"<sub>H</sub>", "h", line[len("* Chain ") :])
            vectors[-1]["chains"].append({"chain": chain})
        elif line.startswith("** ext pub:"):
            vectors[-1]["chains"][-1]["pub"] = line.split(":", 1)[1].strip()
        elif line.startswith("** ext prv:"):
            vectors[-1]["chains"][-1]["prv"] = line.split(":", 1)[1].strip()
        elif line.startswith("* ") and vectors and vectors[-1]["seed"] is None:
            key, _, reason = line[2:].partition(" ")
            invalid.append({"key": key, "reason": reason.strip().strip("()")})
    return {"vectors": [v for v in vectors if v["seed"]], "invalid": invalid}


def main(bips_dir: str, out_dir: str) -> None:
    head = subprocess.run(
        ["git", "-C", bips_dir, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for number in BIPS:
        name = f"bip-0{number}.mediawiki"
        text = subprocess.run(
            ["git", "-C", bips_dir, "show", f"HEAD:{name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        data = {"source": f"bitcoin/bips {head} {name}", **extract(text)}
        path = Path(out_dir) / f"bip-0{number}.json"
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        print(f"{path}: {len(data['valid'])} valid, {len(data['invalid'])} invalid")
    text = subprocess.run(
        ["git", "-C", bips_dir, "show", "HEAD:bip-0032.mediawiki"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = {"source": f"bitcoin/bips {head} bip-0032.mediawiki", **extract_bip32(text)}
    path = Path(out_dir).parent / "bip-0032-vectors.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{path}: {len(data['vectors'])} vectors, {len(data['invalid'])} invalid keys")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
