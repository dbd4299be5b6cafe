"""Indexing: read articles, chunk them into paragraphs, embed them and store them on disk."""
