"""Trained parameters saved and loaded (xpopt.params_io), on NumPy and CuPy."""

import json
import os
import zipfile

import numpy
import pytest

import xpopt
from xpopt.flat import FlatDict
from xpopt.params_io import (
    ParameterFileError,
    load_parameters,
    parameters_from_checkpoint,
    save_parameters,
)


def _host_params(dims=(3, 4, 2), dtype=numpy.float64, seed=0):
    rng = numpy.random.RandomState(seed)
    out = {}
    for l in range(1, len(dims)):
        out[f"W{l}"] = rng.randn(dims[l], dims[l - 1]).astype(dtype)
        out[f"b{l}"] = rng.randn(dims[l], 1).astype(dtype)
    return out


def _same(loaded, expected):
    assert list(loaded) == list(expected)
    for k in expected:
        a, e = xpopt.to_host(loaded[k]), xpopt.to_host(expected[k])
        assert a.dtype == e.dtype and a.shape == e.shape
        numpy.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("dtype", [numpy.float64, numpy.float32])
@pytest.mark.parametrize("kind", ["dict", "flat", "rebound"])
def test_round_trip(tmp_path, kind, dtype):
    params = _host_params(dtype=dtype)
    if kind != "dict":
        params = FlatDict.pack(params)
    if kind == "rebound":
        params["W1"] = params["W1"] * 2  # the course's rebinding: no longer packed
    path = tmp_path / "model.npz"
    save_parameters(path, params)
    loaded = load_parameters(path)
    assert isinstance(loaded, FlatDict) and loaded.packed
    assert isinstance(loaded.flat, numpy.ndarray)
    _same(loaded, params)


def test_the_file_is_a_plain_npz_readable_without_xpopt(tmp_path):
    params = _host_params()
    save_parameters(tmp_path / "p.npz", params)
    with numpy.load(tmp_path / "p.npz", allow_pickle=False) as data:
        numpy.testing.assert_array_equal(data["W2"], params["W2"])
        meta = json.loads(str(data["__xpopt__"][()]))
    assert meta["layout"] == [["W1", [4, 3]], ["b1", [4, 1]], ["W2", [2, 4]], ["b2", [2, 1]]]
    assert meta["dtype"] == "float64"


def test_key_order_is_kept_and_any_names_accepted(tmp_path):
    params = {"b1": numpy.zeros((2, 1)), "W1": numpy.ones((2, 3))}
    save_parameters(tmp_path / "p.npz", params)
    assert list(load_parameters(tmp_path / "p.npz")) == ["b1", "W1"]


def test_trained_parameters_predict_the_same_after_loading(tmp_path):
    X, Y = xpopt.load_moons()
    result = xpopt.train(X, Y, [2, 5, 2, 1], xpopt.Adam(0.01), num_epochs=50)
    save_parameters(tmp_path / "moons.npz", result.parameters)
    loaded = load_parameters(tmp_path / "moons.npz", layer_dims=[2, 5, 2, 1], dtype="float64")
    numpy.testing.assert_array_equal(xpopt.predict(X, loaded), xpopt.predict(X, result.parameters))


def test_checkpoint_parameters_read_by_the_same_api(tmp_path):
    X, Y = xpopt.load_moons()
    path = tmp_path / "run.ckpt"
    result = xpopt.train(X, Y, [2, 5, 2, 1], xpopt.Adam(0.01), num_epochs=20, checkpoint=path)
    for loaded in (parameters_from_checkpoint(path), load_parameters(path)):
        assert isinstance(loaded, FlatDict)
        _same(loaded, result.parameters)
    with pytest.raises(ParameterFileError, match="not layer_dims"):
        load_parameters(path, layer_dims=[2, 4, 1])


# ---------------------------------------------------------------------------- refusals
def test_expected_network_and_dtype_are_checked(tmp_path):
    save_parameters(tmp_path / "p.npz", _host_params())
    with pytest.raises(ParameterFileError, match="not layer_dims"):
        load_parameters(tmp_path / "p.npz", layer_dims=[3, 5, 2])
    with pytest.raises(ParameterFileError, match="float32 were asked for"):
        load_parameters(tmp_path / "p.npz", dtype=numpy.float32)
    _same(load_parameters(tmp_path / "p.npz", layer_dims=[3, 4, 2]), _host_params())


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ({}, TypeError, "non-empty"),
        ([numpy.ones(2)], TypeError, "dict"),
        ({"W1": [1.0, 2.0]}, TypeError, "NumPy or CuPy array"),
        ({"W1": numpy.ones((2, 2)), "b1": numpy.ones((2, 1), numpy.float32)}, TypeError, "mixed"),
        ({"W1": numpy.ones((2, 2), numpy.int64)}, TypeError, "floating"),
        ({"__xpopt__": numpy.ones(2)}, ValueError, "may not be named"),
        ({1: numpy.ones(2)}, ValueError, "strings"),
    ],
)
def test_bad_parameters_are_refused_and_nothing_is_written(tmp_path, bad, error, match):
    path = tmp_path / "p.npz"
    with pytest.raises(error, match=match):
        save_parameters(path, bad)
    assert os.listdir(tmp_path) == []


