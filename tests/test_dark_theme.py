"""Dark theme everywhere (issue 18): banners, charts, slider tracks and the status line, switching live."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette

from ui.theme import BANNER_KINDS, DARK, LIGHT, THEMES, apply_theme, banner_colors

pytestmark = pytest.mark.gui


def relative_luminance(color: str) -> float:
    """WCAG 2 relative luminance of a colour ("#rrggbb")."""
    c = QColor(color)

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21); body text needs 4.5, controls 3."""
    hi, lo = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture
def theme(qapp):
    yield lambda name: apply_theme(qapp, name)
    apply_theme(qapp, "light")


@pytest.mark.parametrize("name", sorted(THEMES))
@pytest.mark.parametrize("kind", BANNER_KINDS)
def test_banner_colours_are_readable(name, kind):
    fg, bg, border = banner_colors(THEMES[name], kind)
    assert contrast_ratio(fg, bg) >= 4.5, (name, kind, fg, bg)
    assert contrast_ratio(THEMES[name].text, THEMES[name].window) >= 4.5


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_dark_banner_is_dark_with_light_text(qtbot, theme):
    """The banner as drawn: its background pixel and its labels' text colour come from the dark theme."""
    from ui.widgets.status_banner import StatusBanner

    theme("dark")
    banner = StatusBanner()
    qtbot.addWidget(banner)
    banner.resize(500, 80)
    banner.show_message("error", "The run stopped", "CUDA ran out of memory", "Retry")
    qtbot.waitExposed(banner)
    fg, bg, _ = banner_colors(DARK, "error")
    text = banner.title.palette().color(QPalette.ColorRole.WindowText).name()
    assert text == fg
    pixel = banner.grab().toImage().pixelColor(banner.width() // 2, banner.height() - 4).name()
    assert pixel == bg
    assert contrast_ratio(text, pixel) >= 4.5

    theme("light")  # live: the banner on screen follows without being shown again
    qtbot.waitUntil(lambda: banner.title.palette().color(QPalette.ColorRole.WindowText).name() == LIGHT.text)
    light_fg, light_bg, _ = banner_colors(LIGHT, "error")
    pixel = banner.grab().toImage().pixelColor(banner.width() // 2, banner.height() - 4).name()
    assert pixel == light_bg and contrast_ratio(light_fg, pixel) >= 4.5


@pytest.mark.parametrize("name", sorted(THEMES))
def test_slider_track_and_status_text_stand_out(name):
    c = THEMES[name]
    assert contrast_ratio(c.track, c.window) >= 3.0  # WCAG 1.4.11: controls


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_slider_groove_is_drawn_in_the_track_colour(qtbot, theme):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QSlider

    theme("dark")
    slider = QSlider(Qt.Orientation.Horizontal)
    qtbot.addWidget(slider)
    slider.setRange(0, 100)
    slider.setValue(0)
    slider.resize(300, 30)
    slider.show()
    qtbot.waitExposed(slider)
    image = slider.grab().toImage()
    colours = {image.pixelColor(x, slider.height() // 2).name() for x in range(200, 290)}
    assert DARK.track in colours


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_status_bar_text_uses_the_theme_text(qtbot, theme):
    from PySide6.QtWidgets import QLabel, QMainWindow

    theme("dark")
    window = QMainWindow()
    qtbot.addWidget(window)
    label = QLabel("Worker: stopped")
    window.statusBar().addPermanentWidget(label)
    window.show()
    qtbot.waitExposed(window)
    assert label.palette().color(QPalette.ColorRole.WindowText).name() == DARK.text


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_chart_recolours_when_the_theme_switches(qtbot, theme):
    from ui.widgets.loss_chart import LossChart

    theme("light")
    chart = LossChart()
    qtbot.addWidget(chart)
    chart.show()
    assert chart.background_color() == LIGHT.base
    theme("dark")
    qtbot.waitUntil(lambda: chart.background_color() == DARK.base)
    axis = chart.loss_plot.getAxis("left")
    assert axis.textPen().color().name() == DARK.text
    theme("light")
    qtbot.waitUntil(lambda: chart.background_color() == LIGHT.base)
