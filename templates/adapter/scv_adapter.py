#!/usr/bin/env python3
"""scv-hpc predict protocol v1 adapter for Scivision-style Python models.

Runs inside the model's container as one long-lived process per worker:

    python3 scv_adapter.py --model-dir /opt/scv/model [--model NAME] [--max-batch 16]

It loads the model described by ``MODEL_DIR/.scivision/model.yml`` once (through
``scivision.load_pretrained_model`` when scivision is installed, else with its own loader),
then answers JSON lines on stdin with JSON lines on stdout:

    <- {"scv":1,"ready":true,"model":"opencv-faces","max_batch":16}
    -> {"id":"17","path":"/data/a.png"}            (or {"batch":[{...},{...}]})
    <- {"id":"17","ok":true,"result":...}          (one line per input, batch or not)
    <- {"id":"18","ok":false,"error":"ValueError: ..."}

The protocol channel is kept clean: the real stdout is duplicated for the protocol and
file descriptor 1 (and sys.stdout) is pointed at stderr before the model is imported, so
the model's prints, progress bars and warnings all land in the worker log. Python 3.11
standard library only; numpy, xarray, scivision, PIL, imageio and cv2 are used when present.
"""

import argparse
import base64
import dataclasses
import functools
import hashlib
import importlib
import inspect
import json
import math
import os
import sys
import traceback

PROTOCOL = 1
LARGE_ARRAY = 1024  # arrays with more elements are written as .npy files
MAX_DEPTH = 64

try:  # numpy is optional: without it inputs are passed as paths
    import numpy as np
except ImportError:  # pragma: no cover - depends on the image
    np = None


# ---------------------------------------------------------------- model.yml (YAML subset)


class YAMLError(ValueError):
    """model.yml could not be parsed."""


def parse_yaml(text):
    """Parses the YAML subset that model.yml files use (PyYAML is used when importable).

    Supported: block mappings and sequences by indentation, sequences of mappings
    (``- key: value``), plain, single- and double-quoted scalars, ints, floats,
    true/false/null, flow lists and mappings of scalars, and comments.
    """
    try:
        import yaml  # type: ignore
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise YAMLError(str(e)) from e
    return parse_yaml_subset(text)


def parse_yaml_subset(text):
    """The built-in parser behind parse_yaml, for images without PyYAML."""
    lines = []
    for no, raw in enumerate(text.splitlines(), 1):
        if raw.strip() in ("---", "...") and not raw.startswith(" "):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YAMLError(f"line {no}: tabs are not allowed in indentation")
        body = _strip_comment(raw).rstrip()
        if body.strip():
            lines.append((len(body) - len(body.lstrip(" ")), body.strip(), no))
    if not lines:
        return None
    value, pos = _parse_block(lines, 0, lines[0][0])
    if pos != len(lines):
        raise YAMLError(f"line {lines[pos][2]}: unexpected indentation")
    return value


def _strip_comment(line):
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _parse_block(lines, pos, indent):
    if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
        return _parse_seq(lines, pos, indent)
    return _parse_map(lines, pos, indent)


def _parse_seq(lines, pos, indent):
    out = []
    while pos < len(lines) and lines[pos][0] == indent and (lines[pos][1] == "-" or lines[pos][1].startswith("- ")):
        _, text, no = lines[pos]
        rest = text[1:].strip()
        if not rest:
            if pos + 1 < len(lines) and lines[pos + 1][0] > indent:
                value, pos = _parse_block(lines, pos + 1, lines[pos + 1][0])
            else:
                value, pos = None, pos + 1
            out.append(value)
            continue
        if _split_key(rest) is not None and not rest.startswith(("[", "{", '"', "'")):
            # "- key: value" starts a mapping whose further keys are indented past the dash.
            child = indent + 2 + (len(text) - 2 - len(rest))
            sub = [(child, rest, no)]
            end = pos + 1
            while end < len(lines) and lines[end][0] > indent:
                sub.append(lines[end])
                end += 1
            value, used = _parse_map(sub, 0, child)
            if used != len(sub):
                raise YAMLError(f"line {sub[used][2]}: unexpected indentation")
            out.append(value)
            pos = end
            continue
        out.append(_scalar(rest, no))
        pos += 1
    return out, pos


