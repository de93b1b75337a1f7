"""The seed project's entry point, kept so its commands run unchanged:

    python main.py --dataset dvsc10 --epochs 500 --batch-size 16 --seed 42 --event-size 128 --model spikformer --device 0

It translates the seed's flags into ``spikeformers train`` (see
``spikeformers/cli/seed.py`` for the mapping); new work should call
``spikeformers train`` directly.
"""

import sys

from spikeformers.cli.seed import main

if __name__ == "__main__":
    sys.exit(main())
