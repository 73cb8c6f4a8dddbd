/**
 * Tap stages: plugins order their taps with these names, never bare numbers.
 * A lower stage runs earlier (tapable's `stage`).
 */
/** Admission, validation, clamping: must see the request before anything rewrites it further. */
export const STAGE_POLICY = -100;
/** Ordinary taps. */
export const STAGE_DEFAULT = 0;
/** Observers (metrics, logging): see what the others produced. */
export const STAGE_OBSERVE = 100;

/** containerSpec stages: the base spec, then security, then network, then labels last. */
export const STAGE_SPEC_BASE = -200;
export const STAGE_SPEC_SECURITY = -50;
export const STAGE_SPEC_NETWORK = 50;
export const STAGE_SPEC_LABELS = 200;
