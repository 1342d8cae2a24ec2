"""The defaults are the course's (issue 14), checked against the course's own code
(tests/course_reference.py), not against xpopt's.

- The optimizer objects (GD, Momentum, RMSprop, Adam) and ``make_optimizer`` default to
  ``model()``'s ``learning_rate=0.0007``: the rate the notebook trains every optimizer at.
- The course-named functions keep the course's signatures: no default rate for
  ``update_parameters_with_gd`` and ``update_parameters_with_momentum``, ``0.01`` (and the
  betas and epsilon) for ``update_parameters_with_adam``.
- The command line's ``train --learning-rate`` defaults to the same 0.0007.
"""

from __future__ import annotations

import inspect

import pytest

import course_reference as course
import xpopt
from xpopt import cli


def default(function, name):
    return inspect.signature(function).parameters[name].default


MODEL_LR = default(course.model, "learning_rate")


def test_the_course_model_default_is_what_we_think():
    assert MODEL_LR == 0.0007  # not vacuous: the reference says so itself


@pytest.mark.parametrize("cls", [xpopt.GD, xpopt.Momentum, xpopt.RMSprop, xpopt.Adam])
def test_every_optimizer_object_defaults_to_models_rate(cls):
    assert cls().learning_rate == MODEL_LR
    assert f"{MODEL_LR}" in (cls.__doc__ or "") + (cls.__init__.__doc__ or "")  # documented


@pytest.mark.parametrize("name", ["gd", "momentum", "rmsprop", "adam"])
def test_make_optimizer_and_model_agree(name):
    assert xpopt.make_optimizer(name).learning_rate == MODEL_LR
    assert default(xpopt.model, "learning_rate") == MODEL_LR


@pytest.mark.parametrize(
    "name",
    ["update_parameters_with_gd", "update_parameters_with_momentum", "update_parameters_with_adam"],
)
def test_course_functions_keep_the_courses_signatures(name):
    ours = inspect.signature(getattr(xpopt, name)).parameters
    theirs = inspect.signature(getattr(course, name)).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for key, parameter in theirs.items():
        assert ours[key].default == parameter.default, (name, key)


def test_the_command_lines_train_rate_is_models():
    args = cli.build_parser().parse_args(["train"])
    assert args.learning_rate == MODEL_LR
