#!/usr/bin/env python3
"""Generate warden_client/_generated.py from the JSON Schema bundle.

    python3 clients/python/tools/gen_types.py SCHEMA_DIR OUT

SCHEMA_DIR holds warden_protocol.schemas.json (the output of
`warden generate-json-schema`). OUT receives:

- one TypedDict (or type alias) per definition of the bundle, in dependency
  order, so the module imports on Python 3.9 without postponed annotations;
- METHODS, the bundle's x-methods as MethodSpec records, and the sets
  CLIENT_REQUESTS, CLIENT_NOTIFICATIONS, SERVER_NOTIFICATIONS, SERVER_REQUESTS;
- RequestMethods and AsyncRequestMethods: one typed keyword-argument method per
  client request, built on an abstract request(method, params).

Standard library only. The output is deterministic: the tests regenerate it
and compare it with the committed file.
"""

import json
import keyword
import os
import re
import sys

BUNDLE = "warden_protocol.schemas.json"
META = "_meta"  # request metadata every client request's params may carry
INDENT = "    "


def snake(name):
    """camelCase -> snake_case, made safe as a Python identifier."""
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    out = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", out).lower()
    out = re.sub(r"\W", "_", out)
    if keyword.iskeyword(out) or out[:1].isdigit():
        out += "_"
    return out


def method_python_name(method):
    return "_".join(snake(part) for part in method.split("/"))


def pascal(name):
    return name[:1].upper() + name[1:]


def docstring(text, indent):
    text = " ".join(text.split()).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = wrap(text, 79 - len(indent) - 6)
    if len(lines) == 1:
        return [indent + '"""' + lines[0] + '"""']
    return [indent + '"""' + lines[0]] + [indent + l for l in lines[1:]] + [indent + '"""']


def wrap(text, width):
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = word if not cur else cur + " " + word
    lines.append(cur)
    return lines


def comment(text, indent):
    text = " ".join(text.split())
    return [indent + "#: " + l for l in wrap(text, 79 - len(indent) - 3)]


