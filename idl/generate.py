#!/usr/bin/env python3
"""Generate ``idl/perpool.json``: the Perpool program IDL in Anchor's legacy (<= 0.29) format.

Pipeline:

1. ``cargo test -p perpool --features idl-build --lib __anchor_private_print_idl`` makes the
   Anchor 0.31 macros print the new-spec (0.30+) IDL in pieces (program, address, errors,
   events, constants), each between ``--- IDL begin <kind> ---`` / ``--- IDL end <kind> ---``.
2. The pieces are assembled the way anchor-lang-idl 0.1.4's ``IdlBuilder`` does it (merge,
   shorten module paths, sort), so the result equals what ``anchor idl build`` would emit.
3. The new-spec IDL is converted to the legacy shape, because anchorpy 0.21 (anchorpy-core 0.2)
   only loads that. Anything the legacy format or anchorpy's coders cannot express is an error,
   never a silent approximation.

Usage (from the repository root)::

    .venv/bin/python idl/generate.py            # rebuild and write idl/perpool.json
    .venv/bin/python idl/generate.py --check    # exit 1 with a diff if the file is stale (CI)
    .venv/bin/python idl/generate.py --idl-build-output out.txt   # convert saved cargo stdout

Exit codes: 0 ok, 1 ``--check`` found a difference, 2 the IDL could not be produced.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# pyheck is the Python binding of the `heck` crate: the same case conversion Anchor <= 0.29 used
# to write legacy names and the one anchorpy uses to read them back, so round trips are exact.
from pyheck import lower_camel, snake

JsonObj = dict[str, Any]

PROGRAM_PACKAGE = "perpool"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKSPACE = REPO_ROOT / "localnet"
DEFAULT_OUTPUT = REPO_ROOT / "idl" / "perpool.json"
DEFAULT_TARGET_DIR = Path.home() / ".cache" / "perpool" / "target"

# Legacy scalar type names anchorpy 0.21 has a borsh layout for. u256/i256 parse in
# anchorpy-core but have no layout in anchorpy's coder, so they are deliberately absent.
LEGACY_SCALARS = frozenset(
    {
        "bool", "u8", "i8", "u16", "i16", "u32", "i32", "f32",
        "u64", "i64", "f64", "u128", "i128", "bytes", "string",
    }
)  # fmt: skip

# Hints for build failures we have already diagnosed; matched against cargo's stderr.
KNOWN_BUILD_FAILURES = (
    (
        "anchor-spl-0.31.1/src/idl_build.rs",
        "anchor-spl 0.31.1's idl-build code uses `token_interface`, which only exists with its "
        '`token_2022` feature. Add "anchor-spl/token_2022" to the program\'s `idl-build` '
        "feature list in programs/perpool/Cargo.toml.",
    ),
)

DESCRIPTION = "Generate idl/perpool.json (legacy Anchor IDL for anchorpy) from the program."
SECTION_BEGIN = re.compile(r"^--- IDL begin (\w+) ---$")
MODULE_PATH = re.compile(r'"(\w+::)+(\w+)"')


class IdlError(Exception):
    """The IDL could not be built, or cannot be expressed in the legacy format."""


class NameChangeWarning(UserWarning):
    """A field name does not survive anchorpy's camelCase -> snake_case round trip."""


# --------------------------------------------------------------------------------------------
# 1. Running the idl-build test
# --------------------------------------------------------------------------------------------


def cargo_command() -> list[str]:
    return [
        "cargo", "test", "-p", PROGRAM_PACKAGE, "--features", "idl-build", "--lib",
        "__anchor_private_print_idl", "--", "--show-output", "--quiet",
    ]  # fmt: skip


def cargo_env(workspace: Path) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("CARGO_TARGET_DIR"):
        env["CARGO_TARGET_DIR"] = str(DEFAULT_TARGET_DIR)
    # Read at compile time by `#[program]` to run the `/// CHECK:` safety lint, as `anchor build`
    # does. It is a plain env lookup (not `option_env!`), so cargo does not rebuild when it changes.
    # ANCHOR_IDL_BUILD_RESOLUTION / _NO_DOCS are deliberately left alone: they are `option_env!`
    # inside anchor-syn, and toggling them rebuilds anchor-syn and every Anchor macro crate.
    # RUSTFLAGS is left alone too: changing it invalidates the shared target directory.
    env.setdefault("ANCHOR_IDL_BUILD_PROGRAM_PATH", str(workspace / "programs" / PROGRAM_PACKAGE))
    return env


