/**
 * Patterns for free text we store and show back (names, references, descriptions). Control characters are
 * never part of such text and would reach logs, dashboards, key names and providers' forms. Patterns are
 * compiled by Ajv with the `u` flag (its default), which `\p{…}` needs.
 */
export const NO_CONTROL_CHARACTERS = '^[^\\p{Cc}]*$';

/** As `NO_CONTROL_CHARACTERS`, but a description may run over several lines. */
export const NO_CONTROL_CHARACTERS_BUT_LINE_BREAKS = '^(?:[\\t\\n\\r]|[^\\p{Cc}])*$';
