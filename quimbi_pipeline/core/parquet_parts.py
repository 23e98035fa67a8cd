"""Writing a stream of frames into numbered parquet parts of a fixed number of rows."""

from pathlib import Path

import polars as pl


# Buffering one part's worth of converted rows (far smaller than the raw text they came from)
# lets polars write each part in one go: several times faster, and smaller files, than
# appending row groups through pyarrow.
class PartWriter:
    """Collects frames and writes ``folder/part-NNNNN.parquet`` each time N rows are in hand."""

    def __init__(self, folder: Path, schema: dict[str, pl.DataType], rows_per_part: int) -> None:
        folder.mkdir(parents=True)
        self.folder, self.schema, self.rows_per_part, self.parts = folder, schema, rows_per_part, 0
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        """Add ``frame``'s rows, writing every part that fills up."""
        while frame.height:
            take = min(frame.height, self.rows_per_part - self._pending_rows)
            self._pending.append(frame.slice(0, take))
            self._pending_rows += take
            frame = frame.slice(take)
            if self._pending_rows == self.rows_per_part:
                self._flush()

    def close(self) -> None:
        """Write the last, partial part; a folder that got no rows still gets one empty part."""
        # Readers glob the folder, so an empty drop must still leave a file with the schema.
        if self._pending_rows or not self.parts:
            self._flush()

    def _flush(self) -> None:
        part = pl.concat(self._pending) if self._pending else pl.DataFrame(schema=self.schema)
        part.write_parquet(self.folder / f"part-{self.parts:05d}.parquet")
        self.parts += 1
        self._pending, self._pending_rows = [], 0
