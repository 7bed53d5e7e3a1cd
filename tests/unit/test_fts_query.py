"""edgerag.retrieval.fts_query: the expressions it builds, and that any input is safe in a real
SQLite FTS5 table configured like migrations/0001_initial.sql (``porter unicode61 remove_diacritics 2``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from edgerag.retrieval.fts_query import MAX_TERMS, FtsQueryLimits, build_match_query, parse_query, quote_term
from hypothesis import given, settings
from hypothesis import strategies as st

TOKENIZER = "porter unicode61 remove_diacritics 2"  # as in migrations/0001_initial.sql
DOCS = {
    1: ("Rocket engines", "Liquid-fuel rocket engines burn kerosene with liquid oxygen."),
    2: ("Heat shields", "Ablative heat shields protect capsules during re-entry; they don't last."),
    3: ("Café culture", "Naïve baristas serve espresso (and cortado) at the café NEAR the station."),
    4: ("Operators", 'Text with AND OR NOT words, "quotes", col:umn and star* and caret^ marks.'),
    5: ("Emoji", "Launch day 🚀 went well: 日本語 text and numbers like 2024 and IL-6."),
}


@pytest.fixture
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5 (title, text, tokenize = '{TOKENIZER}')")
    db.executemany(
        "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)",
        [(rowid, title, text) for rowid, (title, text) in DOCS.items()],
    )
    yield db
    db.close()


def search(db: sqlite3.Connection, user_text: str) -> list[int]:
    expression = build_match_query(user_text)
    if expression is None:
        return []
    rows = db.execute(
        "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY bm25(chunks_fts, 2.0, 1.0)",
        (expression,),
    )
    return [row[0] for row in rows]


# -- the expressions -----------------------------------------------------------------------------


def test_terms_are_quoted_and_ored() -> None:
    assert build_match_query("Rocket engines") == '"rocket" OR "engines"'


def test_stop_words_and_duplicates_are_dropped() -> None:
    assert build_match_query("What is the heat of the Heat shield?") == '"heat" OR "shield"'


def test_only_stop_words_are_kept_rather_than_searching_nothing() -> None:
    assert build_match_query("To be, or to be?") == '"to" OR "be" OR "or"'


def test_apostrophes_stay_inside_words() -> None:
    assert build_match_query("don't won\u2019t") == '''"don't" OR "won't"'''


@pytest.mark.parametrize("text", ["", "   ", "!!! ??? ...", "---", "🚀🔥", "_ __ ___", '"""'])
def test_nothing_searchable_gives_none(text: str) -> None:
    assert build_match_query(text) is None


def test_term_count_is_capped() -> None:
    text = " ".join(f"word{n}" for n in range(100))
    expression = build_match_query(text)
    assert expression is not None and expression.count(" OR ") == MAX_TERMS - 1
    limited = build_match_query(" ".join(f"word{n}" for n in range(10)), limits=FtsQueryLimits(max_terms=3))
    assert limited == '"word0" OR "word1" OR "word2"'  # equally long: the first ones


def test_past_the_cap_the_longest_terms_are_kept_in_query_order() -> None:
    text = "cells express interleukin in macrophages during inflammation"
    assert build_match_query(text, limits=FtsQueryLimits(max_terms=3)) == (
        '"interleukin" OR "macrophages" OR "inflammation"'
    )


def test_overlong_terms_are_dropped() -> None:
    assert build_match_query("x" * 65 + " rocket") == '"rocket"'
    assert build_match_query("abc defgh", limits=FtsQueryLimits(max_term_chars=3)) == '"abc"'


def test_quote_term_doubles_embedded_quotes() -> None:
    assert quote_term('say "hi"') == '"say ""hi"""'


def test_custom_stop_words() -> None:
    assert build_match_query("the rocket", stopwords=frozenset()) == '"the" OR "rocket"'


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        FtsQueryLimits(max_terms=0)


# -- safety against a real FTS5 index ------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_text", "expected"),
    [
        ("rocket", 1),
        ('"unbalanced quote rocket', 1),
        ("(rocket", 1),
        ("rocket)", 1),
        ("NEAR(rocket engines)", 1),
        ("roc*", None),  # no prefix magic: "roc" is just a (missing) word
        ("^rocket", 1),
        ("title:rocket", 1),
        ("-rocket", 1),
        ("AND OR NOT", 4),  # operator words are ordinary words ("and", "or" are stop words)
        ("+rocket", 1),
        ("{title text}: rocket", 1),
        ("shields don't", 2),
        ("cafe naive", 3),  # diacritics folded both ways
        ("CAFÉ", 3),
        ("running engine", 1),  # porter stemming still applies inside quotes
        ("🚀 launch", 5),
        ("日本語", 5),
        ("il-6", 5),
        ("IL 6 2024", 5),
    ],
)
def test_hostile_input_never_raises_and_still_matches(
    fts: sqlite3.Connection, user_text: str, expected: int | None
) -> None:
    found = search(fts, user_text)
    if expected is None:
        assert found == []
    else:
        assert found[0] == expected