def run_idl_build(workspace: Path) -> str:
    """Run the idl-build test target and return its stdout (the printed IDL pieces)."""
    stderr_tail: deque[str] = deque(maxlen=400)
    # stdout goes to a file: a big IDL would fill a pipe while we are busy draining stderr.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stdout_file:
        proc = subprocess.Popen(
            cargo_command(),
            cwd=workspace,
            env=cargo_env(workspace),
            stdout=stdout_file,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            # Streamed so a cold build (minutes) is not silent, and kept for the failure hint.
            sys.stderr.write(line)
            stderr_tail.append(line)
        returncode = proc.wait()
        stdout_file.seek(0)
        stdout = stdout_file.read()
    if returncode != 0:
        raise IdlError(build_failure_message(returncode, "".join(stderr_tail)))
    return stdout


def build_failure_message(returncode: int, stderr: str) -> str:
    message = f"`{' '.join(cargo_command())}` failed with exit code {returncode}"
    hints = [hint for needle, hint in KNOWN_BUILD_FAILURES if needle in stderr]
    return "\n".join([message, *hints])


# --------------------------------------------------------------------------------------------
# 2. Assembling the printed pieces (mirrors anchor-lang-idl 0.1.4, src/build.rs)
# --------------------------------------------------------------------------------------------


def split_sections(stdout: str) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, text)`` for every ``--- IDL begin kind ---`` block in cargo's stdout."""
    lines = iter(stdout.splitlines())
    for line in lines:
        begin = SECTION_BEGIN.match(line)
        if begin is None:
            continue
        kind = begin.group(1)
        if kind == "address":
            # The address block is a single line; anchor ignores its end marker.
            yield kind, next(lines, "")
            continue
        yield kind, "\n".join(read_until(lines, f"--- IDL end {kind} ---"))


def read_until(lines: Iterator[str], end_marker: str) -> list[str]:
    body: list[str] = []
    for line in lines:
        if line == end_marker:
            return body
        body.append(line)
    raise IdlError(f"IDL output ended before `{end_marker}`")


def assemble_idl(stdout: str) -> JsonObj:
    """Build the new-spec IDL exactly like ``IdlBuilder::build`` (without its lint/verify)."""
    program: JsonObj | None = None
    address = ""
    constants: list[JsonObj] = []
    events: list[JsonObj] = []
    errors: list[JsonObj] | None = None
    event_types: dict[str, JsonObj] = {}
    for kind, text in split_sections(stdout):
        if kind == "address":
            # Printed as a JSON-encoded JSON string; anchor keeps only the alphanumerics.
            address = "".join(char for char in text if char.isalnum())
        elif kind == "const":
            constants.append(json.loads(text))
        elif kind == "event":
            printed = json.loads(text)
            events.append(printed["event"])
            event_types.update((ty["name"], ty) for ty in printed["types"])
        elif kind == "errors":
            if errors is not None:
                raise IdlError("Multiple error definitions are not allowed.")
            errors = json.loads(text)
        elif kind == "program":
            program = json.loads(text)
        else:
            raise IdlError(f"unknown IDL section `{kind}`: has the Anchor version changed?")
    if program is None:
        raise IdlError("the idl-build output contains no program IDL (did any test run?)")
    program["address"] = address
    program["constants"] = constants
    program["events"] = events
    program["errors"] = errors or []
    # Program types win over event types of the same name, then sorted by name (BTreeMap).
    merged = {**event_types, **{ty["name"]: ty for ty in program.get("types", [])}}
    program["types"] = [merged[name] for name in sorted(merged)]
    return sort_idl(shorten_module_paths(program))


