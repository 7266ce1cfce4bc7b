"""Datasets as the trainer sees them: preprocessed once, batched and augmented on the device.

The package's modules, one concern each:

* :mod:`elubench.data.sources`: the raw images as read (digits, synthetic, torchvision's files).
* :mod:`elubench.data.preprocess`: standardize, GCN + ZCA (its fit cached on disk), the cache
  writer.
* :mod:`elubench.data.memory`: :class:`InMemoryData` and its batched gather on the device.
* :mod:`elubench.data.stream`: :class:`StreamData` for image folders.
* :mod:`elubench.data.load`: :func:`~elubench.data.load.load_data`, which picks one of them.
* :mod:`elubench.data.catalog`: the files each dataset needs and their MD5s (no torch).

``load_data(spec.data, device=...)`` returns one of two sources with the same interface:

* :class:`InMemoryData` (digits, synthetic, mnist, cifar10, cifar100): the whole set lives on
  the device as channels_last float32 tensors. Every epoch draws its permutation, crop offsets
  and flips in one go from a CPU generator seeded by ``derive_seed(seed, "data", epoch)``, so
  for one seed every activation sees the same data order and augmentation, and a run resumed at
  epoch e replays epoch e exactly. A batch is one gather (select, crop, flip) on the device,
  with no host synchronisation.
* :class:`StreamData` (imagefolder): torchvision's ImageFolder behind a DataLoader. Each sample
  is transformed under its own seed drawn from the same per-epoch generator, so augmentation
  depends on (seed, epoch, position) and not on the number of workers.

Sources and splits:

* digits: scikit-learn's ``load_digits`` (1,797 8x8 images, 16 grey levels). Fixed split, no
  RNG: within each class, in the dataset's order, every 4th image (the 4th, 8th, ...) is a test
  image and the rest train: 1,352 train / 445 test, each class 3:1.
* synthetic: see :func:`synthetic_images`; the first ``train_size`` images train.
* mnist, cifar10, cifar100: torchvision's own files and splits under the data directory
  (``--data-dir``, else $ELUBENCH_DATA_DIR, else $XDG_CACHE_HOME/elubench/data, else
  ~/.cache/elubench/data); fetched only with ``download=True``.
* imagefolder: ``root/train/<class>/`` and ``root/val/<class>/``. The files are sorted by
  class, so ``train_limit``/``test_limit`` and the probe take evenly spaced images instead of
  the first N, which would hold only the first classes.

``train_limit``/``test_limit`` cut the sets before any preprocessing is fitted. Preprocessing is
fitted on the training images only: ``none`` (pixels in [0, 1]), ``standardize`` (per-channel
mean and std) or ``gcn-zca`` (pylearn2's global contrast normalization, then ZCA whitening;
the fit is cached on disk, keyed by a hash of everything it depends on). Zero padding for the
random crop is applied after preprocessing; test images and the probe are centre-cropped.
"""
