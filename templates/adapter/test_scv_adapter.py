"""Tests of scv_adapter: model.yml parsing, loading, output encoding, inputs.

Run with: python3 -m unittest discover templates/adapter
Protocol tests over a real subprocess are in test_protocol.py. Cases that need numpy
are skipped (with the reason) when it is not installed (Debian: python3-numpy).
"""

import dataclasses
import json
import os
import re
import sys
import tempfile
import textwrap
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scv_adapter as A  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None


def write_model(root, yml, files):
    """Creates a Scivision-shaped package: root/.scivision/model.yml and module files."""
    os.makedirs(os.path.join(root, ".scivision"), exist_ok=True)
    with open(os.path.join(root, ".scivision", "model.yml"), "w") as f:
        f.write(textwrap.dedent(yml))
    for name, body in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(body))
    return root


class ParseYAMLTest(unittest.TestCase):
    cases = [
        ("scalars", "name: faces\nn: 3\nf: 0.5\nok: true\nnil: null\nq: 'it''s'\ndq: \"a: b\"\n",
         {"name": "faces", "n": 3, "f": 0.5, "ok": True, "nil": None, "q": "it's", "dq": "a: b"}),
        ("comments", "# top\nname: x # trailing\nurl: http://h/#frag\n", {"name": "x", "url": "http://h/#frag"}),
        ("nested", "prediction_fn:\n  call: predict\n  args:\n    X: image\n",
         {"prediction_fn": {"call": "predict", "args": {"X": "image"}}}),
        ("models list", textwrap.dedent("""\
            name: test
            import: comp_vis
            models:
              - model: ImageNetModel
                args:
                    model_name: resnet18
                prediction_fn:
                    call: predict
                    args:
                        X: image
                    kwargs: None
              - model: DummyModel
                args: None
                prediction_fn:
                    call: predict
                    kwargs:
                        - sigma
            """),
         {"name": "test", "import": "comp_vis", "models": [
             {"model": "ImageNetModel", "args": {"model_name": "resnet18"},
              "prediction_fn": {"call": "predict", "args": {"X": "image"}, "kwargs": "None"}},
             {"model": "DummyModel", "args": "None", "prediction_fn": {"call": "predict", "kwargs": ["sigma"]}}]}),
        ("list at key indent", "tasks:\n- detection\n- faces\n", {"tasks": ["detection", "faces"]}),
        ("flow", "tasks: [a, 'b c', 3]\nargs: {k: v, n: 1}\nempty: []\n",
         {"tasks": ["a", "b c", 3], "args": {"k": "v", "n": 1}, "empty": []}),
        ("empty value", "args:\nname: x\n", {"args": None, "name": "x"}),
        ("document markers", "---\nname: x\n...\n", {"name": "x"}),
    ]

    def test_cases(self):
        for name, text, want in self.cases:
            with self.subTest(name):
                self.assertEqual(A.parse_yaml_subset(text), want)
                self.assertEqual(A.parse_yaml(text), want)  # PyYAML when installed agrees

    def test_errors(self):
        for name, text in [("bad indent", "a: 1\n   b: 2\n"), ("not a mapping", "a: 1\njust text\n"),
                           ("tab indent", "a:\n\tb: 1\n"), ("open flow", "a: [1, 2\n")]:
            with self.subTest(name):
                with self.assertRaises(A.YAMLError):
                    A.parse_yaml_subset(text)


class LoadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(self.tmp, ignore_errors=True))
        self._path = list(sys.path)
        self._mods = set(sys.modules)
        self.addCleanup(self._restore)

    def _restore(self):
        sys.path[:] = self._path
        for m in set(sys.modules) - self._mods:
            del sys.modules[m]

    def model(self, name, yml, files):
        return write_model(os.path.join(self.tmp, name), yml, files)

    def test_single_model_with_args_and_named_x(self):
        d = self.model("m1", """\
            name: scaler
            import: pkg_scale
            model: Scaler
            args:
              factor: 3
            prediction_fn:
              call: run
              args:
                X: image
            """, {"pkg_scale/__init__.py": """\
            class Scaler:
                def __init__(self, factor=1):
                    self.factor = factor
                def run(self, image):
                    return len(image) * self.factor
            """})
        p = A.load_model(d, use_scivision=False)
        self.assertEqual(p.name, "scaler")
        self.assertEqual(p.predict("abcd"), 12)

    def test_models_list_selection(self):
        yml = """\
            import: pkg_multi
            models:
              - model: First
                prediction_fn:
                  call: predict
              - model: Second
                args: None
                prediction_fn:
                  call: guess
                  args:
                    X: picture
            """
        files = {"pkg_multi/__init__.py": """\
            class First:
                def predict(self, x):
                    return "first"
            class Second:
                def guess(self, something):
                    return "second:" + something
            """}
        d = self.model("m2", yml, files)
        for name, want in [(None, "first"), ("First", "first"), ("Second", "second:x")]:
            with self.subTest(name):
                self.assertEqual(A.load_model(d, name, use_scivision=False).predict("x"), want)
        with self.assertRaisesRegex(A.LoadError, "choose one of: First, Second"):
            A.load_model(d, "Third", use_scivision=False)

    def test_scivision_used_when_importable(self):
        d = self.model("m3", "name: via-scivision\nimport: not_imported_directly\nmodel: M\n", {})
        shim = os.path.join(self.tmp, "shim")
        os.makedirs(shim)
        with open(os.path.join(shim, "scivision.py"), "w") as f:
            f.write(textwrap.dedent("""\
                calls = []
                class _Model:
                    def predict(self, X):
                        return ("scivision", X)
                def load_pretrained_model(path, allow_install=True, model_selection="default", **kw):
                    calls.append((path, allow_install, model_selection))
                    return _Model()
                """))
        sys.path.insert(0, shim)
        p = A.load_model(d, "M")
        self.assertEqual(p.predict("img"), ("scivision", "img"))
        import scivision

        self.assertEqual(scivision.calls, [(d, False, "M")])
        # --no-scivision takes the built-in loader, which imports the module itself.
        with self.assertRaises(ModuleNotFoundError):
            A.load_model(d, use_scivision=False)

    def test_load_errors(self):
        cases = [
            ("no config", None, {}, A.LoadError, "cannot read model config"),
            ("no import", "model: X\n", {}, A.LoadError, "needs 'import'"),
            ("missing module", "import: no_such_mod_xyz\nmodel: X\n", {}, ModuleNotFoundError, "no_such_mod_xyz"),
            ("missing class", "import: pkg_e1\nmodel: Nope\n", {"pkg_e1.py": "x = 1\n"}, A.LoadError, "no model class 'Nope'"),
            ("missing call", "import: pkg_e2\nmodel: M\nprediction_fn:\n  call: infer\n",
             {"pkg_e2.py": "class M:\n    pass\n"}, A.LoadError, "no callable 'infer'"),
            ("import raises", "import: pkg_e3\nmodel: M\n", {"pkg_e3.py": "raise ImportError('libcuda.so.1: cannot open')\n"},
             ImportError, "libcuda"),
        ]
        for i, (name, yml, files, exc, msg) in enumerate(cases):
            with self.subTest(name):
                d = os.path.join(self.tmp, f"e{i}")
                if yml is None:
                    os.makedirs(d)
                else:
                    write_model(d, yml, files)
                with self.assertRaisesRegex(exc, msg):
                    A.load_model(d, use_scivision=False)

    def test_error_text_is_last_traceback_line(self):
        try:
            raise ValueError("bad pixel")
        except ValueError as e:
            self.assertEqual(A.error_text(e), "ValueError: bad pixel")


@dataclasses.dataclass
class Box:
    x: int
    score: float


class Plain:
    def __init__(self):
        self.label = "cat"
        self.prob = float("nan")
        self._private = "hidden"


class FakeTensor:
    """Duck-typed like a torch tensor: detach().cpu().numpy()."""

    def __init__(self, values):
        self.values_ = values

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return np.asarray(self.values_)


class FakeFrame:
    """Duck-typed like a pandas DataFrame."""

    columns = ["a"]
    iloc = None

    def to_dict(self, orient="dict"):
        assert orient == "records"
        return [{"a": 1, "b": float("inf")}]


