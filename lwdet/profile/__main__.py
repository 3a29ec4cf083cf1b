import sys

from lwdet.profile import main

sys.exit(main())
