"""Templates render within their limits whatever they do: loops in loops, huge numbers,
strings, widths and output, recursive macros; each fails with the limit named, before
the work is done, and a template within its limits renders as before."""

from __future__ import annotations

import pytest

from services.messaging.errors import TemplateFailed, TemplateLimitExceeded
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.rendering import SAMPLE_CONTEXT, render_text
from services.messaging.templates.sandbox import current

QUICK = TemplateLimits(time_seconds=0.2)
PATIENT = TemplateLimits(time_seconds=60)
"""For the other limits: they are reached long before this, even on a busy machine."""
MANY = "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}"
UNROLLED = (
    "{% set a = ['xxxxxxxxxx'"
    + ", 'xxxxxxxxxx'" * 9
    + "] %}"
    + "".join(
        f"{{% set {b} = [{', '.join([a] * 10)}] %}}" for a, b in zip("abcd", "bcde", strict=True)
    )
)


def limit_of(source: str, limits: TemplateLimits) -> str:
    with pytest.raises(TemplateLimitExceeded) as failed:
        render_text(source, SAMPLE_CONTEXT, limits)
    return failed.value.limit


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        (MANY + "{% endfor %}{% endfor %}{% endfor %}", "time"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "range",
        ),
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(25) }}",
            "time",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "depth"),
        (
            "{% set n = namespace() %}{% set n.me = n %}{% for x in [n] recursive %}{{ loop([x.me]) }}{% endfor %}",
            "depth",
        ),
        ("{{ 10**100000 }}", "number"),
        ("{{ (2**200) * (2**200) }}", "number"),
        ("{{ 'x' * 300000000 }}", "output"),
        ("{{ ([1] * 1000) * 1000 }}", "output"),
        (MANY + "xxxxxxxxxx{% endfor %}{% endfor %}{% endfor %}", "output"),
        (
            "{% macro m() %}"
            + MANY
            + "x{% endfor %}{% endfor %}{% endfor %}{% endmacro %}{{ m()|length }}",
            "output",
        ),
        (
            "{% set s = namespace(t='x') %}{% for i in range(60) %}{% set s.t = s.t ~ s.t %}{% endfor %}",
            "output",
        ),
        (UNROLLED + "{{ e }}", "output"),
        ("{{ 'x'|center(1000000000) }}", "output"),
        ("{{ 'x'.ljust(1000000000) }}", "output"),
        ("{{ (1).to_bytes(1000000000, 'big') }}", "output"),
        ("{{ ('\t' * 50000).expandtabs(1000) }}", "output"),
        ("{{ '{:>1000000000}'.format('x') }}", "output"),
        ("{{ '%01000000000d' % 1 }}", "output"),
        ("{{ '%01000000000d'|format(1) }}", "output"),
        ("{{ ('x' * 50000).replace('x', 'x' * 50000) }}", "output"),
        ("{{ ('x' * 50000)|replace('x', 'x' * 50000) }}", "output"),
        ("{{ ('x' * 50000).join(range(5000)|map('string')) }}", "output"),
        ("{{ range(5000)|join('x' * 50000) }}", "output"),
        ("{{ ['x']|batch(1000000000, 'y')|list }}", "output"),
        ("{{ 'abc'|wordwrap(1, wrapstring='x' * 50000) }}", "output"),
        ("{{ [[[[[[range(5000)|list]]]]]]|tojson(indent=100) }}", "output"),
        ("{{ [[[[[[range(9000)|list]]]]]]|pprint }}", "output"),
        (
            "{{ range(9999)|select('in', [0] * 9999)|list }}{{ range(9999)|reject('in', [0] * 9999)|list }}"
            * 99,
            "time",
        ),
    ],
)
def test_a_template_over_a_limit_fails_naming_it(source: str, limit: str) -> None:
    assert limit_of(source, QUICK if limit == "time" else PATIENT) == limit


def test_the_limits_are_the_ones_given() -> None:
    assert (
        limit_of("{% for i in range(11) %}{% endfor %}", TemplateLimits(range_items=10)) == "range"
    )
    assert limit_of("{{ 'x' * 11 }}", TemplateLimits(output_chars=10)) == "output"
    assert render_text("{{ 'x' * 10 }}", {}, TemplateLimits(output_chars=10)) == "x" * 10
    assert limit_of("{{ 2 ** 9 }}", TemplateLimits(integer_bits=8)) == "number"
    nested = "{% macro f(n) %}{{ f(n - 1) if n else '' }}{% endmacro %}{{ f(3) }}"
    assert limit_of(nested, TemplateLimits(depth=3)) == "depth"  # f(3) calls f(2) ... f(0)
    assert render_text(nested, {}, TemplateLimits(depth=4)) == ""


def test_a_template_within_its_limits_renders_as_before() -> None:
    source = (
        "{% macro tag(x) %}<{{ x }}>{% endmacro %}"
        "{% for role in contact.roles %}{{ tag(role|upper) }}{% endfor %} "
        "{{ [1, 2]|join('-') }} {{ 'a' ~ 'b' * 2 }} {{ '%03d' % 7 }} {{ '{:>4}'.format('x') }} "
        "{{ 2 ** 10 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -(3 - 5) }} "
        "{% for k, v in {'k': 1}.items() %}{{ k }}={{ v }}{% endfor %}"
        "{% set a, b = 1, 2 %}{{ a + b }} {{ range(3)|list }} {{ [3, 1]|sum }}"
    )
    assert render_text(source, SAMPLE_CONTEXT) == (
        "<DECISION_MAKER><ADMIN> 1-2 abb 007    x 1024 3 1 2 k=13 [0, 1, 2] 4"
    )


def test_lipsum_translate_and_computed_widths_are_not_available() -> None:
    for source in (
        "{{ lipsum(1000000) }}",
        "{{ 'x'.translate({120: 'y'}) }}",
        "{{ '%*d' % (5, 1) }}",
        "{{ '{:{}}'.format('x', 5) }}",
        "{{ [[1]]|sum(start=[]) }}",
    ):
        with pytest.raises(TemplateFailed):
            render_text(source, SAMPLE_CONTEXT)


def test_rendering_needs_a_budget() -> None:
    with pytest.raises(TemplateFailed, match="outside rendering"):
        current()
