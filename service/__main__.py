"""`python -m service` runs the kerasserve CLI."""

from service.cli import main

raise SystemExit(main())
