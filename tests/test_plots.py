"""The figures: real PNG files, of the promised layout, showing the network's classes."""

from __future__ import annotations

import struct
import sys

import numpy
import pytest

import xpopt
from xpopt import plots

pytest.importorskip("matplotlib", reason="the figures need matplotlib (the 'plot' extra)")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """(width, height) of a PNG file, after checking it is one of plausible size."""
    data = open(path, "rb").read()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    assert 5_000 < len(data) < 5_000_000, f"{path} has an implausible size: {len(data)} bytes"
    return struct.unpack(">II", data[16:24])


def pixels(path) -> numpy.ndarray:
    """The image as (h, w, 4) floats, read back with matplotlib."""
    import matplotlib.image

    return matplotlib.image.imread(path)


def colour_shares(image: numpy.ndarray) -> dict[tuple, float]:
    """The fraction of pixels of each RGB colour (rounded to 8 bits)."""
    rgb = (image[..., :3] * 255).round().astype(int).reshape(-1, 3)
    colours, counts = numpy.unique(rgb, axis=0, return_counts=True)
    return {tuple(c): n / len(rgb) for c, n in zip(colours, counts, strict=True)}


def dominant(image) -> tuple:
    shares = colour_shares(image)
    return max(shares, key=shares.get)


@pytest.fixture(scope="module")
def moons():
    return xpopt.load_moons()


def threshold_network(w=(0.0, 0.0), b=0.0) -> dict:
    """A one-layer network: class 1 where ``w . x + b > 0`` (sigmoid above 0.5)."""
    return {"W1": numpy.array([w], dtype=numpy.float64), "b1": numpy.array([[b]])}


# ----------------------------------------------------------------------------- costs
def test_plot_costs_writes_a_png_and_returns_its_path(tmp_path):
    costs = {"gd": [0.7, 0.6, 0.5], "adam": numpy.array([0.7, 0.3, 0.1])}
    path = plots.plot_costs(costs, tmp_path / "sub" / "costs.png", learning_rate=0.0007)
    assert path == tmp_path / "sub" / "costs.png"
    assert png_size(path) == (700, 450)


def test_plot_costs_draws_each_curve_in_its_own_colour(tmp_path):
    one = plots.plot_costs({"gd": [0.7, 0.1]}, tmp_path / "one.png")
    two = plots.plot_costs({"gd": [0.7, 0.1], "adam": [0.1, 0.7]}, tmp_path / "two.png")
    # matplotlib's second default colour is orange (255, 127, 14): only the second curve has it.
    orange = numpy.array([255, 127, 14]) / 255

    def orange_pixels(path):
        return int(numpy.all(numpy.abs(pixels(path)[..., :3] - orange) < 0.02, axis=-1).sum())

    assert orange_pixels(one) < 20 < orange_pixels(two)


# -------------------------------------------------------------------------- boundary
def test_decision_grid_is_the_courses(moons):
    X = xpopt.to_host(moons[0])
    xx, yy, points = plots.decision_grid(X)
    assert xx[0, 0] == pytest.approx(X[0].min() - 1)
    assert yy[0, 0] == pytest.approx(X[1].min() - 1)
    assert numpy.allclose(numpy.diff(xx[0]), 0.01) and numpy.allclose(numpy.diff(yy[:, 0]), 0.01)
    assert xx[0, -1] < X[0].max() + 1 <= xx[0, -1] + 0.01 + 1e-12
    assert points.shape == (2, xx.size)
    numpy.testing.assert_array_equal(points[:, 1], [xx[0, 1], yy[0, 1]])


def test_regions_take_the_colour_of_the_predicted_class(tmp_path, moons):
    X, Y = moons
    all0 = pixels(
        plots.plot_decision_boundaries({"0": threshold_network(b=-5)}, X, Y, tmp_path / "all0.png")
    )
    all1 = pixels(
        plots.plot_decision_boundaries({"1": threshold_network(b=5)}, X, Y, tmp_path / "all1.png")
    )
    split = pixels(
        plots.plot_decision_boundaries(
            {"x1 > 0.5": threshold_network((10, 0), -5)}, X, Y, tmp_path / "split.png"
        )
    )
    c0, c1 = dominant(all0), dominant(all1)
    assert c0 != c1
    shares = colour_shares(split)
    # The threshold x1 = 0.5 cuts the plotted range about in half: both classes show widely.
    assert shares.get(c0, 0) > 0.2 and shares.get(c1, 0) > 0.2


