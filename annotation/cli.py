"""``python -m annotation serve | export | status | sample`` (see annotation/README.md)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from vng.io.common import FormatError
from vng.io.tasks import read_tasks

from annotation.store import Store, StoreError

__all__ = ["build_parser", "main"]

_PER_OBJECT_KEY = "annotators_per_object"


def _per_object(store: Store, requested: int | None) -> int:
    """The campaign's annotators per object: as last given to ``serve`` (kept in the store), unless overridden."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--per-object must be >= 1, got {requested}")
        return requested
    return int(store.get_meta(_PER_OBJECT_KEY) or 1)


def _link_host(host: str) -> str:
    """The host to print in the annotators' links: the machine's name when bound to every interface."""
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from annotation.app import create_app
    from annotation.images import TaskFiles
    from annotation.service import ServiceConfig, VerificationService
    from annotation.tokens import TokenTable, ensure_annotators, read_tokens_file

    tasks = read_tasks(args.tasks)
    store = Store(args.db, exclusive=True)
    try:
        names = [name.strip() for name in (args.annotators or "").split(",") if name.strip()]
        tokens = ensure_annotators(store, names=names,
                                   tokens=None if args.tokens is None else read_tokens_file(args.tokens))
        per_object = _per_object(store, args.per_object)
        with store.transaction():
            store.set_meta(_PER_OBJECT_KEY, str(per_object))
        service = VerificationService(tasks, store, config=ServiceConfig(
            annotators_per_object=per_object, lease_ms=int(args.lease_seconds * 1000)))
        export_dir = args.export_dir or Path(args.db).with_name(f"{Path(args.db).stem}-export")
        app = create_app(service, TaskFiles(args.tasks, service.tasks), TokenTable(tokens), export_dir=export_dir)
        with_candidates = sum(bool(task.candidates) for task in tasks)
        print(f"{with_candidates} objects to verify ({len(tasks) - with_candidates} without candidates), "
              f"{per_object} annotator(s) per object; verdicts → {args.db}; export → {export_dir}")
        if service.unknown_events:
            print(f"warning: {service.unknown_events} stored events name objects that are not in {args.tasks}")
        if not _is_loopback(args.host):
            print(f"warning: listening on {args.host}: anyone on the network can reach the server; tokens travel "
                  "unencrypted over http, so use a trusted network")
        for name, token in tokens.items():
            print(f"  {name}: http://{_link_host(args.host)}:{args.port}/login?token={token}")
        sys.stdout.flush()
        # No access log: it would only repeat what the store records, and the login link carries a token.
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        store.close()


def _load(args: argparse.Namespace) -> tuple[list, list, int]:
    tasks = read_tasks(args.tasks)
    store = Store(args.db, read_only=True)
    try:
        store.compare_tasks(tasks)  # verdicts name candidates by position: other tasks would move them
        return tasks, store.events(), _per_object(store, args.per_object)
    finally:
        store.close()


def export_command(args: argparse.Namespace) -> None:
    from annotation.export import export

    tasks, events, per_object = _load(args)
    result = export(tasks, events, args.out, annotators_per_object=per_object)
    print(result.resolved.summary())
    print(f"{len(events)} events → {result.verdicts}")
    for path in result.release:
        print(f"release → {path}")


def status(args: argparse.Namespace) -> None:
    from annotation.export import annotator_stats
    from vng.verification import ResolveConfig, resolve_verdicts

    tasks, events, per_object = _load(args)
    resolved = resolve_verdicts(tasks, events, config=ResolveConfig(annotators_per_object=per_object))
    print(resolved.summary())
    for name, row in annotator_stats(tasks, resolved).items():
        pace = "" if row["seconds_per_point"] is None else f", {row['seconds_per_point']:.2f} s per point"
        print(f"  {name}: {row['objects_finished']} objects finished, {row['objects_skipped']} skipped, "
              f"{row['verdicts']} verdicts{pace}")


def sample(args: argparse.Namespace) -> None:
    from annotation.sample_tasks import sample_data_tasks, synthetic_tasks

    if args.from_sample_data is not None:
        tasks = sample_data_tasks(args.from_sample_data, args.out, dataset=args.dataset, split=args.split,
                                  seed=args.seed)
    else:
        width, height = (int(v) for v in args.size.lower().split("x"))
        tasks = synthetic_tasks(args.out, num_objects=args.objects, frame_size=(width, height), seed=args.seed)
    print(f"{len(tasks)} tasks, {sum(len(t.candidates) for t in tasks)} candidates → {args.out}/tasks.jsonl")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m annotation", description="The Point-VOS verification tool.")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_store(command: argparse.ArgumentParser) -> None:
        command.add_argument("tasks", type=Path, help="task folder (tasks.jsonl and the files it names)")
        command.add_argument("--db", type=Path, required=True, help="the tool's SQLite file (made on first use)")
        command.add_argument("--per-object", type=int, default=None,
                             help="annotators per object (default: as last served, else 1)")

    command = commands.add_parser("serve", help="serve the verification page")
    with_store(command)
    command.add_argument("--annotators", help="comma-separated names; each new one gets a token")
    command.add_argument("--tokens", type=Path, help="file of 'name token' lines (your own tokens)")
    command.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    command.add_argument("--port", type=int, default=8000)
    command.add_argument("--lease-seconds", type=float, default=120.0,
                         help="how long an object stays with an annotator who stopped answering")
    command.add_argument("--export-dir", type=Path, help="where the export button writes (default: <db>-export/)")
    command.set_defaults(run=serve)

    command = commands.add_parser("export", help="write the verdict log and the Point-VOS release")
    with_store(command)
    command.add_argument("--out", type=Path, required=True)
    command.set_defaults(run=export_command)

    command = commands.add_parser("status", help="progress, agreement and pace per annotator")
    with_store(command)
    command.set_defaults(run=status)

    command = commands.add_parser("sample", help="make a task folder to try the tool on")
    command.add_argument("out", type=Path)
    command.add_argument("--from-sample-data", type=Path, help="the output of `vng sample-data` (else: synthetic)")
    command.add_argument("--dataset", default="Oops", help="with --from-sample-data: Oops or Kinetics")
    command.add_argument("--split", default="train")
    command.add_argument("--objects", type=int, default=3, help="synthetic objects")
    command.add_argument("--size", default="1280x720", help="synthetic frame size, WxH")
    command.add_argument("--seed", type=int, default=0)
    command.set_defaults(run=sample)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (FormatError, StoreError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
