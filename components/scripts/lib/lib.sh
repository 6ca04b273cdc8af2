# shellcheck shell=bash
# Shared helpers for bluegreen's host scripts. Sourced, never run.
# The helpers a switch calls are bash builtins where they can be (no date, sed, head or
# dirname): under load every fork and exec competes with the router and the app for the
# CPU, and the switch is a few dozen of them (`npm run bench -- --peers` measures it).
BG_LIB_DIR=${BASH_SOURCE[0]%/*}
[ "$BG_LIB_DIR" != "${BASH_SOURCE[0]}" ] || BG_LIB_DIR=.
# shellcheck source=/dev/null
. "$BG_LIB_DIR/layout.sh"
# The router seam: router-nginx.sh or router-haproxy.sh (the same functions).
# shellcheck source=/dev/null
. "$BG_LIB_DIR/router-${BG_ROUTER:-nginx}.sh"

log() { printf 'bluegreen: %s\n' "$*" >&2; }
die() { printf 'bluegreen: error: %s\n' "$*" >&2; exit 1; }

# audit ACTION FIELDS RESULT: one line per deploy, switch, rollback and maintenance change.
# Returns non-zero (never exits) when the line cannot be written: a full disk must not stop
# the step that puts traffic back.
audit() {
  local when
  { [ -d "${BG_AUDIT_LOG%/*}" ] || install -d -m 0755 "${BG_AUDIT_LOG%/*}"; } || return 1
  TZ=UTC printf -v when '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  printf '%s %s %s result=%s by=%s\n' "$when" "$1" "$2" "$3" "${SUDO_USER:-$(id -un)}" >>"$BG_AUDIT_LOG" || return 1
}
# die_audited ACTION FIELDS RESULT MESSAGE: the message says so when the audit line could not be written.
die_audited() {
  local note=""
  audit "$1" "$2" "$3" 2>/dev/null || note="
(This could not be written to the audit log $BG_AUDIT_LOG: $(space_note "${BG_AUDIT_LOG%/*}").)"
  die "$4$note"
}

# ---- Disk space ---------------------------------------------------------------------------

# free_kib PATH: KiB free on PATH's filesystem for root (who may use the blocks reserved for it).
free_kib() {
  local f b
  read -r f b < <(stat -f -c '%f %S' "$1" 2>/dev/null) || return 1
  echo $((f * b / 1024))
}
# space_note PATH: "the filesystem of PATH (mounted on M) has N KiB free".
space_note() { echo "the filesystem of $1 (mounted on $(df -P "$1" 2>/dev/null | awk 'NR == 2 { print $6 }')) has $(free_kib "$1" || echo "an unknown number of") KiB free"; }
# need_space PATH KIB WHAT: fails, naming the filesystem and what is needed, when PATH has less than KIB free.
need_space() {
  local have
  have=$(free_kib "$1") || return 0
  [ "$have" -ge "$2" ] || {
    SPACE_ERROR="$(space_note "$1"); $3 needs $2 KiB there"
    return 1
  }
}
# shellcheck disable=SC2034 # read by the callers of need_space
SPACE_ERROR=""
# The switch keeps 1 MiB of the state filesystem in a file of its own while it has room, and
# frees it when it must put traffic back on a disk that filled meanwhile: a rename, a record
# and a line of audit need a few blocks.
BG_RESERVE=$BG_STATE_DIR/.space-reserve
keep_reserve() {
  [ ! -f "$BG_RESERVE" ] || return 0
  need_space "$BG_STATE_DIR" 4096 "the reserve" || return 0
  { head -c 1048576 /dev/zero >"$BG_RESERVE.new" && mv -f "$BG_RESERVE.new" "$BG_RESERVE"; } 2>/dev/null || rm -f "$BG_RESERVE.new"
}
release_reserve() {
  [ -f "$BG_RESERVE" ] && ! need_space "$BG_STATE_DIR" 256 "putting traffic back" || return 0
  log "the state filesystem is full ($(space_note "$BG_STATE_DIR")): freeing bluegreen's 1 MiB reserve to put traffic back"
  rm -f "$BG_RESERVE"
}

check_color() {
  case "$1" in blue|green) ;; *) die "colour must be blue or green (got '$1')" ;; esac
}
other_color() { if [ "$1" = blue ]; then echo green; else echo blue; fi; }

# now_ms: milliseconds since the epoch; now_s: seconds (bash 5's EPOCHREALTIME, else date).
now_ms() {
  local t=${EPOCHREALTIME:-}
  t=${t/[.,]/}
  if [[ $t =~ ^[0-9]{16,}$ ]]; then echo "${t:0:-3}"; else date +%s%3N; fi
}
now_s() { printf '%(%s)T\n' -1; }

# take_lock FILE WAIT_S [HOLD_S WHAT]: serialize with every other bluegreen step on this host.
# The lock is held by fd 9 until the script exits, so it is never released early. The holder
# writes what it is and how long it may hold the lock (HOLD_S: a switch with a long watch or
# hooks holds it for up to an hour); a waiter waits WAIT_S, or for as long as the holder said it
# may need plus a minute (BG_LOCK_MARGIN, for tests), whichever is longer, and then names the holder.
take_lock() {
  local file=$1 wait=$2 hold=${3:-$2} what=${4:-${0##*/}} start deadline until
  start=$(now_s)
  exec 9>"$file"
  until flock -w 1 9; do
    until=$(field "$file.holder" until)
    deadline=$((start + wait))
    [[ ! $until =~ ^[0-9]+$ ]] || [ $((until + ${BG_LOCK_MARGIN:-60})) -le "$deadline" ] || deadline=$((until + ${BG_LOCK_MARGIN:-60}))
    if [ "$(now_s)" -ge "$deadline" ]; then
      die "another bluegreen operation ($(field "$file.holder" what | grep . || echo unknown), pid $(field "$file.holder" pid | grep . || echo unknown), since $(field "$file.holder" since | grep . || echo unknown)) has held $file for over $(($(now_s) - start)) s, longer than it said it may; look for it with: fuser -v $file"
    fi
  done
  lock_holder "$file" "$hold" "$what"
}
# lock_holder FILE HOLD_S WHAT: says (again) what holds the lock and for how long it may.
lock_holder() {
  { printf 'pid=%s\nwhat=%s\nsince=%s\nuntil=%s\n' "$$" "$3" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(($(now_s) + $2))" >"$1.holder.new" &&
    mv -f "$1.holder.new" "$1.holder"; } 2>/dev/null || rm -f "$1.holder.new"
}

