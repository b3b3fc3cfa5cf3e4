"""PubMed queries built from the protocol's search concepts, and a linter for them.

PubMed evaluates AND, OR and NOT strictly from left to right, so every group is parenthesised:
the query means what the protocol says whatever order PubMed reads it in.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from review.protocol import MeshHeading, SearchConcept, SearchSpec

FIELD_TAGS = {
    "ad", "affl", "all", "au", "auid", "book", "cn", "crdt", "dcom", "dp", "ed", "edat", "filter",
    "fau", "gr", "ir", "is", "isbn", "ip", "jour", "la", "lastau", "lid", "majr", "majr:noexp",
    "mh", "mh:noexp", "mesh", "mesh:noexp", "mhda", "nm", "ot", "pa", "pdat", "pg", "pl", "pmid",
    "ps", "pt", "sb", "sh", "si", "so", "ta", "ti", "tiab", "tt", "tw", "uid", "vi",
}
PROXIMITY_TAG = re.compile(r"(ti|tiab|ad):~\d+")
MIN_TRUNCATION_STEM = 4


def _quoted(term: str) -> str:
    return f'"{term}"' if re.search(r"[\s,/()\-]", term) else term


def mesh_clause(heading: MeshHeading) -> str:
    """One MeSH heading with its subheading, major-topic and explosion options."""
    term = heading.heading + (f"/{heading.subheading}" if heading.subheading else "")
    tag = "Majr" if heading.major else "Mesh"
    if not heading.explode:
        tag += ":NoExp"
    return f'"{term}"[{tag}]'


def located_clauses(concept: SearchConcept, path: str) -> list[tuple[str, str, str]]:
    """(clause, protocol key path, protocol term) for each ORed part of a concept: MeSH,
    title/abstract terms, proximity (one clause per combination of word forms), publication
    types."""
    parts = [(mesh_clause(heading), f"{path}.mesh[{i}]", heading.heading)
             for i, heading in enumerate(concept.mesh)]
    parts += [(f"{_quoted(term)}[tiab]", f"{path}.tiab[{i}]", term)
              for i, term in enumerate(concept.tiab)]
    parts += [(f'"{phrase}"[tiab:~{near.distance}]', f"{path}.tiab_proximity[{i}]",
               near.describe())
              for i, near in enumerate(concept.tiab_proximity) for phrase in near.phrases]
    parts += [(f'"{kind}"[pt]', f"{path}.publication_types[{i}]", kind)
              for i, kind in enumerate(concept.publication_types)]
    return parts


def concept_clauses(concept: SearchConcept) -> list[str]:
    """The ORed parts of a concept."""
    return [clause for clause, _, _ in located_clauses(concept, "")]


def _limits(spec: SearchSpec) -> list[str]:
    limits = []
    date_from, date_to = spec.limits.date_from, spec.limits.date_to
    if date_from or date_to:
        limits.append(f'("{date_from or "1000"}"[dp] : "{date_to or "3000"}"[dp])')
    if spec.limits.languages:
        limits.append("(" + " OR ".join(f"{language}[la]"
                                        for language in spec.limits.languages) + ")")
    return limits


def build_query(spec: SearchSpec) -> str:
    """The whole PubMed query: concepts ANDed, limits ANDed, exclusions NOTed, parenthesised."""
    groups = ["(" + " OR ".join(concept_clauses(concept)) + ")" for concept in spec.concepts]
    core = "(" + " AND ".join([*groups, *_limits(spec)]) + ")"
    for block in spec.exclude:
        core = f"({core} NOT ({block.query}))"
    return core


def query_structure(spec: SearchSpec) -> dict[str, Any]:
    """The query with its parts, for `review search query --format json`."""
    return {
        "query": build_query(spec),
        "concepts": [{"id": concept.id, "label": concept.label,
                      "clauses": concept_clauses(concept)} for concept in spec.concepts],
        "limits": _limits(spec),
        "exclude": [{"label": block.label, "query": block.query} for block in spec.exclude],
    }


@dataclass(frozen=True, order=True)
class LintMessage:
    """A problem in a query string, with a stable code and the character position; from
    `lint_search`, also the protocol key and term it comes from. A warning does not stop a
    search; an error does."""

    position: int
    code: str
    message: str
    where: str = ""
    term: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        place = (f"{self.where} '{self.term}'" if self.where
                 else f"character {self.position + 1}")
        return f"{self.code} {self.severity} at {place}: {self.message}"

    def to_dict(self, lines: dict[str, int] | None = None) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "where": self.where or None,
                "line": (lines or {}).get(self.where), "term": self.term or None,
                "position": self.position + 1, "message": self.message}


def lint_search(spec: SearchSpec) -> list[LintMessage]:
    """Lint each protocol term on its own, so every message names the key it comes from
    (`search.concepts[1].tiab[0]`), then the assembled query for what only it can show."""
    found: list[LintMessage] = []
    for index, concept in enumerate(spec.concepts):
        for clause, where, term in located_clauses(concept, f"search.concepts[{index}]"):
            for message in lint_query(clause):
                found.append(dataclasses.replace(message, where=where, term=term))
        for near_index, near in enumerate(concept.tiab_proximity):
            if not near.has_forms:
                found.append(LintMessage(
                    0, "Q012", f"'{near.phrase}' is matched word for word: PubMed cannot "
                               "truncate a proximity search, so it misses other forms (plurals, "
                               "adjectives); list each word's forms with words:",
                    f"search.concepts[{index}].tiab_proximity[{near_index}]",
                    near.describe(), "warning"))
    for index, block in enumerate(spec.exclude):
        for message in lint_query(block.query):
            found.append(dataclasses.replace(message, where=f"search.exclude[{index}].query",
                                             term=block.query))
    if not any(message.severity == "error" for message in found):
        found += lint_query(build_query(spec))
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda m: (m.where, m.position, m.code))


def has_errors(messages: list[LintMessage]) -> bool:
    return any(message.severity == "error" for message in messages)


_TOKEN = re.compile(r'"[^"]*"(\[[^\]]*\])?|\(|\)|\[[^\]]*\]|[^\s()"\[]+(\[[^\]]*\])?')


def lint_query(query: str) -> list[LintMessage]:
    """Structural problems PubMed would silently misread: unbalanced parentheses or quotes,
    unknown field tags, empty groups, misplaced boolean operators and invalid truncation."""
    found: list[LintMessage] = []
    if query.count('"') % 2:
        found.append(LintMessage(query.rfind('"'), "Q002", "unbalanced quotation marks"))
        return found
    depth = 0
    previous = ""
    previous_end = -1
    for match in _TOKEN.finditer(query):
        token, position = match.group(0), match.start()
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                found.append(LintMessage(position, "Q001", "closing parenthesis without an "
                                                           "opening one"))
                depth = 0
            if previous == "(":
                found.append(LintMessage(position, "Q003", "empty parentheses"))
            if previous in ("AND", "OR", "NOT"):
                found.append(LintMessage(position, "Q004", f"'{previous}' before ')'"))
        elif token in ("AND", "OR", "NOT"):
            if previous in ("", "(", "AND", "OR", "NOT"):
                found.append(LintMessage(position, "Q004",
                                         f"'{token}' does not follow a term"))
        elif token.lower() in ("and", "or", "not"):
            found.append(LintMessage(position, "Q005", f"boolean operator '{token}' must be "
                                                       "upper case"))
        elif token.startswith("["):
            attached = match.start() == previous_end and previous.endswith("]")
            found.append(LintMessage(position, "Q009", (
                f"a second field tag {token} on one term: PubMed reads one tag per term, so "
                "search the term twice, once per tag, ORed") if attached else (
                f"field tag {token} without a term before it")))
        else:
            found += _lint_term(token, position)
        previous = token
        previous_end = match.end()
    if depth > 0:
        found.append(LintMessage(len(query) - 1, "Q001", f"{depth} unclosed parenthes"
                                                         f"{'is' if depth == 1 else 'es'}"))
    if previous in ("AND", "OR", "NOT"):
        found.append(LintMessage(len(query) - 1, "Q004", f"query ends with '{previous}'"))
    return sorted(found)


def _lint_term(token: str, position: int) -> list[LintMessage]:
    found = []
    tag_match = re.search(r"\[([^\]]*)\]$", token)
    body = token[: tag_match.start()] if tag_match else token
    if tag_match:
        tag = tag_match.group(1).strip().lower()
        if tag not in FIELD_TAGS and not PROXIMITY_TAG.fullmatch(tag):
            found.append(LintMessage(position, "Q006", f"unknown field tag [{tag_match.group(1)}]"))
        if PROXIMITY_TAG.fullmatch(tag) and "*" in body:
            found.append(LintMessage(position, "Q008", "truncation cannot be combined with a "
                                                       "proximity search"))
    words = body.strip('"').split()
    if body.startswith('"'):
        for word in words:
            if word in ("AND", "OR", "NOT"):
                found.append(LintMessage(position, "Q010", f"'{word}' inside a quoted phrase is "
                                                           "searched as a word, not as an "
                                                           "operator: quote each term apart"))
    if tag_match and PROXIMITY_TAG.fullmatch(tag_match.group(1).strip().lower()) and \
            len(words) < 2:
        found.append(LintMessage(position, "Q011", "a proximity search needs two or more "
                                                   "words in quotes"))
    if "*" in body:
        for word in words:
            stem = word.rstrip("*")
            if "*" in stem:
                found.append(LintMessage(position, "Q007", f"'*' inside '{word}': PubMed "
                                                           "truncates only at the end"))
            elif word.endswith("*") and len(stem) < MIN_TRUNCATION_STEM:
                found.append(LintMessage(position, "Q007", f"'{word}': PubMed needs at least "
                                                           f"{MIN_TRUNCATION_STEM} characters "
                                                           "before '*'"))
        if body.startswith('"') and any(w.endswith("*") for w in words[:-1]):
            found.append(LintMessage(position, "Q007", "only the last word of a phrase can "
                                                       "be truncated"))
    return found
