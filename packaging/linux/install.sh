#!/bin/sh
# Adds market-sync (this folder) to your desktop's applications menu, for you only.
# Undo: rm ~/.local/share/applications/market-sync.desktop
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps"
cp "$here/market-sync.png" "$data/icons/hicolor/256x256/apps/market-sync.png"
# Exec= gets the absolute path, quoted by the Desktop Entry rules (\ " ` $ escaped).
exe=$(printf '%s' "$here/market-sync" | sed 's/[\\"`$]/\\\\&/g')
sed -e "s|^Exec=.*|Exec=\"$exe\"|" -e "s|^TryExec=.*|TryExec=$here/market-sync|" \
  "$here/market-sync.desktop" > "$data/applications/market-sync.desktop.partial"
mv "$data/applications/market-sync.desktop.partial" "$data/applications/market-sync.desktop"
echo "market-sync is in your applications menu; open it to start the set-up wizard."
