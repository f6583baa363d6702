"""Predict protocol v1 over a real adapter subprocess.

Each test writes a Scivision-shaped model package, starts
`python3 scv_adapter.py --model-dir DIR` with pipes, and speaks JSON lines to it.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER = os.path.join(HERE, "scv_adapter.py")
sys.path.insert(0, HERE)
from test_scv_adapter import write_model  # noqa: E402

# A model that behaves like a careless research package: prints to stdout when imported,
# when built and when predicting (also at the C level, straight to fd 1), reads stdin
# (sys.stdin and fd 0), and raises on some inputs.
NOISY = {
    "noisy_model/__init__.py": """\
        import os, select, sys, warnings
        print("importing noisy_model: hello stdout")
        os.write(1, b"raw fd-1 write at import\\n")

        class Noisy:
            def __init__(self, greeting="hi"):
                print(greeting, "from __init__")
                sys.stdout.write("progress 50%\\r")
                warnings.warn("deprecated thing")
                self.stolen = sys.stdin.read()  # must not eat the protocol
                # Nor at the C level: fd 0 must be at end of file, not the protocol pipe
                # (the test sends nothing before the handshake, so a pipe would block).
                ready, _, _ = select.select([0], [], [], 2)
                self.raw = os.read(0, 65536).decode() if ready else "<fd 0 would block>"

            def predict(self, image):
                print("predicting", image)
                os.write(1, b"{\\"id\\":\\"forged\\",\\"ok\\":true}\\n")
                name = os.path.basename(str(image))
                if "bad" in name:
                    raise ValueError(f"cannot classify {name}")
                return {"label": name, "score": float("nan"), "stolen": self.stolen, "raw": self.raw, "blob": b"ok"}
        """,
}
NOISY_YML = """\
    name: noisy
    import: noisy_model
    model: Noisy
    args:
      greeting: hello
    prediction_fn:
      call: predict
      args:
        X: image
    """


class Adapter:
    """A running adapter process."""

    def __init__(self, model_dir, *extra, env=None):
        e = dict(os.environ)
        e.update(env or {})
        e["PYTHONPATH"] = ""
        self.proc = subprocess.Popen(
            [sys.executable, ADAPTER, "--model-dir", model_dir, "--no-scivision", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)

    def recv(self):
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("adapter closed stdout; stderr:\n" + self.proc.stderr.read().decode())
        return json.loads(line)  # every protocol line must be JSON

    def send(self, msg):
        self.proc.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)).encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout=30):
        """Closes stdin; returns (exit code, remaining stdout, stderr)."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()


class ProtocolTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(self.data)
        for n in ("a.png", "bad.png", "c.png"):
            open(os.path.join(self.data, n), "wb").close()

    def start(self, yml, files, *extra):
        d = write_model(os.path.join(self.tmp, "model"), yml, files)
        a = Adapter(d, "--input", "path", *extra, env={"SCV_OUTPUT_DIR": os.path.join(self.tmp, "out")})
        self.addCleanup(lambda: a.proc.poll() is None and a.proc.kill())
        return a

    def test_noisy_model_keeps_protocol_clean_and_failures_per_input(self):
        a = self.start(NOISY_YML, NOISY, "--max-batch", "4")
        hello = a.recv()
        self.assertEqual(hello, {"scv": 1, "ready": True, "model": "noisy", "max_batch": 4})
        paths = {str(i): os.path.join(self.data, n) for i, n in enumerate(["a.png", "bad.png", "c.png"])}
        for i, p in paths.items():
            a.send({"id": i, "path": p})
        got = {r["id"]: r for r in (a.recv() for _ in paths)}
        self.assertEqual(set(got), set(paths))
        self.assertEqual(got["0"], {"id": "0", "ok": True, "result": {"label": "a.png", "score": None, "stolen": "", "raw": "", "blob": "b2s="}})
        self.assertEqual(got["1"], {"id": "1", "ok": False, "error": "ValueError: cannot classify bad.png"})
        self.assertTrue(got["2"]["ok"])
        code, rest, err = a.finish()
        self.assertEqual(code, 0)
        self.assertEqual(rest, "", "nothing but protocol lines on stdout")
        for noise in ["importing noisy_model: hello stdout", "raw fd-1 write at import", "hello from __init__",
                      "deprecated thing", "predicting", "forged", "Traceback", "cannot classify bad.png"]:
            self.assertIn(noise, err)

    def test_batch_answered_item_by_item(self):
        a = self.start(NOISY_YML, NOISY)
        self.assertTrue(a.recv()["ready"])
        batch = [{"id": f"b{i}", "path": os.path.join(self.data, n)} for i, n in enumerate(["a.png", "bad.png", "c.png"])]
        a.send({"batch": batch})
        got = [a.recv() for _ in batch]
        self.assertEqual([r["id"] for r in got], ["b0", "b1", "b2"])
        self.assertEqual([r["ok"] for r in got], [True, False, True])
        self.assertEqual(a.finish()[0], 0)

    def test_bad_requests_answered_and_serving_goes_on(self):
        a = self.start(NOISY_YML, NOISY)
        self.assertTrue(a.recv()["ready"])
        cases = [
            ("not json", "{nope", None, "bad request line"),
            ("no path", {"id": "x"}, "x", 'request needs "id" and "path"'),
            ("missing file", {"id": "m", "path": os.path.join(self.data, "missing.png")}, "m", "FileNotFoundError"),
            ("batch not list", {"batch": 3}, None, '"batch" must be a list'),
        ]
        for name, req, rid, msg in cases:
            with self.subTest(name):
                a.send(req)
                r = a.recv()
                self.assertEqual((r["id"], r["ok"]), (rid, False))
                self.assertIn(msg, r["error"])
        a.send({"id": "after", "path": os.path.join(self.data, "a.png")})
        self.assertTrue(a.recv()["ok"])
        self.assertEqual(a.finish()[0], 0)

    def test_large_outputs_go_to_the_output_dir_with_host_paths(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed (Debian: apt-get install python3-numpy)")
        files = {"mask_model.py": """\
            import numpy as np

            class Masker:
                def predict(self, image):
                    return {"mask": np.full((64, 64), len(str(image)), dtype=np.uint8), "n": 1}
            """}
        yml = "import: mask_model\nmodel: Masker\nprediction_fn:\n  call: predict\n"
        d = write_model(os.path.join(self.tmp, "masker"), yml, files)
        out = os.path.join(self.tmp, "bound-out")  # /out in the container
        host = "/shared/jobs/run 1/outputs"  # what the runner says /out is on the host
        a = Adapter(d, "--input", "path", env={"SCV_OUTPUT_DIR": out, "SCV_OUTPUT_HOST": host})
        self.addCleanup(lambda: a.proc.poll() is None and a.proc.kill())
        self.assertTrue(a.recv()["ready"])
        a.send({"id": "1", "path": os.path.join(self.data, "a.png")})
        r = a.recv()
        self.assertTrue(r["ok"], r)
        mask = r["result"]["mask"]
        self.assertEqual((mask["shape"], mask["dtype"]), ([64, 64], "|u1"))
        name = os.path.basename(mask["npy"])
        self.assertEqual(mask["npy"], os.path.join(host, name))
        self.assertEqual(sorted(os.listdir(out)), [name])
        self.assertEqual(a.finish()[0], 0)

    def test_load_failures_are_reported_in_the_handshake(self):
        cases = [
            ("import error", "import: broken_mod\nmodel: M\n",
             {"broken_mod.py": "print('stdout noise')\nimport definitely_not_installed_xyz\n"},
             "ModuleNotFoundError: No module named 'definitely_not_installed_xyz'"),
            ("constructor raises", "import: ctor_mod\nmodel: M\n",
             {"ctor_mod.py": "class M:\n    def __init__(self):\n        raise RuntimeError('CUDA driver version is insufficient')\n"},
             "RuntimeError: CUDA driver version is insufficient"),
            ("sys.exit at import", "import: exit_mod\nmodel: M\n", {"exit_mod.py": "import sys\nsys.exit('no licence file')\n"},
             "SystemExit: no licence file"),
            ("no class", "import: ok_mod\nmodel: Missing\n", {"ok_mod.py": "x = 1\n"},
             "LoadError: module 'ok_mod' has no model class 'Missing'"),
        ]
        for i, (name, yml, files, want) in enumerate(cases):
            with self.subTest(name):
                d = write_model(os.path.join(self.tmp, f"broken{i}"), yml, files)
                a = Adapter(d)
                hello = a.recv()
                self.assertEqual(hello, {"scv": 1, "ready": False, "error": want})
                code, rest, err = a.finish()
                self.assertEqual(code, 1)
                self.assertEqual(rest, "")
                self.assertIn("Traceback (most recent call last)", err)
                self.assertIn(want.split(": ", 1)[1], err)


if __name__ == "__main__":
    unittest.main()
