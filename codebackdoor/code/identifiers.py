"""The local identifiers of a function, and renaming one of them, or the function itself,
consistently."""

from __future__ import annotations

import keyword
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from codebackdoor.code.functions import Function, definition_node
from codebackdoor.code.parser import cached_parse, language
from codebackdoor.errors import UserError

if TYPE_CHECKING:
    import tree_sitter

# Binding constructs, captured by one query over the function instead of a Python-level walk.
_PYTHON_QUERY = """
(assignment left: (_) @target)
(augmented_assignment left: (_) @target)
(for_statement left: (_) @target)
(for_in_clause left: (_) @target)
(as_pattern alias: (_) @target)
(named_expression name: (_) @target)
(global_statement (identifier) @global)
(nonlocal_statement (identifier) @nonlocal)
(function_definition name: (identifier) @definition)
(class_definition name: (identifier) @definition)
[(function_definition) (lambda)] @function
(identifier) @identifier
"""
_JAVA_QUERY = """
(formal_parameter name: (identifier) @declared)
(variable_declarator name: (identifier) @declared)
(catch_formal_parameter name: (identifier) @declared)
(enhanced_for_statement name: (identifier) @declared)
(lambda_expression parameters: (identifier) @declared)
(inferred_parameters (identifier) @declared)
(resource name: (identifier) @declared)
(instanceof_expression name: (identifier) @declared)
(identifier) @identifier
(type_identifier) @identifier
"""
# Comprehensions are not scopes here: their variables count as the function's locals.
_PYTHON_SCOPES = frozenset({"function_definition", "lambda", "class_definition"})
_JAVA_SCOPES = frozenset(
    {"method_declaration", "constructor_declaration", "compact_constructor_declaration",
     "class_body"}
)  # fmt: skip
_PYTHON_TARGET_GROUPS = frozenset({
    "pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression",
    "list_splat_pattern", "list_splat", "as_pattern_target", "expression_list",
})  # fmt: skip
_PYTHON_RECEIVERS = frozenset({"self", "cls"})
# A Java identifier in one of these (parent type, field) places names a member, a method, a
# label or an annotation, never a local variable.
_JAVA_NON_VARIABLE_PLACES = frozenset({
    ("field_access", "field"), ("method_invocation", "name"), ("method_declaration", "name"),
    ("constructor_declaration", "name"), ("marker_annotation", "name"), ("annotation", "name"),
    ("element_value_pair", "key"), ("class_declaration", "name"),
    ("interface_declaration", "name"), ("enum_declaration", "name"),
    ("record_declaration", "name"), ("enum_constant", "name"),
})  # fmt: skip
# Labels, and the package paths of imports and annotations.
_JAVA_NON_VARIABLE_PARENTS = frozenset(
    {"labeled_statement", "break_statement", "continue_statement", "scoped_identifier"}
)
_JAVA_KEYWORDS = frozenset({
    "abstract", "assert", "boolean", "break", "byte", "case", "catch", "char", "class", "const",
    "continue", "default", "do", "double", "else", "enum", "extends", "final", "finally",
    "float", "for", "goto", "if", "implements", "import", "instanceof", "int", "interface",
    "long", "native", "new", "package", "private", "protected", "public", "return", "short",
    "static", "strictfp", "super", "switch", "synchronized", "this", "throw", "throws",
    "transient", "try", "void", "volatile", "while", "true", "false", "null", "var", "yield",
    "record", "_",
})  # fmt: skip
_JAVA_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")


@cache
def _query_cursor(lang: str) -> tree_sitter.QueryCursor:
    import tree_sitter

    source = _PYTHON_QUERY if lang == "python" else _JAVA_QUERY
    return tree_sitter.QueryCursor(tree_sitter.Query(language(lang), source))


def _captures(definition: tree_sitter.Node, lang: str) -> dict[str, list[tree_sitter.Node]]:
    cursor = _query_cursor(lang)
    cursor.set_byte_range(definition.start_byte, definition.end_byte)
    return cursor.captures(definition)


@dataclass
class _Scope:
    """What one Python scope binds, by name."""

    bound: dict[str, list[tree_sitter.Node]] = field(default_factory=lambda: defaultdict(list))
    global_names: set[str] = field(default_factory=set)
    nonlocal_names: set[str] = field(default_factory=set)
    definitions: set[str] = field(default_factory=set)

    def binds(self, name: str) -> bool:
        return name in self.bound and name not in self.global_names | self.nonlocal_names


