"""Package discovery: walk the search directories into a :class:`Catalog`.

Discovery is deterministic (sorted walk, one thread) and fault-isolated: a broken package
becomes a problem in the catalog and never hides the others. The discovery index
(:mod:`jetforge.discovery.index`) answers for what has not changed since the last run;
:mod:`jetforge.discovery.reading` reads the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jetforge.discovery.index import Index
from jetforge.discovery.jc.checkout import jc_setup
from jetforge.discovery.time_limit import script_timeout
from jetforge.discovery.walk import PackageRoot
from jetforge.host.stash import key_text, load

if TYPE_CHECKING:
    from jetforge.core.catalog import Catalog
    from jetforge.core.listing import Listing
    from jetforge.core.platform import Platform
    from jetforge.discovery.index import Answer, LastWalk


class Discovery:
    """What discovery found: the catalog, and its listing (what ``list`` prints). An
    answer of the discovery index is decoded when first asked for, each part on its own
    (a warm ``list`` decodes no variant); a part that does not decode is read again from
    the tree (``read``)."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        answer: Answer | None = None,
        read: Callable[[], Catalog] | None = None,
    ) -> None:
        self._catalog = catalog
        self._listing: Listing | None = None
        self._answer = answer
        self._read = read
        self._read_again = False  # the answer's catalog did not decode: read from the tree

    @property
    def catalog(self) -> Catalog:
        """Every variant found, with every definition problem."""
        if self._catalog is None:
            if self._answer is not None:
                self._catalog = _decoded_catalog(self._answer, self._read_from_tree)
            if self._catalog is None:
                self._catalog = self._read_from_tree()
        return self._catalog

    def _read_from_tree(self) -> Catalog:
        assert self._read is not None
        self._read_again = True
        self._listing = None  # of the catalog read again
        return self._read()

    @property
    def listing(self) -> Listing:
        """What ``list`` shows of the catalog."""
        if self._listing is None:
            if self._answer is not None and not self._read_again:
                self._listing = _decoded_listing(self._answer.listing_part)
            if self._listing is None:
                self._listing = self.catalog.listing()
        return self._listing


def discover(
    roots: Iterable[Path | PackageRoot],
    platform: Platform,
    *,
    skip: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    index: Path | None = None,
) -> Catalog:
    """Load every package under ``roots`` (in order) for ``platform``.

    ``skip`` holds shell patterns of variants to leave out (``--skip-packages``); ``env``
    is the environment config scripts see (default: none of it); ``index`` is the folder
    of the discovery index (default: none, every directory is read).
    """
    return discovery(roots, platform, skip=skip, env=env, index=index).catalog


def discovery(
    roots: Iterable[Path | PackageRoot],
    platform: Platform,
    *,
    skip: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    index: Path | None = None,
) -> Discovery:
    """What :func:`discover` finds, with its listing; from the discovery index when the
    tree, the platform, the skipped patterns and what every script read are as they
    were for its last answer."""
    search = [root if isinstance(root, PackageRoot) else PackageRoot(root) for root in roots]
    env = env or {}
    script_timeout(env)  # a bad limit is refused whether or not a script runs this time
    store = Index.open(index, [(str(root.path), root.format) for root in search])
    setup = jc_setup(platform, env, [root.path for root in search])
    question = key_text(
        (tuple(root.effective_format() for root in search), platform, tuple(skip), setup)
    )
    last = store.last_walk if store.last_walk is not None and store.last_walk.holds() else None

    def read() -> Catalog:
        return _read(search, platform, skip, env, setup, store, last, question)

    answer = store.answer(question, env) if last is not None else None
    if answer is not None:
        return Discovery(answer=answer, read=read)
    return Discovery(read())


def _read(
    search: Sequence[PackageRoot],
    platform: Platform,
    skip: Sequence[str],
    env: Mapping[str, str],
    setup: Mapping[str, object],
    store: Index,
    last: LastWalk | None,
    question: str,
) -> Catalog:
    """The catalog read from the tree (from the index's entries where they hold)."""
    # here, not at the top: start-up time (a warm run reads nothing)
    from jetforge.discovery.assemble import assemble
    from jetforge.discovery.reading import read_tree

    entries, walk, complete = read_tree(search, platform, env, setup, store, last)
    answer = assemble(entries, platform, skip, walk)
    store.keep_answer(question, answer if complete else None)
    store.save()
    return answer


def _decoded_catalog(answer: Answer, read: Callable[[], Catalog]) -> Catalog | None:
    """The catalog of an index's answer, its variants decoded as lookups ask for them (a
    damaged one read from the tree: ``read``); None when its own part does not decode."""
    from jetforge.core.catalog import Catalog
    from jetforge.discovery.records import Decoder, IndexVariants

    try:
        record = load(answer.catalog_part)
        source = IndexVariants(record["lookup"], answer.variant_parts, read)
        problems = tuple(Decoder().problem(item) for item in record["problems"])
        return Catalog(problems=problems, warnings=tuple(record["warnings"]), source=source)
    except Exception:  # a damaged index is an empty one
        return None


def _decoded_listing(part: bytes | memoryview) -> Listing | None:
    """The listing of an index's listing part; None when it does not decode."""
    from jetforge.core.listing import Listing

    try:
        return Listing.from_record(load(part))
    except Exception:  # a damaged index is an empty one
        return None
