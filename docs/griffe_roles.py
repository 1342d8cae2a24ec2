"""A griffe extension for the docs build: Sphinx roles in docstrings become links.

xpopt's numpydoc docstrings cross-reference with Sphinx roles (``:func:`train```,
``:class:`~xpopt.FlatDict```), which mkdocstrings prints as they are. This extension, run
by mkdocstrings when it loads xpopt (``mkdocs.yml``: ``extensions``), rewrites each role into
an *optional* autorefs link: a link where the target is documented on some page, plain code
where it is not (a private helper, another library), and never a build warning. The
docstrings themselves are not changed.

- ``:role:`name``` links to ``name`` resolved in the docstring's scope (the module's
  imports and members, the class's members), and shows ``name``;
- ``:role:`~a.b.name``` shows ``name`` only; ``:role:`title <target>``` shows ``title``.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc|const):`([^`]+)`")


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` means in ``obj``'s docstring, or None where it is unknown."""
    name = name.strip().lstrip(".")
    if name.endswith("()"):
        name = name[:-2]
    head, _, rest = name.partition(".")
    scope: Any = obj
    while scope is not None:
        try:
            path = scope.resolve(head)
        except (griffe.NameResolutionError, Exception):  # noqa: BLE001 (unknown in this scope)
            scope = scope.parent
            continue
        return f"{path}.{rest}" if rest else path
    return name if name.startswith("xpopt.") else None


def _replace(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        content = match.group(1)
        explicit = re.fullmatch(r"(.+?)\s*<([^>]+)>", content)
        if explicit:
            title, name = explicit.group(1), explicit.group(2)
        else:
            name = content
            title = content.split(".")[-1] if content.startswith("~") else content
            name = name.lstrip("~")
            title = title.lstrip("~")
        code = f"<code>{html.escape(title)}</code>"
        target = _target(obj, name)
        if target is None:
            return code
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        seen: set[int] = set()
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = _replace(obj, obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)
