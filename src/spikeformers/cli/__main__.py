"""``python -m spikeformers.cli``."""

import sys

from . import main

sys.exit(main())
