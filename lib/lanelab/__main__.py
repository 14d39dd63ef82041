import sys

from lanelab.cli import main

sys.exit(main())
