"""The top-level command line: a usage error is one line on stderr and exit status 2."""

from __future__ import annotations

import pytest

from reactive_aiops.cli import main


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--bogus"], "unrecognized arguments: --bogus"),
    (["nope"], "invalid choice: 'nope'"),
    (["serve", "--port", "eighty"], "--port"),
    ([], "COMMAND"),
])
def test_a_usage_error_is_one_line_and_status_2(argv: list[str], says: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert says in err
    assert err.startswith("reactive-aiops")
