import sys

from ssl4rl.cli import main

sys.exit(main())
