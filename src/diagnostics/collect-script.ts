/**
 * The collect script: what a check runs on a gateway, as ONE read-only POSIX sh script that
 * writes everything to its standard output, for gateways the bot cannot reach:
 *
 *   conntrack-ops collect-script > collect.sh
 *   ssh root@gw sh -s < collect.sh > gw-3.saved
 *   conntrack-ops analyze gw-3.saved
 *
 * It is FACTS_SCRIPT and TABLE_DUMP_COMMAND verbatim (the same text a live check sends), one
 * after the other, between the saved-file markers of dump-format.ts. Everything sits in one
 * function that runs with stdin from /dev/null: `sh -s` reads the script from stdin, and no
 * command inside may eat the rest of it.
 */
import {
  MARKER_CLOSE,
  SAVED_COLLECTED_AT,
  SAVED_FORMAT_VERSION,
  SAVED_MAGIC,
  SAVED_DUMP_STDERR,
  SAVED_TABLE_DUMP_BEGIN,
  SECTION_BEGIN,
  SECTION_END,
} from './dump-format.js';
import { FACTS_SCRIPT, FACTS_SCRIPT_VERSION, TABLE_DUMP_COMMAND } from './facts-script.js';

export const COLLECT_SCRIPT = `# conntrack-ops collect script (saved format ${SAVED_FORMAT_VERSION}, facts script v${FACTS_SCRIPT_VERSION}).
# Read-only: reads /proc and /sys, lists rules, counters and the conntrack table; changes nothing.
# Run it as root (or as a user with the conntrack-ops sudo helper: conntrack-ops sudo-helper) and keep its output:
#   ssh root@GATEWAY sh -s < collect.sh > GATEWAY.saved
# then: conntrack-ops analyze GATEWAY.saved
conntrack_ops_collect() {
printf '${SAVED_MAGIC} %s${MARKER_CLOSE}\\n' ${SAVED_FORMAT_VERSION}
printf '${SAVED_COLLECTED_AT} %s${MARKER_CLOSE}\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
(
${FACTS_SCRIPT}
)
printf '${SAVED_TABLE_DUMP_BEGIN}\\n'
# the dump's stderr is kept apart (mixed in, conntrack's buffered stdout would be cut mid-line by it)
{ e=$( { ( ${TABLE_DUMP_COMMAND} ) 2>&1 1>&3 3>&-; } ); r=$?; } 3>&1
printf '\\n${SECTION_END} table-dump rc=%s${MARKER_CLOSE}\\n${SECTION_BEGIN} ${SAVED_DUMP_STDERR}${MARKER_CLOSE}\\n%s\\n${SECTION_END} ${SAVED_DUMP_STDERR} rc=0${MARKER_CLOSE}\\n' "$r" "$e"
}
conntrack_ops_collect </dev/null
`;
