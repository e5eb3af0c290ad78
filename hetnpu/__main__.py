import sys

from hetnpu.cli import main

sys.exit(main())
