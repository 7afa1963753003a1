"""``python -m agentlink`` is the ``agentlink`` command."""

import sys

from agentlink.cli import main

sys.exit(main())
