import sys

from textgym.cli import main

sys.exit(main())
