"""The human-readable protocol, rendered from the YAML under PROSPERO-style headings.

Rendering rather than writing it by hand keeps the two in agreement; `review protocol check`
fails when the committed Markdown is not what the YAML renders to.
"""

from __future__ import annotations

from review.protocol import FieldSpec, OutcomeSpec, Protocol


def _outcome_line(outcome: OutcomeSpec) -> str:
    """What one declared outcome measures and how, in a sentence."""
    if outcome.kind == "time_to_event":
        timed = outcome.time_to_event
        how = (f"time to event: `{timed.time_field}` ({timed.time_unit} from {timed.origin}), "
               f"event `{timed.status_field}` = {timed.event_value}, censored when "
               f"{timed.censored_value}; Kaplan–Meier, log-rank, Cox")
    elif outcome.kind == "binary":
        how = f"binary: `{outcome.field}` in {', '.join(outcome.events)}; share with Wilson CI"
    elif outcome.kind == "categorical":
        how = f"categorical: `{outcome.field}`, patients with each value" + "".join(
            f", {region.label} = any of {', '.join(region.values)}"
            for region in outcome.regions) + (
            f", pooled across reports for {', '.join(outcome.pool)}" if outcome.pool else "")
    else:
        how = f"continuous: `{outcome.field}`, median, quartiles and range"
    among = (f"; among `{outcome.among.field}` = {outcome.among.value}"
             if outcome.among else "")
    by = f"; by {_codes(outcome.groupings)}" if outcome.groupings else ""
    return f"{outcome.label} ({how}{among}{by})"