def shorten_module_paths(idl: JsonObj) -> JsonObj:
    """Replace ``"a::b::Name"`` with ``"Name"`` unless another path also ends in ``Name``."""
    original = json.dumps(idl, ensure_ascii=False, separators=(",", ":"))
    text = original
    for match in MODULE_PATH.finditer(original):
        name = match.group(2)
        replaced = text.replace(match.group(0), f'"{name}"')
        if not re.search(rf'"(\w+::)+{re.escape(name)}"', replaced):
            text = replaced
    shortened: JsonObj = json.loads(text)
    return shortened


def sort_idl(idl: JsonObj) -> JsonObj:
    for key in ("accounts", "constants", "events", "instructions", "types"):
        idl[key] = sorted(idl.get(key, []), key=lambda item: str(item["name"]))
    return idl


# --------------------------------------------------------------------------------------------
# 3. New spec -> legacy
# --------------------------------------------------------------------------------------------


def discriminator(namespace: str, name: str) -> list[int]:
    """The default Anchor discriminator, which is the only one anchorpy 0.21 can compute."""
    return list(hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8])


def check_discriminator(item: JsonObj, namespace: str, hashed_name: str, what: str) -> None:
    expected = discriminator(namespace, hashed_name)
    if item.get("discriminator") != expected:
        raise IdlError(
            f"{what} `{item['name']}` has discriminator {item.get('discriminator')}, but anchorpy "
            f"0.21 always uses sha256('{namespace}:{hashed_name}')[:8] = {expected}: "
            "remove the custom discriminator"
        )


def legacy_name(name: str, what: str) -> str:
    """camelCase a snake_case Rust name, warning when anchorpy will not map it back exactly."""
    camel = lower_camel(name)
    if snake(camel) != name:
        warnings.warn(
            f"{what} `{name}` is `{snake(camel)}` in anchorpy (via `{camel}`)",
            NameChangeWarning,
            stacklevel=2,
        )
    return camel


def instruction_name(name: str) -> str:
    """camelCase an instruction name; anchorpy hashes ``snake(name)``, so it must round-trip."""
    camel = lower_camel(name)
    if snake(camel) != name:
        raise IdlError(
            f"instruction `{name}` would be hashed as `global:{snake(camel)}` by anchorpy "
            f"(legacy name `{camel}`): rename it so snake(lowerCamel(name)) == name"
        )
    return camel


def convert_type(ty: Any, where: str) -> Any:
    if isinstance(ty, str):
        return convert_scalar(ty, where)
    if not isinstance(ty, dict) or len(ty) != 1:
        raise IdlError(f"{where}: malformed IDL type {ty!r}")
    ((kind, inner),) = ty.items()
    if kind in ("option", "vec"):
        return {kind: convert_type(inner, where)}
    if kind == "array":
        return convert_array(inner, where)
    if kind == "defined":
        return convert_defined(inner, where)
    # `generic` and anything newer (e.g. a later spec's `coption`) have no anchorpy layout.
    raise IdlError(f"{where}: `{kind}` types are not supported by anchorpy 0.21")


def convert_scalar(ty: str, where: str) -> str:
    if ty == "pubkey":
        return "publicKey"
    if ty in LEGACY_SCALARS:
        return ty
    raise IdlError(f"{where}: type `{ty}` has no borsh layout in anchorpy 0.21")


def convert_array(inner: Any, where: str) -> JsonObj:
    element, length = inner
    # A generic length is printed as {"generic": "N"}; bool is excluded because it is an int.
    if not isinstance(length, int) or isinstance(length, bool):
        raise IdlError(f"{where}: array length {length!r} is generic; use a literal length")
    return {"array": [convert_type(element, where), length]}


def convert_defined(inner: Any, where: str) -> JsonObj:
    name = inner["name"] if isinstance(inner, dict) else inner
    if isinstance(inner, dict) and inner.get("generics"):
        raise IdlError(f"{where}: generic type `{name}<..>` is not supported by anchorpy 0.21")
    if "::" in name:
        raise IdlError(f"{where}: {name_conflict_message(name)}")
    return {"defined": name}


