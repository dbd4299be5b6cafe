"""`python -m semsearch.search.cli`: the `semsearch` command."""

from semsearch.search.cli import main

main()
