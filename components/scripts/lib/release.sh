# shellcheck shell=bash
# Releases on the host: stored once, verified, bundles unpacked safely.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# release_sha VERSION: the sha256 a stored release was verified against; nothing when it is not stored.
# (Releases stored before bundles keep it in VERSION/sha256 beside VERSION/app.)
release_sha() {
  local dir="$BG_RELEASES_DIR/$1"
  if [ -f "$dir/.bluegreen-sha256" ]; then
    cat "$dir/.bluegreen-sha256"
  elif [ -f "$dir/app" ]; then
    cat "$dir/sha256" 2>/dev/null || sha256sum "$dir/app" | cut -d' ' -f1
  fi
}

# ensure_release VERSION SHA256 SOURCE_FILE SOURCE_URL_FILE KIND MAX_MB: stores release VERSION
# once, verified against SHA256, from an uploaded file or an https URL read from a file (a URL
# may hold a token, so it never reaches a command line). KIND "binary" stores VERSION/app;
# "bundle" unpacks a .tar.gz into VERSION/ (unpack_bundle), at most MAX_MB MiB (the caller's:
# bluegreen:bundleMaxMegabytes; no limit of its own). A version is immutable.
# The caller holds BG_RELEASE_LOCK (deploy-slot.sh, prune.sh), so an .incoming.* directory found
# here was left by a killed store and goes first. A subshell: its EXIT trap removes this store's
# .incoming.* on every failure (a full disk in cp or tar too), without relying on set -e, which
# a caller's `if` would switch off. Free space is checked before the copy and before the unpack.
ensure_release() (
  local version=$1 sha=$2 file=$3 url_file=$4 kind=${5:-binary} max_mb=${6:-} dir have got incoming="" stale
  trap '[ -z "$incoming" ] || rm -rf "$incoming"' EXIT
  [ "$kind" != bundle ] || [ -n "$max_mb" ] || die "ensure_release: a bundle needs its MAX_MB"
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  dir="$BG_RELEASES_DIR/$version"
  have=$(release_sha "$version")
  if [ -n "$have" ]; then
    [ "$have" = "$sha" ] && return 0
    die "release $version is already on the host with sha256 $have, but the artifact is now $sha.
Versions are immutable here: give the new build a new version string. (With the artifact \"build\": the source changed since $version was first built, or it was built on another machine from other source; see docs/your-app.md, \"Versions and builds\".)"
  fi
  install -d -m 0755 "$BG_RELEASES_DIR" || die "cannot create $BG_RELEASES_DIR"
  while IFS= read -r -d '' stale; do
    rm -rf "$stale" || die "cannot remove $stale, left by an interrupted store"
    log "removed ${stale##*/}, left by an interrupted store"
  done < <(find "$BG_RELEASES_DIR" -mindepth 1 -maxdepth 1 -type d -name '.incoming.*' -print0)
  if [ -n "$url_file" ]; then
    need_release_space "$BG_RELEASES_DIR" 0 "downloading release $version"
  elif [ -n "$file" ] && [ -f "$file" ]; then
    need_release_space "$BG_RELEASES_DIR" "$(stat -c %s "$file")" "release $version's artifact"
  else
    die "release $version is not on the host and its uploaded artifact ${file:-(none)} is gone; run: pulumi up --refresh (or replace the upload step)"
  fi
  incoming=$(mktemp -d "$BG_RELEASES_DIR/.incoming.XXXXXX") || die "cannot create a directory in $BG_RELEASES_DIR"
  if [ -n "$url_file" ]; then
    # curl reads the URL from a config file, not argv, so ps never shows a token.
    if ! with_deadline 900 "downloading release $version" curl -fsSL --proto '=https' --retry 3 --max-time 600 \
      -o "$incoming/artifact" --config <(printf 'url = "%s"\n' "$(cat "$url_file")"); then
      die "could not download release $version (the URL is not shown: it may hold a token)"
    fi
  else
    cp "$file" "$incoming/artifact" || die "could not copy release $version's artifact from $file into $BG_RELEASES_DIR (see cp's message above); nothing was stored"
  fi
  got=$(sha256sum "$incoming/artifact" | cut -d' ' -f1)
  [ "$got" = "$sha" ] || die "release $version failed verification: expected sha256 $sha, got $got"
  install -d -m 0755 "$incoming/release" || die "cannot create $incoming/release"
  if [ "$kind" = bundle ]; then
    (unpack_bundle "$incoming/artifact" "$incoming/release" "$version" "$max_mb") || exit 1
  else
    # A rename, not a second copy: the artifact needs its space once.
    { mv -T "$incoming/artifact" "$incoming/release/app" && chmod 0755 "$incoming/release/app"; } ||
      die "could not install release $version's executable"
  fi
  { echo "$sha" >"$incoming/release/.bluegreen-sha256" && chmod 0644 "$incoming/release/.bluegreen-sha256"; } ||
    die "could not write $incoming/release/.bluegreen-sha256"
  # Left by a release that lost its record (never by a stored one): it is not a release.
  [ ! -e "$dir" ] || rm -rf "$dir"
  mv -T "$incoming/release" "$dir" || die "could not move release $version into place"
  audit release "version=$version sha256=$sha kind=$kind" ok
  log "release $version stored (sha256 $sha, $kind)"
)

# bundle_check MAX_BYTES: reads `tar --list --verbose --quoting-style=c` and prints the first
# reason the archive cannot be a release (exit 1), or nothing. Names stay C-quoted: "/" and "."
# never are. Listed sizes count too: a sparse file is small in the archive, not on disk.
bundle_check() {
  awk -v max="$1" -v maxn=100000 '
    function fail(msg) { print msg; bad = 1; exit 1 }
    function norm(p,   n, parts, i, k, st, out) {
      n = split(p, parts, "/"); k = 0
      for (i = 1; i <= n; i++) {
        if (parts[i] == "" || parts[i] == ".") continue
        if (parts[i] == "..") { if (k == 0) return "/.."; k--; continue }
        st[++k] = parts[i]
      }
      out = ""
      for (i = 1; i <= k; i++) out = out (i > 1 ? "/" : "") st[i]
      return out
    }
    {
      line = $0; t = substr(line, 1, 1)
      if (!match(line, /"([^"\\]|\\.)*"/)) fail("cannot read this line of the listing: " line)
      name = substr(line, RSTART + 1, RLENGTH - 2); rest = substr(line, RSTART + RLENGTH)
      target = ""
      if (match(rest, /"([^"\\]|\\.)*"/)) target = substr(rest, RSTART + 1, RLENGTH - 2)
      if (name ~ /^\//) fail("\"" name "\" has an absolute path")
      if (("/" name "/") ~ /\/\.\.\//) fail("\"" name "\" climbs out of the release directory with ..")
      n = norm(name)
      if (n == ".bluegreen-sha256") fail("\"" name "\" is a name bluegreen keeps for itself")
      if (t == "l") {
        dir = n
        if (!sub(/\/[^\/]*$/, "", dir)) dir = ""
        if (target ~ /^\// || norm(dir "/" target) == "/..")
          fail("the link \"" name "\" points out of the release directory (-> " target ")")
        if (n == "") fail("the link \"" name "\" would replace the release directory")
        links[n] = 1
      } else if (t == "h") {
        if (target ~ /^\// || ("/" target "/") ~ /\/\.\.\//)
          fail("the hard link \"" name "\" points out of the release directory (-> " target ")")
      } else if (t != "-" && t != "d") {
        what = "a special file"
        if (t == "c") what = "a character device"
        if (t == "b") what = "a block device"
        if (t == "p") what = "a fifo"
        if (t == "s") what = "a socket"
        fail("\"" name "\" is " what "; a bundle holds only files, directories and links")
      }
      names[NR] = n; raw[NR] = name
      if (t == "-") total += $3
      if (NR > maxn) fail("it holds more than " maxn " entries")
    }
    END {
      if (bad) exit 1
      if (total > max) { print "its files add up to more than " int(max / 1048576) " MiB (bluegreen:bundleMaxMegabytes)"; exit 1 }
      for (i = 1; i <= NR; i++) {
        p = names[i]
        while (sub(/\/[^\/]*$/, "", p))
          if (p in links) { print "\"" raw[i] "\" would be written through the link \"" p "\""; exit 1 }
      }
    }'
}

# unpack_bundle ARCHIVE DEST VERSION MAX_MB: unpacks a .tar.gz into the empty DEST, or refuses
# before anything is unpacked: a member with an absolute name or a "..", a link pointing
# out of DEST (or one that other members are written through), a device, fifo or socket,
# or more than MAX_MB MiB. Owners and set-id bits are not kept; everything is readable and
# nothing is writable but by root. After unpacking, every link is resolved once more.
unpack_bundle() {
  local archive=$1 dest=$2 version=$3 max=$(($4 * 1048576)) size listing problem link target root
  size=$({ gzip -dc <"$archive" 2>/dev/null || true; } | head -c $((max + 1)) | wc -c)
  [ "$size" -le "$max" ] || die "release bundle $version unpacks to more than $4 MiB (bluegreen:bundleMaxMegabytes); nothing was unpacked"
  need_release_space "$dest" "$size" "release bundle $version unpacked"
  if ! listing=$(tar --list --verbose --numeric-owner --quoting-style=c -zf "$archive" 2>/dev/null); then
    die "release bundle $version is not a readable .tar.gz: $(tar -tzf "$archive" 2>&1 >/dev/null | tail -n 3)"
  fi
  if ! problem=$(printf '%s\n' "$listing" | bundle_check "$max"); then
    die "release bundle $version: $problem; nothing was unpacked"
  fi
  (umask 022 && tar -xzf "$archive" -C "$dest" --no-same-owner --no-same-permissions --no-overwrite-dir) ||
    die "release bundle $version could not be unpacked (see tar's message above)"
  root=$(readlink -f "$dest")
  while IFS= read -r -d '' link; do
    target=$(realpath -m "$link")
    case "$target" in "$root" | "$root"/*) ;; *)
      die "release bundle $version: the link \"${link#"$dest"/}\" resolves out of the release directory (-> $(readlink "$link")); nothing was installed" ;;
    esac
  done < <(find "$dest" -type l -print0)
  chmod -R u+rwX,go+rX,go-w,a-st "$dest"
}