def name_conflict_message(path: str) -> str:
    return (
        f"type `{path}` kept its module path because another type has the same name; "
        "the legacy format has one flat namespace, so rename one of them"
    )


def with_docs(head: JsonObj, docs: list[str] | None) -> JsonObj:
    """Legacy items carry docs right after the name; omitted when empty, as Anchor did."""
    if docs:
        head["docs"] = list(docs)
    return head


def convert_field(field: JsonObj, where: str) -> JsonObj:
    out = with_docs({"name": legacy_name(field["name"], f"{where} field")}, field.get("docs"))
    out["type"] = convert_type(field["type"], f"{where}.{field['name']}")
    return out


def is_named_fields(fields: list[Any]) -> bool:
    # Named fields are {"name", "type"} objects; tuple fields are bare types. Types that are
    # objects ({"vec": ..}, {"defined": ..}) never have a top-level "name" key.
    return all(isinstance(field, dict) and "name" in field for field in fields)


def convert_struct(name: str, fields: list[Any] | None) -> JsonObj:
    fields = fields or []
    if not is_named_fields(fields):
        raise IdlError(f"`{name}` is a tuple struct, which the legacy IDL cannot express")
    return {"kind": "struct", "fields": [convert_field(field, name) for field in fields]}


def convert_variant(enum_name: str, variant: JsonObj) -> JsonObj:
    out: JsonObj = {"name": variant["name"]}
    fields = variant.get("fields") or []
    where = f"{enum_name}::{variant['name']}"
    # Empty field lists are dropped: anchorpy indexes fields[0] whenever `fields` is present.
    if fields and is_named_fields(fields):
        out["fields"] = [convert_field(field, where) for field in fields]
    elif fields:
        out["fields"] = [convert_type(ty, where) for ty in fields]
    return out


def check_layout(typedef: JsonObj) -> None:
    """Reject definitions whose bytes a borsh reader (anchorpy) would misread."""
    name = typedef["name"]
    if typedef.get("generics"):
        raise IdlError(f"`{name}` is generic, which anchorpy 0.21 cannot decode")
    serialization = typedef.get("serialization", "borsh")
    packed = bool((typedef.get("repr") or {}).get("packed"))
    # bytemuck::Pod forbids padding, so a zero-copy struct's bytes equal its borsh encoding.
    # The unsafe variant allows padding unless the struct is packed.
    if serialization in ("borsh", "bytemuck") or (serialization == "bytemuckunsafe" and packed):
        return
    raise IdlError(f"`{name}` uses `{serialization}` serialization, which anchorpy cannot decode")


def convert_typedef_body(typedef: JsonObj) -> JsonObj:
    check_layout(typedef)
    name, body = typedef["name"], typedef["type"]
    if body["kind"] == "struct":
        return convert_struct(name, body.get("fields"))
    if body["kind"] == "enum":
        return {"kind": "enum", "variants": [convert_variant(name, v) for v in body["variants"]]}
    if body["kind"] == "type":
        return {"kind": "alias", "value": convert_type(body["alias"], name)}
    raise IdlError(f"`{name}`: unknown type definition kind `{body['kind']}`")


def convert_typedef(typedef: JsonObj) -> JsonObj:
    out = with_docs({"name": typedef["name"]}, typedef.get("docs"))
    out["type"] = convert_typedef_body(typedef)
    return out


def convert_ix_account(item: JsonObj, ix_name: str) -> JsonObj:
    name = legacy_name(item["name"], f"instruction `{ix_name}` account")
    if "accounts" in item:  # a nested #[derive(Accounts)] struct
        return {
            "name": name,
            "accounts": [convert_ix_account(a, ix_name) for a in item["accounts"]],
        }
    out: JsonObj = {
        "name": name,
        "isMut": bool(item.get("writable", False)),
        "isSigner": bool(item.get("signer", False)),
    }
    if item.get("optional"):
        out["isOptional"] = True
    with_docs(out, item.get("docs"))
    pda = convert_pda(item.get("pda"))
    if pda is not None:
        out["pda"] = pda
    if item.get("relations"):
        out["relations"] = [lower_camel(relation) for relation in item["relations"]]
    # `address` (known fixed address) has no legacy field and anchorpy never resolves accounts.
    return out


