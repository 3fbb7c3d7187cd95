"""`python -m router.cli`: the same as the `tierwise` command."""

import sys

from router.cli import main

sys.exit(main())
