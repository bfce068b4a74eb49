"""`python -m engine models list | download [ROLE...] | verify [ROLE...]`: the model manager.

Downloads go to the Hugging Face cache (HF_HOME / HF_HUB_CACHE) with progress bars, only on
explicit request; everything else loads offline from that cache.
"""
from __future__ import annotations

import json
import sys

HELP = "list, download or verify the models (Hugging Face cache; downloads only on request)"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    p = sub.add_parser("list", help="every model role: default id, revision, size, licence, status")
    p.add_argument("--models", default=None, metavar="DIR_OR_FILE",
                   help="also look in DIR/<role>/ (tiny or local models); a FILE: the diffusion role's checkpoint")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("download", help="download roles into the Hugging Face cache (default: the default "
                                        "pipeline's roles; --all for the options too)")
    p.add_argument("roles", nargs="*", metavar="ROLE")
    p.add_argument("--all", action="store_true", help="every role, options included")
    p.add_argument("--id", default=None, metavar="ORG/NAME[@REV]",
                   help="download this Hugging Face id for the (single) ROLE instead of its default")
    p = sub.add_parser("verify", help="check downloaded models against the Hub's metadata recorded at "
                                      "download (sizes, LFS sha256); files present")
    p.add_argument("roles", nargs="*", metavar="ROLE")
    p.add_argument("--models", default=None, metavar="DIR", help="look in DIR/<role>/ first")
    p.add_argument("--no-hash", action="store_true", help="skip re-hashing file contents (fast)")


def add_model_override_arguments(parser, roles) -> None:
    """``--<role>-model ID_OR_DIR`` for each role (for commands that load models)."""
    from ..registry import spec

    for role in roles:
        s = spec(role)
        what = "a local directory, an original checkpoint file" if s.single_file else "a local directory"
        parser.add_argument(f"--{role}-model", default=None, metavar="ID_OR_DIR",
                            help=f"{role} model: {what} or a Hugging Face id (default {s.default_id})")


def overrides_from_args(args, roles) -> dict:
    """role -> override from the ``--<role>-model`` arguments that were given."""
    out = {}
    for role in roles:
        value = getattr(args, f"{role.replace('-', '_')}_model", None)
        if value:
            out[role] = value
    return out


def run(args) -> int:
    return {"list": _list, "download": _download, "verify": _verify}[args.models_command](args)


def _list(args) -> int:
    from .. import registry

    rows = []
    for s in registry.REGISTRY.values():
        used, sources = registry.source_status(s.role, args.models)
        rows.append({"role": s.role, "id": s.default_id, "revision": s.revision, "download": s.download_size,
                     "licence": s.licence, "use": s.use, "loader": s.loader, "description": s.description,
                     "sources": sources, "single_file": s.single_file or None,
                     "present": used is not None, "path": str(used.path) if used else None,
                     "in_use": None if used is None else {"kind": used.kind, "source": used.source,
                                                          "revision": used.revision}})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"Hugging Face cache: {registry.hf_cache_dir()}"
          + ("  (HF_HUB_OFFLINE: downloads disabled)" if registry.hf_offline() else ""))
    for r in rows:
        rev = r["revision"] if r["revision"] == "main" else r["revision"][:12]
        state = f"present: {r['path']}" if r["present"] else "missing"
        print(f"\n{r['role']:<15} {r['id']}@{rev}  [{r['use']}]")
        print(f"{'':<15} {r['description']}")
        print(f"{'':<15} download {r['download']}; licence {r['licence']}; {state}")
        for n, src in enumerate(r["sources"], 1):
            pin = src["revision"] if src["revision"] == "main" else src["revision"][:12]
            held = f"in the cache at {src['cached']}" if src["cached"] else "not in the cache"
            print(f"{'':<15} source {n}: {src['id']}@{pin}: {held}{'  <- in use' if src['in_use'] else ''}")
        if r["in_use"] and r["in_use"]["kind"] != "hub":
            print(f"{'':<15} in use: {r['in_use']['kind']} {r['in_use']['source']}")
        if r["single_file"]:
            option = "--models FILE / --diffusion-model FILE" if r["role"] == "diffusion" else f"--{r['role']}-model FILE"
            print(f"{'':<15} or its original checkpoint: {option} ({r['single_file']}.safetensors or .ckpt)")
    missing = [r["role"] for r in rows if not r["present"] and r["use"] == "default"]
    if missing:
        print(f"\nTo download the default pipeline's models: python -m engine models download "
              f"{' '.join(missing)}")
    return 0


def _check_roles(names):
    from .. import registry
    from ..errors import InputError

    unknown = [r for r in names if r not in registry.REGISTRY]
    if unknown:
        raise InputError(f"unknown model role(s) {', '.join(unknown)}; known: {', '.join(registry.REGISTRY)}")
    return list(dict.fromkeys(names))


def _download(args) -> int:
    from .. import registry
    from ..errors import InputError

    if args.roles and args.all:
        raise InputError("give ROLEs or --all, not both")
    roles = _check_roles(args.roles) if args.roles else [
        s.role for s in registry.REGISTRY.values() if args.all or s.use == "default"]
    if args.id and len(roles) != 1:
        raise InputError("--id: name exactly one ROLE to download it for")
    if args.id:
        registry.check_hub_id(args.id, "--id")
    for role in roles:
        s = registry.spec(role)
        what = args.id or ", then ".join(f"{repo}@{rev}" for repo, rev in registry.sources(role))
        print(f"{role}: downloading {what} ({s.download_size if not args.id else 'size unknown'}) "
              f"into {registry.hf_cache_dir()}", file=sys.stderr, flush=True)
        path = registry.download(role, args.id, notify=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"{role}: ready in {path} (revision {path.name})")
    return 0


def _verify(args) -> int:
    from .. import registry
    from . import download_hint

    roles = _check_roles(args.roles) if args.roles else list(registry.REGISTRY)
    failed = False
    for role in roles:
        s = registry.spec(role)
        result = registry.verify(role, None, args.models, check_hashes=not args.no_hash)
        if result.ok:
            print(f"{role}: ok ({result.checked_files} files in {result.path})")
            continue
        if result.path is None and not args.roles and s.use == "option":
            print(f"{role}: not downloaded (option)")
            continue
        failed = True
        print(f"{role}: FAILED")
        for problem in result.problems:
            print(f"  {problem}")
        if result.path is None:
            print(f"  to fetch it: {download_hint(role)}")
    return 1 if failed else 0
