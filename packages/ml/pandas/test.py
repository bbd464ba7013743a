"""pandas builds a frame, groups and aggregates it, and round-trips it through CSV."""

import io

import pandas as pd

print("pandas", pd.__version__)
frame = pd.DataFrame({"board": ["orin", "orin", "thor", "thor"], "fps": [30, 34, 60, 64]})
means = frame.groupby("board")["fps"].mean()
assert means.to_dict() == {"orin": 32.0, "thor": 62.0}, means
again = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
assert again.equals(frame)
print("pandas ok")
