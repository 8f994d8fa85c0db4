"""The dnabox command line: thin commands over the library."""
