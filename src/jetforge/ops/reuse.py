"""Which images a build may reuse for its stages (docs/builds.md, "Reuse").

An image stands for a stage when it is that stage's completed build on that stage's parent:

- it carries the stage key as its ``jetforge.stage-key`` label. Every stage's Dockerfile
  resets the label right after ``FROM`` (:data:`jetforge.core.dockerfile.RESET_STAGE_KEY`)
  and the engine sets it as the build's last step, so an image left over from a failed or
  interrupted build of the next stage never carries it;
- it was built on the image chosen for the stage before (for the first stage, the base
  image): its ``jetforge.parent`` label, which the build sets to the parent's image id,
  says so; an image without the label (``jetforge bake`` builds them) must start with
  every layer of that parent.

The stages reused are one consistent chain: the longest prefix of the plan that such
images cover, walking from each stage's image to its parent, including parents that the
engine lists no longer (an untagged parent of a listed image is hidden from listings).
When the stages' own names already hold such a chain for the whole plan (a rebuild of a
chain that did not change), that chain is taken as it is, found by name: nothing is
listed (a listing makes the engine read every image it holds, seconds where it holds
thousands) and no name moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from jetforge.core.labels import PARENT, STAGE_KEY
from jetforge.engine.base import Engine, ImageInfo

if TYPE_CHECKING:
    from jetforge.core.plan import Stage

Inspect = Callable[[str], "ImageInfo | None"]


def stage_images(engine: Engine) -> dict[str, list[ImageInfo]]:
    """Every completed stage image ``engine`` holds, by its stage key, newest first (one
    query)."""
    found: dict[str, list[ImageInfo]] = {}
    for info in engine.list_images([f"label={STAGE_KEY}"]):
        key = info.labels.get(STAGE_KEY, "")
        if key:
            found.setdefault(key, []).append(info)
    for images in found.values():
        images.sort(key=lambda info: info.created, reverse=True)
    return found


def is_built_on(image: ImageInfo, parent: ImageInfo | None) -> bool:
    """Whether ``image`` was built on ``parent`` (None: a parent this engine does not know,
    which nothing can be checked against)."""
    if parent is None:
        return True
    label = image.labels.get(PARENT, "")
    if label:
        return label == parent.id
    size = len(parent.layers)
    return size > 0 and image.layers[:size] == parent.layers


def on_parent(images: Sequence[ImageInfo], parent: ImageInfo | None) -> ImageInfo | None:
    """The first of ``images`` that was built on ``parent``."""
    return next((image for image in images if is_built_on(image, parent)), None)


def named_chain(
    stages: Sequence[Stage], base: ImageInfo | None, inspect: Inspect
) -> list[ImageInfo] | None:
    """The images the names of ``stages`` hold (``inspect`` finds them), when they are one
    chain of completed builds of the whole plan starting on ``base``: each carries its
    stage's key, was built on the one before, and is the lockfile's image for its stage
    where the plan has one; else None."""
    chain: list[ImageInfo] = []
    parent = base
    for stage in stages:
        image = inspect(str(stage.image))
        if (
            image is None
            or image.labels.get(STAGE_KEY) != stage.key
            or (stage.locked_id and image.id != stage.locked_id)
            or not is_built_on(image, parent)
        ):
            return None
        chain.append(image)
        parent = image
    return chain


def reusable_chain(
    keys: Sequence[str],
    candidates: Sequence[Sequence[ImageInfo]],
    base: ImageInfo | None,
    inspect: Inspect,
) -> list[ImageInfo]:
    """The images of the longest prefix of a plan's stages that one chain of stage images
    covers, starting on ``base``. ``candidates[i]`` are the images that may stand for the
    stage of key ``keys[i]``, in order of preference; ``inspect`` finds an image by id (a
    hidden parent)."""
    pools = [list(group) for group in candidates]
    seen = {image.id for pool in pools for image in pool}
    for index in range(len(pools) - 1, 0, -1):
        for image in list(pools[index]):
            parent_id = image.labels.get(PARENT, "")
            if not parent_id or parent_id in seen:
                continue
            seen.add(parent_id)
            hidden = inspect(parent_id)
            if hidden is not None and hidden.labels.get(STAGE_KEY) == keys[index - 1]:
                pools[index - 1].append(hidden)
    levels: list[list[ImageInfo]] = []
    for index, pool in enumerate(pools):
        parents: Sequence[ImageInfo | None] = levels[index - 1] if index else [base]
        fitting = [image for image in pool if any(is_built_on(image, p) for p in parents)]
        if not fitting:
            break
        levels.append(fitting)
    if not levels:
        return []
    chain = [levels[-1][0]]
    for level in reversed(levels[:-1]):
        chain.insert(0, next(p for p in level if is_built_on(chain[0], p)))
    return chain
