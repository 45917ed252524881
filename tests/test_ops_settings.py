"""gan_jax.ops.settings: the environment choices of the convolution routes, read and checked
alike, and set for a while."""

import functools
import os

import pytest

from gan_jax.ops import conv, fast, products, settings

VAR = "GAN_JAX_TEST_CHOICE"
ALLOWED = {"a": "route a", "b": "route b"}


def test_choice_reads_a_stripped_value_and_none_when_blank(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert settings.choice(VAR, ALLOWED) is None
    monkeypatch.setenv(VAR, "   ")
    assert settings.choice(VAR, ALLOWED) is None
    monkeypatch.setenv(VAR, " b\n")
    assert settings.choice(VAR, ALLOWED) == "b"


def test_a_bad_value_names_the_variable_and_every_accepted_value(monkeypatch):
    monkeypatch.setenv(VAR, "c")
    with pytest.raises(ValueError) as error:
        settings.choice(VAR, ALLOWED)
    assert str(error.value) == (
        f"environment variable {VAR}='c' is invalid; set it to one of 'a' (route a), "
        "'b' (route b), or unset it."
    )


@pytest.mark.parametrize(
    "decision, var, bad",
    [
        (conv.default_impl, conv.IMPL_ENV_VAR, "xla"),
        (fast.low_memory, fast.MEMORY_ENV_VAR, "small"),
        (products.bf16_products, products.ENV_VAR, "yes"),
    ],
)
def test_every_route_choice_rejects_a_bad_value_alike(decision, var, bad, monkeypatch):
    monkeypatch.setenv(var, bad)
    decision.cache_clear()
    try:
        with pytest.raises(ValueError, match=f"^environment variable {var}='{bad}' is invalid"):
            decision()
    finally:
        monkeypatch.delenv(var)
        decision.cache_clear()


def test_overridden_sets_the_variable_for_a_while_and_decides_again(monkeypatch):
    monkeypatch.setenv(VAR, "a")
    decision = functools.cache(lambda: settings.choice(VAR, ALLOWED))
    assert decision() == "a"
    with settings.overridden(VAR, "b", decision):
        assert decision() == "b"
    assert decision() == "a" and os.environ[VAR] == "a"
    monkeypatch.delenv(VAR)
    with settings.overridden(VAR, "b", decision):
        assert decision() == "b"
    assert VAR not in os.environ and decision() is None
