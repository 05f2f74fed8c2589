"""Light and dark themes: the Fusion style, a palette, and a short stylesheet for the few custom roles.

Fusion honours the palette fully on every platform (the native Windows style ignores much of it). Widgets opt
into custom looks with a `role` property instead of their own stylesheets, so a theme switch restyles all;
sizes are in `em` or relative to the user's font, so 200 % scaling and large fonts stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEME_PROPERTY = "loraStudioTheme"  # the resolved theme ("light"/"dark") is kept on the QApplication


@dataclass(frozen=True)
class Colors:
    window: str
    base: str
    alt_base: str
    text: str
    muted: str  # secondary text: hints, captions
    button: str
    border: str
    accent: str  # selection, default button, focus — the icon's violet
    accent_text: str
    link: str
    warning_bg: str
    warning_border: str
    info_bg: str
    info_border: str
    error: str
    success: str
    error_bg: str  # banners: a tinted background under the theme's own text colour
    error_border: str
    success_bg: str
    success_border: str
    track: str  # slider grooves: at least 3:1 against the window (WCAG's figure for controls)


LIGHT = Colors(window="#f4f4f7", base="#ffffff", alt_base="#f0eff5", text="#1c1b22", muted="#5f5d6b",
               button="#e9e8ef", border="#c9c7d3", accent="#6a48db", accent_text="#ffffff", link="#5535c8",
               warning_bg="#fff4d6", warning_border="#e0a526", info_bg="#ece7ff", info_border="#9f8cf0",
               error="#b3261e", success="#1f7a3a", error_bg="#fde7e5", error_border="#d9776f",
               success_bg="#e4f4e8", success_border="#7cbf8e", track="#8a8896")
DARK = Colors(window="#1e1d24", base="#16151b", alt_base="#24232b", text="#e9e8f0", muted="#a4a2b3",
              button="#2d2c35", border="#45434f", accent="#7457e8", accent_text="#ffffff", link="#b3a1ff",
              warning_bg="#3d3117", warning_border="#c28f1e", info_bg="#2a2548", info_border="#6f5ad1",
              error="#ff8a80", success="#7fd49a", error_bg="#4a1f22", error_border="#c2554d",
              success_bg="#1c3a26", success_border="#4f9e68", track="#7a788a")

THEMES = {"light": LIGHT, "dark": DARK}


def resolve(name: str) -> str:
    """"system" → what the desktop uses (light when it cannot tell); "light"/"dark" as given; else light."""
    if name == "system":
        app = QGuiApplication.instance()
        dark = app is not None and app.styleHints().colorScheme() == Qt.ColorScheme.Dark
        return "dark" if dark else "light"
    return name if name in THEMES else "light"


def build_palette(c: Colors) -> QPalette:
    p = QPalette()
    R, G = QPalette.ColorRole, QPalette.ColorGroup
    roles = {
        R.Window: c.window, R.WindowText: c.text, R.Base: c.base, R.AlternateBase: c.alt_base,
        R.Text: c.text, R.Button: c.button, R.ButtonText: c.text, R.BrightText: c.accent_text,
        R.Highlight: c.accent, R.HighlightedText: c.accent_text, R.Link: c.link, R.LinkVisited: c.link,
        R.ToolTipBase: c.base, R.ToolTipText: c.text, R.PlaceholderText: c.muted,
        R.Light: c.base, R.Midlight: c.alt_base, R.Mid: c.border, R.Dark: c.border, R.Shadow: "#000000",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    disabled = QColor(c.muted)
    disabled.setAlpha(150)
    for role in (R.WindowText, R.Text, R.ButtonText, R.HighlightedText):
        p.setColor(G.Disabled, role, disabled)
    p.setColor(G.Disabled, R.Highlight, QColor(c.border))
    return p


BANNER_KINDS = ("info", "success", "warning", "error")


def banner_colors(c: Colors, kind: str) -> tuple[str, str, str]:
    """(text, background, border) of a banner of `kind`: the theme's text on a tint of the kind's colour,
    so a dark theme never shows near-white text on a light strip (issue 18)."""
    kind = kind if kind in BANNER_KINDS else "info"
    return c.text, getattr(c, f"{kind}_bg"), getattr(c, f"{kind}_border")


def _banner_rules(c: Colors) -> str:
    rules = []
    for kind in BANNER_KINDS:
        fg, bg, border = banner_colors(c, kind)
        rules.append(f"""QFrame[role="banner-{kind}"] {{
    background: {bg}; color: {fg}; border: 1px solid {border}; border-radius: 0.4em; padding: 0.5em;
}}
QFrame[role="banner-{kind}"] QLabel {{ color: {fg}; background: transparent; border: none; padding: 0; }}""")
    return "\n".join(rules)


def stylesheet(c: Colors) -> str:
    """The custom roles. Lengths in em so they grow with the font and the scale factor."""
    return f"""
{_banner_rules(c)}
QSlider::groove:horizontal {{ height: 0.3em; background: {c.track}; border-radius: 0.15em; }}
QSlider::sub-page:horizontal {{ background: {c.accent}; border-radius: 0.15em; }}
QSlider::handle:horizontal {{
    background: {c.accent}; border: 1px solid {c.text}; width: 0.9em; margin: -0.35em 0; border-radius: 0.5em;
}}
QSlider::handle:horizontal:disabled {{ background: {c.border}; border-color: {c.muted}; }}
QStatusBar, QStatusBar QLabel {{ color: {c.text}; }}
QFrame[role="card"] {{
    background: {c.base}; border: 1px solid {c.border}; border-radius: 0.5em;
}}
QLabel[role="muted"] {{ color: {c.muted}; }}
QLabel[role="error"] {{ color: {c.error}; }}
QLabel[role="success"] {{ color: {c.success}; }}
QPushButton {{ padding: 0.35em 1em; }}
QPushButton[role="primary"] {{
    background: {c.accent}; color: {c.accent_text}; border: 1px solid {c.accent}; border-radius: 0.3em;
    font-weight: bold;
}}
QPushButton[role="primary"]:hover {{ background: {QColor(c.accent).lighter(112).name()}; }}
QPushButton[role="primary"]:disabled {{ background: {c.border}; border-color: {c.border}; }}
QPushButton[role="big"] {{ text-align: left; padding: 0.6em 1em; }}
QToolTip {{ color: {c.text}; background: {c.base}; border: 1px solid {c.border}; padding: 0.25em; }}
"""


def apply_theme(app: QApplication, name: str) -> str:
    """Style the whole app; returns the theme used ("light" or "dark"). With "system" the app follows
    the desktop when it switches between light and dark while running."""
    resolved = resolve(name)
    colors = THEMES[resolved]
    # Each of these re-polishes every widget alive, which costs seconds in a big window: skip what is in place.
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    if app.palette() != (palette := build_palette(colors)):
        app.setPalette(palette)
    if app.styleSheet() != (sheet := stylesheet(colors)):
        app.setStyleSheet(sheet)
    app.setProperty(THEME_PROPERTY, resolved)
    app.setProperty(THEME_PROPERTY + "Requested", name)
    _follow_system(app)
    return resolved


def _follow_system(app: QApplication) -> None:
    if app.property(THEME_PROPERTY + "Following"):
        return
    app.setProperty(THEME_PROPERTY + "Following", True)

    def changed(_scheme) -> None:
        if app.property(THEME_PROPERTY + "Requested") == "system":
            apply_theme(app, "system")

    app.styleHints().colorSchemeChanged.connect(changed)


def set_role(widget: QWidget, role: str) -> QWidget:
    """Give `widget` a stylesheet role and restyle it (a property change alone does not)."""
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    return widget


def scaled_font(base: QFont, factor: float, *, bold: bool = False) -> QFont:
    """`base` scaled by `factor` — titles relative to the user's font, never a fixed pixel size."""
    font = QFont(base)
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    else:  # a font given in pixels: scale those instead
        font.setPixelSize(max(1, round(font.pixelSize() * factor)))
    font.setBold(bold)
    return font
