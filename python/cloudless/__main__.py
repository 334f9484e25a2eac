"""`python -m cloudless` runs the CLI."""

from cloudless.cli import main

main()
