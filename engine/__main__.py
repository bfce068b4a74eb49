"""``python -m engine <command> ...``: see ``engine.cli``."""
import sys

from .cli import main

sys.exit(main())