class EncodeTest(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp()
        self.enc = A.Encoder(self.out)

    def check(self, value, want):
        got = self.enc.encode(value)
        json.dumps(got, allow_nan=False)  # always valid strict JSON
        self.assertEqual(got, want)

    def test_stdlib(self):
        cases = [
            ("string", "label", "label"),
            ("nan inf", [1.5, float("nan"), float("inf"), -float("inf")], [1.5, None, None, None]),
            ("bytes", b"\x00\xff", "AP8="),
            ("tuple and nested", {"boxes": [(1, 2, 3, 4)], 5: None}, {"boxes": [[1, 2, 3, 4]], "5": None}),
            ("set sorted", {3, 1, 2}, [1, 2, 3]),
            ("dataclass", [Box(1, float("nan"))], [{"x": 1, "score": None}]),
            ("object dict", Plain(), {"label": "cat", "prob": None}),
            ("dataframe records", FakeFrame(), [{"a": 1, "b": None}]),
            ("fallback str", object, str(object)),
        ]
        for name, value, want in cases:
            with self.subTest(name):
                self.check(value, want)

    def test_deep_nesting_does_not_recurse_forever(self):
        v = []
        v.append(v)
        json.dumps(self.enc.encode(v))

    @unittest.skipIf(np is None, "numpy is not installed (Debian: apt-get install python3-numpy)")
    def test_numpy(self):
        cases = [
            ("int scalar", np.int64(7), 7),
            ("float32 scalar", np.float32(0.5), 0.5),
            ("nan scalar", np.float64("nan"), None),
            ("bool", np.bool_(True), True),
            ("small array", np.array([[1, 2], [3, 4]], dtype=np.uint8), [[1, 2], [3, 4]]),
            ("array with nan", np.array([1.0, np.nan, np.inf]), [1.0, None, None]),
            ("tensor", FakeTensor([0.25, 0.75]), [0.25, 0.75]),
            ("in dict", {"scores": np.arange(3)}, {"scores": [0, 1, 2]}),
        ]
        for name, value, want in cases:
            with self.subTest(name):
                self.check(value, want)

    @unittest.skipIf(np is None, "numpy is not installed (Debian: apt-get install python3-numpy)")
    def test_large_array_written_as_npy(self):
        arr = np.arange(A.LARGE_ARRAY + 1, dtype=np.float32).reshape(1, -1)
        got = self.enc.encode({"mask": arr})["mask"]
        self.assertEqual(got["shape"], [1, A.LARGE_ARRAY + 1])
        self.assertEqual(got["dtype"], "<f4")
        self.assertEqual(os.path.dirname(got["npy"]), self.out)
        np.testing.assert_array_equal(np.load(got["npy"]), arr)
        again = self.enc.encode(arr.copy())  # same content, same file
        self.assertEqual(again["npy"], got["npy"])
        other = self.enc.encode(arr + 1)
        self.assertNotEqual(other["npy"], got["npy"])
        self.assertEqual([f for f in os.listdir(self.out) if f.endswith(".tmp")], [])

    @unittest.skipIf(np is None, "numpy is not installed (Debian: apt-get install python3-numpy)")
    def test_large_array_recorded_with_host_path(self):
        # Written under /out in the container, recorded as the job's outputs/ on the host.
        enc = A.Encoder(self.out, host_dir="/shared/jobs/run 1/outputs")
        arr = np.ones((40, 40), dtype=np.uint8)
        got = enc.encode(arr)
        name = os.path.basename(got["npy"])
        self.assertRegex(name, r"^scv-array-[0-9a-f]{24}\.npy$")
        self.assertEqual(got["npy"], "/shared/jobs/run 1/outputs/" + name)
        np.testing.assert_array_equal(np.load(os.path.join(self.out, name)), arr)
        self.assertEqual(os.listdir(self.out), [name])

    def test_output_dir_from_environment(self):
        host = "/shared/jobs/run1/outputs"
        cases = [
            ("scv-hpc sets both", {"SCV_OUTPUT_DIR": self.out, "SCV_OUTPUT_HOST": host}, None, (self.out, host)),
            ("no host path", {"SCV_OUTPUT_DIR": self.out}, None, (self.out, None)),
            ("empty host path", {"SCV_OUTPUT_DIR": self.out, "SCV_OUTPUT_HOST": ""}, None, (self.out, None)),
            # The host path names SCV_OUTPUT_DIR, not another directory.
            ("host path alone", {"SCV_OUTPUT_HOST": host}, None, ("/scratch", None)),
            ("explicit out_dir", {"SCV_OUTPUT_DIR": "/out", "SCV_OUTPUT_HOST": host}, self.out, (self.out, None)),
        ]
        for name, env, out_dir, want in cases:
            with self.subTest(name):
                clean = {k: v for k, v in os.environ.items() if not k.startswith("SCV_OUTPUT_")}
                with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
                    enc = A.Encoder(out_dir)
                self.assertEqual((enc.out_dir, enc.host_dir), want)

    @unittest.skipIf(np is None, "numpy is not installed (Debian: apt-get install python3-numpy)")
    def test_failed_write_leaves_nothing(self):
        arr = np.zeros(A.LARGE_ARRAY + 1)
        with mock.patch.object(A.np, "save", side_effect=OSError(28, "No space left on device")):
            with self.assertRaises(OSError):
                self.enc.encode(arr)
        self.assertEqual(os.listdir(self.out), [])
        self.assertTrue(os.path.exists(self.enc.encode(arr)["npy"]))  # and a retry writes it

    @unittest.skipUnless(np is None, "numpy is installed")
    def test_without_numpy_inputs_are_paths(self):
        f = os.path.join(self.out, "a.png")
        open(f, "wb").close()
        self.assertEqual(A.read_input(f), f)
        with self.assertRaises(FileNotFoundError):
            A.read_input(f + ".missing")


@unittest.skipIf(np is None, "numpy is not installed (Debian: apt-get install python3-numpy)")
class ReadInputTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def test_npy_array_and_dataarray(self):
        arr = np.zeros((4, 5, 3), dtype=np.uint8)
        arr[1, 2] = (10, 20, 30)
        f = os.path.join(self.tmp, "x.npy")
        np.save(f, arr)
        got = A.read_input(f, "array")
        np.testing.assert_array_equal(got, arr)
        auto = A.read_input(f, "auto")
        try:
            import xarray  # noqa: F401
        except ImportError:
            np.testing.assert_array_equal(auto, arr)
        else:
            self.assertEqual(auto.dims, ("y", "x", "channel"))
        self.assertEqual(A.read_input(f, "path"), f)

    def readers(self, **fakes):
        """Makes only the given image readers importable (PIL.Image, imageio.v3, cv2)."""
        mods = {"PIL": None, "PIL.Image": None, "imageio": None, "imageio.v3": None, "cv2": None}
        mods.update({k.replace("_", "."): v for k, v in fakes.items()})
        A._optional.cache_clear()
        self.addCleanup(A._optional.cache_clear)
        return mock.patch.dict(sys.modules, mods)

    def test_errors_name_the_input(self):
        missing = os.path.join(self.tmp, "missing.png")
        with self.assertRaisesRegex(FileNotFoundError, "missing.png"):
            A.read_input(missing, "array")
        junk = os.path.join(self.tmp, "junk.png")
        with open(junk, "wb") as f:
            f.write(b"not an image")
        with self.readers(cv2=FakeCV2()):
            with self.assertRaisesRegex(ValueError, "^cannot decode image " + re.escape(junk) + ": cv2: cannot decode$"):
                A.read_input(junk, "array")
        with self.readers():
            with self.assertRaisesRegex(RuntimeError, "no image reader"):
                A.read_input(junk, "array")

    def test_opencv_images_in_rgb_order(self):
        cv2 = FakeCV2()
        cases = [
            ("bgr", (2, 3, 3), (255, 0, 0), (0, 0, 255)),
            ("bgra", (2, 3, 4), (255, 0, 0, 128), (0, 0, 255, 128)),
            ("gray", (2, 3), 7, 7),
        ]
        for name, shape, stored, want in cases:
            with self.subTest(name):
                f = os.path.join(self.tmp, name + ".png")
                open(f, "wb").close()  # the fake reads the array below, not the file
                img = np.zeros(shape, dtype=np.uint8)
                img[0, 0] = stored  # in OpenCV's order: blue first
                cv2.files[f] = img
                with self.readers(cv2=cv2):
                    got = A.read_input(f, "array")
                self.assertEqual(got.shape, shape)
                self.assertEqual(np.asarray(got[0, 0]).tolist(), np.asarray(want).tolist())
                self.assertEqual(int(got[1, 2].sum()), 0)


class FakeCV2:
    """Stands in for OpenCV's Python module: imread returns files' arrays in its BGR(A) order."""

    IMREAD_UNCHANGED = -1
    COLOR_BGR2RGB = 4
    COLOR_BGRA2RGBA = 5

    def __init__(self):
        self.files = {}

    def imread(self, path, flags):
        assert flags == self.IMREAD_UNCHANGED, flags
        img = self.files.get(path)
        return None if img is None else img.copy()

    def cvtColor(self, img, code):
        if code == self.COLOR_BGR2RGB and img.shape[-1] == 3:
            return img[..., ::-1].copy()
        if code == self.COLOR_BGRA2RGBA and img.shape[-1] == 4:
            return img[..., [2, 1, 0, 3]].copy()
        raise ValueError(f"fake cv2: conversion {code} does not apply to shape {img.shape}")


if __name__ == "__main__":
    unittest.main()