class Generator:
    def __init__(self, bundle):
        self.bundle = bundle
        self.defs = bundle["definitions"]
        self.methods = bundle.get("x-methods", {})
        # name -> ("typeddict", schema) or ("alias", schema); nested anonymous
        # objects get a name derived from their parent and property.
        self.types = {}
        self.order = []
        self.state = {}
        self.emitted = None  # set of emitted names once emission starts

    # -- schema -> Python type expression ---------------------------------

    def is_struct(self, schema):
        return (schema.get("type") == "object"
                and ("properties" in schema or schema.get("additionalProperties") is False))

    def resolve(self, schema):
        """Follow $ref aliases to the schema they name."""
        seen = set()
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                break
            seen.add(name)
            schema = self.defs[name]
        return schema

    def expr(self, schema, ctx):
        """The Python type expression for schema; ctx names nested objects."""
        if not schema:
            return "Any"
        if "$ref" in schema:
            return self.ref(schema["$ref"].rsplit("/", 1)[-1])
        for key in ("oneOf", "anyOf"):
            if key in schema:
                parts = [self.expr(s, "%s%d" % (ctx, i + 1)) for i, s in enumerate(schema[key])]
                return union(parts)
        if "const" in schema:
            return "Literal[%s]" % json.dumps(schema["const"])
        if "enum" in schema:
            values = [v for v in schema["enum"] if v is not None]
            lit = "Literal[%s]" % ", ".join(json.dumps(v) for v in values)
            # null in an enum: an optional field given as null means absent
            return "Optional[%s]" % lit if len(values) < len(schema["enum"]) else lit
        types = schema.get("type")
        if isinstance(types, list):
            return union([self.expr(dict(schema, type=t), ctx) for t in types])
        if types == "string":
            return "str"
        if types == "integer":
            return "int"
        if types == "number":
            return "float"
        if types == "boolean":
            return "bool"
        if types == "null":
            return "None"
        if types == "array":
            return "List[%s]" % self.expr(schema.get("items", {}), ctx + "Item")
        if types == "object":
            if self.is_struct(schema):
                self.add(ctx, schema)
                return self.ref(ctx)
            extra = schema.get("additionalProperties")
            value = self.expr(extra, ctx + "Value") if isinstance(extra, dict) else "Any"
            return "Dict[str, %s]" % value
        return "Any"

    def ref(self, name):
        self.visit(name)
        # While emitting, a name defined further down (only possible through a
        # reference cycle) is written as a forward reference.
        if self.emitted is not None and name not in self.emitted:
            return '"%s"' % name
        return name

    # -- ordering ----------------------------------------------------------

    def add(self, name, schema):
        if name not in self.types:
            self.types[name] = schema
        self.visit(name)

    def visit(self, name):
        if self.state.get(name):
            return
        if name not in self.types:
            self.types[name] = self.defs[name]
        self.state[name] = "visiting"
        schema = self.types[name]
        if self.is_struct(schema):
            for prop, sub in schema.get("properties", {}).items():
                self.expr(sub, name + pascal(prop))
        else:
            self.expr(schema, name)
        self.state[name] = "done"
        self.order.append(name)

    # -- emitters ------------------------------------------------------------

    def emit_type(self, name):
        schema = self.types[name]
        out = []
        desc = schema.get("description")
        if not self.is_struct(schema):
            target = self.expr(schema, name)
            if desc:
                out += comment(desc, "")
            line = "%s = %s" % (name, target)
            if len(line) > 79 and target.startswith("Union["):
                members = target[len("Union["):-1].split(", ")
                out += ["%s = Union[" % name] + [INDENT + m + "," for m in members] + ["]"]
            else:
                out.append(line)
            return out
        props = schema.get("properties", {})
        required = [p for p in props if p in schema.get("required", [])]
        optional = [p for p in props if p not in required]
        fields = lambda names: [(p, self.expr(props[p], name + pascal(p)), props[p]) for p in names]
        functional = any(not p.isidentifier() or keyword.iskeyword(p) for p in props)
        if functional:
            return self.emit_functional(name, desc, fields(required), fields(optional))
        if required and optional:
            base = "_%sRequired" % name
            out += self.emit_class(base, "TypedDict", None, fields(required))
            out += ["", ""]
            out += self.emit_class(name, base + ", total=False", desc, fields(optional))
        elif optional:
            out += self.emit_class(name, "TypedDict, total=False", desc, fields(optional))
        else:
            out += self.emit_class(name, "TypedDict", desc, fields(required))
        return out

    def emit_class(self, name, bases, desc, fields):
        out = ["class %s(%s):" % (name, bases)]
        if desc:
            out += docstring(desc, INDENT)
        for prop, expr, sub in fields:
            if sub.get("description"):
                out += comment(sub["description"], INDENT)
            out.append("%s%s: %s" % (INDENT, prop, expr))
        if not desc and not fields:
            out.append(INDENT + "pass")
        return out

    def emit_functional(self, name, desc, required, optional):
        out = []
        if desc:
            out += comment(desc, "")
        body = lambda fields: ", ".join("%s: %s" % (json.dumps(p), e) for p, e, _ in fields)
        # The functional form takes no base class on Python 3.9, so a mix of
        # required and optional keys is declared total=False as a whole.
        fields = required + optional
        total = "" if not optional else ", total=False"
        out.append('%s = TypedDict("%s", {%s}%s)' % (name, name, body(fields), total))
        return out

    def method_signature(self, method, spec):
        """(keyword params, body dict lines, required keys, result type)."""
        params_name = spec.get("params")
        kwargs, entries, required = [], [], []
        if params_name:
            schema = self.resolve(self.defs[params_name])
            ctx = params_name
            if "$ref" in self.defs[params_name]:
                ctx = self.defs[params_name]["$ref"].rsplit("/", 1)[-1]
            props = schema.get("properties", {})
            req = schema.get("required", [])
            ordered = [p for p in props if p in req] + [p for p in props if p not in req]
            for prop in ordered:
                arg = snake(prop)
                typ = self.expr(props[prop], ctx + pascal(prop))
                if prop in req:
                    kwargs.append("%s: %s" % (arg, typ))
                    required.append(prop)
                else:
                    if not typ.startswith("Optional[") and typ != "Any":
                        typ = "Optional[%s]" % typ
                    kwargs.append("%s: %s = None" % (arg, typ))
                entries.append((prop, arg))
        result = spec.get("result") or "Any"
        return kwargs, entries, required, result

    def emit_methods(self, asynchronous):
        cls = "AsyncRequestMethods" if asynchronous else "RequestMethods"
        kind = "asyncio" if asynchronous else "blocking"
        d, aw = ("async def", "await ") if asynchronous else ("def", "")
        out = ["class %s:" % cls]
        out += docstring(
            "Typed convenience methods, one per client request (%s API). Optional "
            "arguments left at None are omitted from the params." % kind, INDENT)
        out.append("")
        out.append("%s%s request(self, method: str, params: Optional[Mapping[str, Any]] = None) -> Any:"
                   % (INDENT, d))
        out.append(INDENT * 2 + "raise NotImplementedError")
        for method, spec in self.methods.items():
            if spec.get("direction") != "clientRequest":
                continue
            kwargs, entries, required, result = self.method_signature(method, spec)
            name = method_python_name(method)
            out.append("")
            if kwargs:
                out.append("%s%s %s(" % (INDENT, d, name))
                out.append(INDENT * 3 + "self,")
                out.append(INDENT * 3 + "*,")
                out += [INDENT * 3 + k + "," for k in kwargs]
                out.append("%s) -> %s:" % (INDENT * 2, result))
            else:
                out.append("%s%s %s(self) -> %s:" % (INDENT, d, name, result))
            desc = spec.get("description")
            out += docstring("`%s`%s" % (method, ". " + desc if desc else "."), INDENT * 2)
            if not entries:
                out.append("%sreturn %sself.request(%s)" % (INDENT * 2, aw, json.dumps(method)))
                continue
            if [p for p, _ in entries] == [META]:
                # No arguments: params stay absent unless _meta is given.
                out.append("%sreturn %sself.request(%s, None if _meta is None else {%s: _meta})"
                           % (INDENT * 2, aw, json.dumps(method), json.dumps(META)))
                continue
            out.append("%sparams = {" % (INDENT * 2))
            out += ["%s%s: %s," % (INDENT * 3, json.dumps(p), a) for p, a in entries]
            out.append(INDENT * 2 + "}")
            out.append("%sreturn %sself.request(%s, _compact(params, %s))"
                       % (INDENT * 2, aw, json.dumps(method), tuple_expr(required)))
        return out

    def generate(self):
        for name in self.defs:
            self.visit(name)
        # Method signatures may name nested types; they are registered above
        # because every params schema is a definition.
        out = [
            "# GENERATED by clients/python/tools/gen_types.py from schema/%s. Do not edit." % BUNDLE,
            '"""warden protocol types, method tables and typed request methods."""',
            "",
            "from typing import Any, Dict, List, Literal, Mapping, NamedTuple, Optional, Tuple, TypedDict, Union",
            "",
            "PROTOCOL_VERSION = %d" % self.bundle.get("protocolVersion", 1),
        ]
        self.emitted = set()
        for name in self.order:
            out += ["", ""]
            out += self.emit_type(name)
            self.emitted.add(name)
        out += ["", ""]
        out += [
            "class MethodSpec(NamedTuple):",
            '    """One entry of x-methods: direction and the params/result type names."""',
            "",
            "    direction: str",
            "    params: Optional[str]",
            "    result: Optional[str]",
            "    python_name: str",
            "",
            "",
            "METHODS: Dict[str, MethodSpec] = {",
        ]
        for method, spec in self.methods.items():
            out.append("%s%s: MethodSpec(" % (INDENT, json.dumps(method)))
            out.append("%s%s, %s, %s, %s)," % (
                INDENT * 2, json.dumps(spec["direction"]),
                py_str(spec.get("params")), py_str(spec.get("result")),
                json.dumps(method_python_name(method))))
        out.append("}")
        for const, direction in (("CLIENT_REQUESTS", "clientRequest"),
                                 ("CLIENT_NOTIFICATIONS", "clientNotification"),
                                 ("SERVER_NOTIFICATIONS", "serverNotification"),
                                 ("SERVER_REQUESTS", "serverRequest")):
            names = [m for m, s in self.methods.items() if s["direction"] == direction]
            out.append("%s = frozenset({" % const)
            out += [INDENT + json.dumps(n) + "," for n in names]
            out.append("})")
        out += ["", ""]
        out += [
            "def _compact(params: Dict[str, Any], required: Tuple[str, ...]) -> Dict[str, Any]:",
            '    """Drop the optional keys whose value is None."""',
            "    return {k: v for k, v in params.items() if v is not None or k in required}",
        ]
        out += ["", ""]
        out += self.emit_methods(asynchronous=False)
        out += ["", ""]
        out += self.emit_methods(asynchronous=True)
        return "\n".join(out) + "\n"


def union(parts):
    uniq = []
    for p in parts:
        if p not in uniq:
            uniq.append(p)
    if "None" in uniq and len(uniq) == 2:
        other = uniq[0] if uniq[1] == "None" else uniq[1]
        return "Optional[%s]" % other
    if len(uniq) == 1:
        return uniq[0]
    return "Union[%s]" % ", ".join(uniq)


def py_str(value):
    return "None" if value is None else json.dumps(value)


def tuple_expr(items):
    if not items:
        return "()"
    if len(items) == 1:
        return "(%s,)" % json.dumps(items[0])
    return "(%s)" % ", ".join(json.dumps(i) for i in items)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: gen_types.py SCHEMA_DIR OUT\n")
        return 2
    with open(os.path.join(argv[1], BUNDLE), encoding="utf-8") as f:
        bundle = json.load(f)
    text = Generator(bundle).generate()
    tmp = argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
