"""``python -m hetnpu.cli``: the same as the ``hetnpu`` console script."""

import sys

from hetnpu.cli import main

sys.exit(main())
