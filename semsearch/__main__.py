"""`python -m semsearch`: the same commands as the `semsearch` console script."""

from semsearch.search.cli import main

main()
