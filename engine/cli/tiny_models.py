"""``python -m engine tiny-models DIR``: write tiny random-weight models (every role) in the real
on-disk formats, loadable with ``--models DIR`` exactly like a real download."""
from __future__ import annotations

HELP = "write tiny random-weight test models under DIR/<role>/"


def add_arguments(p) -> None:
    from ..tiny_models import WRITERS

    p.add_argument("dir", metavar="DIR", help="output models directory")
    p.add_argument("--roles", nargs="+", choices=sorted(WRITERS), help="only these roles (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")


def run(args) -> int:
    from .. import console
    from ..output import check_output_dir
    from ..tiny_models import WRITERS, write_tiny_models

    check_output_dir(args.dir, "DIR")
    out = write_tiny_models(args.dir, roles=args.roles, seed=args.seed)
    console.say(f"wrote tiny models ({', '.join(args.roles or sorted(WRITERS))}) to {out}")
    return 0
