"""The command line: ``python -m pipeline [run|check|backends] [-c FILE]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from operators.backends.listing import backends_command
from pipeline import __version__
from pipeline.app.activity.command import add_activity_parser, run_activity
from pipeline.app.cluster import RayMissingError, cluster_problems, run_on_cluster
from pipeline.app.frigate_setup import FrigateUnavailable, resolve_frigate
from pipeline.app.process import run_until_signalled
from pipeline.app.replay.command import add_replay_parser, run_replay
from pipeline.core.config import (
    ENV_PREFIX,
    AutoBackendConfig,
    ClusterConfig,
    LookoutConfig,
    NotifySinkConfig,
    WebhookSinkConfig,
)
from pipeline.core.config_files import check_files
from pipeline.core.config_loader import ConfigError, ConfigProblem, load_config
from pipeline.core.logs import setup_logging
from pipeline.net.mqtt_connection import MqttTlsError, build_ssl_context
from sinks.outbox import list_events, replay_events

EXIT_OK = 0
EXIT_CONFIG = 2

ENVIRONMENT_HELP = f"""\
environment variables:
  LOOKOUT_CONFIG                      config file used when -c is not given
  {ENV_PREFIX}<TABLE>__<KEY>               override any pipeline.toml value, nested keys
                                      joined by '__', names in lower case, e.g.
                                      {ENV_PREFIX}MQTT__HOST=broker.lan
  {ENV_PREFIX}MQTT__PASSWORD                 MQTT password (or mqtt.password_file)
  {ENV_PREFIX}CAMERAS__<NAME>__PASSWORD      camera password (or cameras.<name>.password_file)
  {ENV_PREFIX}BACKENDS__<NAME>__API_KEY      API key (or backends.<name>.api_key_file / api_key_env)
  {ENV_PREFIX}SINKS__<NAME>__SECRET          webhook secret (or sinks.<name>.secret_file)

exit status: 0 ok, 2 invalid config (or a file it names, or TLS to the broker), 1 other errors.
"""


def _default_config() -> Path:
    return Path(os.environ.get("LOOKOUT_CONFIG", "pipeline.toml"))


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the epilog's layout and show each option's default."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100, max_help_position=40)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _common_options(sub: bool) -> argparse.ArgumentParser:
    # Options accepted before and after the command; a command's own copy must
    # not overwrite a value given before it, hence SUPPRESS there.
    common = argparse.ArgumentParser(add_help=False)

    def default(value: object) -> object:
        return argparse.SUPPRESS if sub else value

    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default(_default_config()),
        help="config file (env LOOKOUT_CONFIG)",
    )
    common.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=default(None),
        help="log level; default [log].level in the config, else INFO",
    )
    common.add_argument(
        "--json-logs",
        action="store_const",
        const=True,
        default=default(None),
        help="log one JSON object per line; default [log].json_lines",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    common = _common_options(sub=True)
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Lookout: watch cameras with vision models and publish alerts.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=_HelpFormatter,
        parents=[_common_options(sub=False)],
    )
    parser.add_argument("--version", action="version", version=f"lookout {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", parents=[common], formatter_class=fmt, help="run the watches (the default)"
    )
    run.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (pip install 'lookout[distributed]'): auto (the one "
        "'ray start' made here, else a new one), local, or HOST:PORT of a head; "
        "default: [cluster] in the config",
    )
    sub.add_parser(
        "check",
        parents=[common],
        formatter_class=fmt,
        help="validate the config and exit (0 valid, 2 invalid)",
    )
    backends = sub.add_parser(
        "backends",
        parents=[common],
        formatter_class=fmt,
        help="list inference backends: available, needs GPU, RAM, live probe",
    )
    backends.add_argument("--json", action="store_true", help="print JSON")
    outbox = sub.add_parser(
        "outbox",
        parents=[common],
        formatter_class=fmt,
        help="list or replay webhook and notify events kept in the outbox",
    )
    outbox.add_argument("action", choices=["list", "replay"], help="what to do")
    outbox.add_argument("ids", nargs="*", help="replay: event ids (default: every dead letter)")
    outbox.add_argument("--sink", default=None, help="only this webhook or notify sink")
    outbox.add_argument(
        "--status",
        choices=["dead", "pending", "delivered", "all"],
        default="dead",
        help="list: which events",
    )
    outbox.add_argument("--limit", type=int, default=100, help="list: at most this many")
    add_replay_parser(sub, common, fmt)
    add_activity_parser(sub, common, fmt)
    return parser


def report_config_error(path: Path, err: ConfigError) -> None:
    """Print ``err`` on stderr: one line for one problem, else a line per problem."""
    if len(err.problems) == 1:
        print(f"{path}: invalid config: {err.problems[0]}", file=sys.stderr)
        return
    print(f"{path}: invalid config", file=sys.stderr)
    for problem in err.problems:
        print(f"  {problem}", file=sys.stderr)


def _load_or_report(path: Path) -> LookoutConfig | None:
    try:
        return load_config(path)
    except ConfigError as err:
        report_config_error(path, err)
        return None


def _frigate_or_report(
    args: argparse.Namespace, cfg: LookoutConfig, *, wait: bool
) -> LookoutConfig | None:
    """``cfg`` with Frigate's cameras (``[frigate]``); print why not and return None."""
    try:
        return resolve_frigate(cfg, str(args.config), wait=wait)
    except ConfigError as err:
        report_config_error(args.config, err)
    except FrigateUnavailable as err:
        print(f"{args.config}: {err}", file=sys.stderr)
    return None


