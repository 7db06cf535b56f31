import sys

from licscan.cli import main

sys.exit(main())
