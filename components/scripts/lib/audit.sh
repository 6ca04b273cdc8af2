# shellcheck shell=bash
# The audit log: one line per deploy, switch, rollback, maintenance change and hook.
# Sourced by lib.sh (after layout.sh and the router file), never run.

# audit ACTION FIELDS RESULT: one line per deploy, switch, rollback and maintenance change.
# Returns non-zero (never exits) when the line cannot be written: a full disk must not stop
# the step that puts traffic back.
audit() {
  local when by=${SUDO_USER:-'\u'}
  { [ -d "${BG_AUDIT_LOG%/*}" ] || install -d -m 0755 "${BG_AUDIT_LOG%/*}"; } || return 1
  TZ=UTC printf -v when '%(%Y-%m-%dT%H:%M:%SZ)T' -1
  # \u expanded as a prompt: the user's name, as id -un prints it, without running id.
  [ -n "${SUDO_USER:-}" ] || by=${by@P}
  printf '%s %s %s result=%s by=%s\n' "$when" "$1" "$2" "$3" "$by" >>"$BG_AUDIT_LOG" || return 1
  # The lines people want to hear of are queued for notifications (events.sh); never fails.
  events_from_audit "$1" "$2" "$3"
}
# die_audited ACTION FIELDS RESULT MESSAGE: the message says so when the audit line could not be written.
die_audited() {
  local note=""
  audit "$1" "$2" "$3" 2>/dev/null || note="
(This could not be written to the audit log $BG_AUDIT_LOG: $(space_note "${BG_AUDIT_LOG%/*}").)"
  die "$4$note"
}
