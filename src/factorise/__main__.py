"""``python -m factorise``: the same as the ``factorise`` command."""

import sys

from factorise.cli import main

sys.exit(main())