# atomic_link TARGET LINK: point LINK at TARGET with one rename(2); there is never a moment without a link.
# Each step is checked (&&): it runs in exit traps and conditions too, where set -e does not stop it.
atomic_link() {
  local tmp="$2.new.$$"
  { ln -sfn "$1" "$tmp" && mv -Tf "$tmp" "$2"; } || {
    rm -f "$tmp"
    return 1
  }
}

# live_color: the colour the live link points at on this host, or nothing (a new host).
live_color() {
  local target
  target=$(readlink "$BG_LIVE_LINK" 2>/dev/null) || return 0
  case "$target" in */colors/blue) echo blue ;; */colors/green) echo green ;; esac
}
# set_live COLOR: one rename(2). nginx tests the link on every request; HAProxy is told
# through its runtime API (router_sync). Neither reloads.
set_live() {
  { [ -d "$BG_STATE_DIR/colors/$1" ] || install -d -m 0755 "$BG_STATE_DIR/colors/$1"; } &&
    { [ -f "$BG_STATE_DIR/colors/$1/$1" ] || : >"$BG_STATE_DIR/colors/$1/$1"; } &&
    atomic_link "$BG_STATE_DIR/colors/$1" "$BG_LIVE_LINK" && router_sync
}

# shared_version FILE TAG: N from a "# TAG N" line of a file every app shares; nothing if none.
shared_version() { { sed -n "s/^# $2 \([0-9][0-9]*\)$/\1/p" "$1" 2>/dev/null || true; } | head -n 1; }
record_active() {
  { printf '%s\n' "$1" >"$BG_ACTIVE_FILE.new" && mv -f "$BG_ACTIVE_FILE.new" "$BG_ACTIVE_FILE"; } || {
    rm -f "$BG_ACTIVE_FILE.new"
    return 1
  }
}
# field FILE KEY: the value of the first KEY=... line of a record file; nothing when the
# file or the key is missing.
field() {
  local line
  { [ -f "$1" ] && [ -r "$1" ]; } || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line == "$2="* ]]; then
      printf '%s\n' "${line#"$2="}"
      return 0
    fi
  done <"$1"
}

slot_dir() { echo "$BG_STATE_DIR/slots/$1"; }

