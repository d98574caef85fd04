"""A small draft-07 JSON Schema checker (the subset warden's generated
schemas use), so tests can check real messages against schema/ without
PyPI packages."""

import json
import os
import re

SCHEMA_DIR = os.path.join(os.environ.get("WARDEN_SOURCE_DIR",
                                         os.path.join(os.path.dirname(__file__), "..", "..")),
                          "schema")

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(schema, value, root, path="$"):
    """Yield error strings for value against schema (root holds definitions)."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        yield from errors(root["definitions"][name], value, root, path)
        return
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not list(errors(s, value, root, path))]
        if len(ok) != 1:
            yield "%s: matches %d of oneOf" % (path, len(ok))
        return
    if "anyOf" in schema:
        if not any(not list(errors(s, value, root, path)) for s in schema["anyOf"]):
            yield "%s: matches none of anyOf" % path
        return
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(_TYPES[x](value) for x in types):
            yield "%s: expected %s, got %r" % (path, t, value)
            return
    if "enum" in schema and value not in schema["enum"]:
        yield "%s: %r not in %r" % (path, value, schema["enum"])
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield "%s: %r does not match %s" % (path, value, schema["pattern"])
        if len(value) < schema.get("minLength", 0):
            yield "%s: too short" % path
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield "%s: too long" % path
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield "%s: %r < %r" % (path, value, schema["minimum"])
        if "maximum" in schema and value > schema["maximum"]:
            yield "%s: %r > %r" % (path, value, schema["maximum"])
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            yield "%s: too few items" % path
        if "items" in schema:
            for i, v in enumerate(value):
                yield from errors(schema["items"], v, root, "%s[%d]" % (path, i))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                yield "%s: missing %s" % (path, k)
        for k, v in value.items():
            if k in props:
                yield from errors(props[k], v, root, "%s.%s" % (path, k))
            elif schema.get("additionalProperties") is False:
                yield "%s: unexpected %s" % (path, k)
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from errors(schema["additionalProperties"], v, root, "%s.%s" % (path, k))


class Checker:
    def __init__(self, schema_dir=SCHEMA_DIR):
        with open(os.path.join(schema_dir, "warden_protocol.schemas.json")) as f:
            self.bundle = json.load(f)
        self.methods = self.bundle["x-methods"]

    def check(self, type_name, value):
        return list(errors({"$ref": "#/definitions/" + type_name}, value, self.bundle))

    def check_server_message(self, msg, pending_methods):
        """Check one server->client message. pending_methods maps request ids
        the client sent to their method names (to find the result type)."""
        if "method" in msg:
            m = self.methods.get(msg["method"])
            if m is None:
                return ["unknown method %s" % msg["method"]]
            if "params" in m:
                return self.check(m["params"], msg.get("params"))
            return []
        if "result" in msg:
            method = pending_methods.get(json.dumps(msg["id"]))
            if method and "result" in self.methods.get(method, {}):
                return self.check(self.methods[method]["result"], msg["result"])
        return []


# The error object of the wire contract: {code, message, data?}; data is an
# object, and for these codes it must carry the named fields.
ERROR_CODES = {-32700, -32600, -32601, -32602, -32603, -32001, -32002, -32003, -32004}
ERROR_DATA_REQUIRED = {
    -32602: {"path": str},
    -32003: {"reason": str},
    -32004: {"errno": int, "syscall": str},
}


def error_errors(msg, expect_code=None):
    """Errors (strings) of one error response against the contract."""
    out = []
    if set(msg) - {"jsonrpc", "id", "error"}:
        out.append("unexpected keys %r" % sorted(set(msg) - {"jsonrpc", "id", "error"}))
    if msg.get("jsonrpc") != "2.0":
        out.append("jsonrpc is %r" % msg.get("jsonrpc"))
    if "id" not in msg:
        out.append("missing id")
    e = msg.get("error")
    if not isinstance(e, dict):
        return out + ["error is not an object: %r" % (e,)]
    if set(e) - {"code", "message", "data"}:
        out.append("error has unexpected keys %r" % sorted(set(e) - {"code", "message", "data"}))
    code = e.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or code not in ERROR_CODES:
        out.append("error.code %r is not a code of the contract" % (code,))
    if expect_code is not None and code != expect_code:
        out.append("error.code %r, expected %r" % (code, expect_code))
    if not isinstance(e.get("message"), str) or not e.get("message"):
        out.append("error.message missing or empty")
    if "data" in e and not isinstance(e["data"], dict):
        out.append("error.data is not an object")
    for k, t in ERROR_DATA_REQUIRED.get(code, {}).items():
        v = (e.get("data") or {}).get(k)
        if not isinstance(v, t) or isinstance(v, bool) or (t is str and not v):
            out.append("error.data.%s missing or not a %s: %r" % (k, t.__name__, v))
    return out


def assert_error(msg, code):
    """Assert msg is an error response with this code that follows the
    contract; returns its error object."""
    errs = error_errors(msg, code)
    assert not errs, (errs, msg)
    return msg["error"]
