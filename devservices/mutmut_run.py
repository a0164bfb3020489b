"""`python -m devservices.mutmut_run run …`: mutmut's own command line, mutating decorated functions too.

mutmut (3.8) leaves every decorated function unmutated, because some decorators register or wrap a function in ways
its copies would break (`@property`, `@app.route`, `@receiver`). The decorators below only wrap the call (a
transaction, an access check, an HTTP method check), so every copy mutmut makes of such a function behaves as the
function does: without this, about 40 money- and access-critical functions (`@transaction.atomic` most of all) were
never mutated at all and their modules' scores said nothing of them.
"""

from __future__ import annotations

import libcst as cst
from mutmut.mutation.file_mutation import MutationVisitor

WRAPPING_DECORATORS = frozenset({
    "transaction.atomic", "login_required", "agency_admin_required", "require_POST", "require_GET",
    "require_http_methods", "csrf_exempt",
})


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Call):
        return _dotted(node.func)
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return node.value if isinstance(node, cst.Name) else ""


def only_wrapping_decorators(node: cst.CSTNode) -> bool:
    return (isinstance(node, cst.FunctionDef) and bool(node.decorators)
            and all(_dotted(decorator.decorator) in WRAPPING_DECORATORS for decorator in node.decorators))


_skip = MutationVisitor._skip_node_and_children


def _skip_unless_only_wrapped(self: MutationVisitor, node: cst.CSTNode) -> bool:
    if only_wrapping_decorators(node):
        # mutmut's other rules still apply (names it never mutates); the decorators themselves stay unmutated
        return _skip(self, node.with_changes(decorators=()))  # type: ignore[attr-defined]
    return _skip(self, node)


MutationVisitor._skip_node_and_children = _skip_unless_only_wrapped  # type: ignore[method-assign]

if __name__ == "__main__":
    from mutmut.__main__ import cli  # reads the configuration of the directory it runs in

    cli()
