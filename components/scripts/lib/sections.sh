# shellcheck shell=bash
# Sections on stdin (components/host/shell.ts renderBundle).
# Sourced by lib.sh (after layout.sh and the router file), never run.

# section NAME: the lines of section NAME of the sections on stdin (render.ts renderBundle).
section() {
  awk -v want="$1" '/^#bluegreen-section /{ on = ($2 == want); next } on'
}

# read_sections DIR: splits stdin (render.ts renderBundle) into DIR/<section name> files.
read_sections() {
  awk -v dir="$1" '/^#bluegreen-section /{ f = dir "/" $2; printf "" > f; next } f { print > f }' -
}
