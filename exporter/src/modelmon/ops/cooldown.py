"""At most one retrain per user within a cooldown: the time of each user's last retrain request,
in a JSON file so it survives restarts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from modelmon.ops.errors import OpsError


class Cooldown:
    def __init__(self, state_file: Path, seconds: float) -> None:
        self._file = state_file
        self.seconds = seconds

    def rehearsal(self) -> Cooldown:
        """The cooldown a dry run keeps, beside the real one and apart from it: a dry run says
        what would happen, cooldown included, and never holds back a real retrain."""
        return Cooldown(self._file.with_name(f"{self._file.stem}.dry-run.json"), self.seconds)

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self._file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OpsError(f"cooldown state {self._file} is unreadable: {exc}") from exc
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def remaining(self, user: str, now: float | None = None) -> float:
        last = self._read().get(user)
        if last is None:
            return 0.0
        return max(0.0, last + self.seconds - (time.time() if now is None else now))

    def record(self, user: str, now: float | None = None) -> None:
        data = self._read()
        data[user] = time.time() if now is None else now
        self._file.parent.mkdir(parents=True, exist_ok=True)
        partial = self._file.with_suffix(".partial")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(partial, self._file)