def test_one_subplot_per_network_in_a_square_grid(tmp_path, moons):
    X, Y = moons
    nets = {name: threshold_network((1, 1), k - 1.0) for k, name in enumerate("abcd")}
    assert png_size(
        plots.plot_decision_boundaries(dict(list(nets.items())[:1]), X, Y, tmp_path / "1.png")
    ) == (500, 380)
    assert png_size(
        plots.plot_decision_boundaries(dict(list(nets.items())[:2]), X, Y, tmp_path / "2.png")
    ) == (1000, 380)
    assert png_size(plots.plot_decision_boundaries(nets, X, Y, tmp_path / "4.png")) == (1000, 760)


def test_trained_float32_parameters_are_drawn(tmp_path):
    X, Y = xpopt.load_moons(dtype=numpy.float32)
    params = xpopt.model(X, Y, [2, 5, 2, 1], "adam", num_epochs=20, print_cost=False)
    path = plots.plot_decision_boundaries({"adam": params}, X, Y, tmp_path / "f32.png")
    assert png_size(path) == (500, 380)


def test_bad_inputs_are_refused(tmp_path, moons):
    X, Y = moons
    with pytest.raises(ValueError, match="no parameters"):
        plots.plot_decision_boundaries({}, X, Y, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"shape \(2, m\)"):
        plots.plot_decision_boundaries(
            {"a": threshold_network()}, numpy.zeros((3, 5)), numpy.zeros((1, 5)), tmp_path / "x.png"
        )
    assert not (tmp_path / "x.png").exists()


@pytest.mark.gpu
def test_device_arrays_are_accepted(tmp_path):
    with xpopt.use_backend("cuda", strict=True):
        X, Y = xpopt.load_moons()
        result = xpopt.train(X, Y, [2, 5, 2, 1], xpopt.make_optimizer("adam"), num_epochs=100)
    assert png_size(
        plots.plot_costs({"adam": xpopt.to_device(numpy.array(result.costs))}, tmp_path / "c.png")
    ) == (700, 450)
    assert png_size(
        plots.plot_decision_boundaries({"adam": result.parameters}, X, Y, tmp_path / "d.png")
    ) == (500, 380)


# ------------------------------------------------------------------- no matplotlib
def test_missing_matplotlib_raises_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(plots.PlotsUnavailableError, match=r"pip install 'xpopt\[plot\]'"):
        plots.require_matplotlib()
    with pytest.raises(ImportError):
        plots.plot_costs({"gd": [1.0]}, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


# ------------------------------------------------------------- too few to draw (issue 14)
def test_too_few_recorded_epochs_write_a_figure_that_says_so(tmp_path, monkeypatch):
    """A run of at most 100 epochs records one cost: no line to draw. The figure says so
    in words, without axes, instead of an empty plot on a degenerate axis."""
    drawn = {}
    save = plots._save

    def keep(fig, path):
        drawn["texts"] = [t.get_text() for ax in fig.axes for t in ax.texts]
        drawn["axis_on"] = [ax.axison for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    path = plots.plot_costs(
        {"gd": [0.7], "adam": numpy.array([0.69])}, tmp_path / "c.png", learning_rate=0.0007
    )
    assert png_size(path) == (700, 450)
    assert drawn["axis_on"] == [False]
    assert any(plots.TOO_FEW in t and "every 100 epochs" in t for t in drawn["texts"])
    image = pixels(path)
    blue = numpy.array([31, 119, 180]) / 255  # matplotlib's first curve colour: not used
    assert not numpy.all(numpy.abs(image[..., :3] - blue) < 0.02, axis=-1).any()
    dark = image[..., :3].max(axis=-1) < 0.3  # the text, in black, near the middle
    rows = numpy.nonzero(dark.any(axis=1))[0]
    assert dark.sum() > 200 and 100 < rows.min() and rows.max() < 350


def test_no_costs_at_all_say_so_too(tmp_path):
    assert not plots.has_a_curve({"gd": []}) and not plots.has_a_curve({})
    assert plots.has_a_curve({"gd": [0.7], "adam": [0.7, 0.6]})
    assert png_size(plots.plot_costs({"gd": []}, tmp_path / "e.png")) == (700, 450)


def test_a_lone_cost_beside_a_curve_is_a_dot(tmp_path):
    """One run with a curve, another with one recorded cost: that one shows as a marker."""
    path = plots.plot_costs({"adam": [0.7, 0.3, 0.1], "gd": [0.5]}, tmp_path / "dot.png")
    orange = numpy.array([255, 127, 14]) / 255  # the second curve's colour
    assert numpy.all(numpy.abs(pixels(path)[..., :3] - orange) < 0.02, axis=-1).sum() > 10