def test_a_refused_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "p.npz"
    save_parameters(path, _host_params())
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save_parameters(path, {"W1": numpy.ones((2, 2), numpy.int32)})
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["p.npz"]


def _rewrite(path, **changes):
    with numpy.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    numpy.savez(path.open("wb"), **arrays)


def _meta(**fields):
    meta = {
        "format": "xpopt-parameters/1",
        "layout": [["W1", [4, 3]], ["b1", [4, 1]], ["W2", [2, 4]], ["b2", [2, 1]]],
        "dtype": "float64",
    }
    meta.update(fields)
    return numpy.array(json.dumps(meta))


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"W1": numpy.ones((3, 4))}, "shape"),
        ({"b2": numpy.ones((2, 1), numpy.float32)}, "dtype float32"),
        ({"W2": None}, "not the layout's"),
        ({"extra": numpy.ones(2)}, "not the layout's"),
        ({"__xpopt__": _meta(format="something/1")}, "not an xpopt-parameters/1"),
        ({"__xpopt__": _meta(dtype="int64")}, "malformed"),
        ({"__xpopt__": _meta(layout=[["W1", [4, -3]]])}, "malformed"),
        ({"__xpopt__": numpy.array([1.0])}, "not a JSON string"),
        ({"__xpopt__": numpy.array("{not json")}, "not a readable"),
    ],
)
def test_edited_files_are_refused(tmp_path, changes, match):
    path = tmp_path / "p.npz"
    save_parameters(path, _host_params())
    _rewrite(path, **changes)
    with pytest.raises(ParameterFileError, match=match):
        load_parameters(path)


def test_truncated_foreign_and_missing_files(tmp_path):
    path = tmp_path / "p.npz"
    save_parameters(path, _host_params())
    data = path.read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:n])
        with pytest.raises(ParameterFileError):
            load_parameters(path)
    numpy.save(tmp_path / "a.npy", numpy.ones(3))
    with pytest.raises(ParameterFileError, match="single array"):
        load_parameters(tmp_path / "a.npy")
    numpy.savez(tmp_path / "other.npz", x=numpy.ones(3))
    with pytest.raises(ParameterFileError, match="not an xpopt parameter file"):
        load_parameters(tmp_path / "other.npz")
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("__xpopt__.npy", b"garbage")
    with pytest.raises(ParameterFileError):
        load_parameters(tmp_path / "z.npz")
    with pytest.raises(FileNotFoundError):
        load_parameters(tmp_path / "missing.npz")


def test_pickled_arrays_are_not_loaded(tmp_path):
    path = tmp_path / "p.npz"
    save_parameters(path, _host_params())
    _rewrite(path, W1=numpy.array([{"evil": 1}], dtype=object))
    with pytest.raises(ParameterFileError):
        load_parameters(path)


# ------------------------------------------------------------------------ the device
@pytest.mark.gpu
def test_device_parameters_saved_with_one_read_and_loaded_onto_the_backend(standin, tmp_path):
    host = FlatDict.pack(_host_params(dtype=numpy.float32))
    params = xpopt.to_device(host, "cuda")
    with standin.counting() as counts:
        save_parameters(tmp_path / "p.npz", params)
    assert counts.d2h == 1
    assert isinstance(load_parameters(tmp_path / "p.npz").flat, numpy.ndarray)  # cpu default
    with xpopt.use_backend("cuda"):
        loaded = load_parameters(tmp_path / "p.npz")
    assert isinstance(loaded.flat, standin.ndarray) and loaded.packed
    _same(loaded, host)
    plain = {k: standin.asarray(v) for k, v in _host_params().items()}
    save_parameters(tmp_path / "q.npz", plain)
    _same(load_parameters(tmp_path / "q.npz", backend="cuda"), _host_params())


@pytest.mark.gpu
def test_mixed_devices_are_refused(cupy, tmp_path):
    params = _host_params()
    params["W1"] = cupy.asarray(params["W1"])
    with pytest.raises(TypeError, match="mixed"):
        save_parameters(tmp_path / "p.npz", params)