def convert_pda(pda: JsonObj | None) -> JsonObj | None:
    """Keep PDA info only when every seed is a constant (all anchorpy's client-gen can use).

    Legacy seeds must carry a type, which the new spec only implies for arg/account seeds, and
    anchorpy's Program never reads `pda`, so dropping the rest loses nothing at runtime.
    Only present when the build ran with ANCHOR_IDL_BUILD_RESOLUTION=TRUE.
    """
    if not pda:
        return None
    seeds = [*pda["seeds"], *([pda["program"]] if pda.get("program") else [])]
    if any(seed["kind"] != "const" for seed in seeds):
        return None
    out: JsonObj = {"seeds": [const_seed(seed) for seed in pda["seeds"]]}
    if pda.get("program"):
        out["programId"] = const_seed(pda["program"])
    return out


def const_seed(seed: JsonObj) -> JsonObj:
    value = list(seed["value"])
    return {"kind": "const", "type": {"array": ["u8", len(value)]}, "value": value}


def convert_instruction(ix: JsonObj) -> JsonObj:
    check_discriminator(ix, "global", ix["name"], "instruction")
    out = with_docs({"name": instruction_name(ix["name"])}, ix.get("docs"))
    out["accounts"] = [convert_ix_account(item, ix["name"]) for item in ix["accounts"]]
    out["args"] = [convert_field(arg, f"instruction `{ix['name']}` arg") for arg in ix["args"]]
    if ix.get("returns") is not None:
        out["returns"] = convert_type(ix["returns"], f"instruction `{ix['name']}` returns")
    return out


def lookup_typedef(types: dict[str, JsonObj], name: str, what: str) -> JsonObj:
    if "::" in name:
        raise IdlError(f"{what}: {name_conflict_message(name)}")
    if name not in types:
        raise IdlError(f"{what} `{name}` has no type definition in the IDL")
    return types[name]


def convert_account(account: JsonObj, types: dict[str, JsonObj]) -> JsonObj:
    typedef = lookup_typedef(types, account["name"], "account")
    check_discriminator(account, "account", account["name"], "account")
    return convert_typedef(typedef)


def convert_event(event: JsonObj, types: dict[str, JsonObj]) -> JsonObj:
    typedef = lookup_typedef(types, event["name"], "event")
    check_discriminator(event, "event", event["name"], "event")
    body = convert_typedef_body(typedef)
    if body["kind"] != "struct":
        raise IdlError(f"event `{event['name']}` must be a struct with named fields")
    # Legacy events list fields inline; `index` is a relic of Anchor's old event spec.
    fields = [{"name": f["name"], "type": f["type"], "index": False} for f in body["fields"]]
    return {"name": event["name"], "fields": fields}


def convert_error(error: JsonObj) -> JsonObj:
    out: JsonObj = {"code": error["code"], "name": error["name"]}
    if error.get("msg") is not None:
        out["msg"] = error["msg"]
    return out


def convert_constant(constant: JsonObj) -> JsonObj:
    name = constant["name"]
    out = with_docs({"name": name}, constant.get("docs"))
    out["type"] = convert_type(constant["type"], f"constant `{name}`")
    out["value"] = constant["value"]
    return out


# --- which definitions go to `types` ---------------------------------------------------------