def _split_key(text):
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and i == 0:
            quote = ch
        elif ch == ":" and (i + 1 == len(text) or text[i + 1] == " "):
            return _unquote(text[:i].strip()), text[i + 1 :].strip()
    return None


def _parse_map(lines, pos, indent):
    out = {}
    while pos < len(lines) and lines[pos][0] == indent:
        _, text, no = lines[pos]
        kv = _split_key(text)
        if kv is None or text.startswith("- "):
            raise YAMLError(f"line {no}: expected 'key: value', got {text!r}")
        key, rest = kv
        pos += 1
        if rest:
            out[key] = _scalar(rest, no)
        elif pos < len(lines) and (lines[pos][0] > indent or (lines[pos][0] == indent and lines[pos][1].startswith("- "))):
            out[key], pos = _parse_block(lines, pos, lines[pos][0])
        else:
            out[key] = None
    if pos < len(lines) and lines[pos][0] > indent:
        raise YAMLError(f"line {lines[pos][2]}: unexpected indentation")
    return out, pos


def _unquote(s):
    if len(s) >= 2 and s[0] == s[-1] == '"':
        try:
            return json.loads(s)
        except ValueError as e:
            raise YAMLError(f"bad double-quoted string {s!r}") from e
    if len(s) >= 2 and s[0] == s[-1] == "'":
        return s[1:-1].replace("''", "'")
    return s


