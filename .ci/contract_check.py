#!/usr/bin/env python3
"""Check that the generated schema.graphql contains the API contract.

The contract (../shared/api/contract.graphql) is a subset the schema must contain:
every contract type, field, argument, input field, enum value, union member and
scalar must exist in the schema with the same kind and the identical type string.
The schema may ADD fields, arguments, enum values and types, but an argument (or
input field) it adds to a contract field (or input type) must be nullable or have a
default value, or existing clients break.

Differences listed in the allow-list (capabilities not built yet) are tolerated; an
allow-list entry that is no longer needed is itself a problem, so the list shrinks.

Usage:
    python3 .ci/contract_check.py [--schema schema.graphql]
        [--contract ../shared/api/contract.graphql]
        [--allow .ci/contract-allowlist.txt] [--quiet-allowed]
    python3 .ci/contract_check.py --self-test

Default paths are relative to the repository root (this script's parent's parent);
paths given on the command line are relative to the current directory.

Exit status: 0 no problems, 1 problems found, 2 usage / file / parse error.

Python 3.9+ with graphql-core (PyPI `graphql-core`, the reference parser's port; .ci/run
installs it into its virtualenv), which parses both documents.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field as dc_field
from pathlib import Path

try:
    import graphql
    from graphql.language import ast
except ImportError:  # pragma: no cover - exercised by hand
    print(
        "error: contract_check.py needs graphql-core (pip install graphql-core); "
        ".ci/run installs it into its virtualenv",
        file=sys.stderr,
    )
    sys.exit(2)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = REPO_ROOT / "schema.graphql"
DEFAULT_CONTRACT = REPO_ROOT / ".." / "shared" / "api" / "contract.graphql"
DEFAULT_ALLOW = REPO_ROOT / ".ci" / "contract-allowlist.txt"


# --------------------------------------------------------------------------- errors


class SDLError(Exception):
    """An unparsable SDL document, with position."""


# --------------------------------------------------------------------------- model


@dataclass
class InputValue:
    """A field argument or an input-object field."""

    name: str
    type: str
    default: str | None  # canonical text of the default value, None if absent
    directives: list[str]
    line: int

    def sig(self) -> str:
        s = f"{self.name}: {self.type}"
        return s if self.default is None else f"{s} = {self.default}"


@dataclass
class Field:
    name: str
    type: str
    args: dict[str, InputValue]
    directives: list[str]
    line: int

    def sig(self) -> str:
        a = ", ".join(v.sig() for v in self.args.values())
        return f"{self.name}({a}): {self.type}" if self.args else f"{self.name}: {self.type}"


@dataclass
class TypeDef:
    kind: str  # "type" | "interface" | "input" | "enum" | "scalar" | "union"
    name: str
    line: int
    interfaces: list[str] = dc_field(default_factory=list)
    fields: dict[str, Field] = dc_field(default_factory=dict)  # type / interface
    input_fields: dict[str, InputValue] = dc_field(default_factory=dict)  # input
    values: dict[str, list[str]] = dc_field(default_factory=dict)  # enum -> directives
    members: list[str] = dc_field(default_factory=list)  # union


@dataclass
class Schema:
    types: dict[str, TypeDef] = dc_field(default_factory=dict)
    roots: dict[str, str] = dc_field(default_factory=dict)  # from a `schema {}` block
    warnings: list[str] = dc_field(default_factory=list)

    def root_types(self) -> dict[str, str]:
        if self.roots:
            return dict(self.roots)
        return {
            op: name
            for op, name in (("query", "Query"), ("mutation", "Mutation"), ("subscription", "Subscription"))
            if name in self.types
        }


# --------------------------------------------------------------------------- parser
#
# graphql-core parses the documents (no validation: the contract is a fragment of a schema
# and may name types it does not define); the AST is folded into the model above, merging
# `extend` definitions into their types.


def _canon_number(raw: str, kind: str) -> str:
    if kind == "int":
        return str(int(raw))
    f = float(raw)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


def _type_text(node: ast.TypeNode) -> str:
    if isinstance(node, ast.NonNullTypeNode):
        return _type_text(node.type) + "!"
    if isinstance(node, ast.ListTypeNode):
        return f"[{_type_text(node.type)}]"
    return node.name.value


def _value_text(node: ast.ValueNode) -> str:
    """A canonical text of a value for comparisons: `20.0` is `20`, object fields sorted."""
    if isinstance(node, ast.VariableNode):
        return "$" + node.name.value
    if isinstance(node, ast.IntValueNode):
        return _canon_number(node.value, "int")
    if isinstance(node, ast.FloatValueNode):
        return _canon_number(node.value, "float")
    if isinstance(node, ast.StringValueNode):
        return json.dumps(node.value, ensure_ascii=False)
    if isinstance(node, ast.BooleanValueNode):
        return "true" if node.value else "false"
    if isinstance(node, ast.NullValueNode):
        return "null"
    if isinstance(node, ast.EnumValueNode):
        return node.value
    if isinstance(node, ast.ListValueNode):
        return "[" + ", ".join(_value_text(v) for v in node.values) + "]"
    if isinstance(node, ast.ObjectValueNode):
        fields = sorted(f"{f.name.value}: {_value_text(f.value)}" for f in node.fields)
        return "{" + ", ".join(fields) + "}"
    raise SDLError(f"unexpected value node {node.kind}")


def _line(node: ast.Node) -> int:
    return node.loc.source.get_location(node.loc.start).line if node.loc else 0


def _directives(node: ast.Node) -> list[str]:
    return [d.name.value for d in (getattr(node, "directives", None) or [])]


def _input_value(node: ast.InputValueDefinitionNode) -> InputValue:
    default = None if node.default_value is None else _value_text(node.default_value)
    return InputValue(node.name.value, _type_text(node.type), default, _directives(node), _line(node))


_KINDS = {
    ast.ObjectTypeDefinitionNode: "type",
    ast.ObjectTypeExtensionNode: "type",
    ast.InterfaceTypeDefinitionNode: "interface",
    ast.InterfaceTypeExtensionNode: "interface",
    ast.InputObjectTypeDefinitionNode: "input",
    ast.InputObjectTypeExtensionNode: "input",
    ast.EnumTypeDefinitionNode: "enum",
    ast.EnumTypeExtensionNode: "enum",
    ast.ScalarTypeDefinitionNode: "scalar",
    ast.ScalarTypeExtensionNode: "scalar",
    ast.UnionTypeDefinitionNode: "union",
    ast.UnionTypeExtensionNode: "union",
}


def parse_sdl(src: str, filename: str = "<sdl>") -> Schema:
    try:
        doc = graphql.parse(graphql.Source(src, filename), no_location=False)
    except graphql.GraphQLSyntaxError as e:
        loc = e.locations[0] if e.locations else None
        where = f"{filename}:{loc.line}:{loc.column}" if loc else filename
        raise SDLError(f"{where}: {e.message}") from None
    schema = Schema()
    for d in doc.definitions:
        if isinstance(d, (ast.SchemaDefinitionNode, ast.SchemaExtensionNode)):
            for op in d.operation_types or []:
                schema.roots[op.operation.value] = op.type.name.value
            continue
        if isinstance(d, ast.DirectiveDefinitionNode):
            continue
        kind = _KINDS.get(type(d))
        if kind is None:
            raise SDLError(f"{filename}:{_line(d)}: unexpected {d.kind}: not a type-system definition")
        name, extend = d.name.value, isinstance(d, ast.TypeExtensionNode)
        td = schema.types.get(name)
        if td is None:
            td = schema.types[name] = TypeDef(kind, name, _line(d))
        elif td.kind != kind:
            raise SDLError(f"{filename}:{_line(d)}: {name} is defined as {td.kind} and as {kind}")
        elif not extend:
            schema.warnings.append(f"{filename}:{_line(d)}: {name} defined more than once (merged)")
        if kind in ("type", "interface"):
            td.interfaces += [i.name.value for i in d.interfaces or []]
            for f in d.fields or []:
                args = {a.name.value: _input_value(a) for a in f.arguments or []}
                td.fields[f.name.value] = Field(
                    f.name.value, _type_text(f.type), args, _directives(f), _line(f)
                )
        elif kind == "input":
            for f in d.fields or []:
                td.input_fields[f.name.value] = _input_value(f)
        elif kind == "enum":
            for v in d.values or []:
                td.values[v.name.value] = _directives(v)
        elif kind == "union":
            td.members += [m.name.value for m in d.types or []]
    return schema


# --------------------------------------------------------------------------- allow-list

_ALLOW_RE = re.compile(
    r"^(?P<type>[_A-Za-z]\w*)(?:\.(?P<member>[_A-Za-z]\w*)(?:\((?P<arg>[_A-Za-z]\w*)\))?)?$"
)


def parse_allowlist(text: str) -> tuple[dict[str, int], list[str]]:
    """Return ({entry: line}, [errors]). `#` starts a comment anywhere on a line."""
    entries: dict[str, int] = {}
    errors: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        entry = re.sub(r"\s+", "", entry)  # tolerate `Type.field( arg )`
        if not _ALLOW_RE.match(entry):
            errors.append(
                f"bad allow-list entry (line {lineno}): {raw.strip()!r} "
                "— expected Type, Type.field, Type.field(arg) or Enum.VALUE"
            )
        elif entry in entries:
            errors.append(f"duplicate allow-list entry (line {lineno}): {entry} — remove it")
        else:
            entries[entry] = lineno
    return entries, errors


# --------------------------------------------------------------------------- comparison

KIND_WORD = {
    "type": "type",
    "interface": "interface",
    "input": "input type",
    "enum": "enum",
    "scalar": "scalar",
    "union": "union",
}


@dataclass
class Problem:
    message: str
    keys: list[str]  # allow-list entries that would cover it, most specific first


@dataclass
class Result:
    problems: list[str]  # not allowed: these fail the check
    allowed: list[str]  # covered by the allow-list
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _deprecation_warning(where: str, contract_dirs: list[str], schema_dirs: list[str]) -> list[str]:
    if "deprecated" in schema_dirs and "deprecated" not in contract_dirs:
        return [f"WARN deprecated in schema: {where} (the contract still promises it)"]
    return []


def _compare_default(where: str, c: InputValue, s: InputValue) -> list[str]:
    if c.default is None or c.default == s.default:
        return []
    if s.default is None:
        return [f"WARN default missing: {where}: contract {c.default}, schema none"]
    return [f"WARN default differs: {where}: contract {c.default}, schema {s.default}"]


def compare(contract: Schema, schema: Schema) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    warnings: list[str] = []

    def add(msg: str, *keys: str) -> None:
        problems.append(Problem(msg, list(keys)))

    for tname, ct in contract.types.items():
        st = schema.types.get(tname)
        if st is None:
            add(f"missing {KIND_WORD[ct.kind]}: {tname}", tname)
            continue
        if st.kind != ct.kind:
            add(f"kind mismatch: {tname}: contract {ct.kind}, schema {st.kind}", tname)
            continue

        for iface in ct.interfaces:
            if iface not in st.interfaces:
                add(f"missing interface: {tname} implements {iface}", tname)

        if ct.kind in ("type", "interface"):
            for fname, cf in ct.fields.items():
                fkey = f"{tname}.{fname}"
                sf = st.fields.get(fname)
                if sf is None:
                    add(f"missing field: {tname}.{cf.sig()}", fkey, tname)
                    continue
                if sf.type != cf.type:
                    add(f"type mismatch: {fkey}: contract {cf.type}, schema {sf.type}", fkey, tname)
                warnings += _deprecation_warning(fkey, cf.directives, sf.directives)
                for aname, ca in cf.args.items():
                    akey = f"{fkey}({aname})"
                    sa = sf.args.get(aname)
                    if sa is None:
                        add(f"missing argument: {fkey}({ca.sig()})", akey, fkey, tname)
                        continue
                    if sa.type != ca.type:
                        add(
                            f"type mismatch: {akey}: contract {ca.type}, schema {sa.type}",
                            akey, fkey, tname,
                        )
                    warnings += _compare_default(akey, ca, sa)
                    warnings += _deprecation_warning(akey, ca.directives, sa.directives)
                for aname, sa in sf.args.items():
                    if aname not in cf.args and sa.type.endswith("!") and sa.default is None:
                        add(
                            f"added required argument: {fkey}({sa.sig()}) "
                            "— arguments added to a contract field must be nullable or have a default",
                            f"{fkey}({aname})", fkey, tname,
                        )

        elif ct.kind == "input":
            for fname, cf in ct.input_fields.items():
                fkey = f"{tname}.{fname}"
                sf = st.input_fields.get(fname)
                if sf is None:
                    add(f"missing input field: {tname}.{cf.sig()}", fkey, tname)
                    continue
                if sf.type != cf.type:
                    add(f"type mismatch: {fkey}: contract {cf.type}, schema {sf.type}", fkey, tname)
                warnings += _compare_default(fkey, cf, sf)
                warnings += _deprecation_warning(fkey, cf.directives, sf.directives)
            for fname, sf in st.input_fields.items():
                if fname not in ct.input_fields and sf.type.endswith("!") and sf.default is None:
                    add(
                        f"added required input field: {tname}.{sf.sig()} "
                        "— fields added to a contract input type must be nullable or have a default",
                        f"{tname}.{fname}", tname,
                    )

        elif ct.kind == "enum":
            for v, cdirs in ct.values.items():
                if v not in st.values:
                    add(f"missing enum value: {tname}.{v}", f"{tname}.{v}", tname)
                else:
                    warnings += _deprecation_warning(f"{tname}.{v}", cdirs, st.values[v])

        elif ct.kind == "union":
            for m in ct.members:
                if m not in st.members:
                    add(f"missing union member: {tname}.{m}", f"{tname}.{m}", tname)

    # Root operation types: the contract's Query/Mutation/Subscription must be the
    # schema's roots (reported only when the type itself exists in the schema).
    croots, sroots = contract.root_types(), schema.root_types()
    for op, cname in croots.items():
        if sroots.get(op) != cname and cname in schema.types:
            add(
                f"root type mismatch: {op}: contract {cname}, schema {sroots.get(op, 'none')}",
                cname,
            )
    return problems, warnings


def _in_contract(entry: str, contract: Schema) -> bool:
    m = _ALLOW_RE.match(entry)
    if not m:
        return False
    t = contract.types.get(m["type"])
    if t is None:
        return False
    member, arg = m["member"], m["arg"]
    if member is None:
        return True
    if arg is not None:
        f = t.fields.get(member)
        return f is not None and arg in f.args
    return (
        member in t.fields
        or member in t.input_fields
        or member in t.values
        or member in t.members
    )


def check(contract_src: str, schema_src: str, allow_src: str = "",
          contract_name: str = "contract", schema_name: str = "schema") -> Result:
    """Run the whole check on texts. Raises SDLError on unparsable SDL."""
    contract = parse_sdl(contract_src, contract_name)
    schema = parse_sdl(schema_src, schema_name)
    entries, errors = parse_allowlist(allow_src)
    raw_problems, warnings = compare(contract, schema)
    warnings = [f"WARN {w}" for w in contract.warnings + schema.warnings] + warnings

    problems: list[str] = []
    allowed: list[str] = []
    used: set[str] = set()
    for p in raw_problems:
        hits = [k for k in p.keys if k in entries]
        if hits:
            used.update(hits)
            allowed.append(f"{p.message}  [allowed by {hits[0]}]")
        else:
            problems.append(p.message)
    problems += errors
    for entry in sorted(entries, key=entries.get):
        if entry not in used:
            suffix = "" if _in_contract(entry, contract) else " (not in the contract)"
            problems.append(f"stale allow-list entry: {entry} — remove it{suffix}")
    return Result(problems, allowed, warnings)


# --------------------------------------------------------------------------- self-test

_ST_CONTRACT = '''
# a comment { type Ghost { x: Int } }
scalar DateTime # trailing comment
enum Role { OWNER ADMIN MEMBER }
"A one-line description with \\"quotes\\" and type Ghost2 { y: Int }"
type User {
  id: ID!
  email: String!   # comment after a field
  tags: [String!]!
}
type Org {
  members(first: Int, after: String): [User!]!
  growth(from: DateTime!, interval: Role = MEMBER): Int!
}
input NewThing { name: String! content: String = "" eventTypes: [String!] = [] role: Role = MEMBER }
type Query { me: User org(id: ID!): Org }
'''

# The same contract the way async-graphql's Schema::sdl() prints it: tabs, block
# descriptions on types, fields, arguments and enum values, directives, a schema block.
_ST_SCHEMA = '''
"""
Date and time, RFC 3339. Not a type: type Ghost3 { z: Int }
"""
scalar DateTime

"""
Some role.
  # not a comment, still part of the description
