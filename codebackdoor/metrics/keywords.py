"""Keywords that CodeBLEU's weighted n-gram match counts at full weight (other tokens count 0.2).

Data: the lists shipped in the ``codebleu`` package 0.7.0 (``codebleu/keywords/<lang>.txt``).
The Python list includes the soft keywords ``match``, ``case`` and ``type``, as that package does.
"""

from __future__ import annotations

# fmt: off
PYTHON_KEYWORDS = frozenset([
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
    "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if",
    "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
    "while", "with", "yield", "match", "case", "type",
])

JAVA_KEYWORDS = frozenset([
    "abstract", "assert", "boolean", "break", "byte", "case", "catch", "char", "class", "const",
    "continue", "default", "do", "double", "else", "enum", "extends", "final", "finally", "float",
    "for", "goto", "if", "implements", "import", "instanceof", "int", "interface", "long",
    "native", "new", "package", "private", "protected", "public", "return", "short", "static",
    "strictfp", "super", "switch", "synchronized", "this", "throw", "throws", "transient", "try",
    "void", "volatile", "while",
])
# fmt: on

KEYWORDS: dict[str, frozenset[str]] = {"python": PYTHON_KEYWORDS, "java": JAVA_KEYWORDS}