def _codes(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _bullets(items: list[str] | tuple[str, ...]) -> list[str]:
    return [f"- {item}" for item in items] or ["- None."]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_row(spec: FieldSpec, separator: str) -> str:
    kind = {"codes": f"codes ('{separator}'-list)", "code": "code"}.get(spec.type, spec.type)
    bounds = []
    if spec.min is not None:
        bounds.append(f"≥ {spec.min:g}")
    if spec.max is not None:
        bounds.append(f"≤ {spec.max:g}")
    if spec.precision is not None:
        bounds.append(f"to {spec.precision:g}")
    detail = ", ".join(f"`{value}`" + (f" ({spec.labels[value]})" if value in spec.labels else "")
                       for value in spec.values) if spec.values else " ".join(bounds)
    if spec.exclusive:
        detail += f" ({', '.join(spec.exclusive)} stands alone)"
    flags = ", ".join(flag for flag, on in (("required", spec.required),
                                            ("unique", spec.unique)) if on)
    return (f"| `{spec.name}` | {kind} | {spec.unit or ''} | {_cell(detail)} | {flags} | "
            f"{_cell(spec.description)} |")


SERVICE_NAMES = {"unpaywall": "Unpaywall", "pmc": "the PubMed Central open-access subset"}


def _fulltext_retrieval(protocol: Protocol) -> str:
    spec = protocol.fulltext
    services = " then ".join(SERVICE_NAMES[name] for name in spec.services)
    sought = (f"open copies are sought by DOI and PMID in {services}"
              if services else "no open-access service is asked")
    return (f"Full texts: {sought}; the others are obtained by the reviewers and attached. "
            f"PDFs up to {spec.max_megabytes:g} MB are stored; a report whose full text "
            "cannot be obtained is recorded as not retrieved.")


def _screening_order(protocol: Protocol) -> str:
    order, rule = protocol.screening.prioritisation, protocol.screening.stopping
    ways = {"prioritised": f"prioritised (records ranked by each reviewer's own decisions, "
                           f"model {order.model.replace('_', ' ')}, seed {order.seed})",
            "random": f"random (seed {order.seed})", "file": "record order"}
    return (f"Title and abstract order: {ways[order.order]}; full text in record order. "
            f"Screening may stop when a recall of at least {rule.recall_target * 100:g}% is "
            f"shown with {rule.confidence * 100:g}% confidence (hypergeometric test, Callaghan "
            "and Müller-Hansen 2020).")


def render_protocol_markdown(protocol: Protocol, source_name: str) -> str:
    """The protocol as Markdown; `source_name` is the YAML file it was rendered from."""
    question = protocol.question
    search = protocol.search
    schema = protocol.extraction
    lines = [
        f"# {protocol.title}",
        "",
        f"Protocol `{protocol.id}`, version {protocol.version}. "
        f"Registration: {protocol.registration}.",
        "",
        f"> Rendered from `{source_name}` by `review protocol render`. Edit the YAML, then "
        "render again; `review protocol check` fails when this file is out of date.",
        "",
        "## 1. Review question",
        "",
        question.statement or protocol.title,
        "",
        "## 2. Condition or domain being studied",
        "",
        question.condition,
        "",
        "## 3. Participants / population",
        "",
        question.population,
        "",
        "## 4. Intervention(s), exposure(s)",
        "",
        question.interventions or "Not specified.",
        "",
        "## 5. Comparator(s) / control",
        "",
        question.comparators or "Not specified.",
        "",
        "## 6. Types of study to be included",
        "",
        *_bullets(question.designs),
        "",
        "## 7. Context",
        "",
        question.context or "Not specified.",
        "",
        "## 8. Main outcome(s)",
        "",
        *_bullets(question.outcomes.primary),
        "",
        "## 9. Additional outcome(s)",
        "",
        *_bullets(question.outcomes.secondary),
        "",
        "## 10. Eligibility criteria",
        "",
        "Inclusion:",
        "",
        *_bullets(protocol.eligibility.inclusion),
        "",
        "Exclusion:",
        "",
        *_bullets(protocol.eligibility.exclusion),
        "",
        "## 11. Searches",
        "",
        "Databases:",
        "",
        *_bullets(search.databases),
        "",
        "Other methods:",
        "",
        *_bullets(search.other_methods),
        "",
        "Search concepts (terms are ORed within a concept; concepts are ANDed):",
        "",
        "| Concept | MeSH headings | Title/abstract terms | Publication types |",
        "|---|---|---|---|",
    ]
    for concept in search.concepts:
        headings = "; ".join(
            heading.heading + (f"/{heading.subheading}" if heading.subheading else "")
            + (" (major topic)" if heading.major else "")
            + ("" if heading.explode else " (not exploded)")
            for heading in concept.mesh
        )
        terms = [*concept.tiab,
                 *(f'"{near.describe()}" within {near.distance} words'
                   for near in concept.tiab_proximity)]
        lines.append(f"| {concept.label} | {_cell(headings)} | {_cell('; '.join(terms))} | "
                     f"{_cell('; '.join(concept.publication_types))} |")
    limits = search.limits
    lines += [
        "",
        "Excluded from the results:",
        "",
        *_bullets([f"{block.label}: `{block.query}`" for block in search.exclude]),
        "",
        f"Limits: publication dates from {limits.date_from or 'the earliest record'} to "
        f"{limits.date_to or 'the search date'}; languages: "
        f"{', '.join(limits.languages) if limits.languages else 'no restriction'}.",
        "",
        "## 12. Study selection",
        "",
        f"Stages: {', '.join(protocol.screening.stages)}. Reviewers: "
        f"{', '.join(protocol.screening.reviewers) or 'not listed'}."
        + (f" Conflicts are adjudicated by {', '.join(protocol.screening.adjudicators)}."
           if protocol.screening.adjudicators else "")
        + (f" Exports are imported by {', '.join(protocol.screening.managers)}."
           if protocol.screening.managers else "") + " Reasons for exclusion:",
        "",
        "| Code | Reason |",
        "|---|---|",
        *(f"| `{reason.id}` | {_cell(reason.label)} |"
          for reason in protocol.screening.exclusion_reasons),
        "",
        "Keywords highlighted while screening: include "
        f"{', '.join(protocol.screening.include_keywords) or 'none'}; exclude "
        f"{', '.join(protocol.screening.exclude_keywords) or 'none'}.",
        "",
        _screening_order(protocol),
        "",
        _fulltext_retrieval(protocol),
        "",
        "## 13. Data extraction (selection and coding)",
        "",
        f"One row per {schema.unit}. Multi-valued fields list codes separated by "
        f"'{schema.list_separator}'. A blank cell means not reported. Reports are identified by "
        f"`{schema.study.key}`; their rows must agree on "
        f"{', '.join(f'`{name}`' for name in schema.study.consistent)}.",
        "",
        "| Field | Type | Unit | Allowed values or range | Constraints | Description |",
        "|---|---|---|---|---|---|",
        *(_field_row(spec, schema.list_separator) for spec in schema.fields),
        "",
        "Cross-field rules:",
        "",
    ]
    rules = []
    for rule in schema.rules:
        if rule.rule == "requires":
            rules.append(f"`{rule.field}` may be reported only together with `{rule.needs}`.")
        else:
            regions = ", ".join(f"{prefix} → `{site}`" for prefix, site in rule.regions.items())
            rules.append(f"Each level in `{rule.field}` needs its region in "
                         f"`{rule.sites_field}` ({regions}).")
    lines += _bullets(rules)
    double = schema.double_extraction
    if double:
        lines += ["", f"Double extraction: {double.selection} {double.resolution}"]
        if double.not_compared:
            lines[-1] += (" Agreement is not measured on "
                          + ", ".join(f"`{name}`" for name in double.not_compared) + ".")
    duplicates = schema.duplicate_patients
    if duplicates:
        lines += ["", f"Patients reported twice: pairs from different reports that agree on "
                      f"{_codes(duplicates.match)}"
                      + (f", in reports at most {duplicates.max_year_gap} years apart "
                         f"(`{duplicates.year_field}`)" if duplicates.year_field else "")
                      + (f", not differing in {_codes(duplicates.differ_not)}"
                         if duplicates.differ_not else "")
                      + ", are decided by the reviewers; a patient judged reported twice is "
                        "analysed once."]
    lines += ["", "## 14. Risk of bias (quality) assessment", ""]
    if schema.appraisal:
        tool = schema.appraisal.tool
        lines += [f"{tool[:1].upper()}{tool[1:]}; answers: "
                  f"{', '.join(schema.appraisal.answers)}.", ""]
        lines += [f"{i}. " + (f"{item.domain}: " if item.domain else "") + item.question
                  for i, item in enumerate(schema.appraisal.items, 1)]
        if schema.appraisal.procedure:
            lines += ["", schema.appraisal.procedure]
        rule = schema.appraisal.judgement
        if rule:
            share = " or ".join(rule.favourable)
            levels = "; ".join(
                level.label + (f" (at least {100 * level.at_least:g}% answered {share}"
                               + (f", with {_codes(level.required)} among them"
                                  if level.required else "") + ")"
                               if level.at_least or level.required else " (otherwise)")
                for level in rule.levels)
            lines += ["", f"Overall judgement, the first level a report meets: {levels}"
                          + (f"; items answered {' or '.join(rule.not_counted)} are not counted"
                             if rule.not_counted else "") + "."]
            if rule.sensitivity:
                lines.append(f"The main analyses are repeated on the reports judged "
                             f"{rule.best.label} (sensitivity analysis).")
    else:
        lines.append("No critical appraisal is planned.")
    lines += ["", "## 15. Strategy for data synthesis", ""]
    analysis = protocol.analysis
    if analysis is None:
        lines.append("Not specified.")
    else:
        if analysis.characteristics:
            lines += [f"Patient characteristics (Table 1): "
                      f"{', '.join(f'`{name}`' for name in analysis.characteristics)}; each "
                      "with the number of patients for whom it was reported.", ""]
        lines += [
            f"Frequencies of {analysis.words.sites.lower()} (`{analysis.sites_field}`) with 95% "
            "confidence "
            "intervals, over the patients whose sites are reported, for each site and for "
            "these regions:",
            "",
            *_bullets([f"{region.label}: {', '.join(region.sites)}"
                       for region in analysis.site_regions]),
        ]
        if analysis.pooling:
            lines += ["", f"Proportions pooled across reports ({analysis.pooling.method} model) "
                          f"for: {', '.join(analysis.pooling.regions)}."]
        if analysis.survival:
            survival = analysis.survival
            lines += [
                "",
                f"Survival: time `{survival.time_field}` ({survival.time_unit}); event "
                f"`{survival.status_field}` = {survival.event_value}, censored when "
                f"{survival.censored_value}. Kaplan–Meier estimates with survival at "
                f"{', '.join(f'{t:g}' for t in survival.landmarks)} {survival.time_unit}; "
                "log-rank tests; Cox regression where events allow.",
            ]
            if survival.missing_time_bounds:
                lines[-1] += (
                    f" Events without a time are placed at the origin and at "
                    f"{', '.join(f'{t:g}' for t in survival.missing_time_bounds)} "
                    f"{survival.time_unit} in a sensitivity analysis.")
        if analysis.outcomes:
            lines += ["", "Declared outcomes, each reported in its own section:", "",
                      *_bullets([_outcome_line(outcome) for outcome in analysis.outcomes])]
        lines += ["", "## 16. Analysis of subgroups or subsets", ""]
        for grouping in analysis.treatment_groupings:
            lines.append(f"{grouping.label} (`{grouping.field}`; the first matching group "
                         "applies):")
            lines.append("")
            lines += _bullets([f"{group.label}: {', '.join(group.any_of)}"
                               for group in grouping.groups])
            lines.append("")
        if not analysis.treatment_groupings:
            lines += ["None planned.", ""]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"