def _scalar(s, no):
    if s[0] in "[{":
        close = "]" if s[0] == "[" else "}"
        if s[-1] != close:
            raise YAMLError(f"line {no}: unterminated flow collection {s!r}")
        inner = s[1:-1].strip()
        items = [p.strip() for p in _split_flow(inner)] if inner else []
        if s[0] == "[":
            return [_scalar(p, no) for p in items]
        out = {}
        for p in items:
            kv = _split_key(p) or (p.rstrip(":"), "")
            out[kv[0]] = _scalar(kv[1], no) if kv[1] else None
        return out
    if s[0] in "'\"":
        return _unquote(s)
    low = s.lower()
    if low in ("null", "~"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def _split_flow(s):
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(s):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


# ---------------------------------------------------------------- loading


class LoadError(Exception):
    """The model described by model.yml cannot be loaded."""


def _none_like(v):
    return v is None or (isinstance(v, str) and v.strip().lower() in ("none", "null", ""))


def read_config(model_dir):
    """Reads MODEL_DIR/.scivision/model.yml (or MODEL_DIR itself when it is the file)."""
    path = model_dir
    if os.path.isdir(model_dir):
        path = os.path.join(model_dir, ".scivision", "model.yml")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = parse_yaml(f.read())
    except OSError as e:
        raise LoadError(f"cannot read model config {path}: {e.strerror}") from e
    except YAMLError as e:
        raise LoadError(f"{path}: {e}") from e
    if not isinstance(cfg, dict):
        raise LoadError(f"{path}: expected a mapping with 'import' and 'model' keys")
    return cfg, path


def select_entry(cfg, name=None):
    """Returns the model entry to run: the top level, or one of its 'models:' list."""
    models = cfg.get("models")
    if not models:
        if name and name not in (cfg.get("model"), cfg.get("name")):
            raise LoadError(f"model {name!r} not in model.yml (it describes {cfg.get('model')!r})")
        return cfg
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise LoadError("model.yml 'models' must be a list of mappings")
    if not name or name == "default":
        return models[0]
    for m in models:
        if name in (m.get("model"), m.get("name")):
            return m
    have = ", ".join(str(m.get("name") or m.get("model")) for m in models)
    raise LoadError(f"model {name!r} not in model.yml (choose one of: {have})")


class Predictor:
    """A loaded model and the way to call its prediction function on one input."""

    def __init__(self, name, fn, x_name=None, kwargs=None):
        self.name = name
        self._fn = fn
        self._x_name = x_name
        self._kwargs = dict(kwargs or {})
        if x_name:
            try:
                params = inspect.signature(fn).parameters
                if x_name not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
                    self._x_name = None  # the name is descriptive only: pass X positionally
            except (TypeError, ValueError):
                self._x_name = None

    def predict(self, x):
        """Calls the prediction function on x."""
        if self._x_name:
            return self._fn(**{self._x_name: x}, **self._kwargs)
        return self._fn(x, **self._kwargs)


def load_model(model_dir, name=None, use_scivision=True):
    """Loads the model of MODEL_DIR once and returns a Predictor.

    With scivision importable it uses scivision.load_pretrained_model(model_dir); otherwise
    it imports the module named by 'import', builds the class named by 'model' with 'args',
    and binds the method named by 'prediction_fn.call' (X passed as 'prediction_fn.args.X').
    """
    cfg, path = read_config(model_dir)
    root = model_dir if os.path.isdir(model_dir) else os.path.dirname(os.path.dirname(path))
    if root and root not in sys.path:
        sys.path.insert(0, root)
    entry = select_entry(cfg, name)
    label = str(cfg.get("name") or entry.get("model") or cfg.get("import") or "model")
    if use_scivision:
        try:
            import scivision  # type: ignore
        except ImportError:
            scivision = None
        if scivision is not None:
            model = scivision.load_pretrained_model(root or model_dir, allow_install=False, model_selection=name or "default")
            return Predictor(label, model.predict)
    module_name = entry.get("import") or cfg.get("import")
    class_name = entry.get("model")
    if not module_name or not class_name:
        raise LoadError(f"{path}: needs 'import' (the module) and 'model' (the class)")
    module = importlib.import_module(module_name)  # import errors propagate with their type
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise LoadError(f"module {module_name!r} has no model class {class_name!r}") from None
    args = entry.get("args")
    if _none_like(args):
        model = cls()
    elif isinstance(args, dict):
        model = cls(**args)
    elif isinstance(args, list):
        model = cls(*args)
    else:
        model = cls(args)
    pf = entry.get("prediction_fn") or {}
    if not isinstance(pf, dict):
        pf = {"call": pf}
    call = pf.get("call") or "predict"
    fn = getattr(model, call, None)
    if not callable(fn):
        raise LoadError(f"model class {class_name!r} has no callable {call!r} (prediction_fn.call)")
    pargs = pf.get("args")
    x_name = pargs.get("X") if isinstance(pargs, dict) else None
    kwargs = pf.get("kwargs")
    kwargs = kwargs if isinstance(kwargs, dict) else None
    return Predictor(label, fn, x_name if isinstance(x_name, str) else None, kwargs)


# ---------------------------------------------------------------- inputs


@functools.lru_cache(maxsize=None)
def _optional(name):
    """The module called name, or None when it is not installed; looked up once.

    Python does not remember a failed import, so importing a missing reader per input
    would search sys.path every time. Errors other than ImportError propagate (uncached).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def read_input(path, mode="auto"):
    """Reads one input the way intake-xarray would.

    mode "path" passes the path itself; "array" a numpy array (HxW or HxWxC, RGB order,
    .npy files through numpy.load); "auto" (the default) wraps the array as an
    xarray.DataArray with dims (y, x[, channel]) when xarray is importable. Without numpy
    the model receives the path.
    """
    if mode == "path" or np is None:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such input: {path}")
        return path
    if path.lower().endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
    else:
        arr = _read_image(path)
    if mode == "auto":
        xarray = _optional("xarray")
        if xarray is None:
            return arr
        dims = ("y", "x", "channel")[: arr.ndim] if arr.ndim <= 3 else None
        return xarray.DataArray(arr, dims=dims)
    return arr


def _read_image(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such input: {path}")
    errors = []
    try:
        pil = _optional("PIL.Image")
        if pil is not None:
            with pil.open(path) as im:
                return np.asarray(im)
    except Exception as e:  # noqa: BLE001 - try the next reader, report all if none can
        errors.append(f"PIL: {e}")
    try:
        iio = _optional("imageio.v3")
        if iio is not None:
            return np.asarray(iio.imread(path))
    except Exception as e:  # noqa: BLE001
        errors.append(f"imageio: {e}")
    cv2 = _optional("cv2")
    if cv2 is not None:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            errors.append("cv2: cannot decode")
        else:
            if img.ndim == 3 and img.shape[2] == 3:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            elif img.ndim == 3 and img.shape[2] == 4:
                img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
            return img
    if not errors:
        raise RuntimeError("no image reader in this image: install Pillow, imageio or OpenCV (python3-opencv)")
    raise ValueError(f"cannot decode image {path}: " + "; ".join(errors))


# ---------------------------------------------------------------- outputs


class Encoder:
    """Turns any model output into JSON-safe values.

    Large numpy arrays (more than LARGE_ARRAY elements) are written as content-addressed
    .npy files under out_dir and replaced by {"npy": path, "shape": [...], "dtype": "..."}.

    out_dir defaults to SCV_OUTPUT_DIR: scv-hpc sets it to /out, the job's outputs/
    directory bound into the container (kept; /scratch is removed after each shard),
    and SCV_OUTPUT_HOST to that directory's path on the host. The recorded path is the
    host path (host_dir/NAME) when host_dir is known, so result lines name files that
    exist after the run; else the path written.
    """

    def __init__(self, out_dir=None, host_dir=None):
        if out_dir is None:
            out_dir = os.environ.get("SCV_OUTPUT_DIR")
            if out_dir and host_dir is None:
                host_dir = os.environ.get("SCV_OUTPUT_HOST") or None
        self.out_dir = out_dir or "/scratch"
        self.host_dir = host_dir

    def encode(self, obj, depth=0):
        """Returns obj as a value json.dumps accepts with allow_nan=False."""
        if depth > MAX_DEPTH:
            return repr(obj)
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else None
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(obj)).decode("ascii")
        if isinstance(obj, dict):
            return {str(k): self.encode(v, depth + 1) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.encode(v, depth + 1) for v in obj]
        if isinstance(obj, (set, frozenset)):
            items = [self.encode(v, depth + 1) for v in obj]
            try:
                return sorted(items)
            except TypeError:
                return items
        if np is not None:
            if isinstance(obj, np.generic):
                return self.encode(obj.item(), depth + 1)
            if isinstance(obj, np.ndarray):
                return self._array(obj, depth)
        if _is_tensor(obj):
            return self.encode(obj.detach().cpu().numpy(), depth + 1)
        if _is_dataframe(obj):
            return self.encode(obj.to_dict(orient="records"), depth + 1)
        if hasattr(obj, "dims") and hasattr(obj, "values") and not callable(obj.values):
            return self.encode(obj.values, depth + 1)  # xarray.DataArray
        if hasattr(obj, "to_dict") and hasattr(obj, "index") and callable(obj.to_dict):
            return self.encode(obj.to_dict(), depth + 1)  # pandas.Series
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return self.encode(dataclasses.asdict(obj), depth + 1)
        if hasattr(obj, "tolist") and callable(obj.tolist):
            return self.encode(obj.tolist(), depth + 1)
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            return self.encode({k: v for k, v in vars(obj).items() if not k.startswith("_")}, depth + 1)
        return str(obj)

    def _array(self, arr, depth):
        if arr.dtype == object:
            return [self.encode(v, depth + 1) for v in arr.tolist()]
        if arr.size <= LARGE_ARRAY:
            return self.encode(arr.tolist(), depth + 1)
        data = np.ascontiguousarray(arr)
        digest = hashlib.sha256(str((data.dtype.str, data.shape)).encode() + data.tobytes()).hexdigest()[:24]
        os.makedirs(self.out_dir, exist_ok=True)
        name = f"scv-array-{digest}.npy"
        path = os.path.join(self.out_dir, name)
        if not os.path.exists(path):
            # Workers of every node share the directory: a unique hidden temporary name,
            # renamed into place once complete, so no reader ever sees a partial file.
            tmp = os.path.join(self.out_dir, f".{name}.{os.urandom(8).hex()}.tmp")
            try:
                with open(tmp, "xb") as f:
                    np.save(f, data, allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        if self.host_dir:
            path = os.path.join(self.host_dir, name)
        return {"npy": path, "shape": list(data.shape), "dtype": data.dtype.str}


def _is_tensor(obj):
    return all(callable(getattr(obj, a, None)) for a in ("detach", "cpu", "numpy"))


def _is_dataframe(obj):
    return hasattr(obj, "columns") and hasattr(obj, "to_dict") and callable(obj.to_dict) and hasattr(obj, "iloc")


def error_text(exc):
    """'Type: message' of an exception, the last line of its traceback."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


# ---------------------------------------------------------------- protocol


class Channel:
    """The protocol's private copies of stdin and stdout.

    claim() moves the real stdout to a new descriptor and points fd 1 and sys.stdout at
    stderr (fd 0 and sys.stdin at /dev/null), so nothing the model writes or reads can
    touch the protocol.
    """

    def __init__(self, rfile, wfd):
        self._r = rfile
        self._w = wfd

    @classmethod
    def claim(cls):
        sys.stdout.flush()
        out_fd = os.dup(1)
        in_fd = os.dup(0)
        os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.stdout = sys.stderr
        sys.stdin = open(os.devnull, encoding="utf-8")
        return cls(os.fdopen(in_fd, "rb"), out_fd)

    def send(self, msg):
        """Writes one message as one line."""
        self.write(encode_line(msg))

    def write(self, data):
        """Writes encoded protocol lines (bytes)."""
        while data:
            n = os.write(self._w, data)
            data = data[n:]

    def lines(self):
        """Yields the request lines until stdin is closed."""
        while True:
            line = self._r.readline()
            if not line:
                return
            if line.strip():
                yield line


def encode_line(msg):
    """One protocol message as one line of strict JSON (bytes, ending in a newline)."""
    return (json.dumps(msg, separators=(",", ":"), allow_nan=False) + "\n").encode()


def answer(predictor, encoder, item, input_mode="auto"):
    """Runs one request item {"id","path"} and returns its response, encoded (encode_line)."""
    rid = item.get("id") if isinstance(item, dict) else None
    try:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ValueError('request needs "id" and "path"')
        x = read_input(item["path"], input_mode)
        result = encoder.encode(predictor.predict(x))
        return encode_line({"id": rid, "ok": True, "result": result})
    except (Exception, SystemExit) as e:  # noqa: BLE001 - every input gets an answer
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return encode_line({"id": rid, "ok": False, "error": error_text(e)})


def serve(chan, predictor, encoder, input_mode="auto"):
    """Answers requests until stdin is closed."""
    for line in chan.lines():
        try:
            req = json.loads(line)
        except ValueError as e:
            chan.send({"id": None, "ok": False, "error": f"bad request line: {e}"})
            continue
        items = req.get("batch") if isinstance(req, dict) and "batch" in req else [req]
        if not isinstance(items, list):
            chan.send({"id": None, "ok": False, "error": '"batch" must be a list'})
            continue
        for item in items:
            chan.write(answer(predictor, encoder, item, input_mode))


def main(argv=None):
    """Entry point: claim the protocol channel, load the model, serve."""
    p = argparse.ArgumentParser(description="scv-hpc predict protocol v1 adapter for Scivision models")
    p.add_argument("--model-dir", default=os.environ.get("SCV_MODEL_DIR", "."), help="directory holding .scivision/model.yml (env SCV_MODEL_DIR)")
    p.add_argument("--model", default=os.environ.get("SCV_MODEL"), help="which entry of a 'models:' list (default: the first)")
    p.add_argument("--max-batch", type=int, default=int(os.environ.get("SCV_MAX_BATCH", "16")))
    p.add_argument("--input", choices=("auto", "array", "path"), default=os.environ.get("SCV_INPUT", "auto"), help="what the model receives: DataArray when xarray is present (auto), numpy array, or the path")
    p.add_argument("--no-scivision", action="store_true", help="use the built-in model.yml loader even when scivision is installed")
    args = p.parse_args(argv)

    chan = Channel.claim()
    try:
        predictor = load_model(args.model_dir, args.model, use_scivision=not args.no_scivision)
    except BaseException as e:  # noqa: BLE001 - report any load failure, then exit
        if isinstance(e, KeyboardInterrupt):
            raise
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        chan.send({"scv": PROTOCOL, "ready": False, "error": error_text(e)})
        return 1
    chan.send({"scv": PROTOCOL, "ready": True, "model": predictor.name, "max_batch": max(1, args.max_batch)})
    serve(chan, predictor, Encoder(), args.input)
    return 0


if __name__ == "__main__":
    sys.exit(main())