def test_ten_thousand_characters(fts: sqlite3.Connection) -> None:
    padding = "(( NEAR ^* : \"' -- " * 500  # 9,500 characters of operator soup
    assert search(fts, padding + " kerosene " + padding)[0] == 1
    assert search(fts, "z" * 10_000) == []


def test_ranking_prefers_chunks_matching_more_terms(fts: sqlite3.Connection) -> None:
    assert search(fts, "heat shields capsules rocket")[0] == 2


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_valid_match_expression(user_text: str) -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5 (text, tokenize = '{TOKENIZER}')")
        db.execute("INSERT INTO t (text) VALUES (?)", (user_text,))
        expression = build_match_query(user_text)
        if expression is not None:
            rows = db.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()
            # Never an error; and ASCII text always finds itself. (Elsewhere Python's and SQLite's
            # Unicode tables may disagree on what is a letter, so a term can legitimately miss.)
            if user_text.isascii():
                assert rows == [(1,)]
    finally:
        db.close()


# -- operator syntax ---------------------------------------------------------------------------------


def ops(text: str) -> str | None:
    return parse_query(text, syntax="operators").match_expression()


def test_operator_expressions() -> None:
    assert ops("rocket engines") == '"rocket" OR "engines"'
    assert ops('"heat shield" capsules') == '"heat shield" AND ("heat shield" OR "capsules")'
    assert ops("+kerosene oxygen") == '"kerosene" AND ("kerosene" OR "oxygen")'
    assert ops("+kerosene +oxygen") == '"kerosene" AND "oxygen"'
    assert ops("rocket -jet") == '("rocket") NOT ("jet")'
    assert ops('rocket -jet -"solid motor"') == '("rocket") NOT ("jet" OR "solid motor")'
    assert ops('"the cat"') == '"the cat"'  # stop words stay inside a phrase
    assert ops("+the rocket") == '"the" AND ("the" OR "rocket")'
    assert ops("-rocket") is None and ops('-"a b" -c') is None


def test_operators_only_at_the_start_of_a_token() -> None:
    parsed = parse_query("covid-19 non-smoker a+b", syntax="operators")
    assert parsed.terms == ("covid", "19", "non", "smoker", "b") and not parsed.has_constraints
    assert parse_query('+covid-19 "unclosed', syntax="operators").required == (("covid", "19"),)


def test_the_embedding_text_leaves_out_exclusions_and_operators() -> None:
    parsed = parse_query('+"heart attack" risk -smoking', syntax="operators")
    assert parsed.embedding_text == "heart attack risk"
    assert parsed.required_expression() == '"heart attack"' and parsed.excluded_expression() == '"smoking"'
    assert parse_query("+x -y", syntax="plain").embedding_text == "+x -y"


def test_plain_syntax_reads_operator_characters_as_text() -> None:
    assert parse_query('+rocket -jet "the a"').match_expression() == '"rocket" OR "jet"'  # stop words


DOCS_SQL = [(rowid, title, text) for rowid, (title, text) in DOCS.items()]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"liquid oxygen"', [1]),
        ('"oxygen liquid"', []),
        ("+kerosene", [1]),
        ("rocket -kerosene", []),
        ("shields -rocket", [2]),
        ('"heat shields" -"liquid oxygen"', [2]),
        ("+espresso +café", [3]),
        ('+"don\'t last"', [2]),
    ],
)
def test_operators_against_a_real_index(fts: sqlite3.Connection, query: str, expected: list[int]) -> None:
    expression = ops(query)
    found = (
        []
        if expression is None
        else [
            r[0]
            for r in fts.execute(
                "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank", (expression,)
            )
        ]
    )
    assert found == expected


_OPERATOR_SOUP = st.text(alphabet=st.sampled_from(list("\"+-()*:^ abc-_'\u2019NOTANDOR\t\n")), max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=120), _OPERATOR_SOUP))
def test_any_text_gives_valid_operator_expressions(user_text: str) -> None:
    """Every expression the operator syntax emits (the keyword query and the two constraint checks on
    other retrievers' hits) is valid FTS5, whatever the text; and a required or excluded word holds."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5 (text, tokenize = '{TOKENIZER}')")
        db.execute("INSERT INTO t (text) VALUES ('abc ab a not and or')")
        parsed = parse_query(user_text, syntax="operators")
        for expression in (
            parsed.match_expression(),
            parsed.required_expression(),
            parsed.excluded_expression(),
        ):
            if expression is not None:
                db.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()
        assert parsed.searchable == (parsed.match_expression() is not None)
        match = parsed.match_expression()
        if match is not None:
            hit = bool(db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall())
            if any(p == ("zzz",) for p in parsed.required):
                assert not hit  # a required word the row lacks
            if parsed.excluded and any(p == ("abc",) for p in parsed.excluded):
                assert not hit  # an excluded word the row has
    finally:
        db.close()
