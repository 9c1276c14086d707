"""Figures: each one draws the data it is given and returns a matplotlib figure.

- :mod:`~boresnet.plots.iteration`: one iteration (posterior, acquisition, next point);
- :mod:`~boresnet.plots.maps`: the whole plane of two searched parameters;
- :mod:`~boresnet.plots.summary`: every iteration at once, convergence, confusion;
- :mod:`~boresnet.plots.common`: colours, labels and the drawn acquisition.

No plot builds or asks an optimiser or writes a file: :mod:`boresnet.study.artefacts`
does both.
"""

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only: never open a window
