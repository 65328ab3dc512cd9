"""``python -m reactive_aiops``: the same commands as the ``reactive-aiops`` script."""

import sys

from reactive_aiops.cli import main

sys.exit(main())
