# shellcheck shell=bash
# Apps sharing a host: names, domains, catch-all and ports each app claims.
# Sourced by lib.sh (after layout.sh and the router file), never run.

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
