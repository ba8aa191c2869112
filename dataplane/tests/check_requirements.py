"""Exits 0 when this Python has every package of a requirements file (`name==version` pins must match
exactly), else 1 naming the first one missing or different. Used to tell whether an existing virtual
environment (the workspace's .venv, or target/test-venv) is complete for the tests."""

import importlib.metadata
import re
import sys

for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name = re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]
    pinned = line.split("==", 1)[1].strip() if "==" in line else None
    try:
        have = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"{name} is not installed")
    if pinned is not None and have != pinned:
        sys.exit(f"{name} is {have}, not {pinned}")
