"""The notebook port: the course's cells, run with ``from xpopt.opt_utils import *``, print
what the course's code prints.

The cells below are the "Optimization Methods" notebook's (sections 6 and 7: the three
optimizers, then learning-rate decay), with the course's names and signatures. They run
twice: in a namespace filled by ``from xpopt.opt_utils import *``, and in one filled with
the course's code (tests/course_reference.py, plus the course's own ``opt_utils`` helpers
transcribed below); the printed lines must be equal, and so must the predictions.
"""

import contextlib
import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")  # the course's load_dataset calls make_moons

import course_reference  # noqa: E402

# ---------------------------------------------------------------------- the notebook's cells
SETUP = """
import matplotlib.pyplot as plt
train_X, train_Y = load_dataset()
"""

SECTION_6 = """
# 6.1 Mini-Batch Gradient Descent
layers_dims = [train_X.shape[0], 5, 2, 1]
parameters = model(train_X, train_Y, layers_dims, optimizer = "gd")
predictions = predict(train_X, train_Y, parameters)
plt.title("Model with Gradient Descent optimization")
axes = plt.gca()
axes.set_xlim([-1.5,2.5])
axes.set_ylim([-1,1.5])
plot_decision_boundary(lambda x: predict_dec(parameters, x.T), train_X, train_Y)
outputs.append(predictions)

# 6.2 Mini-Batch Gradient Descent with Momentum
layers_dims = [train_X.shape[0], 5, 2, 1]
parameters = model(train_X, train_Y, layers_dims, beta = 0.9, optimizer = "momentum")
predictions = predict(train_X, train_Y, parameters)
plt.title("Model with Momentum optimization")
axes = plt.gca()
axes.set_xlim([-1.5,2.5])
axes.set_ylim([-1,1.5])
plot_decision_boundary(lambda x: predict_dec(parameters, x.T), train_X, train_Y)
outputs.append(predictions)

# 6.3 Mini-Batch with Adam
layers_dims = [train_X.shape[0], 5, 2, 1]
parameters = model(train_X, train_Y, layers_dims, optimizer = "adam")
predictions = predict(train_X, train_Y, parameters)
plt.title("Model with Adam optimization")
axes = plt.gca()
axes.set_xlim([-1.5,2.5])
axes.set_ylim([-1,1.5])
plot_decision_boundary(lambda x: predict_dec(parameters, x.T), train_X, train_Y)
outputs.append(predictions)
"""

SECTION_7 = """
# 7.1 Decay on every iteration
print(update_lr(0.5, 2, 1))
layers_dims = [train_X.shape[0], 5, 2, 1]
parameters = model(train_X, train_Y, layers_dims, optimizer = "gd", learning_rate = 0.1,
                   num_epochs=5000, decay=update_lr)
predictions = predict(train_X, train_Y, parameters)
outputs.append(predictions)

# 7.2 Fixed interval scheduling
print(schedule_lr_decay(0.5, 100, 0.3, 100))
for optimizer, learning_rate in (("gd", 0.1), ("momentum", 0.1), ("adam", 0.01)):
    parameters = model(train_X, train_Y, layers_dims, optimizer = optimizer,
                       learning_rate = learning_rate, num_epochs=5000, decay=schedule_lr_decay)
    predictions = predict(train_X, train_Y, parameters)
    plt.title("Model with " + optimizer + " and learning-rate decay")
    axes = plt.gca()
    axes.set_xlim([-1.5,2.5])
    axes.set_ylim([-1,1.5])
    plot_decision_boundary(lambda x: predict_dec(parameters, x.T), train_X, train_Y)
    outputs.append(predictions)
"""


