"""``python -m lash_store_cli``: the ``lash-store`` command."""

import sys

from .cli import main

sys.exit(main())
