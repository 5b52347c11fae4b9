/**
 * What a provider's website says about a failed login becomes the credential's `statusMessage`, and with it
 * the record, the event log, webhook bodies, both API versions and the hosted page. It is the provider's
 * text, so it is tidied first: one line, a bounded length, and never a secret the customer gave us (a site
 * that echoes the submitted password in its error page would otherwise spread it everywhere).
 */
export const MAX_PROVIDER_MESSAGE_LENGTH = 300;

// Shorter values (a PIN field, say) would blank out ordinary words that happen to contain them.
const MIN_REDACTED_LENGTH = 4;
const REDACTED = '[redacted]';

const oneLine = (text: string) => text.replace(/[\p{Cc}\p{Cf}\s]+/gu, ' ').trim();
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const htmlEscaped = (text: string) => text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character] ?? character);

/** The message fit to store, or undefined when nothing is left (the state's own words are used then). */
export function providerMessage(text: string, secrets: readonly string[]): string | undefined {
  // A secret is looked for as given, as an HTML page would echo it, and as it reads once on one line.
  const forms = secrets.flatMap((secret) => [secret, htmlEscaped(secret), oneLine(secret)]).filter((form) => form.length >= MIN_REDACTED_LENGTH);
  const redact = (from: string) => forms.reduce((redacted, form) => redacted.split(form).join(REDACTED), from);
  let tidy = redact(oneLine(redact(text)));
  if (tidy.length > MAX_PROVIDER_MESSAGE_LENGTH) tidy = `${tidy.slice(0, MAX_PROVIDER_MESSAGE_LENGTH - 1)}…`;
  return tidy === '' ? undefined : tidy;
}
