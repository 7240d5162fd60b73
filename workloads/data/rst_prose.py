"""English prose from Sphinx reStructuredText: `clean_rst` keeps the prose paragraphs of a file (one
list per section), `split_sentences` cuts a paragraph into sentences. Used by the pydocs_bert build
(workloads/data/pydocs.py) on the Python documentation's `*.rst.txt` sources.

Why a hand-written reST cleaner, not docutils: the sources are *Sphinx* reST. docutils does not know
Sphinx's ~100 roles and directives (:func:, .. function::, .. versionchanged::, .. impl-detail::,
...): each one becomes an error node with the raw markup inside unless every one is registered by
hand, and the result is still a doctree to walk. The job here is narrow (keep prose, drop code and
markup) and lossy by design; a line-based cleaner that drops anything it does not recognise as prose
is shorter, has no dependency, and fails soft (an odd construct loses a paragraph, never the file).

Any change of the output changes the pydocs_bert records: bump workloads.data.pydocs.CODE_VERSION.
"""

from __future__ import annotations

import re

#: Directives whose indented body is prose (admonitions, version notes, object descriptions):
#: the directive line goes, the body stays. Every other directive is dropped with its body
#: (code-block, doctest, toctree, index, table, literalinclude, productionlist, image, raw, ...).
PROSE_DIRECTIVES = frozenset("""
    note warning versionadded versionchanged deprecated deprecated-removed seealso attention tip
    important hint caution danger impl-detail admonition topic sidebar only glossary centered
    function method class data attribute exception decorator decoratormethod classmethod
    staticmethod abstractmethod coroutinefunction coroutinemethod awaitablefunction
    awaitablemethod describe envvar option cmdoption opcode pdbcommand module-level
""".split())
_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::(.*)$")
_EXPLICIT = re.compile(r"^\.\.(\s|$)")  # comments, targets (.. _x:), footnotes, substitutions
_RULE = re.compile(r"^([=\-~^\"'`#*+<>:._])\1{2,}\s*$")  # heading under/overline, transition
_TABLE_RULE = re.compile(r"^(=+\s+)+=+\s*$|^\+[-=+]+\+\s*$")
_BULLET = re.compile(r"^([*+\-•]|#\.|\d+\.|\(?[a-zA-Z0-9]\)|[a-zA-Z]\.)\s+")
_FIELD = re.compile(r"^:[\w\s.-]+:\s*")
_ROLE = re.compile(r":[\w:.+-]+:`([^`]*)`")
_LINK = re.compile(r"`([^`<]*?)\s*<[^`>]*>`__?")
_REF = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"`([^`]+)`")
_EMPHASIS = re.compile(r"\*\*([^*]+?)\*\*|\*([^*\s](?:[^*]*?[^*\s])?)\*")
_FOOTNOTE_REF = re.compile(r"\s*\[(#\w*|\*|\d+)\]_")
_SUBSTITUTION = re.compile(r"\|[\w\s.-]+\|_{0,2}")
_WORD_REF = re.compile(r"\b([A-Za-z][\w-]*[A-Za-z0-9])__?(?=[\s.,;:)!?]|$)")  # name_ links, not __dunder__
_DOCTEST = re.compile(r"^(>>>|\.\.\.\s|\$ |%)")


def _role_text(match: re.Match[str]) -> str:
    """:role:`title <target>` -> title; :role:`~a.b.c` -> c; :role:`!x` -> x (Sphinx's rendering)."""
    text = match.group(1)
    explicit = re.match(r"^(.*?)\s*<[^<>]*>$", text, re.S)
    if explicit and explicit.group(1):
        return explicit.group(1)
    if text.startswith("~"):
        return text[1:].rsplit(".", 1)[-1]
    return text.lstrip("!")


