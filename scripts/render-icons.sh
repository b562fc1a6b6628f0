#!/usr/bin/env bash
# Renders every committed icon size from the two source images in icons/.
# Needs rsvg-convert (Debian: librsvg2-bin). Run after changing icons/*.svg; the PNGs are committed.
set -euo pipefail
cd "$(dirname "$0")/../icons"
for size in 16 24 32 48 64 128 256 512; do
  rsvg-convert -w "$size" -h "$size" icon.svg -o "${size}x${size}.png"
done
cp 256x256.png 128x128@2x.png
cp 512x512.png icon.png
rsvg-convert -w 64 -h 64 icon.svg -o tray.png
rsvg-convert -w 64 -h 64 tray-pending.svg -o tray-pending.png
cp 128x128.png ../ui/icon.png
