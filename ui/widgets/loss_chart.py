"""Live loss (raw and smoothed) and learning-rate curves, with pyqtgraph.

The curves are redrawn at most twice a second from a dirty flag, so a run of tens of steps a second costs
the GUI thread little. pyqtgraph paints with the colours it was given, not the palette, so a theme change
re-reads the palette (`changeEvent`): a switch to dark mid-run must not leave a white chart.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ui.layout import fill, flat


REDRAW_MS = 500  # pyqtgraph repaints both plots and their axes: twice a second is live enough


class LossChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._steps, self._loss, self._smooth, self._lr = [], [], [], []  # float lists, one entry a point
        self._dirty = False
        self._lr_top = 0.0
        self._x_max = 0.0
        self._y_range: tuple[float, float] | None = None
        self.loss_plot = pg.PlotWidget()
        self.lr_plot = pg.PlotWidget()
        for plot in (self.loss_plot, self.lr_plot):
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setMenuEnabled(False)
            plot.getAxis("left").enableAutoSIPrefix(False)  # "0.2", not "loss (x0.001)" and 200
            # ranges are set by _fit_ranges, rarely: every range change re-lays-out and repaints the axes,
            # which cost far more than the curves (pyqtgraph autorange would do it on every redraw)
            plot.disableAutoRange()
            plot.hideButtons()
            plot.getAxis("left").setWidth(62)
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
        self._legend = self.loss_plot.addLegend(offset=(-10, 10))
        self.lr_plot.setMouseEnabled(x=True, y=False)
        self.lr_plot.setXLink(self.loss_plot)
        self.lr_plot.setMinimumHeight(100)
        self.loss_plot.setMinimumHeight(150)
        self._raw_curve = self.loss_plot.plot(name="loss")
        self._smooth_curve = self.loss_plot.plot(name="smoothed")
        self._lr_curve = self.lr_plot.plot(pen=pg.mkPen("#e0a030", width=2))
        self._hint = pg.TextItem("The loss appears here once a run starts.", anchor=(0.5, 0.5))
        self.loss_plot.addItem(self._hint, ignoreBounds=True)
        self._hint.setPos(0.5, 0.5)
        self._colored_with: tuple[str, str, str] | None = None
        self.apply_palette()
        fill(flat(QVBoxLayout(self)), (self.loss_plot, 2), (self.lr_plot, 1))
        self._timer = QTimer(self, interval=REDRAW_MS, timeout=self._redraw)
        self._timer.start()

    def apply_palette(self) -> None:
        """Background, axes, labels, legend and curves in the palette's colours (skipped when unchanged)."""
        pal, roles = self.palette(), QPalette.ColorRole
        fg, bg, accent = (pal.color(role) for role in (roles.WindowText, roles.Base, roles.Highlight))
        key = (fg.name(), bg.name(), accent.name())
        if key == self._colored_with:
            return
        self._colored_with = key
        for plot in (self.loss_plot, self.lr_plot):
            plot.setBackground(bg)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(fg)
                plot.getAxis(axis).setPen(fg)
        self.loss_plot.setLabel("left", "loss", color=fg.name())
        self.lr_plot.setLabel("left", "learning rate", color=fg.name())
        self.lr_plot.setLabel("bottom", "step", color=fg.name())
        self._legend.setLabelTextColor(fg)
        raw_color = pg.mkColor(accent)
        raw_color.setAlpha(90)
        self._raw_curve.setPen(pg.mkPen(raw_color, width=1))
        self._smooth_curve.setPen(pg.mkPen(accent, width=2.5))
        self._hint.setColor(fg)
        for item in self._legend.items:  # the legend's labels were drawn with the old colour
            item[1].setText(item[1].text, color=fg)

    def background_color(self) -> str:
        """The plots' background as "#rrggbb" (what the tests and the theme switch check)."""
        return self.loss_plot.backgroundBrush().color().name()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange,
                            QEvent.Type.StyleChange):
            self.apply_palette()

    def add(self, step: int, loss: float, smoothed: float, lr: float) -> None:
        if self._steps and step <= self._steps[-1]:
            self.truncate(step - 1)  # a resumed run repeats steps after its checkpoint
        for points, v in zip((self._steps, self._loss, self._smooth, self._lr), (step, loss, smoothed, lr)):
            points.append(float(v))
        self._dirty = True

    def truncate(self, last_step: int) -> None:
        """Keep points up to `last_step` (a run resumed from that checkpoint redraws what follows)."""
        keep = int(np.searchsorted(np.asarray(self._steps), last_step, side="right"))
        del self._steps[keep:], self._loss[keep:], self._smooth[keep:], self._lr[keep:]
        self._dirty = True

    def clear(self) -> None:
        self.truncate(-1)

    def count(self) -> int:
        return len(self._steps)

    def last(self) -> tuple[float, float, float, float] | None:
        return (self._steps[-1], self._loss[-1], self._smooth[-1], self._lr[-1]) if self._steps else None

    def _redraw(self) -> None:
        if not self._dirty or not self.isVisible():
            return
        self._dirty = False
        self._hint.setVisible(not self._steps)
        self._fit_ranges()
        x = np.asarray(self._steps)
        # non-finite losses (a diverged run) would break the autoscale; they are reported in the log
        self._raw_curve.setData(x, np.asarray(self._loss), connect="finite")
        self._smooth_curve.setData(x, np.asarray(self._smooth), connect="finite")
        lr = np.asarray(self._lr)
        self._lr_curve.setData(x, lr, connect="finite")
        finite = lr[np.isfinite(lr)]
        # from zero up, so a constant learning rate is a flat line at its value, not centred noise;
        # set only when it changes, as every range change repaints the axis
        top = float(finite.max()) * 1.15 if finite.size and finite.max() > 0 else 1.0
        if top != self._lr_top:
            self._lr_top = top
            self.lr_plot.setYRange(0.0, top, padding=0)

    def _fit_ranges(self) -> None:
        """The x axis doubles when the run outgrows it; the loss axis changes only when a point leaves it or
        it has become far too tall for the data. So the axes change a few times per run, not per redraw."""
        if not self._steps:
            if self._x_max:
                self._x_max, self._y_range = 0.0, None
                self.loss_plot.setXRange(0, 1, padding=0)
                self.loss_plot.setYRange(0, 1, padding=0)
            return
        last = self._steps[-1]
        if last > self._x_max or last < self._x_max / 8:
            self._x_max = max(16.0, 2.0 * last)
            self.loss_plot.setXRange(0, self._x_max, padding=0)
        y = np.asarray(self._loss + self._smooth)
        y = y[np.isfinite(y)]
        if not y.size:
            return
        lo, hi = float(y.min()), float(y.max())
        span = hi - lo or abs(hi) * 0.1 or 0.1
        cur = self._y_range
        if cur is None or lo < cur[0] or hi > cur[1] or (cur[1] - cur[0]) > 4 * span:
            self._y_range = (lo - 0.25 * span, hi + 0.25 * span)
            self.loss_plot.setYRange(*self._y_range, padding=0)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._dirty = True
