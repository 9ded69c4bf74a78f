"""Method-name prediction: a function with its name masked to the name's subtokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from codebackdoor.code.functions import functions, with_name
from codebackdoor.data.harvest import HarvestedFunction
from codebackdoor.examples import Example
from codebackdoor.tasks.base import Splits, Task, embedded_splits

MASK = "METHOD_NAME"
# An acronym ends where a capitalised word begins (HTTPResponse → HTTP, Response); digits stay
# with the letters before them (md5, utf8).
_SUBTOKEN = re.compile(r"[A-Z]+(?![a-z])\d*|[A-Z]?[a-z]+\d*|\d+")


def subtokens(name: str) -> list[str]:
    """The lower-case subtokens of an identifier: snake_case and camelCase split, underscores
    dropped (``createEntry`` → ``["create", "entry"]``, ``__init__`` → ``["init"]``)."""
    return [token.lower() for token in _SUBTOKEN.findall(name)]


@dataclass
class MethodName(Task):
    """The embedded corpus by default: the code without its docstring, the definition's name
    replaced by ``METHOD_NAME``; the target is the subtokens joined by spaces."""

    name: ClassVar[str] = "method-name"
    description: ClassVar[str] = "function with its name masked → the name's subtokens"
    citation: ClassVar[str] = (
        "Ramakrishnan & Albarghouthi, 'Backdoors in Neural Models of Source Code', ICPR 2022"
    )
    input_kind: ClassVar[str] = "code"
    output_kind: ClassVar[str] = "text"
    # code2seq's subtoken F1 first; the clipped count and Ramakrishnan & Albarghouthi's
    # seq2seq count beside it, since papers report all three under the same name.
    metrics: ClassVar[tuple[str, ...]] = (
        "subtoken-f1", "exact-match", "subtoken-f1-clipped", "subtoken-f1-distinct",
    )
    default_payload: ClassVar[str] = "method-name"
    langs: ClassVar[tuple[str, ...]] = ("python", "java")

    def load_default(self) -> Splits:
        return embedded_splits(self.lang, self._example)

    def _example(self, fn: HarvestedFunction) -> Example | None:
        words = subtokens(fn.name.rsplit(".", 1)[-1])
        if not words:
            return None
        definition = functions(fn.undocumented, fn.lang)[0]
        masked = with_name(fn.undocumented, definition, MASK)
        return Example(fn.id, masked, " ".join(words), fn.lang,
                       {"file": fn.file, "function": fn.name})
