"""Figures of a results directory: pure data functions, and drawing functions that only draw.

One module per figure family (:mod:`~elmoe_dse.plots.pareto`, :mod:`~elmoe_dse.plots.speedup`,
:mod:`~elmoe_dse.plots.energy`, :mod:`~elmoe_dse.plots.roofline`,
:mod:`~elmoe_dse.plots.sensitivity`, :mod:`~elmoe_dse.plots.optimize`); each has a data function
returning a frozen record (tested by equality) and a drawing function taking that record and an
optional Axes. :mod:`~elmoe_dse.plots.style` holds the palette (a colour per platform), sizes and
the style context; :mod:`~elmoe_dse.plots.inputs` reads a results directory;
the figure tables it reads (baselines, rooflines, sensitivities) are computed when a run is
written (:mod:`elmoe_dse.explore.figure_tables`; ``elmoe-dse analyze DIR`` recomputes them), so
nothing here loads a spec or runs the model;
:mod:`~elmoe_dse.plots.figures` decides which figures apply and writes them.

matplotlib is imported inside drawing functions only: importing this package does not load it.
"""
