"""_generated.py is the output of tools/gen_types.py for schema/, and covers x-methods."""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import typing
import unittest

from support import PACKAGE_ROOT, REPO_ROOT

import warden_client
from warden_client import AsyncWardenClient, WardenClient, types

SCHEMA_DIR = os.path.join(REPO_ROOT, "schema")
GENERATOR = os.path.join(PACKAGE_ROOT, "tools", "gen_types.py")
COMMITTED = os.path.join(PACKAGE_ROOT, "warden_client", "_generated.py")


def load_bundle():
    with open(os.path.join(SCHEMA_DIR, "warden_protocol.schemas.json"), encoding="utf-8") as f:
        return json.load(f)


class GeneratedTypesTest(unittest.TestCase):
    def test_committed_file_matches_generator_output(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "_generated.py")
            subprocess.run([sys.executable, GENERATOR, SCHEMA_DIR, out], check=True)
            with open(out, encoding="utf-8") as f:
                fresh = f.read()
        with open(COMMITTED, encoding="utf-8") as f:
            committed = f.read()
        self.assertEqual(
            committed, fresh,
            "warden_client/_generated.py is stale: run "
            "python3 clients/python/tools/gen_types.py schema clients/python/warden_client/_generated.py")

    def test_every_definition_has_a_type(self):
        for name in load_bundle()["definitions"]:
            self.assertTrue(hasattr(types, name), name)

    def test_typed_dicts_resolve(self):
        for name in load_bundle()["definitions"]:
            obj = getattr(types, name)
            if isinstance(obj, type) and issubclass(obj, dict):
                typing.get_type_hints(obj)  # every annotation names a real type

    def test_required_keys_follow_the_schema(self):
        self.assertEqual(types.ProcessSpawnParams.__required_keys__, {"processId", "argv"})
        self.assertIn("capReached", types.ProcessOutputNotification.__optional_keys__)

    def test_method_tables_match_x_methods(self):
        methods = load_bundle()["x-methods"]
        self.assertEqual(set(warden_client.METHODS), set(methods))
        for name, spec in methods.items():
            got = warden_client.METHODS[name]
            self.assertEqual((got.direction, got.params, got.result),
                             (spec["direction"], spec.get("params"), spec.get("result")), name)
        self.assertEqual(warden_client.SERVER_REQUESTS, {"approval/network"})

    def test_every_client_request_has_a_typed_method_on_both_clients(self):
        for name, spec in load_bundle()["x-methods"].items():
            if spec["direction"] != "clientRequest":
                continue
            python_name = warden_client.METHODS[name].python_name
            for cls in (WardenClient, AsyncWardenClient):
                self.assertTrue(callable(getattr(cls, python_name, None)),
                                "%s.%s for %s" % (cls.__name__, python_name, name))

    def test_typed_method_builds_camel_case_params(self):
        sent = []

        class Recorder(types.RequestMethods):
            def request(self, method, params=None):
                sent.append((method, params))
                return {}

        Recorder().process_spawn(process_id="p1", argv=["true"], stream_stdin=True, timeout_ms=5)
        Recorder().process_list()
        Recorder().network_policy_set(allowed_domains=["a.example"], denied_domains=[],
                                      mode="limited", allow_local_binding=False)
        self.assertEqual(sent[0], ("process/spawn", {"processId": "p1", "argv": ["true"],
                                                     "streamStdin": True, "timeoutMs": 5}))
        self.assertEqual(sent[1], ("process/list", None))
        self.assertEqual(sent[2][1], {"allowedDomains": ["a.example"], "deniedDomains": [],
                                      "mode": "limited", "allowLocalBinding": False})

    def test_generated_module_imports_without_the_package(self):
        spec = importlib.util.spec_from_file_location("standalone_generated", COMMITTED)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.assertEqual(module.PROTOCOL_VERSION, load_bundle()["protocolVersion"])


if __name__ == "__main__":
    unittest.main()
