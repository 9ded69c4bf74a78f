"""codebackdoor: backdoor attacks and defenses for code language models under one set of rules."""

__version__ = "0.3.0"