def cmd_check(args: argparse.Namespace) -> int:
    """``check``: validate the config and every file it names (notes for optional ones)."""
    cfg = _load_or_report(args.config)
    if cfg is not None:
        cfg = _frigate_or_report(args, cfg, wait=False)
    if cfg is None:
        return EXIT_CONFIG
    files = check_files(cfg)
    for note in files.notes:
        print(f"note: {note}")
    errors = files.errors or _tls_problems(cfg)
    if cfg.cluster.enabled:
        errors = [*errors, *cluster_problems(cfg)]
    if errors:
        report_config_error(args.config, ConfigError(errors, str(args.config)))
        return EXIT_CONFIG
    print(
        f"{args.config}: ok ({len(cfg.cameras)} cameras, {len(cfg.watches)} watches, "
        f"{len(cfg.backends)} backends, {len(cfg.sinks)} sinks)"
    )
    return EXIT_OK


def _tls_problems(cfg: LookoutConfig) -> list[ConfigProblem]:
    """Whether the TLS files load together (certificates, the key that fits), offline."""
    if cfg.mqtt is None or cfg.mqtt.tls is None:
        return []
    try:
        build_ssl_context(cfg.mqtt.tls)
    except MqttTlsError as err:
        key, _, message = str(err).partition(": ")
        return [ConfigProblem(key, message)]
    return []


def _setup_logs(args: argparse.Namespace, cfg: LookoutConfig | None) -> None:
    level = args.log_level or (cfg.log.level if cfg else "INFO")
    json_lines = (
        args.json_logs if args.json_logs is not None else (cfg.log.json_lines if cfg else False)
    )
    setup_logging(level, json_lines)


def _run_cluster(args: argparse.Namespace, cfg: LookoutConfig, address: str) -> int:
    """``run --ray``: the same config on a Ray cluster (refused if it needs one process)."""
    try:
        ClusterConfig(address=address)
    except ValueError:
        print(f"--ray: {address!r} must be auto, local or HOST:PORT", file=sys.stderr)
        return EXIT_CONFIG
    problems = cluster_problems(cfg)
    if problems:
        report_config_error(args.config, ConfigError(problems, str(args.config)))
        return EXIT_CONFIG
    try:
        return run_on_cluster(cfg, args.config, address)
    except RayMissingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: run every watch until SIGINT/SIGTERM (``--ray``: on a cluster)."""
    cfg = _load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _setup_logs(args, cfg)
    cfg = _frigate_or_report(args, cfg, wait=True)
    if cfg is None:
        return EXIT_CONFIG
    address = getattr(args, "ray", None)
    if address is None and cfg.cluster.enabled:
        address = cfg.cluster.address
    if address is not None:
        return _run_cluster(args, cfg, address)
    try:
        return run_until_signalled(cfg, args.config)
    except MqttTlsError as err:
        # TLS cannot work as configured (untrusted broker, refused client, not a TLS port).
        print(f"{args.config}: {err}", file=sys.stderr)
        return EXIT_CONFIG


def cmd_backends(args: argparse.Namespace) -> int:
    """``backends``: list every backend and probe the configured ones."""
    cfg = _load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _setup_logs(args, cfg)
    autos = [b for b in cfg.backends.values() if isinstance(b, AutoBackendConfig)]
    models = {n: b for n, b in cfg.backends.items() if not isinstance(b, AutoBackendConfig)}
    return backends_command(
        models,
        as_json=args.json,
        auto=autos[0] if autos else None,
        has_detections=any(c.detect is not None for c in cfg.cameras.values()),
    )


def cmd_outbox(args: argparse.Namespace) -> int:
    """``outbox list|replay``: inspect and resend webhook and notify events (dead letters)."""
    cfg = _load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    hooks = {
        n: s for n, s in cfg.sinks.items() if isinstance(s, WebhookSinkConfig | NotifySinkConfig)
    }
    if args.sink is not None:
        if args.sink not in hooks:
            print(f"sinks.{args.sink}: no webhook or notify sink of that name", file=sys.stderr)
            return EXIT_CONFIG
        hooks = {args.sink: hooks[args.sink]}
    if not hooks:
        print("no webhook or notify sinks configured", file=sys.stderr)
        return EXIT_OK
    for name, hook in hooks.items():
        if not hook.outbox.exists():
            continue
        if args.action == "list":
            status = None if args.status == "all" else args.status
            for event in list_events(hook.outbox, status=status, sink=name, limit=args.limit):
                print(orjson.dumps(event).decode())
        else:
            count = replay_events(hook.outbox, ids=args.ids or None, sink=name)
            print(f"sinks.{name}: {count} event(s) queued again")
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """``replay``: run a watch over a video file on virtual time and evaluate it."""
    cfg = _load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    _setup_logs(args, cfg)
    return run_replay(cfg, args)


def cmd_activity(args: argparse.Namespace) -> int:
    """``activity``: list, search or export the activity store."""
    cfg = _load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    return run_activity(cfg, args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "check": cmd_check,
    "backends": cmd_backends,
    "outbox": cmd_outbox,
    "replay": cmd_replay,
    "activity": cmd_activity,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline``."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command or "run"](args)