# slot_curl COLOR PATH [CURL_ARGS...]: a request straight to the slot, bypassing nginx.
slot_curl() {
  local color=$1 path=$2 listen
  shift 2
  listen=$(cat "$(slot_dir "$color")/listen" 2>/dev/null) || return 1
  case "$listen" in
    unix:*) curl --unix-socket "${listen#unix:}" "$@" "http://$color$path" ;;
    *) curl "$@" "http://$listen$path" ;;
  esac
}

# slot_ready COLOR PATH: 0 when the slot answers 2xx on its readiness path.
slot_ready() {
  slot_curl "$1" "$2" -fsS -o /dev/null --max-time 3 2>/dev/null
}

journal_tail() {
  journalctl -u "$BG_NS@$1" -n "${2:-25}" --no-pager -o short-iso 2>&1 | sed 's/^/    /' || true
}

# recorded KEY COLOR: a field of the slot's last successful deploy record.
recorded() { field "$(slot_dir "$2")/deployed" "$1"; }

# A live slot's config change waits here (env file, unit, record; mode 0700) until the slot is idle.
pending_dir() { echo "$BG_ENV_DIR/$1.pending"; }

# with_deadline SECONDS WHAT COMMAND...: runs COMMAND, killed after SECONDS with a message that names WHAT.
with_deadline() {
  local s=$1 what=$2 rc=0
  shift 2
  timeout --kill-after=10 "$s" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then die "$what did not finish within $s s and was stopped"; fi
  return "$rc"
}

# wait_ready SLOT PATH TIMEOUT: until the slot answers 2xx on PATH; fails with its journal tail.
wait_ready() {
  local deadline=$(($(now_s) + $3))
  until slot_ready "$1" "$2"; do
    if [ "$(now_s)" -ge "$deadline" ] || systemctl is-failed -q "$BG_NS@$1"; then
      die "slot $1 ($(field "$(slot_dir "$1")/current.record" version)) did not become ready: GET $2 on $(cat "$(slot_dir "$1")/listen") gave no 2xx within $3 s (unit $(systemctl is-active "$BG_NS@$1" 2>/dev/null || true)).
Last journal lines of $BG_NS@$1:
$(journal_tail "$1")"
    fi
    sleep 0.5
  done
}

# slot_apply SLOT DIR: runs SLOT the way DIR says (record, env, unit) and waits for readiness.
# Every step is checked: catch_up calls it in a condition, where set -e does not stop it, and a
# full disk must not leave a slot restarted with its old env under a record of the new one.
# Only for a slot that takes no public traffic. The record has version, listen,
# health_path and health_timeout; the release must be on the host.
slot_apply() {
  local slot=$1 src=$2 sdir version listen
  sdir=$(slot_dir "$slot")
  version=$(field "$src/record" version)
  listen=$(field "$src/record" listen)
  [ -n "$(release_sha "$version")" ] || die "release $version is not on the host"
  install -d -m 0755 "$sdir" || return 1
  cp "$src/record" "$sdir/current.record" || return 1
  install -m 0600 -o root -g root "$src/env" "$BG_ENV_DIR/$slot.env" || return 1
  install -m 0644 "$src/unit" "$BG_UNIT_DIR/$BG_NS@$slot.service" || return 1
  with_deadline 120 "systemctl daemon-reload" systemctl daemon-reload || return 1
  atomic_link "$BG_RELEASES_DIR/$version" "$sdir/current" || return 1
  printf '%s\n' "$listen" >"$sdir/listen" || return 1
  # Restart first, then tell nginx how the slot listens: only the preview listener reaches an idle slot.
  systemctl enable -q "$BG_NS@$slot" || return 1
  # restart drains the old process (SIGTERM) before the new one starts.
  with_deadline 900 "restarting $BG_NS@$slot" systemctl restart "$BG_NS@$slot" || return 1
  case "$listen" in unix:*) rm -f "$sdir/tcp" ;; *) : >"$sdir/tcp" ;; esac || return 1
  router_sync || return 1
  wait_ready "$slot" "$(field "$src/record" health_path)" "$(field "$src/record" health_timeout)" || return 1
  cp "$src/record" "$sdir/deployed" || return 1
}

# same_run RECORD_A RECORD_B: both describe the same process (version, env, unit, listen).
same_run() {
  local k
  for k in version env unit listen; do
    [ "$(field "$1" "$k")" = "$(field "$2" "$k")" ] || return 1
  done
}

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

