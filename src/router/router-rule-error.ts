// The one error the router raises: a host rule, path rule, method or route set
// it cannot build. The message is `"<rule text>": <reason>` so the model's
// validation can prefix the field path (`frontends[3].hostname: …`) unchanged.

/** Stable code, never reused; scripts match on it rather than on the message. */
export const ROUTER_RULE_INVALID = 'KKH_ROUTER_RULE_INVALID';

export class RouterRuleError extends Error {
  readonly code = ROUTER_RULE_INVALID;
  /** The rule text as the operator wrote it. */
  readonly rule: string;
  /** Why it was refused, without the rule text. */
  readonly reason: string;

  constructor(rule: string, reason: string, options?: { cause?: unknown }) {
    super(`${JSON.stringify(rule)}: ${reason}`, options);
    this.name = 'RouterRuleError';
    this.rule = rule;
    this.reason = reason;
  }
}
