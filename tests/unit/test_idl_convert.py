"""Unit tests for idl/generate.py: new-spec (Anchor 0.30+) IDL -> legacy IDL for anchorpy 0.21.

Pure: no cargo, no chain. They check the committed ``idl/perpool.json`` against what the Rust
program expects on the wire (sha256 discriminators, borsh layouts), and the converter against
synthetic new-spec snippets.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from anchorpy.program.core import Program
from anchorpy.program.event import EventParser
from anchorpy.provider import Provider, Wallet
from anchorpy_core.idl import Idl
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED_IDL = REPO_ROOT / "idl" / "perpool.json"
PROGRAM_LIB_RS = REPO_ROOT / "localnet" / "programs" / "perpool" / "src" / "lib.rs"
# An address for synthetic programs; nothing is sent anywhere.
DUMMY_RPC = "http://127.0.0.1:1"


def load_generate() -> ModuleType:
    """Import idl/generate.py by path: idl/ holds data and a script, not a package."""
    spec = importlib.util.spec_from_file_location("idl_generate", REPO_ROOT / "idl" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = load_generate()


def disc(namespace: str, name: str) -> bytes:
    """Discriminator as the Rust program computes it (independent of the code under test)."""
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


def program_for(idl_json: str) -> Program:
    idl = Idl.from_json(idl_json)
    address = Pubkey.from_string(json.loads(idl_json)["metadata"]["address"])
    provider = Provider(AsyncClient(DUMMY_RPC), Wallet(Keypair()))
    return Program(idl, address, provider)


@pytest.fixture
def committed_text() -> str:
    return COMMITTED_IDL.read_text(encoding="utf-8")


@pytest.fixture
async def perpool(committed_text: str) -> AsyncIterator[Program]:
    # async so anchorpy's AsyncClient is created (and closed) inside the test's event loop
    program = program_for(committed_text)
    yield program
    await program.close()


# --------------------------------------------------------------------------------------------
# The committed idl/perpool.json
# --------------------------------------------------------------------------------------------


def test_committed_idl_is_canonical_json(committed_text: str) -> None:
    assert committed_text == gen.render(json.loads(committed_text))
    assert committed_text.endswith("}\n")


def test_committed_idl_loads_in_anchorpy(committed_text: str) -> None:
    idl = Idl.from_json(committed_text)
    assert idl.name == "perpool"
    names = [ix.name for ix in idl.instructions]
    for expected in (
        "init",
        "approveAdminInstruction",
        "addLiquidity",
        "removeLiquidity",
        "swap",
        "getAssetsUnderManagement",
    ):
        assert expected in names
    assert [acc.name for acc in idl.accounts] == [
        "Custody",
        "CustomOracle",
        "Multisig",
        "Perpool",
        "Pool",
        "Position",
    ]
    assert {"AdminAction", "LiquidityAdded", "Swapped"} <= {ev.name for ev in idl.events or []}
    errors = {err.code: err.name for err in idl.errors or []}
    assert (errors[6000], errors[6005]) == ("MathOverflow", "NotEnoughApprovals")
    assert sorted(errors) == list(range(6000, 6000 + len(errors)))


def test_committed_address_matches_declare_id(committed_text: str) -> None:
    declared = re.search(r'declare_id!\("(\w+)"\)', PROGRAM_LIB_RS.read_text(encoding="utf-8"))
    assert declared is not None
    assert json.loads(committed_text)["metadata"]["address"] == declared.group(1)


async def test_init_encodes_params_after_the_rust_discriminator(perpool: Program) -> None:
    authority = Keypair().pubkey()
    permissions = {
        "allow_add_liquidity": True,
        "allow_remove_liquidity": False,
        "allow_open_position": True,
        "allow_close_position": True,
        "allow_collateral_change": False,
        "allow_swap": True,
        "allow_liquidation": True,
    }
    params = {"min_signatures": 2, "oracle_authority": authority, "permissions": permissions}
    data = perpool.coder.instruction.encode("init", {"params": params})
    assert data == disc("global", "init") + bytes([2]) + bytes(authority) + bytes(
        [1, 0, 1, 1, 0, 1, 1]
    )


async def test_add_liquidity_encodes_discriminator_and_params(perpool: Program) -> None:
    data = perpool.coder.instruction.encode(
        "add_liquidity", {"params": {"amount_in": 1_234_567, "min_lp_amount_out": 9}}
    )
    assert data == disc("global", "add_liquidity") + struct.pack("<QQ", 1_234_567, 9)


async def test_approve_admin_instruction_account_metas(perpool: Program) -> None:
    admin, multisig = Keypair().pubkey(), Keypair().pubkey()
    digest = hashlib.sha256(b"x").digest()
    ix = (
        perpool.methods["approve_admin_instruction"]
        .args([list(digest)])
        .accounts({"admin": admin, "multisig": multisig})
        .instruction()
    )
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts] == [
        (admin, True, False),
        (multisig, False, True),
    ]
    assert bytes(ix.data) == disc("global", "approve_admin_instruction") + digest


async def test_multisig_account_decodes(perpool: Program) -> None:
    signers = [Keypair().pubkey() for _ in range(3)]
    raw = (
        disc("account", "Multisig")
        + bytes([3, 2, 1])
        + b"".join(bytes(s) for s in signers)
        + bytes(32) * 3
        + bytes([0, 1, 0, 0, 0, 0])
        + bytes(range(32))
        + bytes([254])
    )
    multisig = perpool.coder.accounts.decode(raw)
    assert (multisig.num_signers, multisig.min_signatures, multisig.num_signed, multisig.bump) == (
        3,
        2,
        1,
        254,
    )
    assert list(multisig.signers[:3]) == signers
    assert list(multisig.signed) == [False, True, False, False, False, False]
    assert bytes(multisig.instruction_hash) == bytes(range(32))


def admin_action(instruction: str, target: Pubkey) -> bytes:
    return (
        disc("event", "AdminAction")
        + struct.pack("<I", len(instruction))
        + instruction.encode()
        + bytes(target)
    )


async def test_admin_action_event_parses(perpool: Program) -> None:
    target = Keypair().pubkey()
    event = perpool.coder.events.parse(admin_action("init", target))
    assert event.name == "AdminAction"
    assert (event.data.instruction, event.data.target) == ("init", target)


async def test_admin_action_event_from_transaction_logs(perpool: Program) -> None:
    target = Keypair().pubkey()
    program_id = str(perpool.program_id)
    logs = [
        f"Program {program_id} invoke [1]",
        "Program log: Instruction: AddPool",
        f"Program data: {base64.b64encode(admin_action('add_pool', target)).decode()}",
        f"Program {program_id} success",
    ]
    seen: list[Any] = []
    EventParser(perpool.program_id, perpool.coder).parse_logs(logs, seen.append)
    assert [(ev.name, ev.data.instruction, ev.data.target) for ev in seen] == [
        ("AdminAction", "add_pool", target)
    ]


# --------------------------------------------------------------------------------------------
# Assembling cargo's printed pieces
# --------------------------------------------------------------------------------------------

ADDRESS = "49sMQuhmLDssg8CxiHZXfg736edm8L76RKvG594gc8oc"


def printed(kind: str, value: Any) -> str:
    return f"--- IDL begin {kind} ---\n{json.dumps(value, indent=2)}\n--- IDL end {kind} ---"


def idl_build_stdout(program: dict[str, Any], *extra: str) -> str:
    """Shaped like `cargo test __anchor_private_print_idl -- --show-output` output."""
    return "\n".join(
        [
            "running 3 tests",
            "---- __anchor_private_print_idl_address stdout ----",
            printed("address", json.dumps(ADDRESS)),  # anchor double-encodes it
            printed("program", program),
            *extra,
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out",
        ]
    )


def new_spec_program(**sections: Any) -> dict[str, Any]:
    return {
        "address": "",
        "metadata": {"name": "demo", "version": "0.1.0", "spec": "0.1.0"},
        "instructions": [],
        **sections,
    }


def struct_def(name: str, fields: list[Any] | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "struct"}
    if fields is not None:
        body["fields"] = fields
    return {"name": name, **extra, "type": body}


def field(name: str, ty: Any) -> dict[str, Any]:
    return {"name": name, "type": ty}


def instruction(name: str, args: list[Any], accounts: list[Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "discriminator": list(disc("global", name)),
        "accounts": accounts or [],
        "args": args,
    }


def test_assemble_merges_pieces_and_shortens_module_paths() -> None:
    program = new_spec_program(
        accounts=[{"name": "demo::state::Vault", "discriminator": list(disc("account", "Vault"))}],
        types=[struct_def("demo::state::Vault", [field("owner", "pubkey")])],
    )
    event = {
        "event": {"name": "demo::events::Moved", "discriminator": list(disc("event", "Moved"))},
        "types": [struct_def("demo::events::Moved", [field("amount", "u64")])],
    }
    errors = [{"code": 6000, "name": "Oops", "msg": "oops"}]
    stdout = idl_build_stdout(program, printed("event", event), printed("errors", errors))
    idl = gen.assemble_idl(stdout)
    assert idl["address"] == ADDRESS
    assert [acc["name"] for acc in idl["accounts"]] == ["Vault"]
    assert [ty["name"] for ty in idl["types"]] == ["Moved", "Vault"]
    assert [ev["name"] for ev in idl["events"]] == ["Moved"]
    assert idl["errors"] == errors


def test_assemble_keeps_paths_of_clashing_names_and_conversion_rejects_them() -> None:
    types = [struct_def("demo::a::Leg", []), struct_def("demo::b::Leg", [])]
    args = [field("x", {"defined": {"name": "demo::a::Leg"}})]
    program = new_spec_program(instructions=[instruction("go", args)], types=types)
    idl = gen.assemble_idl(idl_build_stdout(program))
    assert [ty["name"] for ty in idl["types"]] == ["demo::a::Leg", "demo::b::Leg"]
    with pytest.raises(gen.IdlError, match="same name"):
        gen.to_legacy(idl)


def test_assemble_without_program_section_fails() -> None:
    with pytest.raises(gen.IdlError, match="no program IDL"):
        gen.assemble_idl("running 0 tests\ntest result: ok. 0 passed; 0 failed; 0 ignored")


def test_assemble_rejects_two_error_sections() -> None:
    errors = printed("errors", [])
    with pytest.raises(gen.IdlError, match="Multiple error"):
        gen.assemble_idl(idl_build_stdout(new_spec_program(), errors, errors))


def test_assemble_rejects_truncated_section() -> None:
    with pytest.raises(gen.IdlError, match="ended before"):
        gen.assemble_idl("--- IDL begin program ---\n{")


# --------------------------------------------------------------------------------------------
# Type conversion
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_spec", "legacy"),
    [
        ("pubkey", "publicKey"),
        ("u128", "u128"),
        ("bytes", "bytes"),
        ({"option": "u64"}, {"option": "u64"}),
        ({"vec": {"defined": {"name": "Side"}}}, {"vec": {"defined": "Side"}}),
        ({"array": ["u8", 32]}, {"array": ["u8", 32]}),
        (
            {"option": {"array": [{"vec": "pubkey"}, 3]}},
            {"option": {"array": [{"vec": "publicKey"}, 3]}},
        ),
    ],
)
def test_convert_type(new_spec: Any, legacy: Any) -> None:
    assert gen.convert_type(new_spec, "test") == legacy


@pytest.mark.parametrize(
    "new_spec",
    [
        "u256",
        "i256",
        {"generic": "T"},
        {"array": ["u8", {"generic": "N"}]},
        {"defined": {"name": "Pair", "generics": [{"kind": "type", "type": "u8"}]}},
        {"coption": "u8"},
        {"hashMap": ["u8", "u8"]},
    ],
)
def test_convert_type_rejects_what_anchorpy_cannot_decode(new_spec: Any) -> None:
    with pytest.raises(gen.IdlError):
        gen.convert_type(new_spec, "test")


# --------------------------------------------------------------------------------------------
# A synthetic program exercising structs, enums, options, vecs, arrays, zero-copy, events
# --------------------------------------------------------------------------------------------

SIDE = {
    "name": "Side",
    "type": {"kind": "enum", "variants": [{"name": "Long"}, {"name": "Short"}]},
}
ORDER_KIND = {
    "name": "OrderKind",
    "type": {
        "kind": "enum",
        "variants": [
            {"name": "Market"},
            {"name": "Limit", "fields": [field("limit_price", "u64")]},
            {"name": "Stop", "fields": ["u64", "bool"]},
            {"name": "Empty", "fields": []},
        ],
    },
}
OPEN_PARAMS = struct_def(
    "OpenParams",
    [
        field("side", {"defined": {"name": "Side"}}),
        field("kind", {"defined": {"name": "OrderKind"}}),
        field("size_usd", "u64"),
        field("max_slippage_bps", {"option": "u16"}),
        field("route", {"vec": "pubkey"}),
        field("tag", {"array": ["u8", 4]}),
    ],
    docs=["Arguments of open_position."],
)
POSITION = struct_def(
    "Position",
    [field("owner", "pubkey"), field("side", {"defined": {"name": "Side"}}), field("size", "u64")],
)
POOL = struct_def(
    "Pool",
    [field("balances", {"array": ["u64", 3]}), field("admin", "pubkey")],
    serialization="bytemuck",
    repr={"kind": "c"},
)
OPENED = struct_def(
    "PositionOpened",
    [field("position", "pubkey"), field("side", {"defined": {"name": "Side"}})],
)
OPEN_ACCOUNTS = [
    {"name": "owner", "writable": True, "signer": True, "docs": ["Pays and signs."]},
    {
        "name": "position",
        "writable": True,
        "pda": {"seeds": [{"kind": "const", "value": [112, 111, 115]}]},
        "relations": ["pool_state"],
    },
    {
        "name": "pool_state",
        "pda": {"seeds": [{"kind": "arg", "path": "params.side"}]},
    },
    {"name": "referrer", "optional": True},
    {
        "name": "common",
        "accounts": [
            {"name": "system_program", "address": "11111111111111111111111111111111"},
        ],
    },
]


def demo_idl() -> dict[str, Any]:
    return new_spec_program(
        address=ADDRESS,
        instructions=[
            instruction("open_position", [field("params", {"defined": {"name": "OpenParams"}})])
            | {"accounts": OPEN_ACCOUNTS, "docs": ["Opens a position."]},
        ],
        accounts=[
            {"name": "Pool", "discriminator": list(disc("account", "Pool"))},
            {"name": "Position", "discriminator": list(disc("account", "Position"))},
        ],
        events=[{"name": "PositionOpened", "discriminator": list(disc("event", "PositionOpened"))}],
        errors=[{"code": 6000, "name": "Stale"}],
        constants=[{"name": "MAX_LEVERAGE", "type": "u16", "value": "250"}],
        types=[OPEN_PARAMS, ORDER_KIND, OPENED, POOL, POSITION, SIDE],
    )


@pytest.fixture
def demo_legacy() -> dict[str, Any]:
    # through render() so the tests see exactly what would be written to disk
    legacy: dict[str, Any] = json.loads(gen.render(gen.to_legacy(demo_idl())))
    return legacy


@pytest.fixture
async def demo_program(demo_legacy: dict[str, Any]) -> AsyncIterator[Program]:
    program = program_for(json.dumps(demo_legacy))
    yield program
    await program.close()


def test_demo_sections_are_split_like_legacy_anchor(demo_legacy: dict[str, Any]) -> None:
    assert [acc["name"] for acc in demo_legacy["accounts"]] == ["Pool", "Position"]
    # account and event structs leave `types`; the enum they share stays
    assert [ty["name"] for ty in demo_legacy["types"]] == ["OpenParams", "OrderKind", "Side"]
    assert demo_legacy["events"] == [
        {
            "name": "PositionOpened",
            "fields": [
                {"name": "position", "type": "publicKey", "index": False},
                {"name": "side", "type": {"defined": "Side"}, "index": False},
            ],
        }
    ]
    assert demo_legacy["errors"] == [{"code": 6000, "name": "Stale"}]
    assert demo_legacy["constants"] == [{"name": "MAX_LEVERAGE", "type": "u16", "value": "250"}]
    assert demo_legacy["metadata"] == {"address": ADDRESS}


def test_demo_names_are_camel_case(demo_legacy: dict[str, Any]) -> None:
    ix = demo_legacy["instructions"][0]
    assert ix["name"] == "openPosition"
    open_params = demo_legacy["types"][0]
    assert [f["name"] for f in open_params["type"]["fields"]] == [
        "side",
        "kind",
        "sizeUsd",
        "maxSlippageBps",
        "route",
        "tag",
    ]
    assert open_params["docs"] == ["Arguments of open_position."]


def test_demo_instruction_accounts(demo_legacy: dict[str, Any]) -> None:
    accounts = demo_legacy["instructions"][0]["accounts"]
    assert accounts == [
        {"name": "owner", "isMut": True, "isSigner": True, "docs": ["Pays and signs."]},
        {
            "name": "position",
            "isMut": True,
            "isSigner": False,
            "pda": {
                "seeds": [{"kind": "const", "type": {"array": ["u8", 3]}, "value": [112, 111, 115]}]
            },
            "relations": ["poolState"],
        },
        # an arg seed has no type in the new spec, so the whole pda is dropped
        {"name": "poolState", "isMut": False, "isSigner": False},
        {"name": "referrer", "isMut": False, "isSigner": False, "isOptional": True},
        {
            "name": "common",
            "accounts": [{"name": "systemProgram", "isMut": False, "isSigner": False}],
        },
    ]


def test_demo_enum_variants(demo_legacy: dict[str, Any]) -> None:
    order_kind = demo_legacy["types"][1]["type"]
    assert order_kind["variants"] == [
        {"name": "Market"},
        {"name": "Limit", "fields": [{"name": "limitPrice", "type": "u64"}]},
        {"name": "Stop", "fields": ["u64", "bool"]},
        {"name": "Empty"},
    ]


async def test_demo_instruction_round_trips_through_anchorpy(demo_program: Program) -> None:
    types = demo_program.type
    # A dict, not types["OpenParams"](...): anchorpy encodes dataclasses with
    # dataclasses.asdict, which deep-copies fields, and solders 0.26 Pubkeys cannot be copied.
    params = {
        "side": types["Side"].Short(),
        "kind": types["OrderKind"].Limit(limit_price=99),
        "size_usd": 1_000_000,
        "max_slippage_bps": None,
        "route": [Pubkey.default()],
        "tag": [1, 2, 3, 4],
    }
    data = demo_program.coder.instruction.encode("open_position", {"params": params})
    expected_body = (
        bytes([1])  # Side::Short
        + bytes([1]) + struct.pack("<Q", 99)  # OrderKind::Limit { limit_price: 99 }
        + struct.pack("<Q", 1_000_000)
        + bytes([0])  # None
        + struct.pack("<I", 1) + bytes(32)
        + bytes([1, 2, 3, 4])
    )  # fmt: skip
    assert data == disc("global", "open_position") + expected_body
    decoded = demo_program.coder.instruction.parse(data)
    assert decoded.name == "open_position"
    assert decoded.data.params.size_usd == 1_000_000


async def test_demo_accounts_and_event_decode(demo_program: Program) -> None:
    owner = Keypair().pubkey()
    position = demo_program.coder.accounts.decode(
        disc("account", "Position") + bytes(owner) + bytes([0]) + struct.pack("<Q", 5)
    )
    assert (position.owner, position.side.index, position.size) == (owner, 0, 5)
    pool = demo_program.coder.accounts.decode(
        disc("account", "Pool") + struct.pack("<3Q", 1, 2, 3) + bytes(owner)
    )
    assert (pool.balances, pool.admin) == ([1, 2, 3], owner)
    event = demo_program.coder.events.parse(
        disc("event", "PositionOpened") + bytes(owner) + bytes([1])
    )
    assert (event.name, event.data.position) == ("PositionOpened", owner)


# --------------------------------------------------------------------------------------------
# What the converter refuses, and why
# --------------------------------------------------------------------------------------------


def test_account_struct_used_by_another_type_is_kept_in_types_too() -> None:
    holder = struct_def("Holder", [field("snapshot", {"defined": {"name": "Position"}})])
    idl = demo_idl()
    idl["types"].append(holder)
    idl["accounts"].append({"name": "Holder", "discriminator": list(disc("account", "Holder"))})
    legacy = gen.to_legacy(idl)
    assert "Position" in [ty["name"] for ty in legacy["types"]]
    assert "Position" in [acc["name"] for acc in legacy["accounts"]]


def test_account_struct_in_instruction_args_is_rejected() -> None:
    idl = demo_idl()
    idl["instructions"].append(instruction("copy", [field("p", {"defined": {"name": "Pool"}})]))
    with pytest.raises(gen.IdlError, match="used in instruction args"):
        gen.to_legacy(idl)


@pytest.mark.parametrize("section", ["instructions", "accounts", "events"])
def test_custom_discriminators_are_rejected(section: str) -> None:
    idl = demo_idl()
    idl[section][0]["discriminator"] = [1]
    with pytest.raises(gen.IdlError, match="custom discriminator"):
        gen.to_legacy(idl)


def test_instruction_name_must_round_trip_through_anchorpy() -> None:
    # lowerCamel("set_x_1") == "setX1", which anchorpy hashes as "global:set_x1"
    idl = new_spec_program(instructions=[instruction("set_x_1", [])])
    with pytest.raises(gen.IdlError, match="global:set_x1"):
        gen.to_legacy(idl)


def test_field_name_that_changes_in_python_only_warns() -> None:
    idl = new_spec_program(instructions=[instruction("poke", [field("ema_1h", "u64")])])
    with pytest.warns(gen.NameChangeWarning, match="ema_1h"):
        legacy = gen.to_legacy(idl)
    assert legacy["instructions"][0]["args"] == [{"name": "ema1h", "type": "u64"}]


@pytest.mark.parametrize(
    "typedef",
    [
        struct_def("Pair", ["u8", "u16"]),
        struct_def("Opaque", [field("a", "u8")], serialization={"custom": "Opaque"}),
        struct_def("Padded", [field("a", "u8"), field("b", "u64")], serialization="bytemuckunsafe"),
        struct_def(
            "Wrapper", [field("a", {"generic": "T"})], generics=[{"kind": "type", "name": "T"}]
        ),
    ],
)
def test_unrepresentable_type_definitions_are_rejected(typedef: dict[str, Any]) -> None:
    arg = field("x", {"defined": {"name": typedef["name"]}})
    idl = new_spec_program(instructions=[instruction("go", [arg])], types=[typedef])
    with pytest.raises(gen.IdlError):
        gen.to_legacy(idl)


def test_packed_unsafe_zero_copy_unit_struct_and_alias_are_accepted() -> None:
    types = [
        struct_def("Packed", [field("a", "u8"), field("b", "u64")],
                   serialization="bytemuckunsafe", repr={"kind": "rust", "packed": True}),
        struct_def("Marker", None),
        {"name": "Price", "type": {"kind": "type", "alias": "i64"}},
    ]  # fmt: skip
    args = [field(ty["name"].lower(), {"defined": {"name": ty["name"]}}) for ty in types]
    legacy = gen.to_legacy(new_spec_program(instructions=[instruction("go", args)], types=types))
    bodies = {ty["name"]: ty["type"] for ty in legacy["types"]}
    assert bodies["Marker"] == {"kind": "struct", "fields": []}
    assert bodies["Price"] == {"kind": "alias", "value": "i64"}
    Idl.from_json(gen.render(legacy))


def test_event_type_must_be_defined() -> None:
    idl = new_spec_program(
        events=[{"name": "Ghost", "discriminator": list(disc("event", "Ghost"))}]
    )
    with pytest.raises(gen.IdlError, match="no type definition"):
        gen.to_legacy(idl)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


@pytest.fixture
def saved_output(tmp_path: Path) -> Path:
    path = tmp_path / "idl-build.txt"
    path.write_text(idl_build_stdout(demo_idl()), encoding="utf-8")
    return path


def test_cli_writes_then_check_passes(saved_output: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    common = ["--idl-build-output", str(saved_output), "--output", str(out)]
    assert gen.main(common) == 0
    first = out.read_text(encoding="utf-8")
    assert gen.main(common) == 0
    assert out.read_text(encoding="utf-8") == first  # deterministic
    assert gen.main([*common, "--check"]) == 0


def test_cli_check_reports_a_diff(
    saved_output: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo.json"
    common = ["--idl-build-output", str(saved_output), "--output", str(out)]
    gen.main(common)
    out.write_text(out.read_text(encoding="utf-8").replace("openPosition", "stale"))
    capsys.readouterr()
    assert gen.main([*common, "--check"]) == 1
    diff = capsys.readouterr().out
    assert '-      "name": "stale",' in diff
    assert '+      "name": "openPosition",' in diff
    assert "stale" in out.read_text(encoding="utf-8")  # --check never writes


def test_cli_reports_conversion_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(idl_build_stdout(new_spec_program(instructions=[instruction("set_x_1", [])])))
    assert gen.main(["--idl-build-output", str(bad), "--output", str(tmp_path / "o.json")]) == 2
    assert "error: instruction `set_x_1`" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_cargo_env_defaults_target_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    assert gen.cargo_env(Path("/ws"))["CARGO_TARGET_DIR"] == str(gen.DEFAULT_TARGET_DIR)
    monkeypatch.setenv("CARGO_TARGET_DIR", "/elsewhere")
    assert gen.cargo_env(Path("/ws"))["CARGO_TARGET_DIR"] == "/elsewhere"


def test_known_anchor_spl_failure_gets_a_hint() -> None:
    stderr = "error[E0433]: ...\n --> /r/anchor-spl-0.31.1/src/idl_build.rs:31:24\n"
    assert "anchor-spl/token_2022" in gen.build_failure_message(101, stderr)
