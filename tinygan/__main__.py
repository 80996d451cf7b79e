"""``python -m tinygan``: the same as the ``tinygan`` command."""
import sys

from tinygan.cli import main

sys.exit(main())
