"""The spec's data section, and `Strict`, the base every spec section shares.

Split from elubench.spec (the schema) for size; elubench.spec re-exports every name here, so
`from elubench.spec import Data` keeps working. Pure Python: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from elubench.core.limits import MAX_CLASSES, MAX_IMAGES, MAX_SEED, MAX_SIDE

DatasetName = Literal["digits", "synthetic", "mnist", "cifar10", "cifar100", "imagefolder"]


@dataclass(frozen=True)
class Dataset:
    """What elubench knows of a dataset, in one table (DATASETS): the spec, the data loader,
    the dataset catalog and `elubench data` all read it."""

    name: str
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width) when fixed
    classes: int | None = None
    sizes: tuple[int, int] | None = None  # (train, test) images when fixed
    torchvision: str | None = None  # its class in torchvision.datasets, which reads (and
    # downloads) its files under the data folder
    no_files: str = ""  # why it needs no files, as `elubench data` says it


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        # digits: elubench's fixed split (elubench/data/sources.py)
        Dataset(
            "digits", (1, 8, 8), 10, (1352, 445), no_files="ships inside scikit-learn (load_digits)"
        ),
        Dataset("synthetic", no_files="generated from the spec's data.synthetic.seed"),
        Dataset("mnist", (1, 28, 28), 10, (60000, 10000), torchvision="MNIST"),
        Dataset("cifar10", (3, 32, 32), 10, (50000, 10000), torchvision="CIFAR10"),
        Dataset("cifar100", (3, 32, 32), 100, (50000, 10000), torchvision="CIFAR100"),
        Dataset("imagefolder"),
    )
}
assert tuple(DATASETS) == get_args(DatasetName), "DATASETS and DatasetName name the same datasets"


class Strict(BaseModel):
    # No NaN or infinity in any float field: no spec value means them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]


# --- data -------------------------------------------------------------------------------------


class Augment(Strict):
    pad: NonNegativeInt = Field(0, le=MAX_SIDE)  # zero padding on each side before the random crop
    crop: PositiveInt | None = Field(
        None, le=MAX_SIDE
    )  # random crop in training, centre crop at test
    hflip: bool = False  # random horizontal flip in training


class Synthetic(Strict):
    """A learnable, seeded image set: each class is a smooth random template plus noise."""

    shape: tuple[Side, Side, Side] = (3, 32, 32)
    classes: int = Field(10, ge=2, le=MAX_CLASSES)
    train_size: PositiveInt = Field(5000, le=MAX_IMAGES)
    test_size: PositiveInt = Field(1000, le=MAX_IMAGES)
    noise: float = Field(1.0, ge=0, le=1000)
    seed: NonNegativeInt = Field(0, le=MAX_SEED)  # the data's own seed: the same set for every run


class ImageFolder(Strict):
    root: str  # holds train/ and val/ with one folder per class
    resize: PositiveInt = Field(256, le=MAX_SIDE)
    crop: PositiveInt = Field(224, le=MAX_SIDE)
    classes: PositiveInt | None = Field(
        None, le=MAX_CLASSES
    )  # checked against the folders when given
    workers: NonNegativeInt = Field(4, le=256)


class Data(Strict):
    dataset: DatasetName
    preprocess: Literal["none", "standardize", "gcn-zca"] = "standardize"
    augment: Augment = Augment()
    synthetic: Synthetic | None = None
    imagefolder: ImageFolder | None = None
    train_limit: PositiveInt | None = Field(None, le=MAX_IMAGES)  # only the first N training images
    test_limit: PositiveInt | None = Field(None, le=MAX_IMAGES)  # evaluate on only the first N
    gcn_scale: PositiveFloat = 55.0  # gcn-zca: per-image norm after centring (Maxout)
    zca_bias: PositiveFloat = 0.1  # gcn-zca: added to the eigenvalues (pylearn2 default)

    @model_validator(mode="after")
    def _sections_match_dataset(self):
        if self.dataset == "synthetic" and self.synthetic is None:
            object.__setattr__(self, "synthetic", Synthetic())
        if self.dataset != "synthetic" and self.synthetic is not None:
            raise ValueError("the 'synthetic' section only applies to dataset: synthetic")
        if self.dataset == "imagefolder" and self.imagefolder is None:
            raise ValueError(
                "dataset: imagefolder needs an 'imagefolder' section with at least 'root'"
            )
        if self.dataset != "imagefolder" and self.imagefolder is not None:
            raise ValueError("the 'imagefolder' section only applies to dataset: imagefolder")
        _, h, w = self.image_shape()
        crop, pad = self.augment.crop, self.augment.pad
        if crop is not None and crop > min(h, w) + 2 * pad:
            raise ValueError(
                f"augment.crop {crop} is larger than the padded {h + 2 * pad}x{w + 2 * pad} image"
            )
        if pad and crop is None:
            raise ValueError("augment.pad needs augment.crop (pad, then crop back to a size)")
        return self

    def synthetic_section(self) -> Synthetic:
        """The synthetic section of a `dataset: synthetic` spec (the validator fills it in)."""
        assert self.synthetic is not None, self.dataset
        return self.synthetic

    def imagefolder_section(self) -> ImageFolder:
        """The imagefolder section of a `dataset: imagefolder` spec (the validator requires it)."""
        assert self.imagefolder is not None, self.dataset
        return self.imagefolder

    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of a stored image, before augmentation's crop."""
        if self.dataset == "synthetic":
            return self.synthetic_section().shape  # a tuple already (pydantic builds one)
        if self.dataset == "imagefolder":
            crop = self.imagefolder_section().crop
            return (3, crop, crop)
        shape = DATASETS[self.dataset].image_shape
        assert shape is not None, self.dataset
        return shape

    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) the network sees: the crop size when augmenting."""
        c, h, w = self.image_shape()
        if self.augment.crop is not None:
            return (c, self.augment.crop, self.augment.crop)
        return (c, h, w)

    def sizes(self) -> tuple[int, int] | None:
        """(train, test) image counts after the limits; None when only the files can tell."""
        fixed = DATASETS[self.dataset].sizes
        if self.dataset == "synthetic":
            synthetic = self.synthetic_section()
            sizes = (synthetic.train_size, synthetic.test_size)
        elif fixed is not None:
            sizes = fixed
        else:
            return None
        return (
            min(sizes[0], self.train_limit or sizes[0]),
            min(sizes[1], self.test_limit or sizes[1]),
        )

    def classes(self) -> int | None:
        if self.dataset == "synthetic":
            return self.synthetic_section().classes
        if self.dataset == "imagefolder":
            return self.imagefolder_section().classes
        return DATASETS[self.dataset].classes
