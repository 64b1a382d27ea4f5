"""`sluice keys`: the secret key that seals generated credentials at rest (docs/deploy.md, "Secret
key"). `generate` prints a new key; `rotate` re-seals every stored secret under SLUICE_SECRET_KEY,
opening them with SLUICE_OLD_SECRET_KEYS where needed, and then forgets the old keys' fingerprints."""

from __future__ import annotations

import typer

from sluice.cli.options import JsonOpt
from sluice.cli.output import console, print_json, print_line

keys_app = typer.Typer(help="The secret key that seals credentials at rest.", no_args_is_help=True)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new secret key (for SLUICE_SECRET_KEY); store it in your secret manager."""
    from sluice.services.grants.secrets import generate_key

    print_line(generate_key())


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """Re-seal every stored secret under SLUICE_SECRET_KEY (the new key), reading with the keys in
    SLUICE_OLD_SECRET_KEYS; then only the new key is accepted by this store."""
    from sluice.cli import store_ops
    from sluice.services.grants.secret_keys import require_configured_key, rotate_sealed_secrets, short

    runtime = store_ops.open_runtime()
    settings = runtime.settings
    require_configured_key(
        is_sqlite=settings.is_sqlite, secret_key=settings.secret_key, command="keys rotate"
    )
    store_ops.migrate_store(runtime)
    resealed = rotate_sealed_secrets(runtime.factory, runtime.box, now=runtime.clock())
    fingerprint = short(runtime.box.fingerprint)
    if as_json:
        print_json({"resealed": resealed, "fingerprint": fingerprint})
        return
    console.print(f"re-sealed {resealed} secrets under the key with fingerprint {fingerprint}")
    if settings.old_secret_keys:
        console.print("now remove SLUICE_OLD_SECRET_KEYS from every server and worker, and restart them")