def defined_names(node: Any) -> Iterator[str]:
    """Every name referenced by a ``{"defined": ...}`` anywhere inside a JSON node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "defined":
                yield value["name"] if isinstance(value, dict) else value
            else:
                yield from defined_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from defined_names(value)


def reachable(roots: Iterable[str], types: dict[str, JsonObj]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in types:
            pending.extend(defined_names(types[name]["type"]))
    return seen


def legacy_type_names(idl: JsonObj, types: dict[str, JsonObj]) -> list[str]:
    """Names that belong in legacy ``types``.

    anchorpy resolves `defined` types of accounts and events only in ``types``, but resolves
    instruction args in ``accounts + types`` and demands exactly one match there. So account and
    event structs leave ``types`` unless something else uses them, and an account struct must
    never be reachable from instruction args (it would be found twice).
    """
    accounts = {account["name"] for account in idl["accounts"]}
    events = {event["name"] for event in idl["events"]}
    arg_roots = list(defined_names([ix["args"] for ix in idl["instructions"]]))
    clashing = sorted(reachable(arg_roots, types) & accounts)
    if clashing:
        raise IdlError(
            f"account struct(s) {clashing} are used in instruction args; anchorpy 0.21 would "
            "find them twice (accounts + types). Use a separate args struct."
        )
    used = used_type_names(idl, types, accounts | events)
    return [name for name in types if name not in accounts | events or name in used]


def used_type_names(idl: JsonObj, types: dict[str, JsonObj], structs: set[str]) -> set[str]:
    """Definitions referenced by args, return values, constants or account/event bodies."""
    roots: list[Any] = [[ix["args"], ix.get("returns")] for ix in idl["instructions"]]
    roots += [constant["type"] for constant in idl["constants"]]
    # The bodies, not the names: an account/event struct is "used" only if something else
    # refers to it.
    roots += [types[name]["type"] for name in sorted(structs) if name in types]
    return reachable(defined_names(roots), types)


def to_legacy(idl: JsonObj) -> JsonObj:
    """Convert an assembled new-spec IDL into the legacy format anchorpy 0.21 loads."""
    types = {typedef["name"]: typedef for typedef in idl.get("types", [])}
    # Sections the new spec omits when empty.
    idl = {"accounts": [], "constants": [], "events": [], "errors": [], **idl}
    legacy: JsonObj = {"version": idl["metadata"]["version"], "name": idl["metadata"]["name"]}
    with_docs(legacy, idl.get("docs"))
    if idl["constants"]:
        legacy["constants"] = [convert_constant(constant) for constant in idl["constants"]]
    legacy["instructions"] = [convert_instruction(ix) for ix in idl["instructions"]]
    legacy["accounts"] = [convert_account(account, types) for account in idl["accounts"]]
    legacy["types"] = [
        convert_typedef(lookup_typedef(types, name, "type"))
        for name in legacy_type_names(idl, types)
    ]
    if idl["events"]:
        legacy["events"] = [convert_event(event, types) for event in idl["events"]]
    if idl["errors"]:
        legacy["errors"] = [convert_error(error) for error in idl["errors"]]
    legacy["metadata"] = {"address": idl["address"]}
    return legacy


# --------------------------------------------------------------------------------------------
# 4. Output
# --------------------------------------------------------------------------------------------


def render(legacy: JsonObj) -> str:
    # Key order is the construction order above (legacy Anchor's own order), not sorted keys;
    # list order comes from the sorted new-spec IDL. Both are deterministic.
    return json.dumps(legacy, indent=2, ensure_ascii=False) + "\n"


def check(path: Path, fresh: str) -> int:
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    if committed == fresh:
        print(f"{path} is up to date")
        return 0
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True),
        fresh.splitlines(keepends=True),
        fromfile=f"{path} (committed)",
        tofile=f"{path} (generated)",
    )
    sys.stdout.writelines(diff)
    print(f"\n{path} is stale: run `python idl/generate.py` and commit the result", file=sys.stderr)
    return 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--check", action="store_true", help="diff against the file, write nothing")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="legacy IDL path")
    parser.add_argument(
        "--workspace", type=Path, default=DEFAULT_WORKSPACE, help="Anchor/Cargo workspace root"
    )
    parser.add_argument(
        "--idl-build-output",
        type=Path,
        help="use this saved stdout of the idl-build test instead of running cargo",
    )
    return parser.parse_args(argv)


def generate(args: argparse.Namespace) -> str:
    if args.idl_build_output is not None:
        stdout = args.idl_build_output.read_text(encoding="utf-8")
    else:
        stdout = run_idl_build(args.workspace)
    return render(to_legacy(assemble_idl(stdout)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        fresh = generate(args)
    except IdlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        return check(args.output, fresh)
    args.output.write_text(fresh, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
