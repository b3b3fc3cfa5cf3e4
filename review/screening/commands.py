"""`review dedup …` and `review screen …`: the screening step's commands, registered by
`review.cli`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from review.commands import EXIT_DATA, EXIT_OK, shown, workspace_of
from review.errors import ReviewError
from review.protocol import RANKING_MODELS


def cmd_dedup(args: argparse.Namespace) -> int:
    from review.screening.dedup import dedup_folder, update_dedup

    workspace = workspace_of(args)
    update = update_dedup(workspace)
    result = update.result
    remaining = len(update.records) - result.duplicates_removed
    print(f"{len(update.records)} records: {len(result.clusters)} clusters of duplicates, "
          f"{result.duplicates_removed} duplicates removed, {remaining} records to screen; "
          f"{len(result.uncertain)} uncertain pairs wait in "
          f"{shown(dedup_folder(workspace) / 'queue.csv')}")
    return EXIT_OK


def cmd_dedup_review(args: argparse.Namespace) -> int:
    from review.screening.decisions import check_reviewer
    from review.screening.dedup import (
        PairDecision,
        database_records,
        dedup_folder,
        deduplicate,
        read_filled_queue,
        read_pair_decisions,
        update_dedup,
    )
    from review.screening.screener import plain

    workspace = workspace_of(args)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    records = database_records(workspace)
    by_id = {record.record_id: record for record in records}
    verdicts: list[PairDecision] = []
    if args.file:
        verdicts = read_filled_queue(Path(args.file), set(by_id), reviewer)
    else:
        stored = read_pair_decisions(dedup_folder(workspace) / "decisions.csv")
        for first, second, reason in deduplicate(records, stored).uncertain:
            a, b = by_id[first], by_id[second]
            print(f"\n{reason}\n  A: {plain(a.title)} ({a.year}, {plain(a.journal)})"
                  f"\n  B: {plain(b.title)} ({b.year}, {plain(b.journal)})")
            answer = input("Same work? [y]es / [n]o / [s]kip / [q]uit: ").strip().lower()
            if answer == "q":
                break
            if answer in ("y", "n"):
                verdicts.append(PairDecision(first, second, answer == "y", reviewer))
    update = update_dedup(workspace, verdicts)
    print(f"{len(verdicts)} pair decisions added ({len(update.decisions)} stored); "
          f"{len(update.result.uncertain)} uncertain pairs remain")
    return EXIT_OK


def cmd_screen(args: argparse.Namespace) -> int:
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.flow import screening_state
    from review.screening.ranking import Prioritiser
    from review.screening.screener import Screener, raw_terminal

    workspace = workspace_of(args)
    if not args.stage or not args.reviewer:
        raise ReviewError("review screen needs --stage and --reviewer (or an action: import, "
                          "conflicts, adjudicate, from-extraction)")
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    records = screening_state(workspace).candidates(stage)
    if not records:
        print(f"no records to screen at the {stage} stage")
        return EXIT_OK
    keys = sys.stdin.fileno()
    with raw_terminal(keys):
        made = Screener(workspace.protocol, DecisionStore(workspace.screening_dir), records,
                        stage, reviewer, keys, sys.stdout, Prioritiser()).run()
    print(f"{made} records decided by {reviewer} at the {stage} stage in this session")
    return EXIT_OK


def cmd_screen_stop(args: argparse.Namespace) -> int:
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.flow import screening_state
    from review.screening.ranking import Prioritiser, queue_verdict

    workspace = workspace_of(args)
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    queue = Prioritiser().queue(screening_state(workspace).candidates(stage),
                                DecisionStore(workspace.screening_dir), stage, reviewer,
                                workspace.protocol.screening.prioritisation)
    verdict = queue_verdict(queue, workspace.protocol)
    if args.json:
        print(json.dumps({"stage": stage, "reviewer": reviewer, "order": queue.order_note,
                          **verdict.to_dict()}, indent=2))
        return EXIT_OK
    print(f"{reviewer} at {stage}: {verdict.screened} of {verdict.total} records screened, "
          f"{verdict.included} included, {verdict.remaining} left ({queue.order_note})")
    print(f"stopping rule: {verdict.sentence()}")
    return EXIT_OK


def cmd_screen_simulate(args: argparse.Namespace) -> int:
    from review.protocol import Prioritisation, StoppingRule
    from review.screening.ranking import TextFeatures
    from review.screening.simulation import read_labelled, simulate, summarise

    if args.seeds < 1:
        raise ReviewError("--seeds: at least 1")
    for name in ("recall_target", "confidence"):
        if not 0 < getattr(args, name) < 1:
            raise ReviewError(f"--{name.replace('_', '-')}: a fraction between 0 and 1")
    labelled = read_labelled(args.file, args.label_column, args.drop_missing_abstracts)
    features = TextFeatures(labelled.texts)
    settings = Prioritisation(model=args.model)
    rule = StoppingRule(recall_target=args.recall_target, confidence=args.confidence)
    results = [simulate(labelled, settings, rule, seed, args.prior_included,
                        args.prior_excluded, features)
               for seed in range(args.seed, args.seed + args.seeds)]
    summary = summarise(results, rule.recall_target)
    if args.json:
        print(json.dumps(summary if len(results) > 1 else results[0].to_dict(), indent=2))
        return EXIT_OK
    print(f"{shown(args.file)}: {labelled.included} included of {len(labelled.labels)} records; "
          f"{len(results)} seed(s) from {args.seed}; model {args.model}")
    print(f"WSS@95 {100 * summary['wss95']:.1f}% (sd {100 * summary['wss95_sd']:.1f})  "
          f"WSS@100 {100 * summary['wss100']:.1f}%  RRF@10 {100 * summary['rrf10']:.1f}%")
    print("recall after " + ", ".join(f"{k}% screened {100 * v:.1f}%"
                                      for k, v in summary["recall_at"].items()))
    stop = summary["stop"]
    print(f"stopping rule ({100 * rule.recall_target:g}% recall, {100 * rule.confidence:g}% "
          f"confidence): stopped after {stop['screened']:.0f} records with recall "
          f"{100 * stop['recall']:.1f}%; the target reached in {stop['runs_reaching_target']} "
          f"of {len(results)} runs")
    print(f"{1000 * summary['seconds_per_retrain']:.1f} ms per retrain; "
          f"{summary['seconds']:.1f} s per run")
    return EXIT_OK


def cmd_screen_import(args: argparse.Namespace) -> int:
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.flow import screening_state
    from review.screening.importing import read_decisions

    workspace = workspace_of(args)
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    records = screening_state(workspace).candidates(stage)
    found = read_decisions(Path(args.file), workspace.protocol, records, stage, reviewer,
                           every_row=args.decision, rayyan_name=args.rayyan_name)
    DecisionStore(workspace.screening_dir).append(found.decisions)
    print(f"{len(found.decisions)} decisions of {reviewer} imported for the {stage} stage")
    if found.undecided_rows:
        print(f"{len(found.undecided_rows)} rows without a decision left undecided (rows "
              f"{_row_list(found.undecided_rows)})")
    if found.others_rows:
        print(f"{len(found.others_rows)} rows hold Rayyan decisions of others only "
              f"({', '.join(found.rayyan_names)}), none of "
              f"'{args.rayyan_name or reviewer}' (rows {_row_list(found.others_rows)}); "
              "give your Rayyan name with --rayyan-name")
    return EXIT_OK


def _row_list(rows: list[int], shown: int = 10) -> str:
    return ", ".join(map(str, rows[:shown])) + (", …" if len(rows) > shown else "")


def cmd_screen_export(args: argparse.Namespace) -> int:
    from review.fileio import write_atomically
    from review.screening.decisions import check_stage
    from review.screening.export import export_decisions
    from review.screening.flow import screening_state

    workspace = workspace_of(args)
    stage = check_stage(args.stage, workspace.protocol)
    if args.format == "xlsx" and not args.out:
        raise ReviewError("an XLSX export needs --out FILE.xlsx")
    data = export_decisions(screening_state(workspace), stage, workspace.protocol, args.format,
                            workspace.screening_dir)
    if args.out:
        write_atomically(args.out, data)
        print(f"wrote {shown(args.out)} ({args.format}, stage {stage})")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return EXIT_OK


def cmd_screen_tag(args: argparse.Namespace) -> int:
    from review.screening.decisions import check_reviewer, now, resolve_record
    from review.screening.flow import screening_state
    from review.screening.tags import TagChange, TagStore, check_tag

    workspace = workspace_of(args)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    state = screening_state(workspace)
    known = {r.record_id for stage in workspace.protocol.screening.stages
             for r in state.candidates(stage)}
    record = resolve_record(args.record, known, "screening")
    tags = [check_tag(tag) for tag in args.tags]
    TagStore(workspace.screening_dir).append([TagChange(record, reviewer, tag, not args.remove,
                                                        now()) for tag in tags])
    current = TagStore(workspace.screening_dir).tags(reviewer).get(record, set())
    print(f"{record}: {reviewer}'s tags: {', '.join(sorted(current)) or 'none'}")
    return EXIT_OK


def cmd_screen_conflicts(args: argparse.Namespace) -> int:
    from review.screening.decisions import check_stage
    from review.screening.flow import conflicts, screening_state
    from review.screening.screener import plain

    workspace = workspace_of(args)
    stage = check_stage(args.stage, workspace.protocol)
    state = screening_state(workspace)
    titles = {r.record_id: r.title for r in state.records}
    found = conflicts(state, stage)
    for conflict in found:
        print(f"{conflict.record}: {plain(titles.get(conflict.record, ''))[:90]}")
        for who, vote in sorted(conflict.votes.items()):
            reason = f" ({vote.reason})" if vote.reason else ""
            note = f" — {plain(vote.note)}" if vote.note else ""
            print(f"    {who}: {vote.decision}{reason}{note}")
    print(f"{len(found)} conflicts at the {stage} stage"
          + ("; resolve with 'review screen adjudicate'" if found else ""))
    return EXIT_DATA if found else EXIT_OK


def cmd_screen_adjudicate(args: argparse.Namespace) -> int:
    from review.screening.decisions import (
        ADJUDICATOR,
        Decision,
        DecisionStore,
        check_adjudicator,
        check_stage,
        now,
        resolve_record,
        validate_decision,
    )
    from review.screening.flow import screening_state

    workspace = workspace_of(args)
    stage = check_stage(args.stage, workspace.protocol)
    adjudicator = check_adjudicator(args.adjudicator, workspace.protocol)
    known = {r.record_id for r in screening_state(workspace).candidates(stage)}
    record = resolve_record(args.record, known, stage)
    decision = Decision(record, stage, adjudicator, args.decision, args.reason or "",
                        args.note or "", role=ADJUDICATOR, time=now())
    validate_decision(decision, workspace.protocol, known)
    DecisionStore(workspace.screening_dir).append([decision])
    print(f"{record}: {args.decision} at the {stage} stage, adjudicated by {adjudicator}")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add `dedup` and `screen` to `commands`; returns the actions of `screen`, which
    later steps extend."""
    dedup = commands.add_parser(
        "dedup", help="find duplicate records (clusters, audit, review queue)",
        description="Cluster the database records: identifiers first, then title, first "
                    "author, year (±1) and venue. Writes data/dedup/clusters.csv (audit), "
                    "queue.csv (uncertain pairs) and decisions.csv (reviewers' verdicts).",
        epilog="example: review dedup")
    dedup_commands = dedup.add_subparsers(dest="action", metavar="ACTION")
    dedup.set_defaults(handler=cmd_dedup)
    dedup_review = dedup_commands.add_parser(
        "review", help="decide the uncertain pairs (interactive, or a filled queue CSV)",
        description="Ask about each uncertain pair, or read FILE (queue.csv with the "
                    "duplicate column filled with yes or no). Decisions are never asked again.",
        epilog="example: review dedup review --reviewer ana")
    dedup_review.add_argument("--reviewer", required=True)
    dedup_review.add_argument("--file", metavar="QUEUE.csv")
    dedup_review.set_defaults(handler=cmd_dedup_review)

    screen = commands.add_parser(
        "screen", help="screen records (interactive), import, conflicts, adjudicate",
        description="Without an action: screen one record at a time in the terminal "
                    "(--stage and --reviewer). Keys: i include, e exclude, m maybe, r not "
                    "retrieved (full text), n note, u undo, b back, f forward, q quit.",
        epilog="example: review screen --stage title-abstract --reviewer ana")
    screen.add_argument("--stage", help="title-abstract or full-text")
    screen.add_argument("--reviewer", help="your name as the protocol lists it")
    screen.set_defaults(handler=cmd_screen)
    screen_commands = screen.add_subparsers(dest="action", metavar="ACTION")
    screen_import = screen_commands.add_parser(
        "import", help="decisions made elsewhere (spreadsheet, Rayyan, ASReview, Covidence)",
        description="Match rows to records by record_id, PMID, DOI or title; validate every "
                    "row; store nothing unless all are valid. Rayyan's per-reviewer "
                    "decisions are read for --reviewer only.",
        epilog="example: review screen import rayyan.csv --stage title-abstract --reviewer ana")
    screen_import.add_argument("file", metavar="FILE")
    screen_import.add_argument("--stage", required=True)
    screen_import.add_argument("--reviewer", required=True)
    screen_import.add_argument("--decision", metavar="DECISION",
                               help="the decision of every row, for an export of one list "
                                    "(e.g. Covidence's Included) without a decision column")
    screen_import.add_argument("--rayyan-name", metavar="NAME",
                               help="your name in Rayyan's decisions, if not --reviewer")
    screen_import.set_defaults(handler=cmd_screen_import)
    screen_export = screen_commands.add_parser(
        "export", help="a stage's decisions (CSV, XLSX) or its included records (RIS)",
        description="One row per record with every reviewer's vote, reason and note, the "
                    "final decision and its adjudicator (CSV or XLSX, formula-safe); or the "
                    "records the stage included, as RIS for a reference manager.",
        epilog="example: review screen export --stage title-abstract --format xlsx "
               "--out decisions.xlsx",
    )
    screen_export.add_argument("--stage", required=True)
    screen_export.add_argument("--format", choices=("csv", "xlsx", "ris"), default="csv")
    screen_export.add_argument("--out", metavar="FILE", help="write to FILE (default: print)")
    screen_export.set_defaults(handler=cmd_screen_export)
    tag = screen_commands.add_parser(
        "tag", help="put free tags on a record (your own, blinded)",
        description="Add (or with --remove, take off) the reviewer's own tags on a record; "
                    "kept in data/screening/tags/<reviewer>.jsonl.",
        epilog="example: review screen tag r3f2a --reviewer ana pediatric 'ask ben'")
    tag.add_argument("record", metavar="RECORD_ID",
                     help="the record id or any start of it that is unique")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument("--reviewer", required=True)
    tag.add_argument("--remove", action="store_true")
    tag.set_defaults(handler=cmd_screen_tag)
    screen_conflicts = screen_commands.add_parser(
        "conflicts", help="records where reviewers disagree",
        description="Records where an exclusion meets an inclusion or maybe, with each "
                    "vote; exit 1 while any remain.",
        epilog="example: review screen conflicts --stage title-abstract")
    screen_conflicts.add_argument("--stage", required=True)
    screen_conflicts.set_defaults(handler=cmd_screen_conflicts)
    adjudicate = screen_commands.add_parser(
        "adjudicate", help="resolve a record's conflict",
        description="Record an adjudicator's decision, which becomes the final one.",
        epilog="example: review screen adjudicate r3f2a --stage full-text --decision include "
               "--adjudicator judge")
    adjudicate.add_argument("record", metavar="RECORD_ID",
                            help="the record id or any start of it that is unique")
    adjudicate.add_argument("--stage", required=True)
    adjudicate.add_argument("--decision", required=True,
                            choices=["include", "exclude", "maybe", "not-retrieved"])
    adjudicate.add_argument("--reason", help="exclusion reason id from the protocol")
    adjudicate.add_argument("--note")
    adjudicate.add_argument("--adjudicator", required=True)
    adjudicate.set_defaults(handler=cmd_screen_adjudicate)
    stop = screen_commands.add_parser(
        "stop", help="may this reviewer stop screening? (the stopping rule)",
        description="The hypergeometric stopping rule (Callaghan & Müller-Hansen 2020) on the "
                    "reviewer's own decisions in the order made: whether recall of the "
                    "protocol's target (screening.stopping.recall_target, default 95%%) is "
                    "shown with its confidence (default 95%%), the recall shown, and the "
                    "records screened and left. Exit 0 either way.",
        epilog="example: review screen stop --stage title-abstract --reviewer ana --json")
    stop.add_argument("--stage", required=True)
    stop.add_argument("--reviewer", required=True)
    stop.add_argument("--json", action="store_true", help="print one JSON object")
    stop.set_defaults(handler=cmd_screen_stop)
    simulate = screen_commands.add_parser(
        "simulate", help="replay a labelled review to measure the ranking and stopping rule",
        description="Screen a labelled set (CSV, TSV or XLSX with title, abstract and a 0/1 "
                    "label column, or an RIS export labelled by ASReview LAB) in the model's "
                    "order as a reviewer who always answers "
                    "truthfully, and print WSS@95, WSS@100, RRF@10, recall after 10/25/50%% "
                    "screened, where the stopping rule stopped with the recall there, and "
                    "the time per retrain. Nothing in the workspace is read or changed.",
        epilog="example: review screen simulate labelled.csv --seeds 5 "
               "--drop-missing-abstracts --json")
    simulate.add_argument("file", metavar="LABELLED")
    simulate.add_argument("--label-column", default="label_included")
    simulate.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    simulate.add_argument("--seeds", type=int, default=1, help="how many seeds to run")
    simulate.add_argument("--prior-included", type=int, default=1, metavar="K")
    simulate.add_argument("--prior-excluded", type=int, default=1, metavar="K")
    simulate.add_argument("--model", choices=RANKING_MODELS,
                          default="naive_bayes")
    simulate.add_argument("--recall-target", type=float, default=0.95)
    simulate.add_argument("--confidence", type=float, default=0.95)
    simulate.add_argument("--drop-missing-abstracts", action="store_true",
                          help="leave out records without an abstract, as published "
                               "simulation studies do")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")
    simulate.set_defaults(handler=cmd_screen_simulate)
    return screen_commands
