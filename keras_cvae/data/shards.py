"""A process's share of every global batch, when several processes train one model.

Each process feeds the rows of the global batch that its devices hold: process `index` of
`count` takes rows [index * B / count, (index + 1) * B / count) of every global batch of
B sequences. JAX's data parallelism places the processes' rows in that order, so the
global batch the step sees is exactly the batch one process would have read alone, and
no two processes read the same sequence of a batch.
"""

from dataclasses import dataclass

from keras_cvae.data.errors import DataError


@dataclass(frozen=True)
class Shard:
    """Process `index` of `count`; `Shard()` is the whole batch of a single process.

    Args:
        index: This process's place, from 0.
        count: Processes sharing every batch.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise DataError(f"shard index must be in [0, {self.count}), got {self.index}")

    @property
    def whole(self) -> bool:
        """Whether this process reads whole batches (it is the only one)."""
        return self.count == 1

    def local_size(self, batch_size: int) -> int:
        """Rows of a global batch of `batch_size` that this process feeds.

        Raises:
            DataError: `batch_size` is not a multiple of the processes.
        """
        if batch_size % self.count:
            raise DataError(f"batch_size (--batch-size) {batch_size} is the global batch: it must be "
                            f"a multiple of the {self.count} processes (--num-processes) it is split over")
        return batch_size // self.count

    def rows(self, batch_size: int) -> range:
        """The rows of a global batch of `batch_size` that this process feeds.

        Args:
            batch_size: Rows of the global batch.
        """
        size = self.local_size(batch_size)
        return range(self.index * size, (self.index + 1) * size)

    def take(self, batch: dict, multiple: int = 1):
        """This process's rows of a global batch (a dict of arrays), or None if none are left.

        Args:
            batch: The global batch.
            multiple: The rows kept are first cut to a multiple of `count * multiple` (the
                devices the batch is split over): a short last batch of a validation pass
                loses at most that many rows less one.
        """
        rows = len(next(iter(batch.values())))
        kept = rows - rows % (self.count * multiple)
        if kept == 0:
            return None
        share = self.rows(kept)
        return {name: values[share.start:share.stop] for name, values in batch.items()}
