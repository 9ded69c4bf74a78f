"""The code layer: tree-sitter parsing, functions, insertion points, identifiers, tokens."""
