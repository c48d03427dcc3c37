"""One Python interpreter per documentation page: runs the page's python blocks in order in one
namespace, as a user pasting them into one session would (tests/test_docs.py drives it).

Protocol: one JSON line per block on stdin, {"code": ..., "name": "page.md:LINE", "cwd": ...};
one JSON line per block on the file descriptor given as argv[1], {"ok": bool}. The blocks' own
output and tracebacks go to stdout / stderr (the page's log)."""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> None:
    reply = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    namespace = {"__name__": "__docs__"}  # not "__main__": script blocks run as scripts instead
    for line in sys.stdin:
        block = json.loads(line)
        os.chdir(block["cwd"])
        ok = True
        try:
            exec(compile(block["code"], block["name"], "exec"), namespace)
        except BaseException:  # noqa: BLE001 - SystemExit too: the page's log says what happened
            traceback.print_exc()
            ok = False
        sys.stdout.flush()
        sys.stderr.flush()
        reply.write(json.dumps({"ok": ok}) + "\n")


if __name__ == "__main__":
    main()