# slot_answer COLOR PATH: what the slot answers on PATH when asked as switch.sh's gate asks
# (slot_ready: straight to the slot, curl -f, 3 s): "HTTP 503", or "no answer (WHY)" with
# curl's own error. Returns curl's status: 0 when the gate would pass.
slot_answer() {
  local out rc=0
  out=$(slot_curl "$1" "$2" -fs -o /dev/null -w '%{http_code} %{errormsg}' --max-time 3 2>/dev/null) || rc=$?
  case "$out" in
    "") echo "no answer (no listen address in $(slot_dir "$1")/listen)" ;;
    "000 "*) echo "no answer (${out#000 }; curl exit $rc)" ;;
    *) echo "HTTP ${out%% *}" ;;
  esac
  return "$rc"
}

# health_gate COLOR PATH TIMEOUT: the readiness gate of a switch to COLOR, asked until it
# passes or TIMEOUT s have gone by. On failure prints the last answer (slot_answer), returns 1.
health_gate() {
  local deadline=$(($(now_s) + $3)) answer
  until answer=$(slot_answer "$1" "$2"); do
    if [ "$(now_s)" -ge "$deadline" ]; then
      printf '%s\n' "$answer"
      return 1
    fi
    sleep 0.5
  done
}

# mib BYTES [up]: whole MiB, rounded down (or up).
mib() { if [ "${2:-}" = up ]; then echo $((($1 + 1048575) / 1048576)); else echo $(($1 / 1048576)); fi; }

# need_release_space DIR BYTES WHAT: dies unless the filesystem holding DIR has BYTES free plus a margin
# (64 MiB, or a tenth of BYTES when that is more) left for the host: a release that fills the
# disk would fail half-written, and the host's logs and the other slot need room too.
need_release_space() {
  local bytes=$2 margin avail mount
  margin=$((bytes / 10))
  [ "$margin" -ge $((64 << 20)) ] || margin=$((64 << 20))
  avail=$(df --output=avail -B1 "$1" | tail -n 1 | tr -d ' ')
  [ "$avail" -lt $((bytes + margin)) ] || return 0
  mount=$(df --output=target "$1" | tail -n 1)
  die "not enough free space on $mount for $3 ($(mib "$bytes" up) MiB): $(mib "$avail") MiB free, $(mib $((bytes + margin)) up) MiB needed with a $(mib "$margin" up) MiB margin; nothing was stored and the slots are untouched. Free space on $mount (releases no slot uses are in $BG_RELEASES_DIR), then run pulumi up again."
}

