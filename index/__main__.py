"""`python -m index` runs the newsbot command line."""

from index.cli import main

main()
