/**
 * The marker lines of what the gateway prints for us, declared once: written by the
 * shell of facts-script.ts and read by its section parser and by the table aggregator.
 */

/** Header line of the table dump: `@@established-timeout <seconds>` (empty value if unreadable). */
export const ESTABLISHED_TIMEOUT_HEADER = '@@established-timeout';
/**
 * Second header line: `@@short-timer <unacknowledged> <max_retrans>` (seconds). While data is
 * unacknowledged, after too many retransmissions or with a zero window, the kernel gives an
 * ESTABLISHED entry this short timer instead of the ESTABLISHED timeout: its remaining time
 * then says nothing about how long it has been idle.
 */
export const SHORT_TIMER_HEADER = '@@short-timer';
/** The table dump's header lines, in the order the dump prints them. */
export const TABLE_DUMP_HEADERS = [ESTABLISHED_TIMEOUT_HEADER, SHORT_TIMER_HEADER] as const;

/**
 * Facts script sections:
 *
 *   @@section <name>@@
 *   <output>
 *   @@end <name> rc=<exit status>@@
 *
 * and `@@missing <command>@@` as the only content line of a section whose command is not installed.
 */
export const SECTION_BEGIN = '@@section';
export const SECTION_END = '@@end';
export const SECTION_MISSING = '@@missing';
/** Closes each section marker line. */
export const MARKER_CLOSE = '@@';

export const SECTION_BEGIN_LINE = new RegExp(`^${SECTION_BEGIN} (\\S+)${MARKER_CLOSE}$`);
export const SECTION_END_LINE = new RegExp(`^${SECTION_END} (\\S+) rc=(\\d+)${MARKER_CLOSE}$`);
export const SECTION_MISSING_LINE = new RegExp(`^${SECTION_MISSING} (\\S+)${MARKER_CLOSE}$`);

/**
 * A saved file (`conntrack-ops collect-script`, run on the gateway; `conntrack-ops analyze`):
 *
 *   @@conntrack-ops-saved <format version>@@
 *   @@collected-at <UTC time on the gateway, ISO 8601>@@
 *   <the facts script's sections>
 *   @@table-dump@@
 *   <the table dump's stdout>
 *   @@end table-dump rc=<exit status>@@
 *   @@section table-dump-stderr@@
 *   <its stderr: "N flow entries have been shown.", or why it failed>
 *   @@end table-dump-stderr rc=0@@
 */
export const SAVED_FORMAT_VERSION = 1;
export const SAVED_MAGIC = '@@conntrack-ops-saved';
export const SAVED_COLLECTED_AT = '@@collected-at';
export const SAVED_TABLE_DUMP_BEGIN = '@@table-dump@@';
export const SAVED_DUMP_STDERR = 'table-dump-stderr';
export const SAVED_MAGIC_LINE = new RegExp(`^${SAVED_MAGIC} (\\d+)${MARKER_CLOSE}$`);
export const SAVED_COLLECTED_AT_LINE = new RegExp(`^${SAVED_COLLECTED_AT} (\\S*)${MARKER_CLOSE}$`);
export const SAVED_TABLE_DUMP_END_LINE = new RegExp(`^${SECTION_END} table-dump rc=(\\d+)${MARKER_CLOSE}$`);