# ensure_release VERSION SHA256 SOURCE_FILE SOURCE_URL_FILE KIND MAX_MB: stores release VERSION
# once, verified against SHA256, from an uploaded file or an https URL read from a file (a URL
# may hold a token, so it never reaches a command line). KIND "binary" stores VERSION/app;
# "bundle" unpacks a .tar.gz into VERSION/ (unpack_bundle). A version is immutable.
# The caller holds BG_RELEASE_LOCK (deploy-slot.sh, prune.sh), so an .incoming.* directory found
# here was left by a killed store and goes first. A subshell: its EXIT trap removes this store's
# .incoming.* on every failure (a full disk in cp or tar too), without relying on set -e, which
# a caller's `if` would switch off. Free space is checked before the copy and before the unpack.
ensure_release() (
  local version=$1 sha=$2 file=$3 url_file=$4 kind=${5:-binary} max_mb=${6:-1024} dir have got incoming="" stale
  trap '[ -z "$incoming" ] || rm -rf "$incoming"' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  dir="$BG_RELEASES_DIR/$version"
  have=$(release_sha "$version")
  if [ -n "$have" ]; then
    [ "$have" = "$sha" ] && return 0
    die "release $version is already on the host with sha256 $have, but the artifact is now $sha.
Versions are immutable here: give the new build a new version string. (With the artifact \"build\": the source changed since $version was first built, or it was built on another machine from other source; see the README, \"Versions and builds\".)"
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

# section NAME: the lines of section NAME of the sections on stdin (render.ts renderBundle).
section() {
  awk -v want="$1" '/^#bluegreen-section /{ on = ($2 == want); next } on'
}

# ensure_commands COMMAND=PACKAGE...: installs with apt the packages whose command is missing.
ensure_commands() {
  local pair missing=()
  for pair in "$@"; do command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  with_deadline 900 "apt-get update" apt-get -o DPkg::Lock::Timeout=300 update -q
  with_deadline 900 "apt-get install ${missing[*]}" \
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
}

# read_sections DIR: splits stdin (render.ts renderBundle) into DIR/<section name> files.
read_sections() {
  awk -v dir="$1" '/^#bluegreen-section /{ f = dir "/" $2; printf "" > f; next } f { print > f }' -
}

# ---- HTTPS -------------------------------------------------------------------------------

# nginx_group: the group nginx's workers run as; they open the certificate at each handshake.
nginx_group() { if getent group www-data >/dev/null; then echo www-data; else echo nginx; fi; }

# cert_field FILE FIELD: serial, enddate or subject of the first certificate in FILE.
cert_field() { openssl x509 -noout "-$2" -in "$1" | sed 's/^[^=]*=//'; }

# cert_names FILE: the certificate's DNS names, sorted, space-separated.
cert_names() {
  openssl x509 -noout -ext subjectAltName -in "$1" 2>/dev/null | tr ',' '\n' | sed -n 's/^ *DNS://p' | sort | tr '\n' ' ' | sed 's/ $//'
}

# tls_status KEY VALUE...: sets fields of the TLS status record bluegreen-status shows.
tls_status() {
  local f="$BG_TLS_DIR/status" tmp
  install -d -m 0755 "$BG_TLS_DIR"
  tmp=$(mktemp "$f.XXXXXX")
  [ -f "$f" ] && cp "$f" "$tmp"
  while [ $# -ge 2 ]; do
    sed -i "/^$1=/d" "$tmp"
    printf '%s=%s\n' "$1" "$2" >>"$tmp"
    shift 2
  done
  chmod 0644 "$tmp"
  mv -f "$tmp" "$f"
}

# tls_install CHAIN KEY SOURCE: makes CHAIN (leaf first) and KEY the served certificate with
# one rename(2), then tells the router (router_tls_install: nginx opens the file at each
# handshake; HAProxy is handed it over its runtime API), so nothing is reloaded and no
# connection is closed; new handshakes get the new certificate. If the router does not take
# it, the link goes back to the certificate served before, and the status and the audit log
# say so. TLS_INSTALL_NOTE says what was done. The host lock is held from the rename to the
# router's answer: another app's reload in between would load the new file behind our back.
TLS_INSTALL_NOTE=""
tls_install() {
  local chain=$1 key=$2 source=$3 dir group keep prev why
  local leaf_pub key_pub
  leaf_pub=$(openssl x509 -noout -pubkey -in "$chain" | openssl pkey -pubin -outform DER | sha256sum)
  key_pub=$(openssl pkey -in "$key" -pubout -outform DER | sha256sum)
  [ "$leaf_pub" = "$key_pub" ] || die "the private key does not belong to the certificate ($(cert_field "$chain" subject)); nothing was installed"
  group=$(router_tls_group)
  install -d -m 0755 "$BG_TLS_DIR"
  dir=$(mktemp -d "$BG_TLS_DIR/gen-$(date -u +%Y%m%dT%H%M%SZ)-XXXXXX")
  chmod 0750 "$dir"
  chgrp "$group" "$dir"
  (umask 0137 && cat "$chain" "$key" >"$dir/cert.pem")
  chgrp "$group" "$dir/cert.pem"
  exec 7>"$BG_HOST_LOCK"
  flock -w 120 7 || die "another app's router change has held $BG_HOST_LOCK for over 120 s; the certificate was not installed"
  prev=$(readlink "$BG_TLS_DIR/live" 2>/dev/null || true)
  atomic_link "$dir" "$BG_TLS_DIR/live"
  # shellcheck disable=SC2034 # read by tls-config.sh and tls-renew.sh
  if ! TLS_INSTALL_NOTE=$(router_tls_install); then
    if [ -n "$prev" ]; then atomic_link "$prev" "$BG_TLS_DIR/live"; else rm -f "$BG_TLS_DIR/live"; fi
    rm -rf "$dir"
    why="$(router_name) did not take the new certificate ($(cert_field "$chain" serial)), so the one served before stays in place"
    tls_status last_attempt "$(date -u +%Y-%m-%dT%H:%M:%SZ)" last_result failed last_error "$why"
    audit tls-install "serial=$(cert_field "$chain" serial)" failed
    die "$why"
  fi
  exec 7>&-
  tls_status source "$source" serial "$(cert_field "$dir/cert.pem" serial)" \
    not_after "$(date -u -d "$(cert_field "$dir/cert.pem" enddate)" +%Y-%m-%dT%H:%M:%SZ)" \
    names "$(cert_names "$dir/cert.pem")" installed_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # Keep the live certificate and the one before it.
  keep=$(readlink "$BG_TLS_DIR/live")
  find "$BG_TLS_DIR" -mindepth 1 -maxdepth 1 -type d -name 'gen-*' ! -path "$keep" -printf '%T@ %p\n' |
    sort -rn | tail -n +2 | cut -d' ' -f2- | xargs -r rm -rf
}

# cert_covers PEM DOMAINS: the certificate in PEM names every domain (a wildcard covers one label).
cert_covers() {
  local names d list
  [ -f "$1" ] || return 1
  names=" $(cert_names "$1") "
  read -r -a list <<<"$2"
  for d in "${list[@]}"; do
    case "$names" in *" $d "*) continue ;; esac
    case "$d" in \*.*) return 1 ;; esac
    case "$names" in *" *.${d#*.} "*) continue ;; esac
    return 1
  done
}