"""
enum Role {
	"""
	Owns it.
	"""
	OWNER
	ADMIN
	MEMBER
	GUEST @deprecated(reason: "gone \\"soon\\"")
}

input NewThing @oneOf {
	"""
	The name; an escaped \\""" triple quote stays inside.
	"""
	name: String!
	content: String = ""
	eventTypes: [String!] = [ ]
	role: Role = MEMBER
	extra: Int! = 3
}

"""
An organization.
"""
type Org implements Node & Named {
	"""
	Members, paginated.
	"""
	members(
		"""
		How many; at most 100.
		"""
		first: Int = 20,
		"""
		Cursor.
		"""
		after: String,
		"""
		Optional filter.
		"""
		role: Role
	): [User!]!
	growth(from: DateTime!, interval: Role = MEMBER, limit: Int! = 10): Int!
	id: ID! @deprecated
}

type Query {
	me: User
	org(id: ID!): Org
}

"A user."
type User {
	"The ID." id: ID!
	email: String!
	tags: [ String! ]!
	extra: String
}

extend type User { more: Int }

union Thing = | User | Org

interface Node { id: ID! }
interface Named implements Node { id: ID! }

directive @oneOf on INPUT_OBJECT
directive @custom(optionalWithDefault: String = "DEFAULT") repeatable on FIELD_DEFINITION | OBJECT