# -------------------------------------------- the course's opt_utils helpers, transcribed
def _course_namespace():
    """``from opt_utils_v1a import *`` plus the notebook's graded functions: the course's
    code (course_reference), with the helpers that module leaves out written as the course
    writes them."""
    import matplotlib.pyplot as plt

    c = course_reference

    def load_dataset():
        train_X, train_Y = c.load_dataset()
        plt.scatter(train_X[0, :], train_X[1, :], c=train_Y.ravel(), s=40, cmap=plt.cm.Spectral)
        return train_X, train_Y

    def predict(X, y, parameters):
        m = X.shape[1]
        p = np.zeros((1, m), dtype=np.int64)
        a3, caches = c.forward_propagation(X, parameters)
        for i in range(0, a3.shape[1]):
            p[0, i] = 1 if a3[0, i] > 0.5 else 0
        print("Accuracy: " + str(np.mean(p[0, :] == y[0, :])))
        return p

    def predict_dec(parameters, X):
        a3, cache = c.forward_propagation(X, parameters)
        return a3 > 0.5

    def plot_decision_boundary(model, X, y):
        x_min, x_max = X[0, :].min() - 1, X[0, :].max() + 1
        y_min, y_max = X[1, :].min() - 1, X[1, :].max() + 1
        h = 0.01
        xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
        Z = model(np.c_[xx.ravel(), yy.ravel()])
        Z = Z.reshape(xx.shape)
        plt.contourf(xx, yy, Z, cmap=plt.cm.Spectral)
        plt.ylabel("x2")
        plt.xlabel("x1")
        plt.scatter(X[0, :], X[1, :], c=y.ravel(), cmap=plt.cm.Spectral)
        plt.show()

    def model(
        X,
        Y,
        layers_dims,
        optimizer,
        learning_rate=0.0007,
        mini_batch_size=64,
        beta=0.9,
        beta1=0.9,
        beta2=0.999,
        epsilon=1e-8,
        num_epochs=5000,
        print_cost=True,
        decay=None,
        decay_rate=1,
    ):
        parameters, costs = c.model(
            X,
            Y,
            layers_dims,
            optimizer,
            learning_rate,
            mini_batch_size,
            beta,
            beta1,
            beta2,
            epsilon,
            num_epochs,
            print_cost,
            decay,
            decay_rate,
        )
        plt.plot(costs)
        plt.ylabel("cost")
        plt.xlabel("epochs (per 100)")
        plt.title("Learning rate = " + str(learning_rate))
        plt.show()
        return parameters

    ns = {name: getattr(c, name) for name in dir(c) if not name.startswith("_")}
    ns.update(
        load_dataset=load_dataset,
        predict=predict,
        predict_dec=predict_dec,
        plot_decision_boundary=plot_decision_boundary,
        model=model,
    )
    return ns


def _xpopt_namespace():
    ns: dict = {}
    exec("from xpopt.opt_utils import *", ns)
    return ns


def _run(ns, cells):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = dict(ns, outputs=[])
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(SETUP + cells, "<notebook>", "exec"), ns)
    finally:
        plt.close("all")
    return out.getvalue().splitlines(), ns["outputs"]


@pytest.mark.parametrize("cells", [SECTION_6, SECTION_7], ids=["section6", "section7"])
def test_the_notebook_prints_the_course_lines(cells):
    course_lines, course_predictions = _run(_course_namespace(), cells)
    lines, predictions = _run(_xpopt_namespace(), cells)
    assert lines == course_lines
    assert len(predictions) == len(course_predictions) > 0
    for p, q in zip(predictions, course_predictions, strict=True):
        assert p.dtype == q.dtype and p.shape == q.shape
        np.testing.assert_array_equal(p, q)
    # the lines are the course's figures, not just equal to each other
    assert any(line.startswith("Cost after epoch 4000: ") for line in lines)
    accuracies = [line for line in lines if line.startswith("Accuracy: ")]
    assert len(accuracies) == len(predictions)
    if cells is SECTION_6:  # the notebook's figures: 71.7%, 71.7%, 94.3%
        assert accuracies == [
            "Accuracy: 0.7166666666666667",
            "Accuracy: 0.7166666666666667",
            "Accuracy: 0.9433333333333334",
        ]


