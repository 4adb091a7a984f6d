"""The torch core of convSeq: bins and plain arrays in, filters, occurrences and members out."""
