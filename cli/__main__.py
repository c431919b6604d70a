"""`python -m corpusmill.cli`: the `corpusmill` command."""

import sys

from corpusmill.cli.main import main

sys.exit(main())
