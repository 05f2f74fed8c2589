#!/usr/bin/env bash
# Add LoRA Studio to the Linux application menu for this user (no root needed):
#   ~/.local/share/applications/lora-studio.desktop   the menu entry, starting packaging/lora-studio.sh
#   ~/.local/share/icons/hicolor/<size>/apps/          the icon at every size, plus the SVG
# Run it again after moving this folder; `--uninstall` removes both.
# XDG_DATA_HOME moves the target like it does for every desktop (tests use a temporary one).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
root="$(cd "$here/.." && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
apps="$data/applications"
icons="$data/icons/hicolor"
entry="$apps/lora-studio.desktop"
sizes="16 24 32 48 64 128 256 512"

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps" 2>/dev/null || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$icons" 2>/dev/null || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$entry" "$icons/scalable/apps/lora-studio.svg"
  for s in $sizes; do rm -f "$icons/${s}x${s}/apps/lora-studio.png"; done
  refresh
  echo "LoRA Studio removed from the application menu."
  exit 0
fi

mkdir -p "$apps" "$icons/scalable/apps"
for s in $sizes; do
  mkdir -p "$icons/${s}x${s}/apps"
  install -m 644 "$root/resources/icons/lora-studio-$s.png" "$icons/${s}x${s}/apps/lora-studio.png"
done
install -m 644 "$root/resources/icons/lora-studio.svg" "$icons/scalable/apps/lora-studio.svg"

launcher="$root/packaging/lora-studio.sh"
chmod +x "$launcher"
# Exec needs an absolute path; quote it for the desktop-entry spec when the folder has spaces
quoted="$launcher"
case "$launcher" in *" "*) quoted="\"$launcher\"" ;; esac
sed "s|@LAUNCHER@|$quoted|" "$here/lora-studio.desktop" > "$entry.tmp"
chmod 644 "$entry.tmp"
mv "$entry.tmp" "$entry"
if command -v desktop-file-validate >/dev/null 2>&1; then desktop-file-validate "$entry"; fi
refresh
echo "LoRA Studio is in the application menu ($entry)."
echo "The first start sets up the Python environment in $root/.venv (a few minutes, shown in a terminal)."
