"""
Run strategies live: paper or real accounts on Interactive Brokers, or the offline replay feed.

    run_live.py --config bot.env [--mode dry-run|paper|live] [--broker ib|replay]
                [--strategies core_rsi,ma_cross] [--confirm-live] [--state-dir DIR]
    run_live.py stop [--state-dir DIR] [--reason TEXT]      flatten, halt and stop a running node
    run_live.py status [--state-dir DIR]                    print the running node's snapshot
    run_live.py check --config bot.env                      the start's checks without starting:
                                                            settings, the run's plan, the limits
    run_live.py --version

Order of a start: version banner -> settings (every problem at once) -> live only with an
explicit confirmation -> IB preflight (gateway answers, account visible; seconds, not minutes)
-> node built with the risk layer -> node started with trading halted -> each strategy's
self-check report -> trading resumes (live: only when every self-check passes). Exit codes: 0
clean shutdown, 1 an unexpected error, 2 bad settings or refused start (a STATE_DIR or
JOURNAL_URL that cannot be used, a failed preflight, a failed self-check in live mode included),
3 clients never connected (while the node is built or after its start; a signal during the
build exits 0 at once), 4 the run ended but a strategy, actor or timer raised during it
(unresolved_orders.log), 130 forced by a second signal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config.settings import SettingsError
from config.settings import load_settings
from config.version import version_banner

EXIT_REFUSED = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_live.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=("run", "stop", "status", "check"), default="run")
    parser.add_argument("--config", type=Path, help="the env file (see config/env_bot.template)")
    parser.add_argument("--mode", choices=("dry-run", "paper", "live"))
    parser.add_argument("--broker", choices=("ib", "replay"))
    parser.add_argument("--strategies", help="comma-separated strategy sequence (STRATEGIES)")
    parser.add_argument("--symbols", help="comma-separated symbols (SYMBOLS)")
    parser.add_argument("--state-dir", type=Path, help="overrides STATE_DIR")
    parser.add_argument("--catalog", type=Path, help="replay catalog (REPLAY_CATALOG)")
    parser.add_argument("--speed", help="replay speed: realtime, xN or max (REPLAY_SPEED)")
    parser.add_argument("--confirm-live", action="store_true",
                        help="the explicit confirmation a live run needs (or LIVE_CONFIRM=true)")
    parser.add_argument("--key-file", type=Path, help="Fernet key file for SECRETS_FILE")
    parser.add_argument("--reason", default="operator", help="reason recorded with stop")
    parser.add_argument("--version", action="store_true")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    pairs = {
        "MODE": args.mode, "BROKER": args.broker, "STRATEGIES": args.strategies,
        "SYMBOLS": args.symbols, "REPLAY_SPEED": args.speed,
        "REPLAY_CATALOG": str(args.catalog) if args.catalog else None,
        "STATE_DIR": str(args.state_dir) if args.state_dir else None,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def _state_dir_problem(state_dir: Path) -> str | None:
    """Why the node could not keep its state in `state_dir` (None: it can), found before the node
    is built: a file in the way or a folder the node may not write would otherwise surface as a
    traceback from deep inside the start (exit 1, which systemd restarts)."""
    if state_dir.exists() and not state_dir.is_dir():
        return "is a file, not a folder"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / ".write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return f"cannot be written ({exc.strerror or type(exc).__name__})"
    return None


def _journal_url_problem(url: str) -> str | None:
    """Why the journal database at `url` cannot be opened (None: it can; empty: the SQLite file
    in STATE_DIR), tried once before the node is built so a wrong database or port is one line."""
    if not url:
        return None
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
        engine = create_engine(url, connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {})
    except (ArgumentError, ImportError, ValueError) as exc:
        return f"{url!r} is not a usable database URL ({exc})"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"{shown}: cannot connect ({reason})"
    finally:
        engine.dispose()
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    print(version_banner("live"), flush=True)
    if args.version:
        return 0
    from livenode.builder import known_strategies

    try:
        settings = load_settings(args.config, _overrides(args), known_strategies(), args.key_file)
    except SettingsError as exc:
        print(f"run_live.py: {len(exc.problems)} problem(s) in the settings:\n{exc}", file=sys.stderr)
        return EXIT_REFUSED
    state_dir = settings["STATE_DIR"]

    if args.command in ("stop", "status"):
        from livenode.control import read_state
        from livenode.control import send_command

        if args.command == "stop":
            path = send_command(state_dir, "stop", args.reason)
            print(f"stop command written to {path}")
        else:
            try:
                print(json.dumps(read_state(state_dir), indent=1))
            except FileNotFoundError:
                print(f"no running node writes {state_dir}/control/state.json", file=sys.stderr)
                return EXIT_REFUSED
        return 0

    print(f"mode {settings.mode}, broker {settings.broker}, strategies "
          f"{','.join(settings.strategies)}, symbols {','.join(settings['SYMBOLS'])}", flush=True)
    if args.command != "check" and settings.mode == "live" and not (args.confirm_live or settings["LIVE_CONFIRM"]):
        print("run_live.py: live mode trades real money; confirm with --confirm-live or "
              "LIVE_CONFIRM=true", file=sys.stderr)
        return EXIT_REFUSED

    problem = _state_dir_problem(state_dir)
    if problem is not None:
        print(f"run_live.py: STATE_DIR {state_dir}: {problem}", file=sys.stderr)
        return EXIT_REFUSED

    problem = _journal_url_problem(settings["JOURNAL_URL"])
    if problem is not None:
        print(f"run_live.py: JOURNAL_URL {problem}", file=sys.stderr)
        return EXIT_REFUSED

    if settings.broker == "ib" and args.command != "check":
        from adapters.ib.preflight import PreflightError
        from adapters.ib.preflight import ib_preflight

        try:
            result = ib_preflight(
                settings["IB_HOST"], settings["IB_PORT"], settings["IB_CLIENT_ID"],
                settings["IB_ACCOUNT"], float(settings["IB_PREFLIGHT_TIMEOUT_SECONDS"]),
                tuple(settings["SYMBOLS"]),
            )
        except PreflightError as exc:
            print(f"run_live.py: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        print(f"IB preflight: gateway answers (server version {result.server_version}), "
              f"account {settings['IB_ACCOUNT']} visible", flush=True)

    from livenode.builder import LivePlanError
    from livenode.builder import make_plan
    from livenode.runner import BuildInterrupted
    from livenode.runner import LiveRunner

    try:
        plan = make_plan(settings)
    except LivePlanError as exc:
        print(f"run_live.py: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for note in plan.notes:
        print(f"note: {note}", flush=True)
    if args.command == "check":
        for limit in plan.risk_limits():
            print(f"limit {limit['key']}={limit['value']}  ({limit['from']})")
        print(f"settings OK: {len(plan.strategies)} strategy instance(s) planned on "
              f"{len(plan.bar_types)} instrument(s); nothing was started")
        return 0
    runner = LiveRunner(plan)
    try:
        runner.build()
    except BuildInterrupted as exc:
        print(f"run_live.py: {exc.message}", file=sys.stderr, flush=True)
        return int(exc.code)
    return runner.run()


if __name__ == "__main__":
    sys.exit(main())
