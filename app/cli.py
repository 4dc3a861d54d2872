"""The `driftdesk` command line: serve, worker, migrate, keys."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app import cli_remote
from app.cli_errors import CliError
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.background import Background

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # as a shell reports a command ended by SIGPIPE


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "DRIFTDESK_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise CliError(f"invalid configuration {field}: {first['msg']}") from None


def _migrate(settings: Settings) -> None:
    from app.ops import migrations

    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:
        raise CliError(
            f"could not migrate {_redact(settings.database_url)}: {exc.__class__.__name__}: {exc}"
        ) from None


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    _migrate(settings)
    print(f"database {_redact(settings.database_url)} is at the latest revision")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app import logs, serving

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    _migrate(settings)
    # The background loops run once per `serve`: in the one process with one worker;
    # with several, in this supervising process, not in each worker (every worker
    # judging the same drift windows cost their CPU and the API's tail latency).
    in_supervisor = not args.no_background and args.workers > 1
    loops = _background(settings) if in_supervisor else None
    in_workers = not args.no_background and not in_supervisor
    os.environ["DRIFTDESK_RUN_BACKGROUND"] = "1" if in_workers else "0"
    print(
        f"driftdesk: serving on http://{args.host}:{args.port} "
        f"(API docs at /docs, reviewers' UI at /ui/)",
        file=sys.stderr,
        flush=True,
    )
    if loops is not None:
        loops.start()
    try:
        uvicorn.run(
            "app.main:asgi",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,
            # no access log: /metrics counts requests by route; uvicorn would build
            # each line's arguments even with its logger at WARNING
            access_log=False,
            timeout_graceful_shutdown=10,
            # slow clients: each request's headers have a deadline, open connections a
            # limit (app.serving, configured in each process by app.main.asgi), bodies
            # read timeouts (app.middleware), idle keep-alive connections close. Named, not
            # imported: a worker must answer its supervisor's first health check
            # before it imports the app (5 s).
            http=serving.PROTOCOL_PATH,
            timeout_keep_alive=settings.keep_alive_seconds,
        )
    finally:
        if loops is not None:
            loops.stop()
            loops.db.dispose()
    return EXIT_OK


def _background(settings: Settings) -> Background:
    """The background loops over a database engine of their own."""
    from app.background import Background
    from app.db import Database, make_engine

    db = Database(
        make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    )
    return Background(db, settings)


def cmd_worker(args: argparse.Namespace) -> int:
    from app import logs

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    _migrate(settings)
    print("driftdesk worker: running the background loops (Ctrl-C to stop)", file=sys.stderr)
    loops = _background(settings)
    loops.run_forever()
    loops.db.dispose()
    return EXIT_OK


def _database_file(url: str) -> Path | None:
    """The file of a SQLite URL, absolute (None for PostgreSQL or an in-memory database)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def _where(settings: Settings) -> str:
    """The configured database, as a person can find it (a SQLite file by its absolute path)."""
    file = _database_file(settings.database_url)
    return f"sqlite:///{file}" if file else _redact(settings.database_url)


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.auth import SCOPES, new_key
    from app.db import Database, make_engine

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise CliError(f"--scopes takes a comma-separated list of {', '.join(SCOPES)}")
    settings = _settings()
    file = _database_file(settings.database_url)
    if file is not None and not file.exists() and not args.create_database:
        # A key in a database no server reads is a key that never works: run from the
        # wrong folder, the default ./driftdesk.db is a new, empty file.
        raise CliError(
            f"no database at {file}: the server's DRIFTDESK_DATABASE_URL names the one to "
            "use (run this from the server's folder, or set it); --create-database creates "
            "a new one"
        )
    print(f"database: {_where(settings)}", file=sys.stderr)
    _migrate(settings)
    db = Database(make_engine(settings.database_url))
    with db.session() as session:
        row, secret = new_key(args.name, scopes)
        session.add(row)
    db.dispose()
    print(secret)
    print(
        f"key {row.id} ({args.name}, scopes {','.join(row.scopes)}) written to "
        f"{_where(settings)}: store the secret now, it is not shown again",
        file=sys.stderr,
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftdesk",
        description="Keep machine-learning models honest in production. "
        "Configuration comes from DRIFTDESK_* environment variables (and .env).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the API, the UI and the background loops")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--no-background", action="store_true", help="do not run the background loops here"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the background loops alone")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="upgrade the database to the latest revision")
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key and print its secret")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: ingest,review,admin")
    create.add_argument(
        "--create-database",
        action="store_true",
        help="create the SQLite database if it does not exist yet (by default: refuse)",
    )
    create.set_defaults(func=cmd_keys_create)
    keys.set_defaults(func=lambda _a: _usage(keys))

    for extra in _extra_commands:
        extra(sub)
    return parser


DEMO_DESCRIPTION = """\
A logistic regression trained on scikit-learn's bundled breast cancer set is
registered with driftdesk and posts live predictions through the Python client;
part-way, the population shifts. The demo prints, step by step, the window
evaluations, the drift incident, the tickets, the alert (a signed webhook to a
receiver it runs on loopback), a reviewer resolving tickets and the training-data
export, then the URLs to open. It takes about a minute.

By default it starts `driftdesk serve` on a temporary SQLite file and keeps it
running until Ctrl-C; with --url and an admin --key it uses a running server
(DRIFTDESK_URL is not used: the demo creates a model, keys and a channel)."""


def cmd_demo(args: argparse.Namespace) -> int:
    cli_remote.require_client()
    if importlib.util.find_spec("sklearn") is None:
        raise CliError(
            "the demo trains a scikit-learn model: pip install scikit-learn "
            "(or pip install -e '.[dev]')"
        )
    from demo import simulation as demo

    return demo.run(args)


def register_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `driftdesk demo` (the demo package is imported only when it runs)."""
    raw = argparse.RawDescriptionHelpFormatter
    demo = sub.add_parser(
        "demo",
        help="see the whole loop work in about a minute: a real model, drift, tickets, alerts",
        formatter_class=raw,
        description=DEMO_DESCRIPTION,
        epilog="examples:\n"
        "  driftdesk demo                  # its own server on a temporary SQLite file\n"
        "  driftdesk demo --no-wait        # the same, stopping the server at the end\n"
        "  driftdesk demo --url http://127.0.0.1:8000 --key $ADMIN_KEY   # a running server\n\n"
        "exit codes: 0 the story ran to the end, 1 an error or no drift incident opened",
    )
    demo.add_argument("--url", help="use this running server instead of starting one (needs --key)")
    demo.add_argument(
        "--key",
        default=os.environ.get("DRIFTDESK_KEY"),
        help="an admin API key for --url (default: $DRIFTDESK_KEY)",
    )
    demo.add_argument("--port", type=int, help="port of the server the demo starts (default: free)")
    demo.add_argument(
        "--no-wait", action="store_true", help="stop the demo's server at the end (no Ctrl-C)"
    )
    demo.add_argument("--seed", type=int, default=5, help="seed of the data and the model")
    demo.set_defaults(func=cmd_demo)


# The commands beyond serve, worker, migrate and keys, in the order `--help` lists them.
_extra_commands: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    cli_remote.register,
    register_demo,
]


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return _usage(parser)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # `driftdesk status --json | head`: the reader left; what is unread is not an error.
        # stdout goes to /dev/null so the interpreter's own flush at exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except CliError as exc:
        print(f"driftdesk: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
