"""``python -m romdask.cli``: the ``romdask`` command."""

import sys

from romdask.cli.main import main

sys.exit(main())