schema {
	query: Query
}
'''


def _self_test() -> int:
    failures: list[str] = []

    def expect(name: str, cond: bool, detail: object = "") -> None:
        print(f"  {'ok  ' if cond else 'FAIL'} {name}")
        if not cond:
            failures.append(name)
            if detail:
                print(f"       got: {detail}")

    def sub(src: str, old: str, new: str) -> str:
        assert old in src, old
        return src.replace(old, new, 1)

    print("contract_check self-test")

    # descriptions / comments / directives parsing
    r = check(_ST_CONTRACT, _ST_SCHEMA)
    expect("async-graphql-style schema satisfies the contract", r.ok and not r.allowed, r.problems)
    c = parse_sdl(_ST_CONTRACT)
    s = parse_sdl(_ST_SCHEMA)
    ghosts = [g for g in ("Ghost", "Ghost2", "Ghost3") if g in c.types or g in s.types]
    expect("text in comments and descriptions is not parsed as SDL", not ghosts, ghosts)
    expect("arguments with descriptions parsed", list(s.types["Org"].fields["members"].args) == ["first", "after", "role"])
    expect("default values parsed", s.types["Org"].fields["members"].args["first"].default == "20"
           and s.types["NewThing"].input_fields["eventTypes"].default == "[]"
           and s.types["NewThing"].input_fields["content"].default == '""')
    expect("extend type merges fields", "more" in s.types["User"].fields)
    expect("block string with escaped triple quote",
           parse_sdl('"""a \\""" b"""\nscalar X').types.keys() == {"X"})
    expect("contract checked against itself: no problems", check(_ST_CONTRACT, _ST_CONTRACT).ok)

    # missing field
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "\temail: String!\n", ""))
    expect("missing field reported", r.problems == ["missing field: User.email: String!"], r.problems)

    # missing field with args, missing argument
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, '\t\t"""\n\t\tCursor.\n\t\t"""\n\t\tafter: String,\n', ""))
    expect("missing argument reported", r.problems == ["missing argument: Org.members(after: String)"], r.problems)

    # wrong types
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "\temail: String!\n", "\temail: String\n"))
    expect("field type mismatch reported",
           r.problems == ["type mismatch: User.email: contract String!, schema String"], r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "tags: [ String! ]!", "tags: [String]!"))
    expect("list type mismatch reported",
           r.problems == ["type mismatch: User.tags: contract [String!]!, schema [String]!"], r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "first: Int = 20", "first: Int! = 20"))
    expect("argument type mismatch reported",
           r.problems == ["type mismatch: Org.members(first): contract Int, schema Int!"], r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "content: String = \"\"", "content: String! = \"\""))
    expect("input field type mismatch reported",
           r.problems == ["type mismatch: NewThing.content: contract String, schema String!"], r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "enum Role {", "type Role {\n\tx: Int\n}\nenum Unused {"))
    expect("kind mismatch reported",
           any(p.startswith("kind mismatch: Role: contract enum, schema type") for p in r.problems), r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "\tADMIN\n", ""))
    expect("missing enum value reported", r.problems == ["missing enum value: Role.ADMIN"], r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "scalar DateTime", "scalar Date"))
    expect("missing scalar reported", r.problems == ["missing scalar: DateTime"], r.problems)

    # added arguments / input fields
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "\t\trole: Role\n", "\t\trole: Role!\n"))
    expect("added required argument reported",
           len(r.problems) == 1 and r.problems[0].startswith("added required argument: Org.members(role: Role!)"),
           r.problems)
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "\textra: Int! = 3\n", "\textra: Int!\n"))
    expect("added required input field reported",
           len(r.problems) == 1 and r.problems[0].startswith("added required input field: NewThing.extra: Int!"),
           r.problems)

    # defaults only warn
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "interval: Role = MEMBER", "interval: Role = ADMIN"))
    expect("different default is a warning, not a problem",
           r.ok and "WARN default differs: Org.growth(interval): contract MEMBER, schema ADMIN" in r.warnings,
           (r.problems, r.warnings))
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, 'content: String = ""', "content: String"))
    expect("missing default is a warning",
           r.ok and 'WARN default missing: NewThing.content: contract "", schema none' in r.warnings,
           (r.problems, r.warnings))

    # allow-list
    no_email = sub(_ST_SCHEMA, "\temail: String!\n", "")
    r = check(_ST_CONTRACT, no_email, "# header\n\nUser.email   # issue 12\n")
    expect("allowed field passes", r.ok and len(r.allowed) == 1, (r.problems, r.allowed))
    r = check(_ST_CONTRACT, sub(no_email, "\tADMIN\n", ""), "User\nRole.ADMIN\n")
    expect("Type and Enum.VALUE entries allow", r.ok and len(r.allowed) == 2, (r.problems, r.allowed))
    r = check(_ST_CONTRACT, sub(_ST_SCHEMA, "\t\trole: Role\n", "\t\trole: Role!\n"), "Org.members(role)\n")
    expect("Type.field(arg) entry allows an added required arg", r.ok and len(r.allowed) == 1, r.problems)
    r = check(_ST_CONTRACT, _ST_SCHEMA, "User.email\n")
    expect("stale allow entry reported",
           r.problems == ["stale allow-list entry: User.email — remove it"], r.problems)
    r = check(_ST_CONTRACT, _ST_SCHEMA, "User.nope\n")
    expect("allow entry not in the contract reported",
           r.problems == ["stale allow-list entry: User.nope — remove it (not in the contract)"], r.problems)
    r = check(_ST_CONTRACT, _ST_SCHEMA, "User..email\n")
    expect("malformed allow entry reported",
           len(r.problems) == 1 and r.problems[0].startswith("bad allow-list entry"), r.problems)

    # root types and parse errors
    r = check(_ST_CONTRACT, _ST_SCHEMA.replace("query: Query", "query: Org"))
    expect("root type mismatch reported",
           r.problems == ["root type mismatch: query: contract Query, schema Org"], r.problems)
    try:
        parse_sdl("type A { x: Int", "bad.graphql")
        expect("parse error raised", False)
    except SDLError as e:
        expect("parse error raised with position", str(e).startswith("bad.graphql:1:"), e)

    print(f"self-test: {'FAILED (' + str(len(failures)) + ')' if failures else 'passed'}")
    return 1 if failures else 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Check that schema.graphql contains the API contract (see the module docstring)."
    )
    ap.add_argument("--schema", type=Path, help=f"default: {DEFAULT_SCHEMA.relative_to(REPO_ROOT)}")
    ap.add_argument("--contract", type=Path, help="default: ../shared/api/contract.graphql")
    ap.add_argument("--allow", type=Path, help="default: .ci/contract-allowlist.txt")
    ap.add_argument("--quiet-allowed", action="store_true", help="do not list allowed differences")
    ap.add_argument("--self-test", action="store_true", help="run the embedded unit checks")
    args = ap.parse_args(argv)

    if args.self_test:
        return _self_test()

    schema_path = args.schema or DEFAULT_SCHEMA
    contract_path = args.contract or DEFAULT_CONTRACT
    allow_path = args.allow or DEFAULT_ALLOW

    texts = {}
    for label, path in (("schema", schema_path), ("contract", contract_path)):
        try:
            texts[label] = path.read_text(encoding="utf-8")
        except OSError as e:
            print(f"error: cannot read {label} {path}: {e.strerror or e}", file=sys.stderr)
            return 2
    try:
        allow_text = allow_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if args.allow is not None:
            print(f"error: allow-list {allow_path} not found", file=sys.stderr)
            return 2
        allow_text = ""

    try:
        r = check(texts["contract"], texts["schema"], allow_text,
                  contract_name=str(contract_path), schema_name=str(schema_path))
    except SDLError as e:
        print(f"parse error: {e}", file=sys.stderr)
        return 2

    for w in r.warnings:
        print(w)
    for p in r.problems:
        print(p)
    if not args.quiet_allowed:
        for a in r.allowed:
            print(f"allowed: {a}")
    print(f"contract check: {len(r.problems)} problems ({len(r.allowed)} allowed)")
    return 1 if r.problems else 0


if __name__ == "__main__":
    sys.exit(main())
