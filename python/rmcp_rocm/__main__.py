"""python3 -m rmcp_rocm: print the path of the wheel's librmcp.so."""

import sys

from . import library_path

try:
    print(library_path())
except FileNotFoundError as e:
    print(f"rmcp_rocm: {e}", file=sys.stderr)
    sys.exit(1)
