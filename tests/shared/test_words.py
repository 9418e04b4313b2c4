from shared.words import plural


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert plural(1, "row") == "1 row"
    assert plural(0, "row") == "0 rows"
    assert plural(1204, "row") == "1,204 rows"
    assert plural(2, "trading day") == "2 trading days"
    assert plural(3, "entry", "entries") == "3 entries"