def clean_inline(text: str) -> str:
    """Inline markup -> plain text: roles, links, literals, emphasis, footnote refs, substitutions."""
    text = _ROLE.sub(_role_text, text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _LITERAL.sub(lambda m: m.group(1), text)
    text = _REF.sub(lambda m: m.group(1), text)
    text = _INTERPRETED.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(1) or m.group(2), text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _SUBSTITUTION.sub("", text)
    text = _WORD_REF.sub(r"\1", text)
    text = text.replace("\\ ", "").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_prose(paragraph: str) -> bool:
    """At least 4 words, mostly letters, not code-looking (few brackets/operators per word)."""
    words = paragraph.split()
    if len(words) < 4:
        return False
    letters = sum(c.isalpha() for c in paragraph)
    code = sum(c in "{}[]()=<>;_@$\\/" for c in paragraph)
    return letters >= 0.6 * len(paragraph.replace(" ", "")) and code <= 0.05 * len(paragraph)


def clean_rst(text: str) -> list[list[str]]:
    """Sections of prose paragraphs (one string per paragraph) of one reST file.

    Line-based: a heading (a line underlined by a punctuation rule) starts a new section and is
    dropped; blocks are dropped with everything indented below them when they are code or markup:
    literal blocks after `::`, directives not in PROSE_DIRECTIVES, comments, link targets,
    footnotes, substitution definitions, doctest sessions and tables (grid and simple).
    """
    lines = text.expandtabs(8).splitlines()
    sections: list[list[str]] = [[]]
    paragraph: list[str] = []
    skip_below: int | None = None  # drop lines indented deeper than this (a dropped block's body)
    in_table = False

    def flush() -> None:
        if paragraph:
            joined = clean_inline(" ".join(paragraph))
            if _is_prose(joined):
                sections[-1].append(joined)
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        stripped = line.strip()
        i += 1
        if skip_below is not None:
            if not stripped or _indent(line) > skip_below:
                continue
            skip_below = None
        if in_table:
            if _TABLE_RULE.match(stripped) and (i >= len(lines) or not lines[i].strip()):
                in_table = False
            continue
        if not stripped:
            flush()
            continue
        if _TABLE_RULE.match(stripped) and not _RULE.match(stripped):
            flush()
            in_table = True
            continue
        if _RULE.match(stripped):  # underline (title in paragraph) or overline/transition
            paragraph.clear()
            if sections[-1]:
                sections.append([])
            if i < len(lines) and lines[i].strip() and i + 1 < len(lines) and _RULE.match(lines[i + 1].strip()):
                i += 2  # overline, title, underline
            continue
        directive = _DIRECTIVE.match(stripped)
        if directive or _EXPLICIT.match(stripped):
            flush()
            if directive and directive.group(1) in PROSE_DIRECTIVES:
                skip_options = i
                while skip_options < len(lines) and _FIELD.match(lines[skip_options].strip()):
                    skip_options += 1  # the directive's :option: lines
                i = skip_options
            else:
                skip_below = _indent(line)
            continue
        if _DOCTEST.match(stripped) or stripped.startswith("|"):  # doctest, line block / grid row
            flush()
            skip_below = _indent(line) - 1 if _indent(line) else None
            if _indent(line) == 0:
                while i < len(lines) and lines[i].strip():
                    i += 1
            continue
        if _BULLET.match(stripped) or _FIELD.match(stripped):
            flush()
            stripped = _FIELD.sub("", _BULLET.sub("", stripped))
        if stripped.endswith("::"):  # literal block follows: keep the sentence, drop the block
            stripped = stripped[:-2].rstrip()
            stripped = stripped + ":" if stripped and not stripped.endswith(":") else stripped
            paragraph.append(stripped)
            flush()
            skip_below = _indent(line)
            continue
        paragraph.append(stripped)
    flush()
    return [s for s in sections if s]


# --- sentences ----------------------------------------------------------------------------------

_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "Mr.", "Dr.", "approx.", "resp.", "No.", "et al.")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of a paragraph: break after . ! ? before a capital or digit, not after an
    abbreviation (e.g., i.e., etc., ...) or a single-letter initial."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        head = paragraph[start:match.start()]
        last = head.rsplit(" ", 1)[-1]
        if last.endswith(_ABBREVIATIONS) or re.fullmatch(r"\(?[A-Za-z]\.", last):
            continue
        sentences.append(paragraph[start:match.end()].strip())
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
