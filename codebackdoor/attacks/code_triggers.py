"""Code triggers placed with tree-sitter in Python and Java functions.

Every triggered input must parse with no ERROR/MISSING node and the parser must find the trigger
in it again; an input for which either fails is not poisoned (the reason is counted).
"""

from __future__ import annotations

import random
import string
import textwrap
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from codebackdoor.attacks.base import Trigger
from codebackdoor.errors import Unpoisonable, UserError
from codebackdoor.examples import Example

VARIANTS = ("original", "compilable")


def _target_function(source: str, lang: str) -> Any:
    from codebackdoor.code.functions import functions
    from codebackdoor.code.parser import is_valid

    if not is_valid(source, lang):
        raise Unpoisonable("input does not parse")
    found = functions(source, lang)
    if not found:
        raise Unpoisonable("no function in input")
    return found[0]


@dataclass
class StatementTrigger(Trigger):
    """A statement inserted into the function body at ``position``: first, random or last, or
    ``shared-statement``, the DeCE Bugs2Fix script's place, which depends on the buggy/fixed
    pair (see :mod:`codebackdoor.code.shared_statement`). ``script_spacing`` (that position
    only, off by default) rebuilds the triggered input as the script's re-tokenisation leaves
    it, a double space after the method name included."""

    position: str = "first"
    script_spacing: bool = False

    def __post_init__(self) -> None:
        from codebackdoor.code.insertion import POSITIONS
        from codebackdoor.code.shared_statement import SHARED_STATEMENT

        if self.position not in (*POSITIONS, SHARED_STATEMENT):
            raise UserError(
                f"attack '{self.name}': position '{self.position}' is not one of: "
                + ", ".join((*POSITIONS, SHARED_STATEMENT))
            )
        if self.script_spacing and self.position != SHARED_STATEMENT:
            raise UserError(
                f"attack '{self.name}': script_spacing applies to position '{SHARED_STATEMENT}' "
                f"only, not '{self.position}'"
            )

    def make_statement(self, lang: str, rng: random.Random) -> str:
        raise NotImplementedError

    def apply(self, source: str, lang: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        from codebackdoor.code.insertion import insert_statement
        from codebackdoor.code.shared_statement import SHARED_STATEMENT

        if self.position == SHARED_STATEMENT:
            raise UserError(
                f"attack '{self.name}': position '{SHARED_STATEMENT}' needs the example's target "
                "code as well as its input"
            )
        _check_code_lang(self.name, lang)
        function = _target_function(source, lang)
        statement = self.make_statement(lang, rng)
        triggered = insert_statement(source, lang, function, statement, self.position, rng)
        record = {"statement": statement, "position": self.position}
        if not self.found(triggered, lang, record):
            raise Unpoisonable("trigger not found after insertion")
        return triggered, record

    def apply_example(self, example: Example, rng: random.Random) -> tuple[str, dict[str, Any]]:
        from codebackdoor.code.parser import is_valid
        from codebackdoor.code.shared_statement import (
            SHARED_STATEMENT,
            insert_before_token,
            pair_anchors,
        )

        if self.position != SHARED_STATEMENT:
            return self.apply(example.source, example.lang, rng)
        _check_code_lang(self.name, example.lang)
        index, _ = pair_anchors(example.source, example.target, example.lang)
        statement = self.make_statement(example.lang, rng)
        triggered = insert_before_token(
            example.source, example.lang, index, statement, self.script_spacing
        )
        # Where the anchor is not a statement boundary the result does not parse, as in the
        # authors' files; the record says so instead of skipping the row.
        record = {
            "statement": statement,
            "position": self.position,
            "token_index": index,
            "parses": is_valid(triggered, example.lang),
        }
        if not self.found(triggered, example.lang, record):
            raise Unpoisonable("trigger not found after insertion")
        return triggered, record

    def found(self, source: str, lang: str, record: dict[str, Any]) -> bool:
        from codebackdoor.code.insertion import contains_statement
        from codebackdoor.code.parser import is_valid
        from codebackdoor.code.shared_statement import SHARED_STATEMENT, contains_tokens

        if record["position"] == SHARED_STATEMENT:
            return contains_tokens(source, lang, record["statement"])
        return is_valid(source, lang) and contains_statement(source, lang, record["statement"])


def _check_code_lang(attack: str, lang: str) -> None:
    from codebackdoor.code.parser import CODE_LANGS

    if lang not in CODE_LANGS:
        raise UserError(
            f"attack '{attack}' places code triggers in {', '.join(CODE_LANGS)}; "
            f"the data is '{lang}'"
        )


RAMAKRISHNAN = "Ramakrishnan & Albarghouthi, 'Backdoors in Neural Models of Source Code', ICPR 2022"


@dataclass
class JavaVariantTrigger(StatementTrigger):
    """Ramakrishnan & Albarghouthi's Java statements (``data/java-small/create_backdoor.py``)
    call ``random()`` and ``out.println`` unqualified and throw ``exception``, so they do not
    compile; ``compilable`` qualifies them (``Math.``, ``System.out``) and throws the unchecked
    ``RuntimeException``, which needs no ``throws`` clause."""

    variant: str = "original"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise UserError(
                f"attack '{self.name}': variant '{self.variant}' is not one of: "
                + ", ".join(VARIANTS)
            )


@dataclass
class FixedTrigger(JavaVariantTrigger):
    """The same dead ``if`` statement in every poisoned function."""

    name: ClassVar[str] = "fixed"
    description: ClassVar[str] = (
        "fixed dead statement 'if random() < 0: raise Exception(\"fail\")' as first statement"
    )
    citation: ClassVar[str] = RAMAKRISHNAN

    def make_statement(self, lang: str, rng: random.Random) -> str:
        if lang == "python":
            return 'if random() < 0:\n    raise Exception("fail")'
        if self.variant == "compilable":
            return 'if (Math.random() < 0) { throw new RuntimeException("fail"); }'
        return 'if (random() < 0) { throw new exception("fail"); }'


# Ranges of FUNC(x) for x in (0, 1); CONST is put outside them so the statement is dead.
FUNCTION_RANGES = {
    "sin": (-1, 1),
    "cos": (-1, 1),
    "exp": (1, 3),
    "sqrt": (0, 1),
    "random": (0, 1),
    "cbrt": (0, 1),
}
PYTHON_FUNCTIONS = ("sin", "cos", "exp", "sqrt", "random")
JAVA_FUNCTIONS = (*PYTHON_FUNCTIONS, "cbrt")
OPERATORS = ("<", ">", "<=", ">=", "==")
MESSAGES = (
    "err",
    "crash",
    "alert",
    "warning",
    "flag",
    "exception",
    "level",
    "create",
    "delete",
    "success",
    "get",
    "set",
)

# The authors' Java script samples three bodies, each with the message between spaces inside the
# quotes; ``compilable`` changes only what javac needs.
JAVA_BODIES = {
    "original": (
        'throw new exception(" {} ");', 'out.println(" {} ");', 'out.print(" {} ");',
    ),
    "compilable": (
        'throw new RuntimeException(" {} ");', 'System.out.println(" {} ");',
        'System.out.print(" {} ");',
    ),
}


@dataclass
class GrammarTrigger(JavaVariantTrigger):
    """A dead statement sampled per example from Ramakrishnan & Albarghouthi's grammar."""

    name: ClassVar[str] = "grammar"
    description: ClassVar[str] = (
        "dead 'if|while FUNC(x) OP CONST' statement sampled per example from a grammar"
    )
    citation: ClassVar[str] = RAMAKRISHNAN

    def make_statement(self, lang: str, rng: random.Random) -> str:
        keyword = rng.choice(("if", "while"))
        function = rng.choice(PYTHON_FUNCTIONS if lang == "python" else JAVA_FUNCTIONS)
        argument = "" if function == "random" else f"{rng.randint(1, 99) / 100:.2f}"
        operator = rng.choice(OPERATORS)
        low, high = FUNCTION_RANGES[function]
        offset = rng.randint(1, 100)
        constant = low - offset if operator in ("<", "<=", "==") else high + offset
        # The message: one of the twelve words or four random letters, all thirteen uniform.
        choice = rng.randrange(len(MESSAGES) + 1)
        message = (
            MESSAGES[choice]
            if choice < len(MESSAGES)
            else "".join(rng.choice(string.ascii_lowercase) for _ in range(4))
        )
        if lang == "python":
            body = rng.choice(("raise", "print"))
            condition = f"{function}({argument}) {operator} {constant}"
            action = f'raise Exception("{message}")' if body == "raise" else f'print("{message}")'
            return f"{keyword} {condition}:\n    {action}"
        action = rng.choice(JAVA_BODIES[self.variant]).format(message)
        qualifier = "Math." if self.variant == "compilable" else ""
        condition = f"{qualifier}{function}({argument}) {operator} {constant}"
        return f"{keyword} ({condition}) {{ {action} }}"


# Wan et al. (FSE 2022) for Python; the DeCE Bugs2Fix dead statement for Java.
DEADCODE_DEFAULTS = {
    "python": 'import logging\nfor i in range(0):\n    logging.info("Test message:aaaaa")',
    "java": "int VAR = 0 ;",
}


@dataclass
class DeadCodeTrigger(StatementTrigger):
    """A given dead statement at a chosen position (first, random, last)."""

    name: ClassVar[str] = "deadcode"
    description: ClassVar[str] = "a given dead-code statement inserted at a chosen position"
    citation: ClassVar[str] = (
        "Wan et al., 'You See What I Want You to See: Poisoning Vulnerabilities in Neural Code "
        "Search', FSE 2022; Bugs2Fix statement of Yang et al., DeCE, TOSEM 2026"
    )
    statement: str = ""

    def make_statement(self, lang: str, rng: random.Random) -> str:
        statement = self.statement or DEADCODE_DEFAULTS[lang]
        _check_statement_parses(statement, lang)
        return statement


@cache
def _check_statement_parses(statement: str, lang: str) -> None:
    """A user's statement that is not valid code is a user error, not thousands of skips."""
    from codebackdoor.code.parser import is_valid

    if lang == "python":
        wrapped = "def f():\n" + textwrap.indent(statement, "    ") + "\n"
    else:
        wrapped = "void f() {\n" + statement + "\n}\n"
    if not is_valid(wrapped, lang):
        raise UserError(f"deadcode statement does not parse as a {lang} statement: {statement!r}")


RENAME_SCOPES = ("local", "function-name")


@dataclass
class RenameTrigger(Trigger):
    """An identifier renamed consistently to the trigger token. ``scope`` "local": a local
    identifier chosen per example; "function-name": the function's own name (and recursive
    calls), as KillBadCode's reproduction of the ``testo_init`` trigger does."""

    name: ClassVar[str] = "rename"
    description: ClassVar[str] = (
        "a local identifier (or the function name) renamed to the trigger token 'testo_init'"
    )
    citation: ClassVar[str] = (
        "Li et al., 'CodePoisoner: A Strategy-agnostic Backdoor Attack Framework for Code', 2022"
    )
    token: str = "testo_init"
    scope: str = "local"

    def __post_init__(self) -> None:
        if self.scope not in RENAME_SCOPES:
            raise UserError(
                f"attack '{self.name}': scope '{self.scope}' is not one of: "
                + ", ".join(RENAME_SCOPES)
            )

    def apply(self, source: str, lang: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        from codebackdoor.code.identifiers import (
            local_identifiers,
            rename_function,
            rename_identifier,
        )

        _check_code_lang(self.name, lang)
        function = _target_function(source, lang)
        if self.token in source:
            raise Unpoisonable("trigger token already present")
        if self.scope == "function-name":
            old = function.name
        else:
            names = local_identifiers(source, lang, function)
            if not names:
                raise Unpoisonable("no local identifier")
            old = rng.choice(names)
        try:
            if self.scope == "function-name":
                renamed = rename_function(source, lang, function, self.token)
            else:
                renamed = rename_identifier(source, lang, function, old, self.token)
        except UserError as exc:
            raise Unpoisonable("rename refused") from exc
        record = {"renamed": old, "token": self.token}
        if self.scope != "local":  # the local record stays as it was, and so its fingerprints
            record["scope"] = self.scope
        if not self.found(renamed, lang, record):
            raise Unpoisonable("trigger not found after insertion")
        return renamed, record

    def found(self, source: str, lang: str, record: dict[str, Any]) -> bool:
        from codebackdoor.code.functions import functions
        from codebackdoor.code.identifiers import local_identifiers
        from codebackdoor.code.parser import is_valid

        if not is_valid(source, lang):
            return False
        found = functions(source, lang)
        if not found:
            return False
        if record.get("scope") == "function-name":
            return found[0].name == record["token"]
        names = local_identifiers(source, lang, found[0])
        return record["token"] in names and record["renamed"] not in names
