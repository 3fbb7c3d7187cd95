"""`tierwise keys`: API keys kept in the ledger's database (add, list, revoke, rotate), which every
running gateway on that ledger picks up within a second. A new key is printed once; only its
SHA-256 digest is stored."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from router.ledger._keys import checked, new_key


def add_key_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="API keys in the ledger's database: add, list, revoke, rotate (gateways see them within 1 s)")
    actions = keys.add_subparsers(dest="action", required=True)
    for name, helptext in (("add", "a new key for a tenant, printed once"), ("list", "every key: tenant, id, created, last used, expiry"),
                           ("revoke", "revoke a key by its id"), ("rotate", "a new key with the same tenant and limits; the old one revoked")):
        cmd = actions.add_parser(name, help=helptext)
        cmd.add_argument("--config", help="config file (default: TIERWISE_CONFIG or defaults): the ledger URL")
        cmd.add_argument("--url", help="ledger URL, overriding the config's")
        if name == "add":
            cmd.add_argument("tenant")
            cmd.add_argument("--rpm", type=int, help="requests a minute for this key (shared by every gateway)")
            cmd.add_argument("--expires", help="an ISO date or time after which the key no longer works")
            cmd.add_argument("--budget-usd", help="the tenant's budget, kept in the ledger: every instance applies it within a second")
            cmd.add_argument("--period", choices=["day", "week", "month", "total"], default="month", help="the budget's period (month)")
        elif name in ("revoke", "rotate"):
            cmd.add_argument("key_id")
        else:
            cmd.add_argument("--json", action="store_true")
        cmd.set_defaults(func=cmd_keys)


def _ledger(args: argparse.Namespace) -> Any:
    from router._config import RouterConfig
    from router.ledger import open_ledger

    config = RouterConfig.from_file(args.config) if args.config else RouterConfig.from_env()
    return open_ledger(args.url or config.ledger_url(), config.budget_for)


def _when(value: float | None) -> str:
    return "-" if value is None else datetime.fromtimestamp(value).isoformat(timespec="seconds")


def cmd_keys(args: argparse.Namespace) -> int:
    from router._config import TenantBudget

    ledger = _ledger(args)
    try:
        now = time.time()
        if args.action == "add":
            expires = datetime.fromisoformat(args.expires).timestamp() if args.expires else None
            checked(args.tenant, args.rpm, expires, now)
            budget = TenantBudget(budget_usd=args.budget_usd, period=args.period) if args.budget_usd is not None else None
            key_id, key, digest = new_key()
            ledger.keys.add_key(key_id, args.tenant, digest, now, expires, args.rpm)
            if budget is not None:
                ledger.keys.set_budget(args.tenant, str(budget.budget_usd), budget.period, now)
            print(f"{key_id} for tenant {args.tenant}: {key}\n(shown once: store it now; only its digest is kept)"
                  + (f"\nbudget of {args.tenant}: ${budget.budget_usd} a {budget.period}" if budget else ""))
        elif args.action == "list":
            found = ledger.keys.api_keys()
            if args.json:
                print(json.dumps([k.__dict__ for k in found], indent=2))
            for k in [] if args.json else found:
                state = "revoked" if k.revoked is not None else "expired" if k.expires is not None and k.expires <= now else "active"
                print(f"{k.id}  {k.tenant:<20} {state:<8} created {_when(k.created)}  last used {_when(k.last_used)}  "
                      f"expires {_when(k.expires)}  rpm {k.rpm or '-'}")
        else:
            old = ledger.keys.revoke_key(args.key_id, now)
            if old is None:
                print(f"tierwise keys: no key {args.key_id!r}", file=sys.stderr)
                return 2
            print(f"revoked {old.id} of tenant {old.tenant}")
            if args.action == "rotate":
                key_id, key, digest = new_key()
                ledger.keys.add_key(key_id, old.tenant, digest, now, old.expires, old.rpm)
                print(f"{key_id} for tenant {old.tenant}: {key}\n(shown once: store it now; only its digest is kept)")
    finally:
        ledger.close()
    return 0