def test_every_course_name_is_exported():
    ns = _xpopt_namespace()
    for name in (
        "load_dataset",
        "predict",
        "predict_dec",
        "plot_decision_boundary",
        "model",
        "initialize_parameters",
        "forward_propagation",
        "backward_propagation",
        "compute_cost",
        "random_mini_batches",
        "update_parameters_with_gd",
        "update_parameters_with_momentum",
        "update_parameters_with_adam",
        "initialize_velocity",
        "initialize_adam",
        "update_lr",
        "schedule_lr_decay",
        "sigmoid",
        "relu",
    ):
        assert callable(ns[name]), name


def test_the_course_graded_loop_runs_on_the_helpers():
    """The notebook's own loop, written with the course's functions, step by step."""
    from xpopt import opt_utils as u

    X, Y = u.load_dataset(plot=False)
    ref_X, ref_Y = course_reference.load_dataset()
    np.testing.assert_array_equal(X, ref_X)
    np.testing.assert_array_equal(Y, ref_Y)
    assert Y.dtype == ref_Y.dtype
    parameters = u.initialize_parameters([2, 5, 2, 1])
    ref = course_reference.initialize_parameters([2, 5, 2, 1])
    v, s = u.initialize_adam(parameters)
    rv, rs = course_reference.initialize_adam(ref)
    t = 0
    for batch_X, batch_Y in u.random_mini_batches(X, Y, 64, seed=11):
        t += 1
        a3, caches = u.forward_propagation(batch_X, parameters)
        r3, rcaches = course_reference.forward_propagation(batch_X, ref)
        assert float(u.compute_cost(a3, batch_Y)) == course_reference.compute_cost(r3, batch_Y)
        grads = u.backward_propagation(batch_X, batch_Y, caches)
        rgrads = course_reference.backward_propagation(batch_X, batch_Y, rcaches, ref)
        parameters, v, s, _, _ = u.update_parameters_with_adam(parameters, grads, v, s, t, 0.01)
        ref, rv, rs, _, _ = course_reference.update_parameters_with_adam(
            ref, rgrads, rv, rs, t, 0.01
        )
    for k in ref:
        np.testing.assert_array_equal(parameters[k], ref[k])
    np.testing.assert_array_equal(
        u.sigmoid(np.array([0.0, 2.0])), course_reference.sigmoid(np.array([0.0, 2.0]))
    )
    np.testing.assert_array_equal(u.relu(np.array([-1.0, 2.0])), [0.0, 2.0])


def test_predict_prints_and_refuses_misshaped_labels(capsys):
    from xpopt import opt_utils as u

    X, Y = u.load_dataset(plot=False)
    parameters = u.initialize_parameters([2, 5, 2, 1])
    p = u.predict(X, Y, parameters)
    assert capsys.readouterr().out.startswith("Accuracy: 0.")
    assert p.shape == (1, 300) and p.dtype == np.int64
    with pytest.raises(ValueError, match="shape"):
        u.predict(X, Y.reshape(-1), parameters)


@pytest.mark.gpu
def test_the_helpers_follow_parameters_onto_the_device(cupy, capsys):
    import xpopt
    from xpopt import opt_utils as u

    xpopt.set_backend("cuda")
    X, Y = u.load_dataset(plot=False)
    assert isinstance(X, cupy.ndarray) and isinstance(Y, cupy.ndarray)
    parameters = u.initialize_parameters([2, 5, 2, 1], dtype=np.float32)
    grid = np.random.RandomState(0).randn(40, 2)  # the host grid plot_decision_boundary makes
    dec = u.predict_dec(parameters, grid.T)
    assert isinstance(dec, cupy.ndarray) and dec.shape == (1, 40) and dec.dtype == np.bool_
    host = {k: xpopt.to_host(a) for k, a in parameters.items()}
    np.testing.assert_array_equal(
        xpopt.to_host(dec), u.predict_dec(host, grid.T.astype(np.float32))
    )
    u.predict(X.astype(np.float32), Y, parameters)
    assert capsys.readouterr().out.startswith("Accuracy: ")