# tls_served_serial SNI: the serial of the certificate the router serves on 127.0.0.1:443 to a new handshake.
tls_served_serial() {
  timeout 10 openssl s_client -connect "127.0.0.1:${BG_HTTPS_PORT:-443}" -servername "$1" </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}

# tls_field KEY: a field of the TLS status record.
tls_field() { field "$BG_TLS_DIR/status" "$1"; }

# ---- Apps sharing a host -------------------------------------------------------------------

# check_claims OWNER DOMAINS PORTS: refuses, before anything changes, an app name another stack
# owns, a domain another app serves, a second catch-all app (no domains) and a port in use.
# PORTS is "preview check blue green [acme]" in that order. Caller holds the host lock.
check_claims() {
  local owner=$1 domains=$2 ports=$3 f app d p i
  local keys=(previewPort checkPort bluePort greenPort acmePort) names
  # Split without globbing: a wildcard domain is "*.example.com".
  read -r -a names <<<"$domains"
  for f in "$BG_CLAIMS_DIR"/*; do
    [ -f "$f" ] || continue
    app=$(field "$f" app)
    if [ "$(basename "$f")" = "$BG_NS" ]; then
      [ "$(field "$f" owner)" = "$owner" ] ||
        die "app '$BG_APP' already exists on this host, deployed by $(field "$f" owner); $owner cannot take it over. Choose another name: pulumi config set appName NAME. (If this stack is its owner under a new name or backend, delete $f on the host.) Nothing was changed."
      continue
    fi
    if [ "$(field "$f" router | grep . || echo nginx)" != "$BG_ROUTER" ]; then
      die "app '$app' (stack $(field "$f" owner)) on this host is served by $(field "$f" router | grep . || echo nginx); every app on a host uses the same router: pulumi config set router $(field "$f" router | grep . || echo nginx). Nothing was changed."
    fi
    if [ "$(field "$f" owner)" = "$owner" ]; then
      die "stack $owner already deploys app '$app' on this host, so it cannot also be '$BG_APP': an app is not renamed in place. Set appName back to $app, or destroy that app first (pulumi destroy), then deploy this name. Nothing was changed."
    fi
    for d in "${names[@]}"; do
      if grep -qxF "domain=$d" "$f"; then
        die "domain $d is already served by app '$app' (stack $(field "$f" owner)) on this host. Nothing was changed."
      fi
    done
    if [ -z "$domains" ] && [ "$(field "$f" catchall)" = yes ]; then
      die "app '$app' (stack $(field "$f" owner)) already answers every name on this host, having no domains; give this app its domains: pulumi config set --path 'domains[0]' example.com. Nothing was changed."
    fi
    i=0
    for p in $ports; do
      if grep -qxF "port=$p" "$f"; then
        die "bluegreen:${keys[$i]} $p is already used by app '$app' (stack $(field "$f" owner)) on this host; choose a free one: pulumi config set ${keys[$i]} PORT. Nothing was changed."
      fi
      i=$((i + 1))
    done
  done
}

# write_claims OWNER DOMAINS PORTS: records this app's claims (one rename).
write_claims() {
  local d p names
  read -r -a names <<<"$2"
  {
    printf 'app=%s\nowner=%s\ncatchall=%s\nrouter=%s\n' "$BG_APP" "$1" "$([ -z "$2" ] && echo yes || echo no)" "$BG_ROUTER"
    for d in "${names[@]}"; do printf 'domain=%s\n' "$d"; done
    for p in $3; do printf 'port=%s\n' "$p"; done
  } >"$BG_CLAIMS_FILE.new"
  mv -f "$BG_CLAIMS_FILE.new" "$BG_CLAIMS_FILE"
}

# ---- Hooks -----------------------------------------------------------------------------------

# scrub_secrets ENV_FILE NAMES: copies stdin to stdout with the values of the env file's
# variables NAMES (space-separated) replaced by [secret NAME]. The env file is render.ts's
# renderSlotEnv: NAME="value" with \\ and \" escaped.
scrub_secrets() {
  awk -v names=" $2 " '
    FNR == NR {
      eq = index($0, "=")
      if (eq < 2) next
      name = substr($0, 1, eq - 1)
      if (index(names, " " name " ") == 0) next
      v = substr($0, eq + 2, length($0) - eq - 2)
      out = ""
      for (i = 1; i <= length(v); i++) {
        ch = substr(v, i, 1)
        if (ch == "\\" && i < length(v)) { i++; ch = substr(v, i, 1) }
        out = out ch
      }
      if (out != "") { n++; val[n] = out; label[n] = "[secret " name "]" }
      next
    }
    FNR == 1 {
      # Longest first: a value that contains another must go whole.
      for (i = 2; i <= n; i++)
        for (k = i; k > 1 && length(val[k]) > length(val[k - 1]); k--) {
          t = val[k]; val[k] = val[k - 1]; val[k - 1] = t
          t = label[k]; label[k] = label[k - 1]; label[k - 1] = t
        }
    }
    {
      line = $0
      for (k = 1; k <= n; k++) {
        res = ""
        while ((p = index(line, val[k])) > 0) {
          res = res substr(line, 1, p - 1) label[k]
          line = substr(line, p + length(val[k]))
        }
        line = res line
      }
      print line
    }' "$1" -
}

# run_hook NAME SLOT TEXT TIMEOUT SECRET_NAMES: runs TEXT with `sh -e` as SLOT runs: its user
# and group, env file, data directory and sandbox, all read from the slot's installed unit,
# from the slot's release directory, as a transient oneshot unit. The hook's unit gets no
# ExecStartPre and no ReadWritePaths of the slot's socket directory, so it never touches that.
# Not `systemd-run --wait --pipe`: those need the D-Bus system bus, which a minimal host
# lacks; a oneshot start job blocks until the command ends over systemd's private socket.
# The unit's output goes to a FIFO (opened by systemd as root, before the sandbox applies),
# read by a reader that keeps only its last HOOK_OUTPUT_CAP bytes, so a hook that prints
# without end cannot fill the disk before hookTimeout stops it.
# Prints the output (secret values scrubbed) and appends it to the audit log; returns the
# hook's exit status and never exits itself. HOOK_OUTPUT holds the scrubbed output.
HOOK_OUTPUT=""
HOOK_OUTPUT_CAP=$((1024 * 1024))
run_hook() {
  local name=$1 slot=$2 text=$3 timeout=$4 secrets=$5 unitfile file out props=() line rc=0 version unit stamp state
  local fifo reader hold rd notes
  unitfile="$BG_UNIT_DIR/$BG_NS@$slot.service"
  unit="$BG_NS-$name-$slot"
  version=$(recorded version "$slot")
  HOOK_OUTPUT=""
  if [ ! -f "$unitfile" ]; then
    HOOK_OUTPUT="slot $slot has no unit ($unitfile), so $name cannot run as it"
    return 1
  fi
  # A switch killed while its hook ran leaves the hook running: never stop it halfway.
  state=$(systemctl show -p ActiveState --value "$unit.service" 2>/dev/null || true)
  case "$state" in activating | active | deactivating | reloading)
    HOOK_OUTPUT="$name from an earlier, interrupted run is still running ($unit.service, $state); wait for it to end (journalctl -fu $unit), then run pulumi up again"
    return 75
    ;;
  esac
  while IFS= read -r line; do
    case "$line" in
      # The slot's socket directory: the hook never writes there.
      "ReadWritePaths=-$BG_RUN_DIR/"*) ;;
      User=* | Group=* | EnvironmentFile=* | UMask=* | ReadWritePaths=* | NoNewPrivileges=* | \
        Protect* | Private* | Restrict* | LockPersonality=* | CapabilityBoundingSet=* | SystemCallArchitectures=*)
        props+=(-p "$line")
        ;;
    esac
  done < <(sed -n '/^\[Service\]/,/^\[/p' "$unitfile")
  # The script is the app user's to read; the output (it may hold secrets until scrubbed)
  # goes to the root-only env directory.
  install -d -m 0755 "$BG_STATE_DIR/hooks"
  file="$BG_STATE_DIR/hooks/$name.sh"
  out="$BG_ENV_DIR/hook-$name.out"
  printf '%s\n' "$text" >"$file.new"
  chmod 0644 "$file.new"
  mv -f "$file.new" "$file"
  systemctl reset-failed "$unit.service" >/dev/null 2>&1 || true
  fifo="$out.fifo"
  rm -f "$fifo" "$out"
  mkfifo -m 0600 "$fifo"
  # $hold keeps the pipe open for writing (opening a FIFO read-write never blocks on Linux),
  # so the read end opens at once, here, before anything can write, and the reader sees the end
  # only after the hook and this shell let go of it, even when the hook never ran. systemd
  # opens StandardOutput=file: with open(O_WRONLY). The reader does not keep take_lock's fd 9:
  # if this shell is killed, the next run gets the "still running" answer, not a held lock.
  exec {hold}<>"$fifo"
  exec {rd}<"$fifo"
  tail -c $((HOOK_OUTPUT_CAP + 1)) <&"$rd" >"$out" {rd}<&- {hold}>&- 9>&- &
  reader=$!
  exec {rd}<&-
  timeout --kill-after=10 $((timeout + 30)) systemd-run --quiet --unit="$unit" -p Type=oneshot \
    -p TimeoutStartSec="$timeout" -p TimeoutStopSec=10 -p StandardOutput="file:$fifo" -p StandardError=inherit \
    "${props[@]}" -p WorkingDirectory="$BG_STATE_DIR/slots/$slot/current" --setenv=BLUEGREEN_HOOK="$name" \
    -- /bin/sh -e "$file" </dev/null >/dev/null 2>"$out.run" {hold}>&- || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then systemctl stop "$unit.service" >/dev/null 2>&1 || true; fi
  exec {hold}>&-
  # The unit has ended, so its processes have closed the pipe; the bound is for a writer that
  # escaped the unit. Killed, the reader writes nothing, and a note says so.
  for _ in $(seq 1 300); do
    kill -0 "$reader" 2>/dev/null || break
    sleep 0.1
  done
  kill "$reader" 2>/dev/null || true
  notes=()
  wait "$reader" 2>/dev/null || notes+=("the output of $name was lost: something outside its unit kept the pipe open")
  rm -f "$fifo"
  # Only whole lines go to the scrubber, so it sees every secret value whole: a cut output loses
  # its first line, and a failed hook (perhaps killed mid-write) its unfinished last one.
  if [ "$(stat -c %s "$out" 2>/dev/null || echo 0)" -gt "$HOOK_OUTPUT_CAP" ]; then
    sed 1d "$out" >"$out.cut"
    mv -f "$out.cut" "$out"
    notes+=("$name printed over $((HOOK_OUTPUT_CAP / 1024)) KiB; only the end is kept")
  fi
  if [ -s "$out" ] && [ "$(tail -c 1 "$out" | wc -l)" -eq 0 ]; then
    if [ "$rc" -ne 0 ]; then
      sed -i '$d' "$out"
      notes+=("the unfinished last line of $name is not shown (it may have been cut inside a secret value)")
    else
      echo >>"$out"
    fi
  fi
  for line in "${notes[@]}"; do printf 'bluegreen: %s\n' "$line" >>"$out"; done
  if [ "$rc" -ne 0 ]; then
    case "$(systemctl show -p Result --value "$unit.service" 2>/dev/null || true)" in
      timeout) printf 'bluegreen: %s was stopped after %s s (bluegreen:hookTimeout)\n' "$name" "$timeout" >>"$out" ;;
    esac
    rc=$(systemctl show -p ExecMainStatus --value "$unit.service" 2>/dev/null || true)
    # No status: the unit never ran, and systemd-run's own message says why.
    if [ -z "$rc" ] || [ "$rc" = 0 ]; then
      rc=1
      cat "$out.run" >>"$out"
    fi
    systemctl reset-failed "$unit.service" >/dev/null 2>&1 || true
  fi
  rm -f "$out.run"
  HOOK_OUTPUT=$(scrub_secrets "$BG_ENV_DIR/$slot.env" "$secrets" <"$out" | tail -n 200) || true
  rm -f "$out"
  stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  if [ -n "$HOOK_OUTPUT" ]; then
    printf '%s\n' "$HOOK_OUTPUT" | sed "s/^/$stamp hook-output name=$name slot=$slot | /" >>"$BG_AUDIT_LOG"
  fi
  audit hook "name=$name slot=$slot version=${version:-none} exit=$rc" "$([ "$rc" -eq 0 ] && echo ok || echo failed)"
  if [ -n "$HOOK_OUTPUT" ]; then printf '%s\n' "$HOOK_OUTPUT" | sed "s/^/  $name| /"; fi
  return "$rc"
}
