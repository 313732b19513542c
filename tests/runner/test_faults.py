"""The fault plan (runner/faults.py): garbage is one line."""

from __future__ import annotations

import pytest

from claimbench.errors import UserError
from claimbench.runner.faults import parse_faults


@pytest.mark.parametrize("text", ["explode:abc", "raise:", "crash:abc:x", "crash"])
def test_bad_fault_plans_are_user_errors(text):
    with pytest.raises(UserError, match="CLAIMBENCH_FAULTS"):
        parse_faults(text)