def _python_scopes(definition: tree_sitter.Node) -> dict[int, _Scope]:
    """What each scope inside ``definition`` (itself included) binds, keyed by node id."""
    scopes: dict[int, _Scope] = defaultdict(_Scope)
    captures = _captures(definition, "python")
    for function in captures.get("function", []):
        for name in _python_parameter_names(function):
            scopes[function.id].bound[name.text.decode()].append(name)
    for target in captures.get("target", []):
        for name in _target_names(target):
            scopes[_python_owner(target).id].bound[name.text.decode()].append(name)
    for name in captures.get("global", []):
        scopes[_python_owner(name).id].global_names.add(name.text.decode())
    for name in captures.get("nonlocal", []):
        scopes[_python_owner(name).id].nonlocal_names.add(name.text.decode())
    for name in captures.get("definition", []):
        # The name of a def or class belongs to the scope around it.
        owner = _python_owner(name.parent)
        if owner is not None:
            scopes[owner.id].definitions.add(name.text.decode())
            scopes[owner.id].bound[name.text.decode()].append(name)
    return scopes


def _python_owner(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The nearest function, lambda or class around ``node``."""
    node = node.parent
    while node is not None and node.type not in _PYTHON_SCOPES:
        node = node.parent
    return node


def _target_names(target: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The identifiers an assignment target binds (not attributes or subscripts)."""
    if target.type == "identifier":
        return [target]
    if target.type in _PYTHON_TARGET_GROUPS:
        return [name for part in target.named_children for name in _target_names(part)]
    return []


def _python_parameter_names(scope: tree_sitter.Node) -> list[tree_sitter.Node]:
    parameters = scope.child_by_field_name("parameters")
    if parameters is None:
        return []
    names = []
    for parameter in parameters.named_children:
        if parameter.type in ("default_parameter", "typed_default_parameter"):
            parameter = parameter.child_by_field_name("name")
        elif parameter.type == "typed_parameter":
            parameter = parameter.named_children[0]
        if parameter.type in ("list_splat_pattern", "dictionary_splat_pattern"):
            parameter = parameter.named_children[0]
        names.extend(_target_names(parameter))
    return names


def local_identifiers(code: str, lang: str, fn: Function) -> list[str]:
    """The names ``fn`` declares locally, in order of first appearance.

    Python: parameters (not self/cls) and assignment, augmented-assignment, for, with-as,
    except-as, walrus and comprehension targets; not names declared global/nonlocal, nor the
    names of nested defs and classes. Java: formal, catch, enhanced-for and lambda parameters,
    local variables and try resources (not the members of local or anonymous classes).
    """
    definition = definition_node(cached_parse(code, lang), fn)
    if lang == "python":
        scope = _python_scopes(definition)[definition.id]
        names = [
            name
            for text, nodes in scope.bound.items()
            if scope.binds(text) and text not in scope.definitions and text not in _PYTHON_RECEIVERS
            for name in nodes
        ]
    else:
        names = [
            name
            for name in _captures(definition, "java").get("declared", [])
            if _java_owner(name) == definition
        ]
    names.sort(key=lambda node: node.start_byte)
    return list(dict.fromkeys(name.text.decode() for name in names))


def _java_owner(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The nearest method, constructor or class body around ``node``."""
    node = node.parent
    while node is not None and node.type not in _JAVA_SCOPES:
        node = node.parent
    return node


def rename_identifier(code: str, lang: str, fn: Function, old: str, new: str) -> str:
    """``code`` with the local ``old`` of ``fn`` renamed to ``new`` wherever it refers to that
    local: attribute and keyword-argument names (Python), field accesses and method names
    (Java), and names a nested scope rebinds are left alone."""
    _check_identifier(new, lang)
    if old not in local_identifiers(code, lang, fn):
        raise UserError(f"'{old}' is not a local identifier of function '{fn.name}'")
    definition = definition_node(cached_parse(code, lang), fn)
    identifiers = _captures(definition, lang).get("identifier", [])
    old_bytes, new_bytes = old.encode("utf-8"), new.encode("utf-8")
    if any(name.text == new_bytes for name in identifiers):
        raise UserError(f"'{new}' already occurs in function '{fn.name}'")
    candidates = [name for name in identifiers if name.text == old_bytes]
    if lang == "python":
        scopes = _python_scopes(definition)
        places = [name for name in candidates if _python_refers_to_local(name, definition, scopes)]
    else:
        places = [name for name in candidates if _java_refers_to_local(name, definition)]
    return _replace(code, places, new_bytes)


def rename_function(code: str, lang: str, fn: Function, new: str) -> str:
    """``code`` with every identifier inside ``fn`` that spells ``fn``'s name (the definition's
    name and recursive calls) spelled ``new``: KillBadCode's ``func_name``/``substitute``
    poisoning, which replaces the name's whole tokens, restricted to identifiers."""
    _check_identifier(new, lang)
    definition = definition_node(cached_parse(code, lang), fn)
    identifiers = _captures(definition, lang).get("identifier", [])
    old_bytes, new_bytes = fn.name.encode("utf-8"), new.encode("utf-8")
    if any(name.text == new_bytes for name in identifiers):
        raise UserError(f"'{new}' already occurs in function '{fn.name}'")
    return _replace(code, [name for name in identifiers if name.text == old_bytes], new_bytes)


def _replace(code: str, places: list[tree_sitter.Node], new: bytes) -> str:
    data = code.encode("utf-8")
    pieces = []
    position = 0
    for name in sorted(places, key=lambda node: node.start_byte):
        pieces += [data[position : name.start_byte], new]
        position = name.end_byte
    pieces.append(data[position:])
    return b"".join(pieces).decode("utf-8")


def _check_identifier(name: str, lang: str) -> None:
    if lang == "python":
        valid = name.isidentifier() and not keyword.iskeyword(name)
    else:
        valid = _JAVA_IDENTIFIER.match(name) is not None and name not in _JAVA_KEYWORDS
    if not valid:
        raise UserError(f"'{name}' is not a valid {lang} identifier")


def _field_of(node: tree_sitter.Node) -> str | None:
    parent = node.parent
    for index, child in enumerate(parent.children):
        if child == node:
            return parent.field_name_for_child(index)
    return None


def _python_refers_to_local(
    name: tree_sitter.Node, definition: tree_sitter.Node, scopes: dict[int, _Scope]
) -> bool:
    parent = name.parent
    if (parent.type, _field_of(name)) in (("attribute", "attribute"), ("keyword_argument", "name")):
        return False
    if parent.type in ("dotted_name", "aliased_import"):
        return False  # module paths in imports
    text = name.text.decode()
    innermost = True
    scope = _python_owner(name)
    while scope is not None:
        if not _evaluated_inside(name, scope):
            # Defaults, annotations and base classes are evaluated around the scope.
            scope = _python_owner(scope)
            continue
        if scope == definition:
            return True
        details = scopes.get(scope.id)
        if details is not None:
            if text in details.global_names:
                return False
            if details.binds(text) and (innermost or scope.type != "class_definition"):
                return False
        innermost = False
        scope = _python_owner(scope)
    return False


def _evaluated_inside(name: tree_sitter.Node, scope: tree_sitter.Node) -> bool:
    body = scope.child_by_field_name("body")
    if body.start_byte <= name.start_byte < body.end_byte:
        return True
    return scope.type != "class_definition" and any(
        parameter == name for parameter in _python_parameter_names(scope)
    )


def _java_refers_to_local(name: tree_sitter.Node, definition: tree_sitter.Node) -> bool:
    if name.type != "identifier":
        return False
    parent = name.parent
    if parent.type in _JAVA_NON_VARIABLE_PARENTS or (parent.type, _field_of(name)) in (
        _JAVA_NON_VARIABLE_PLACES
    ):
        return False
    if parent.type == "method_reference" and name.prev_sibling is not None:
        return False
    # Inside a local or anonymous class that declares the same name, the name is that class's.
    owner = _java_owner(name)
    while owner is not None and owner != definition:
        if owner.type == "class_body" and _java_class_declares(owner, name.text):
            return False
        owner = _java_owner(owner)
    return owner == definition


def _java_class_declares(class_body: tree_sitter.Node, text: bytes) -> bool:
    cursor = _query_cursor("java")
    cursor.set_byte_range(class_body.start_byte, class_body.end_byte)
    return any(name.text == text for name in cursor.captures(class_body).get("declared", []))
