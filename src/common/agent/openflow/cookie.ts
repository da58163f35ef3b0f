/**
 * Flow cookies: round (16 bits, 63..48) | category (8 bits, 47..40) | reserved (8 bits) |
 * object id (32 bits, 31..0). The round lets a restarted agent install a new generation of flows and
 * delete the previous one (by cookie and mask) once it has converged.
 */
import { ValidationError } from '../../util/errors.ts';

export const COOKIE_ROUND_MASK = 0xffff_0000_0000_0000n;
export const COOKIE_CATEGORY_MASK = 0x0000_ff00_0000_0000n;
export const COOKIE_ID_MASK = 0x0000_0000_ffff_ffffn;

export const COOKIE_CATEGORIES = {
  Default: 0,
  PodConnectivity: 1,
  NetworkPolicy: 2,
  Service: 3,
  Egress: 4,
  Multicast: 5,
  Multicluster: 6,
  Traceflow: 7,
  ExternalNodeConnectivity: 8,
} as const;
export type CookieCategory = keyof typeof COOKIE_CATEGORIES;

export interface CookieParts {
  readonly round: number;
  readonly category: number;
  readonly objectId: number;
}

export function decodeCookie(cookie: bigint): CookieParts {
  return {
    round: Number((cookie & COOKIE_ROUND_MASK) >> 48n),
    category: Number((cookie & COOKIE_CATEGORY_MASK) >> 40n),
    objectId: Number(cookie & COOKIE_ID_MASK),
  };
}

/** Allocates cookies for one round. Immutable; cheap to share. */
export class CookieAllocator {
  readonly round: number;

  constructor(round: number) {
    if (!Number.isInteger(round) || round < 0 || round > 0xffff)
      throw new ValidationError('round', `round ${round} is not 0..65535`);
    this.round = round;
  }

  /** The cookie for a category (and object id, e.g. a Service group id for its learned flows). */
  request(category: CookieCategory, objectId = 0): bigint {
    if (!Number.isInteger(objectId) || objectId < 0 || objectId > 0xffffffff) {
      throw new ValidationError('objectId', `${objectId} is not a 32-bit id`);
    }
    return (BigInt(this.round) << 48n) | (BigInt(COOKIE_CATEGORIES[category]) << 40n) | BigInt(objectId);
  }

  /** Cookie and mask selecting every flow of this round. */
  get roundFilter(): { readonly cookie: bigint; readonly cookieMask: bigint } {
    return { cookie: BigInt(this.round) << 48n, cookieMask: COOKIE_ROUND_MASK };
  }

  /** Cookie and mask selecting the flows of one category in this round. */
  categoryFilter(category: CookieCategory): { readonly cookie: bigint; readonly cookieMask: bigint } {
    return { cookie: this.request(category), cookieMask: COOKIE_ROUND_MASK | COOKIE_CATEGORY_MASK };
  }

  /** The round after `round` (wrapping after 65535 to 1, as 0 means "no round"). */
  static nextRound(round: number | undefined): number {
    if (round === undefined) return 1;
    return round >= 0xffff ? 1 : round + 1;
  }
}
