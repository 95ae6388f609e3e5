"""`python -m index` runs the newsbot command line."""

from index.cli.app import main

main()
